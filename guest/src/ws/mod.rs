//! WebSocket (RFC 6455): Node's `ws` package for handlers, on the HTTP `upgrade` event
//! or on a bare `net` connection, and a client.
//!
//! As everything above `net` in netlet, the protocol runs inside the sandbox: the
//! handshake is parsed by the SDK's HTTP parser, frames by [`protocol`] (a sans-I/O
//! state machine, usable and tested alone), and every netlet limit applies. An echo
//! server, [`export_ws!`](crate::export_ws):
//!
//! ```no_run
//! use netlet_guest::ws::{Message, WebSocket, WsHandler};
//!
//! struct Echo;
//!
//! impl WsHandler for Echo {
//!     fn on_message(&mut self, ws: &WebSocket, msg: Message) {
//!         if !ws.send(msg) {
//!             ws.pause(); // the peer is not reading: stop reading it too
//!         }
//!     }
//!     fn on_drain(&mut self, ws: &WebSocket) {
//!         ws.resume();
//!     }
//! }
//!
//! netlet_guest::export_ws!(Echo);
//! ```
//!
//! # The server
//!
//! [`WsServer`] is an [`HttpHandler`](crate::http::HttpHandler): a request with `Upgrade: websocket` is checked
//! ([`handshake::check_request`]: `GET`, HTTP/1.1, `Connection: upgrade`, a 16-byte
//! `Sec-WebSocket-Key`, version 13), refused with `400` (or `426` naming version 13),
//! or answered `101` with `Sec-WebSocket-Accept` and the subprotocol
//! [`WsHandler::select_protocol`] chose. Other requests go to [`WsHandler::on_request`]
//! (by default `426 Upgrade Required`), so one handler serves a page and its
//! WebSocket. [`WsNetServer`] does the same handshake on a bare `net` connection, for
//! a handler without HTTP.
//!
//! # The protocol
//!
//! RFC 6455 strictly (see [`protocol`] for each violation and its close code):
//! fragmented messages are joined (and can be sent, [`WebSocket::send_fragment`]),
//! control frames may come between fragments, a ping is answered with a pong carrying
//! its payload, the close handshake echoes the peer's code, text is checked as UTF-8
//! as it arrives and fails at the first bad byte (1007), a message longer than
//! [`WsOptions::max_message_size`] fails at the frame header that would pass it
//! (1009). After a close frame is sent the peer has [`WsOptions::close_timeout`] to
//! answer, then the socket is destroyed.
//!
//! # Bounded costs
//!
//! Per connection the SDK holds at most one message being assembled
//! ([`WsOptions::max_message_size`], 16 MiB by default) plus a frame header (14 bytes)
//! and a control frame (125 bytes); for the whole instance, messages being assembled
//! hold at most [`WsOptions::max_assembling`] (32 MiB): a connection that would pass
//! it is failed with 1013 (try again later). Replies the SDK makes itself (pongs,
//! close frames) to a peer that does not read stop the socket being read until they
//! are out. What a handler sends is queued in the guest and handed to the socket as
//! it drains; `send` returns false past 64 KiB buffered: a handler that keeps sending
//! regardless grows its own queue, as in Node.
//!
//! # The client
//!
//! [`connect`] (Node's `new WebSocket(url)`) opens a `ws://` connection over
//! [`net::connect`](crate::net::connect) (`wss://` over
//! [`net::connect_tls`](crate::net::connect_tls)), under the `--allow` policy like any
//! connection; its events come to the callback given to [`connect`] (which may hand
//! them to a [`WsHandler`] with [`WsEvent::deliver`]).

//!
//! # Layout
//!
//! As tungstenite keeps them, the concerns are apart, each below the next:
//!
//! - [`frame`]: the frame codec (header bytes to fields and back, the mask);
//!   [`utf8`]: text checked as it arrives; [`code`]: close codes;
//! - [`protocol`]: one connection's state after the handshake, sans I/O, on those;
//! - [`handshake`]: the opening handshake, on the HTTP parser;
//! - [`WebSocket`] (`socket.rs`): a connection on a socket, with its outgoing queue
//!   and close timer (claimed from the [`runtime`](crate::runtime));
//! - [`WsServer`] and [`WsNetServer`] (`server.rs`) for accepted connections,
//!   [`connect`] (`client.rs`) for the client, which claims its socket;
//! - [`WsHandler`], [`WsEvent`], [`WsOptions`]: what a handler sees.

pub mod client;
pub mod code;
mod event;
pub mod frame;
mod handler;
pub mod handshake;
mod options;
pub mod protocol;
mod server;
mod socket;
pub mod utf8;

pub use client::{ConnectOptions, connect, connect_with};
pub use code::valid_close_code;
pub use event::{Message, WsError, WsEvent};
pub use handler::WsHandler;
pub use options::{OPTION_ARGS, WsOptions};
pub use protocol::{SendError, Violation};
pub use server::{WsNetServer, WsServer};
pub use socket::{WebSocket, WsState, assembling};
