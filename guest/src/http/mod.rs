//! HTTP/1.1: Node's `http` module on `net`, parsed inside the sandbox.
//!
//! As in Node, an HTTP server is a `net` server whose connections feed a parser: an
//! [`HttpHandler`] is exported with [`export_http!`](crate::export_http), which wraps
//! it in an [`HttpServer`] (a [`NetHandler`](crate::NetHandler)). Untrusted bytes are
//! parsed in the guest, so every netlet limit (memory, CPU per event, connections) and
//! the hot swap apply unchanged. Node's canonical server:
//!
//! ```no_run
//! use netlet_guest::http::{HttpHandler, Request, Response};
//!
//! struct Hello;
//!
//! impl HttpHandler for Hello {
//!     fn on_request(&mut self, _req: &Request, res: &Response) {
//!         res.write_head(200, &[("Content-Type", "text/plain")]);
//!         res.end_with("Hello World\n");
//!     }
//! }
//!
//! netlet_guest::export_http!(Hello);
//! ```
//!
//! # What it does
//!
//! - Requests: method, URL, version, the header fields in order with their original
//!   case ([`Request::headers`], Node's `rawHeaders`); the body streamed in
//!   [`HttpHandler::on_body`] calls (with [`Request::pause`] / [`Request::resume`]),
//!   or collected up to a limit ([`Request::collect_body`]).
//! - Responses as Node writes them: [`Response::set_header`], [`Response::write_head`],
//!   [`Response::write`] with Node's backpressure boolean and [`HttpHandler::on_drain`],
//!   [`Response::end_with`]. A body of known length gets `Content-Length`, any other is
//!   chunked (close-delimited for an HTTP/1.0 client); `HEAD`, 204 and 304 have none;
//!   a `Date` header is added.
//! - Keep-alive by default for HTTP/1.1 (HTTP/1.0 only when asked), `Connection:
//!   close` honoured both ways, pipelined requests answered in order (one at a time:
//!   the next is parsed once the response before it ended), `Expect: 100-continue`
//!   (Node's `checkContinue`), upgrades ([`HttpHandler::on_upgrade`]: the request, the
//!   raw [`Socket`] and the bytes read after the head).
//! - Strict parsing (see [`parse`]): anything that could frame a request two ways is
//!   answered `400` and the connection closes, as Node's default `clientError`
//!   ([`HttpHandler::on_client_error`] overrides it).
//! - Node's limits and timeouts ([`ServerOptions`]), settable in code or by the
//!   operator as arguments (`-- --keep-alive-timeout 2s`).
//!
//! # Bounded costs
//!
//! Per connection, the SDK holds at most one head (`max_header_size`, 16 KiB) plus
//! one read's worth of bytes: a body is handed over as it arrives, pipelined requests
//! wait in the parser's buffer and the socket is paused once that buffer reaches
//! `max_header_size` (or while the answers written are not being read), and a
//! collected body is refused past its limit. A malformed
//! request is a `400` and a closed connection, never a panic.
//!
//! # The client
//!
//! [`request`] is Node's `http.request` over [`net::connect`](crate::net::connect):
//! the `--allow` policy applies as to any connection, and idle connections are kept
//! for the next request to the same host and port. Its response arrives as
//! [`ResponseEvent`]s in the callback given to [`request`].

pub(crate) mod client;
mod date;
pub(crate) mod options;
pub mod parse;
mod response;
mod server;

pub use client::{ClientRequest, IncomingResponse, RequestOptions, ResponseEvent, get, request};
pub use options::{OPTION_ARGS, ServerOptions};
pub use parse::{Error, Head, Version};
pub use response::{
    Response, error_response, reason_phrase, valid_header_name, valid_header_value,
};
pub use server::{HttpServer, Request, default_client_error};

use crate::net::{Server, Socket, SocketEvent};
use crate::timers::TimerId;

/// An HTTP server's handler: Node's `http.Server` events. Every method but
/// [`HttpHandler::on_request`] has a default. Export with
/// [`export_http!`](crate::export_http).
pub trait HttpHandler: 'static {
    /// The server's limits and timeouts (Node's `createServer` options). Read once,
    /// before `init`; the handler's arguments may override them (see
    /// [`ServerOptions::apply_args`]).
    fn options(&self) -> ServerOptions {
        ServerOptions::default()
    }

    /// Runs once when the instance starts, with the arguments the server options did
    /// not take.
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let _ = args;
        Ok(())
    }

    /// Node's `'listening'`.
    fn on_listening(&mut self, server: &Server) {
        let _ = server;
    }

    /// Node's `'connection'`: a new connection, before any request.
    fn on_connection(&mut self, socket: &Socket) {
        let _ = socket;
    }

    /// Node's `'request'`: a request's head arrived. Answer through `res`, now or
    /// later (keep a clone). The body follows in [`HttpHandler::on_body`] calls and
    /// [`HttpHandler::on_body_end`].
    fn on_request(&mut self, req: &Request, res: &Response);

    /// Node's `req.on('data')`: a piece of the request body, as it arrived.
    fn on_body(&mut self, req: &Request, res: &Response, chunk: Vec<u8>) {
        let _ = (req, res, chunk);
    }

    /// Node's `req.on('end')`: the whole body arrived (at once after `on_request` for
    /// a request without a body).
    fn on_body_end(&mut self, req: &Request, res: &Response) {
        let _ = (req, res);
    }

    /// Node's `res.on('drain')`: the socket's queue emptied after
    /// [`Response::write`] returned false.
    fn on_drain(&mut self, req: &Request, res: &Response) {
        let _ = (req, res);
    }

    /// Node's `res.on('close')`: the exchange is over. Either the response ended
    /// and the request was read ([`Response::finished`] is true), or the connection
    /// closed first (false: the client went away, Node's `aborted`).
    fn on_close(&mut self, req: &Request, res: &Response) {
        let _ = (req, res);
    }

    /// Node's `'checkContinue'`: a request with `Expect: 100-continue`. The default,
    /// as Node without a listener, sends `100 Continue` and calls
    /// [`HttpHandler::on_request`]. Answer without [`Response::write_continue`] to
    /// refuse the body (the connection then closes after the response).
    fn on_check_continue(&mut self, req: &Request, res: &Response) {
        res.write_continue();
        self.on_request(req, res);
    }

    /// Node's `'clientError'`: a request that cannot be served (malformed, head too
    /// large, too slow): `error.status()` says which answer fits. The default writes
    /// Node's (`HTTP/1.1 400 Bad Request`, `Connection: close`); the connection is
    /// ended after this returns either way.
    fn on_client_error(&mut self, error: &Error, socket: &Socket) {
        default_client_error(error, socket);
    }

    /// Whether to take over the connection of this upgrade request (`Connection:
    /// upgrade` with an `Upgrade` header, or `CONNECT`). When false (the default, as
    /// Node without an `'upgrade'` listener) it is an ordinary request for
    /// [`HttpHandler::on_request`].
    fn wants_upgrade(&mut self, req: &Request) -> bool {
        let _ = req;
        false
    }

    /// Node's `'upgrade'`: the request, the raw socket and the bytes that came after
    /// the head (the new protocol's first bytes). The socket is yours: write the `101
    /// Switching Protocols` head yourself; its later events come to
    /// [`HttpHandler::on_upgraded`].
    fn on_upgrade(&mut self, req: &Request, socket: &Socket, head: Vec<u8>) {
        let _ = (req, head);
        socket.destroy();
    }

    /// An event of a socket taken over by [`HttpHandler::on_upgrade`].
    fn on_upgraded(&mut self, socket: &Socket, event: SocketEvent) {
        let _ = (socket, event);
    }

    /// A timer set with [`timers`](crate::timers) fired.
    fn on_timer(&mut self, timer: TimerId) {
        let _ = timer;
    }
}
