//! The servers: [`WsServer`] takes WebSocket handshakes from an HTTP server,
//! [`WsNetServer`] reads them on bare `net` connections; both answer the handshake and
//! drive each accepted [`WebSocket`] with its socket's events.

use std::collections::HashMap;

use super::event::WsEvent;
use super::handler::WsHandler;
use super::handshake;
use super::options::WsOptions;
use super::protocol::Role;
use super::socket::{self, WebSocket};
use crate::error::Error;
use crate::handler::NetHandler;
use crate::http::parse::{self as http_parse, Kind, Limits, Parser};
use crate::http::{Head, HttpHandler, Request, Response, ServerOptions, error_response};
use crate::net::{Server, Socket, SocketEvent};
use crate::timers::TimerId;

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
        ev.deliver(handler, ws);
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
            Ok(Some(http_parse::Event::Head(head))) => {
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
                socket.end_with(error_response(e.status()));
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
}
