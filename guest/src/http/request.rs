//! [`Request`]: a request as a server handler sees it, Node's `http.IncomingMessage`.

use std::rc::Rc;

use super::exchange::{Exchange, schedule};
use super::parse::{Head, Version};
use crate::net::Socket;

/// A request: Node's `http.IncomingMessage` on a server. A cheap handle: clone it to
/// keep it. Its body arrives in [`HttpHandler::on_body`](super::HttpHandler::on_body) calls, then
/// [`HttpHandler::on_body_end`](super::HttpHandler::on_body_end) (or all at once: [`Request::collect_body`]).
#[derive(Clone)]
pub struct Request(pub(crate) Rc<Exchange>);

impl Request {
    /// A number unique to this request within the instance (its response's
    /// [`Response::id`](super::Response::id) too).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Node's `req.method`: `GET`, `POST`, ...
    pub fn method(&self) -> &str {
        self.0.head.method()
    }

    /// Node's `req.url`: the request target as sent (`/path?query`).
    pub fn url(&self) -> &str {
        self.0.head.target()
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.0.head.version()
    }

    /// Node's `req.httpVersion`: `"1.1"` or `"1.0"`.
    pub fn http_version(&self) -> &'static str {
        self.0.head.version().as_str()
    }

    /// Every header field in order with its name's original case: Node's `rawHeaders`,
    /// as pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.head.headers()
    }

    /// The first value of header `name`, any case: Node's `req.headers[name]` (which
    /// joins repeated fields; see [`Request::header_values`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.head.header(name)
    }

    /// Every value of header `name`, any case, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.head.header_values(name)
    }

    /// The parsed head.
    pub fn head(&self) -> &Head {
        &self.0.head
    }

    /// The connection: Node's `req.socket`.
    pub fn socket(&self) -> &Socket {
        &self.0.socket
    }

    /// Node's `req.complete`: the whole body arrived.
    pub fn complete(&self) -> bool {
        self.0.req.borrow().complete
    }

    /// Node's `req.pause()`: no more body until [`Request::resume`]; the socket stops
    /// reading, so the client is slowed by TCP flow control. What `pipe` does when
    /// the destination is full.
    pub fn pause(&self) {
        self.0.req.borrow_mut().paused = true;
        self.0.socket.pause();
    }

    /// Node's `req.resume()`.
    pub fn resume(&self) {
        self.0.req.borrow_mut().paused = false;
        self.0.socket.resume();
        schedule(self.0.socket.id());
    }

    /// Node's `req.isPaused()`.
    pub fn is_paused(&self) -> bool {
        self.0.req.borrow().paused
    }

    /// Collects the body instead of delivering it piece by piece: [`HttpHandler::on_body`](super::HttpHandler::on_body)
    /// is not called, and in [`HttpHandler::on_body_end`](super::HttpHandler::on_body_end) [`Request::take_body`] returns
    /// it whole. A body longer than `limit` bytes is answered with `413 Payload Too
    /// Large` and the connection closes (`on_body_end` is not called). Call it in
    /// `on_request`.
    pub fn collect_body(&self, limit: usize) {
        self.0.req.borrow_mut().collect = Some(limit);
    }

    /// The body collected with [`Request::collect_body`] (taken: a second call returns
    /// nothing).
    pub fn take_body(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.req.borrow_mut().body)
    }

    /// Node's `req.trailers`: the trailer fields of a chunked body, once complete.
    pub fn trailers(&self) -> Vec<(String, String)> {
        self.0.req.borrow().trailers.clone()
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id())
            .field("method", &self.method())
            .field("url", &self.url())
            .finish()
    }
}
