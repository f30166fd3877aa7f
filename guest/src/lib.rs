//! # netlet-guest: write netlet handlers in Rust
//!
//! A netlet handler is a WebAssembly component that the `netlet` host calls for every
//! network event, with the events and socket methods of Node.js's `net` (TCP) and `dgram`
//! (UDP) modules. This crate hides the raw WIT bindings: implement [`NetHandler`] (TCP)
//! and/or [`DgramHandler`] (UDP), whose methods all default to doing nothing, and export
//! your type with one macro. The SDK keeps track of every socket, hands you a [`Socket`]
//! handle per event, and keeps per-connection state for you ([`Socket::state`]).
//!
//! The seed's echo server, `net.createServer(s => { s.write('Echo server\r\n'); s.pipe(s) })`:
//!
//! ```no_run
//! use netlet_guest::{NetHandler, Socket};
//!
//! struct Echo;
//!
//! impl NetHandler for Echo {
//!     fn on_connection(&mut self, socket: &Socket) {
//!         socket.write(b"Echo server\r\n");
//!     }
//!     fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
//!         // `pipe` semantics: stop reading while the peer is not keeping up.
//!         if !socket.write(&data) {
//!             socket.pause();
//!         }
//!     }
//!     fn on_drain(&mut self, socket: &Socket) {
//!         socket.resume();
//!     }
//! }
//!
//! netlet_guest::export_net!(Echo);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2` and run it:
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! netlet run target/wasm32-wasip2/release/echo.wasm --tcp 127.0.0.1:1337
//! ```
//!
//! ## The execution model in one paragraph
//!
//! Like a Node process, an instance is single-threaded and sees events one at a time, in
//! order. Methods never block: [`Socket::write`] queues bytes and returns Node's
//! backpressure boolean; the host sends them after your handler returns. Results of
//! asynchronous work (`connect`, `drain`, `end`, `close`) arrive later as events.
//! `println!` / `eprintln!` go to the host's log, prefixed with the component's name.
//!
//! ## Exporting
//!
//! - [`export_net!`] for a TCP handler ([`NetHandler`]),
//! - [`export_dgram!`] for a UDP handler ([`DgramHandler`]),
//! - [`export_handler!`] for a type implementing both,
//! - [`export_http!`] for an HTTP server ([`http::HttpHandler`]; see [`http`]: Node's
//!   `http` module, server and client, on `net`),
//! - [`export_ws!`] for a WebSocket server ([`ws::WsHandler`]; see [`ws`]: RFC 6455 on
//!   the HTTP upgrade, with Node's `ws` events, and a client).
//!
//! Each takes an expression that builds the handler, evaluated once when the instance
//! starts: `export_net!(Echo)` for a unit struct, `export_net!(Chat::default())` otherwise.

#![warn(missing_docs)]

#[allow(missing_docs)]
mod bindings;
pub mod dgram;
mod error;
mod handler;
pub mod http;
pub mod net;
mod runtime;
pub mod timers;
pub mod ws;

pub use dgram::{DgramSocket, RemoteInfo};
pub use error::{Error, ErrorCode};
pub use handler::{DgramHandler, NetHandler};
pub use net::{
    AddressInfo, IpFamily, PeerCertificate, ReadyState, Server, ServerOptions, Socket, SocketEvent,
    TlsInfo, TlsOptions,
};
pub use timers::TimerId;

/// Implementation details used by the export macros. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::netlet::net::handler::{Event, Guest};
    pub use crate::runtime::{Both, DgramOnly, NetOnly, handle, init};
    pub mod bindings {
        pub use crate::bindings::*;
    }
}

/// Exports a TCP handler: a value of a type implementing [`NetHandler`].
///
/// The expression is evaluated once, when the instance starts (before `init`).
///
/// ```no_run
/// # use netlet_guest::NetHandler;
/// #[derive(Default)]
/// struct Counter { connections: u64 }
/// impl NetHandler for Counter {}
/// netlet_guest::export_net!(Counter::default());
/// ```
#[macro_export]
macro_rules! export_net {
    ($make:expr) => {
        $crate::__export_with!($crate::__private::NetOnly($make));
    };
}

/// Exports an HTTP server: a value of a type implementing
/// [`HttpHandler`](crate::http::HttpHandler), wrapped in an
/// [`HttpServer`](crate::http::HttpServer).
///
/// ```no_run
/// # use netlet_guest::http::{HttpHandler, Request, Response};
/// struct NotFound;
/// impl HttpHandler for NotFound {
///     fn on_request(&mut self, _req: &Request, res: &Response) {
///         res.set_status(404);
///         res.end();
///     }
/// }
/// netlet_guest::export_http!(NotFound);
/// ```
#[macro_export]
macro_rules! export_http {
    ($make:expr) => {
        $crate::export_net!($crate::http::HttpServer::new($make));
    };
}

/// Exports a WebSocket server: a value of a type implementing
/// [`WsHandler`](crate::ws::WsHandler), served over HTTP (a
/// [`WsServer`](crate::ws::WsServer) in an [`HttpServer`](crate::http::HttpServer)):
/// `Upgrade: websocket` requests become WebSockets, other requests go to
/// [`WsHandler::on_request`](crate::ws::WsHandler::on_request).
///
/// ```no_run
/// # use netlet_guest::ws::{Message, WebSocket, WsHandler};
/// struct Echo;
/// impl WsHandler for Echo {
///     fn on_message(&mut self, ws: &WebSocket, msg: Message) {
///         ws.send(msg);
///     }
/// }
/// netlet_guest::export_ws!(Echo);
/// ```
#[macro_export]
macro_rules! export_ws {
    ($make:expr) => {
        $crate::export_http!($crate::ws::WsServer::new($make));
    };
}

/// Exports a UDP handler: a value of a type implementing [`DgramHandler`].
///
/// ```no_run
/// # use netlet_guest::DgramHandler;
/// struct Quiet;
/// impl DgramHandler for Quiet {}
/// netlet_guest::export_dgram!(Quiet);
/// ```
#[macro_export]
macro_rules! export_dgram {
    ($make:expr) => {
        $crate::__export_with!($crate::__private::DgramOnly($make));
    };
}

/// Exports a handler implementing both [`NetHandler`] and [`DgramHandler`].
///
/// Both traits' `init` run (TCP first), and a timer event reaches both traits'
/// `on_timer`; implement each in one of them.
#[macro_export]
macro_rules! export_handler {
    ($make:expr) => {
        $crate::__export_with!($crate::__private::Both($make));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_with {
    ($adapter:expr) => {
        const _: () = {
            struct __NetletExport;

            impl $crate::__private::Guest for __NetletExport {
                fn init(args: ::std::vec::Vec<::std::string::String>) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::init(::std::boxed::Box::new($adapter), args)
                }
                fn handle(events: ::std::vec::Vec<$crate::__private::Event>) {
                    $crate::__private::handle(events)
                }
            }

            $crate::__private::bindings::__netlet_export_world!(__NetletExport with_types_in $crate::__private::bindings);
        };
    };
}
