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
//! [`WsServer`] is an [`HttpHandler`]: a request with `Upgrade: websocket` is checked
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
//! connection; its events come to [`NetHandler::on_websocket`](crate::NetHandler::on_websocket)
//! (or, in a [`WsServer`], to the same [`WsHandler`] methods as accepted connections).

pub mod client;
pub mod handshake;
pub mod protocol;
mod socket;

use std::time::Duration;

pub use client::{ConnectOptions, connect, connect_with};
pub use protocol::{SendError, Violation, code, valid_close_code};
pub use socket::{WebSocket, WsState, assembling};

use crate::http::{
    Head, HttpHandler, Request, Response, ServerOptions,
    parse::{Kind, Limits, Parser},
};
use crate::net::{Server, Socket, SocketEvent};
use crate::timers::TimerId;
use crate::{Error, NetHandler};
use protocol::Role;
use std::collections::HashMap;

/// A message: Node's `ws` `message` event's data and its `isBinary`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (checked to be UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it is binary (Node's `isBinary`).
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }
}

impl WebSocket {
    /// Sends `msg` as it is (text as text, binary as binary); see
    /// [`WebSocket::send_text`].
    pub fn send(&self, msg: Message) -> bool {
        self.try_send(msg).unwrap_or(false)
    }
}

/// Why a WebSocket reports an error (Node's `ws` `error` event); `on_close` follows.
#[derive(Clone, Debug)]
pub enum WsError {
    /// The peer broke the protocol: the connection was failed with the code.
    Protocol(Violation),
    /// A client's handshake failed (refused, not a WebSocket server, a wrong accept
    /// key).
    Handshake(String),
    /// The socket failed (reset, refused).
    Socket(Error),
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Protocol(v) => write!(f, "{v}"),
            WsError::Handshake(m) => write!(f, "handshake failed: {m}"),
            WsError::Socket(e) => write!(f, "{e}"),
        }
    }
}

/// What happens on a WebSocket, as [`NetHandler::on_websocket`] receives it (a
/// [`WsHandler`] gets one method per case).
#[derive(Debug)]
pub enum WsEvent {
    /// Node's `open`: a client's handshake succeeded (a server's connections are open
    /// from the start, and get it too).
    Open,
    /// Node's `message`.
    Message(Message),
    /// Node's `ping`: the SDK has answered it already.
    Ping(Vec<u8>),
    /// Node's `pong`.
    Pong(Vec<u8>),
    /// Everything sent is out after a send returned false.
    Drain,
    /// Node's `error`; `Close` follows.
    Error(WsError),
    /// Node's `close`: the socket is closed. `code` is the peer's close code (1005 if
    /// its close frame had none), the one we failed the connection with, or 1006 if no
    /// close frame came.
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
}

/// Limits of the WebSocket layer. A handler returns its own from
/// [`WsHandler::options`]; the operator can override them with arguments
/// (`-- --max-message-size 1MiB --close-timeout 5s`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsOptions {
    /// The longest message, all fragments together: Node's `ws` `maxPayload`. Default
    /// 16 MiB. Past it the connection fails with 1009.
    pub max_message_size: usize,
    /// Bytes all the instance's connections may hold in messages being assembled.
    /// Default 32 MiB (half the default `--max-memory`). A connection that would pass
    /// it fails with 1013.
    pub max_assembling: usize,
    /// How long the peer has to answer our close frame (or, for a client, the server
    /// to close the connection) before the socket is destroyed. Default 30 s (Node's
    /// `ws` `closeTimeout`).
    pub close_timeout: Duration,
    /// The same, when we fail the connection: a close with 1002, 1003, 1007, 1008,
    /// 1009, 1011 or 1013 (a protocol violation, a message too big, a peer too far
    /// behind). Its unsent backlog is dropped at once, and the socket is destroyed
    /// after this long, as Node's `ws.terminate()`. Default 1 s.
    pub fail_close_timeout: Duration,
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            max_assembling: 32 << 20,
            close_timeout: Duration::from_secs(30),
            fail_close_timeout: Duration::from_secs(1),
        }
    }
}

/// The arguments [`WsOptions::apply_args`] understands.
pub const OPTION_ARGS: &[&str] = &[
    "--max-message-size",
    "--max-assembling",
    "--close-timeout",
    "--fail-close-timeout",
];

impl WsOptions {
    /// Takes the options it knows out of `args` (`--NAME VALUE` or `--NAME=VALUE`;
    /// sizes `1048576` or `1MiB`, durations `500ms`, `5s`) and returns the rest.
    pub fn apply_args(&mut self, args: Vec<String>) -> Result<Vec<String>, String> {
        use crate::http::options::{parse_duration, parse_size};
        let mut rest = Vec::new();
        let mut iter = args.into_iter();
        while let Some(arg) = iter.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if !OPTION_ARGS.contains(&name.as_str()) {
                rest.push(arg);
                continue;
            }
            let value = inline
                .or_else(|| iter.next())
                .ok_or_else(|| format!("{name} needs a value"))?;
            let bad = |what: &str| format!("{name} {value:?}: expected {what}");
            match name.as_str() {
                "--close-timeout" => {
                    self.close_timeout =
                        parse_duration(&value).ok_or_else(|| bad("a duration such as 5s"))?
                }
                "--fail-close-timeout" => {
                    self.fail_close_timeout =
                        parse_duration(&value).ok_or_else(|| bad("a duration such as 1s"))?
                }
                _ => {
                    let n = parse_size(&value)
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("a size such as 1MiB"))?;
                    if name == "--max-message-size" {
                        self.max_message_size = n;
                    } else {
                        self.max_assembling = n;
                    }
                }
            }
        }
        Ok(rest)
    }
}

/// A WebSocket server's handler: Node's `ws` `WebSocketServer` and `WebSocket` events.
/// Every method has a default. Export with [`export_ws!`](crate::export_ws) (over
/// HTTP) or `export_net!(WsNetServer::new(h))` (on bare `net` connections).
pub trait WsHandler: 'static {
    /// The WebSocket layer's limits. Read once, before `init`; arguments may override
    /// them.
    fn options(&self) -> WsOptions {
        WsOptions::default()
    }

    /// The HTTP server's limits (see [`HttpHandler::options`]).
    fn http_options(&self) -> ServerOptions {
        ServerOptions::default()
    }

    /// Runs once when the instance starts, with the arguments the options did not take.
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let _ = args;
        Ok(())
    }

    /// An HTTP request that is not a WebSocket handshake (a page, an asset). The
    /// default answers `426 Upgrade Required`.
    fn on_request(&mut self, req: &Request, res: &Response) {
        let _ = req;
        res.write_head(
            426,
            &[
                ("Content-Type", "text/plain"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
            ],
        );
        res.end_with("this is a WebSocket endpoint\n");
    }

    /// Node's `handleProtocols`: choose one of the subprotocols the client offered
    /// (`Sec-WebSocket-Protocol`), or none. A name that was not offered is ignored.
    fn select_protocol(&mut self, request: &Head, offered: &[String]) -> Option<String> {
        let _ = (request, offered);
        None
    }

    /// Node's `connection` (a server's) or `open` (a client's): messages may flow.
    /// [`WebSocket::path`] and [`WebSocket::header`] tell what the handshake asked.
    fn on_open(&mut self, ws: &WebSocket) {
        let _ = ws;
    }

    /// Node's `message`: a whole message, text or binary.
    fn on_message(&mut self, ws: &WebSocket, msg: Message) {
        let _ = (ws, msg);
    }

    /// Node's `ping`: the SDK has already answered with a pong carrying `payload`.
    fn on_ping(&mut self, ws: &WebSocket, payload: &[u8]) {
        let _ = (ws, payload);
    }

    /// Node's `pong`.
    fn on_pong(&mut self, ws: &WebSocket, payload: &[u8]) {
        let _ = (ws, payload);
    }

    /// Everything sent is out after a send returned false.
    fn on_drain(&mut self, ws: &WebSocket) {
        let _ = ws;
    }

    /// Node's `error`: a protocol violation by the peer (the connection was failed
    /// with its code), a failed client handshake, a socket error. `on_close` follows.
    fn on_error(&mut self, ws: &WebSocket, error: &WsError) {
        let _ = (ws, error);
    }

    /// Node's `close`: the connection is closed, with the peer's close code (1005 if
    /// its frame had none), the code we failed it with, or 1006 without a close frame.
    fn on_close(&mut self, ws: &WebSocket, code: u16, reason: &str) {
        let _ = (ws, code, reason);
    }

    /// A timer set with [`timers`](crate::timers) fired.
    fn on_timer(&mut self, timer: TimerId) {
        let _ = timer;
    }
}

/// Answers a handshake on `socket`: `101` and a new [`WebSocket`] (whose `Open` and
/// first bytes' events are returned), or the refusal and the socket ended.
fn accept<H: WsHandler>(
    handler: &mut H,
    options: &WsOptions,
    head: &Head,
    socket: &Socket,
    rest: Vec<u8>,
) -> Option<(WebSocket, Vec<WsEvent>)> {
    let offer = match handshake::check_request(head) {
        Ok(offer) => offer,
        Err(refusal) => {
            socket.end_with(refusal.response());
            return None;
        }
    };
    let protocol = handler
        .select_protocol(head, &offer.protocols)
        .filter(|p| offer.protocols.contains(p));
    socket.write(handshake::accept_response(&offer.key, protocol.as_deref()));
    // Small messages go out as they are written.
    let _ = socket.set_no_delay(true);
    let ws = WebSocket::new(
        socket.clone(),
        Role::Server,
        head.target().to_string(),
        options.clone(),
        Some(head.clone()),
        protocol,
        true,
    );
    let mut events = vec![WsEvent::Open];
    if !rest.is_empty() {
        events.extend(ws.on_socket_event(SocketEvent::Data(rest)));
    }
    Some((ws, events))
}

fn deliver_all<H: WsHandler>(handler: &mut H, ws: &WebSocket, events: Vec<WsEvent>) {
    for ev in events {
        socket::deliver(handler, ws, ev);
    }
}

/// A WebSocket server on HTTP: an [`HttpHandler`] that takes `Upgrade: websocket`
/// requests and hands the rest to [`WsHandler::on_request`].
/// [`export_ws!`](crate::export_ws) exports one.
pub struct WsServer<H> {
    handler: H,
    options: WsOptions,
}

impl<H: WsHandler> WsServer<H> {
    /// A server calling `handler`.
    pub fn new(handler: H) -> Self {
        let options = handler.options();
        Self { handler, options }
    }
}

impl<H: WsHandler> HttpHandler for WsServer<H> {
    fn options(&self) -> ServerOptions {
        self.handler.http_options()
    }

    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let rest = self.options.apply_args(args)?;
        self.handler.init(rest)
    }

    fn on_request(&mut self, req: &Request, res: &Response) {
        self.handler.on_request(req, res);
    }

    fn wants_upgrade(&mut self, req: &Request) -> bool {
        handshake::is_websocket_request(req.head())
    }

    fn on_upgrade(&mut self, req: &Request, socket: &Socket, head: Vec<u8>) {
        if let Some((ws, events)) =
            accept(&mut self.handler, &self.options, req.head(), socket, head)
        {
            deliver_all(&mut self.handler, &ws, events);
        }
    }

    fn on_upgraded(&mut self, socket: &Socket, event: SocketEvent) {
        if let Some(ws) = socket::get(socket.id()) {
            let events = ws.on_socket_event(event);
            deliver_all(&mut self.handler, &ws, events);
        }
    }

    fn on_timer(&mut self, timer: TimerId) {
        self.handler.on_timer(timer);
    }

    fn on_websocket(&mut self, ws: &WebSocket, event: WsEvent) {
        socket::deliver(&mut self.handler, ws, event);
    }
}

/// A WebSocket server on bare `net` connections (no HTTP server around it): each
/// connection's first bytes must be a handshake (parsed with the SDK's HTTP parser,
/// head at most 16 KiB), answered `101`, or `400`/`426` and closed.
///
/// ```no_run
/// # use netlet_guest::ws::{WsHandler, WsNetServer};
/// struct Quiet;
/// impl WsHandler for Quiet {}
/// netlet_guest::export_net!(WsNetServer::new(Quiet));
/// ```
pub struct WsNetServer<H> {
    handler: H,
    options: WsOptions,
    handshakes: HashMap<u32, Parser>,
}

impl<H: WsHandler> WsNetServer<H> {
    /// A server calling `handler`.
    pub fn new(handler: H) -> Self {
        let options = handler.options();
        Self {
            handler,
            options,
            handshakes: HashMap::new(),
        }
    }

    fn event(&mut self, socket: &Socket, event: SocketEvent) {
        if let Some(ws) = socket::get(socket.id()) {
            let events = ws.on_socket_event(event);
            deliver_all(&mut self.handler, &ws, events);
        } else if let SocketEvent::Close { .. } = event {
            self.handshakes.remove(&socket.id());
        }
    }
}

impl<H: WsHandler> NetHandler for WsNetServer<H> {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let rest = self.options.apply_args(args)?;
        self.handler.init(rest)
    }

    fn on_connection(&mut self, socket: &Socket) {
        let limits = Limits {
            max_header_size: self.handler.http_options().max_header_size,
            max_headers: self.handler.http_options().max_headers_count,
        };
        self.handshakes
            .insert(socket.id(), Parser::new(Kind::Request, limits));
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        let Some(parser) = self.handshakes.get_mut(&socket.id()) else {
            return self.event(socket, SocketEvent::Data(data));
        };
        parser.push(data);
        match parser.next_event() {
            Ok(None) => {}
            Ok(Some(crate::http::parse::Event::Head(head))) => {
                let rest = parser.take_rest();
                self.handshakes.remove(&socket.id());
                if let Some((ws, events)) =
                    accept(&mut self.handler, &self.options, &head, socket, rest)
                {
                    deliver_all(&mut self.handler, &ws, events);
                }
            }
            Ok(Some(_)) => {}
            Err(e) => {
                self.handshakes.remove(&socket.id());
                socket.end_with(crate::http::error_response(e.status()));
            }
        }
    }

    fn on_end(&mut self, socket: &Socket) {
        self.event(socket, SocketEvent::End);
    }

    fn on_drain(&mut self, socket: &Socket) {
        self.event(socket, SocketEvent::Drain);
    }

    fn on_error(&mut self, socket: &Socket, error: Error) {
        self.event(socket, SocketEvent::Error(error));
    }

    fn on_close(&mut self, socket: &Socket, had_error: bool) {
        self.event(socket, SocketEvent::Close { had_error });
    }

    fn on_listening(&mut self, server: &Server) {
        let _ = server;
    }

    fn on_timer(&mut self, timer: TimerId) {
        self.handler.on_timer(timer);
    }

    fn on_websocket(&mut self, ws: &WebSocket, event: WsEvent) {
        socket::deliver(&mut self.handler, ws, event);
    }
}

pub(crate) use socket::close_timer_fired;
