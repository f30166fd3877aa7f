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
//!   raw [`Socket`](crate::net::Socket) and the bytes read after the head).
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

//!
//! # Layout
//!
//! As hyper keeps them, the concerns are apart: [`parse`] reads heads and bodies (on
//! httparse; a parser that never allocates per byte and reports "partial"),
//! `encode.rs` writes responses as pure functions of their state, `conn.rs` is one
//! server connection as explicit reading and writing states, `server.rs` routes a
//! server's socket events to its connections and checks Node's timeouts, and
//! [`Request`] / [`Response`] (`request.rs`, `response.rs`, sharing an exchange in
//! `exchange.rs`) are what a handler holds. The client (`client.rs`) claims the
//! connections it opens from the [`runtime`](crate::runtime).

pub(crate) mod client;
mod conn;
mod date;
mod encode;
mod exchange;
mod handler;
pub(crate) mod options;
pub mod parse;
mod request;
mod response;
mod server;

pub use client::{ClientRequest, IncomingResponse, RequestOptions, ResponseEvent, get, request};
pub use encode::{error_response, reason_phrase, valid_header_name, valid_header_value};
pub use handler::{HttpHandler, default_client_error};
pub use options::{OPTION_ARGS, ServerOptions};
pub use parse::{Error, Head, Version};
pub use request::Request;
pub use response::Response;
pub use server::HttpServer;
