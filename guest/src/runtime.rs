//! The SDK's side of the event loop: keeps the instance's handler and every live socket,
//! and turns each batch of raw events from the host into handler calls.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::bindings::exports::netlet::net::handler::Event;
use crate::bindings::netlet::net::dgram_handler::DgramEvent;
use crate::bindings::netlet::net::net_handler::NetEvent;
use crate::dgram::DgramSocket;
use crate::handler::{DgramHandler, NetHandler};
use crate::http::{self, client::SocketEvent as ClientSocketEvent};
use crate::net::{Server, Socket, SocketEvent};
use crate::timers::TimerId;

/// What an export macro registers: access to the handler's TCP and/or UDP side.
pub trait Dispatch {
    fn net(&mut self) -> Option<&mut dyn NetHandler>;
    fn dgram(&mut self) -> Option<&mut dyn DgramHandler>;
}

/// Adapter for [`export_net!`](crate::export_net).
pub struct NetOnly<H>(pub H);
/// Adapter for [`export_dgram!`](crate::export_dgram).
pub struct DgramOnly<H>(pub H);
/// Adapter for [`export_handler!`](crate::export_handler).
pub struct Both<H>(pub H);

impl<H: NetHandler> Dispatch for NetOnly<H> {
    fn net(&mut self) -> Option<&mut dyn NetHandler> {
        Some(&mut self.0)
    }
    fn dgram(&mut self) -> Option<&mut dyn DgramHandler> {
        None
    }
}

impl<H: DgramHandler> Dispatch for DgramOnly<H> {
    fn net(&mut self) -> Option<&mut dyn NetHandler> {
        None
    }
    fn dgram(&mut self) -> Option<&mut dyn DgramHandler> {
        Some(&mut self.0)
    }
}

impl<H: NetHandler + DgramHandler> Dispatch for Both<H> {
    fn net(&mut self) -> Option<&mut dyn NetHandler> {
        Some(&mut self.0)
    }
    fn dgram(&mut self) -> Option<&mut dyn DgramHandler> {
        Some(&mut self.0)
    }
}

/// Socket ids are small integers the host hands out in sequence: a multiplicative hash
/// spreads them well and costs far less than SipHash on every event.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<IdHasher>>;

thread_local! {
    static HANDLER: RefCell<Option<Box<dyn Dispatch>>> = const { RefCell::new(None) };
    // Kept apart from HANDLER: a handler may open sockets while it is being called.
    static SOCKETS: RefCell<IdMap<Socket>> = RefCell::new(IdMap::default());
    static SERVERS: RefCell<IdMap<Server>> = RefCell::new(IdMap::default());
    static DGRAMS: RefCell<IdMap<DgramSocket>> = RefCell::new(IdMap::default());
}

pub(crate) fn adopt_socket(socket: &Socket) {
    SOCKETS.with(|s| s.borrow_mut().insert(socket.id(), socket.clone()));
}

pub(crate) fn adopt_dgram(socket: &DgramSocket) {
    DGRAMS.with(|s| s.borrow_mut().insert(socket.id(), socket.clone()));
}

/// A live socket by id; `None` for unknown or destroyed ones, whose remaining events
/// (other than `close`) are dropped.
fn socket(id: u32) -> Option<Socket> {
    SOCKETS
        .with(|s| s.borrow().get(&id).cloned())
        .filter(|s| !s.destroyed())
}

fn server(id: u32) -> Option<Server> {
    SERVERS.with(|s| s.borrow().get(&id).cloned())
}

fn dgram(id: u32) -> Option<DgramSocket> {
    DGRAMS.with(|s| s.borrow().get(&id).cloned())
}

fn with_handler(f: impl FnOnce(&mut dyn Dispatch)) {
    HANDLER.with(|h| {
        if let Some(handler) = h.borrow_mut().as_mut() {
            f(handler.as_mut())
        }
    })
}

/// The export's `init`: installs the handler, then runs its `init` hook(s).
pub fn init(handler: Box<dyn Dispatch>, args: Vec<String>) -> Result<(), String> {
    HANDLER.with(|h| *h.borrow_mut() = Some(handler));
    let mut result = Ok(());
    with_handler(|h| {
        if let Some(net) = h.net() {
            let options = net.server_options();
            if options != crate::net::ServerOptions::default() {
                crate::net::set_server_options(options);
            }
            result = net.init(args.clone());
        }
        if result.is_ok()
            && let Some(dgram) = h.dgram()
        {
            result = dgram.init(args);
        }
    });
    result
}

/// The export's `handle`: delivers each event of the batch, in order.
pub fn handle(events: Vec<Event>) {
    for event in events {
        match event {
            Event::Net(ev) => net_event(ev),
            Event::Dgram(ev) => dgram_event(ev),
            Event::Timer(id) if crate::ws::close_timer_fired(TimerId(id)) => {}
            Event::Timer(id) => with_handler(|h| {
                if let Some(net) = h.net() {
                    net.on_timer(TimerId(id));
                }
                if let Some(dgram) = h.dgram() {
                    dgram.on_timer(TimerId(id));
                }
            }),
        }
    }
}

fn on_net(f: impl FnOnce(&mut dyn NetHandler)) {
    with_handler(|h| {
        if let Some(net) = h.net() {
            f(net)
        }
    })
}

fn on_dgram(f: impl FnOnce(&mut dyn DgramHandler)) {
    with_handler(|h| {
        if let Some(dgram) = h.dgram() {
            f(dgram)
        }
    })
}

/// The id of a socket event, and the event as the HTTP client takes it, when the
/// socket is the client's.
fn client_event(ev: &NetEvent) -> Option<(u32, ClientSocketEvent)> {
    let (id, event) = match ev {
        NetEvent::Connect(id) => (*id, ClientSocketEvent::Connect),
        NetEvent::Data(e) => (e.socket, ClientSocketEvent::Data(Vec::new())),
        NetEvent::End(id) => (*id, ClientSocketEvent::End),
        NetEvent::Drain(id) => (*id, ClientSocketEvent::Drain),
        NetEvent::Timeout(id) => (*id, ClientSocketEvent::Timeout),
        NetEvent::Error(e) => (e.socket, ClientSocketEvent::Error(e.error.clone().into())),
        NetEvent::Close(e) => (e.socket, ClientSocketEvent::Close),
        _ => return None,
    };
    http::client::owns(id).then_some((id, event))
}

/// The id of a socket event, and the event as a WebSocket client takes it (data and
/// errors without their payload, taken later), when the socket is a client's and not
/// destroyed (its `close` always counts).
fn ws_client_event(ev: &NetEvent) -> Option<(u32, SocketEvent)> {
    let (id, event) = match ev {
        NetEvent::Data(e) => (e.socket, SocketEvent::Data(Vec::new())),
        NetEvent::End(id) => (*id, SocketEvent::End),
        NetEvent::Drain(id) => (*id, SocketEvent::Drain),
        NetEvent::Timeout(id) => (*id, SocketEvent::Timeout),
        NetEvent::Error(e) => (
            e.socket,
            SocketEvent::Error(crate::Error::other(
                crate::ErrorCode::Unknown,
                String::new(),
            )),
        ),
        NetEvent::Close(e) => (
            e.socket,
            SocketEvent::Close {
                had_error: e.had_error,
            },
        ),
        _ => return None,
    };
    if !crate::ws::client::owns(id) {
        return None;
    }
    if !matches!(event, SocketEvent::Close { .. }) && socket(id).is_none() {
        // Destroyed: its other events are dropped, as for any socket. Still ours.
        return Some((id, SocketEvent::Timeout));
    }
    Some((id, event))
}

fn net_event(ev: NetEvent) {
    if let Some((id, event)) = client_event(&ev) {
        let event = match (event, ev) {
            (ClientSocketEvent::Data(_), NetEvent::Data(e)) => ClientSocketEvent::Data(e.data),
            (event, NetEvent::Close(_)) => {
                if let Some(s) = SOCKETS.with(|m| m.borrow_mut().remove(&id)) {
                    s.mark_closed();
                    s.clear_state();
                }
                event
            }
            (event, _) => event,
        };
        for (request, event) in http::client::on_event(id, event) {
            on_net(|h| h.on_response(&request, event));
        }
        return;
    }
    if let Some((id, event)) = ws_client_event(&ev) {
        let event = match (event, ev) {
            (SocketEvent::Data(_), NetEvent::Data(e)) => SocketEvent::Data(e.data),
            (SocketEvent::Error(_), NetEvent::Error(e)) => SocketEvent::Error(e.error.into()),
            (event @ SocketEvent::Close { .. }, _) => {
                if let Some(s) = SOCKETS.with(|m| m.borrow_mut().remove(&id)) {
                    s.mark_closed();
                    s.clear_state();
                }
                event
            }
            (event, _) => event,
        };
        for (ws, event) in crate::ws::client::on_event(id, event) {
            on_net(|h| h.on_websocket(&ws, event));
        }
        return;
    }
    match ev {
        NetEvent::Listening(raw) => {
            let server = Server::new(raw);
            SERVERS.with(|s| s.borrow_mut().insert(server.id(), server.clone()));
            on_net(|h| h.on_listening(&server));
        }
        NetEvent::Connection(ev) => {
            let socket = Socket::new(ev.socket, Some(ev.server));
            adopt_socket(&socket);
            on_net(|h| h.on_connection(&socket));
        }
        NetEvent::Connect(id) => {
            if let Some(s) = socket(id) {
                on_net(|h| h.on_connect(&s));
            }
        }
        NetEvent::Data(ev) => {
            if let Some(s) = socket(ev.socket) {
                on_net(|h| h.on_data(&s, ev.data));
            }
        }
        NetEvent::End(id) => {
            if let Some(s) = socket(id) {
                on_net(|h| h.on_end(&s));
            }
        }
        NetEvent::Drain(id) => {
            if let Some(s) = socket(id) {
                on_net(|h| h.on_drain(&s));
            }
        }
        NetEvent::Timeout(id) => {
            if let Some(s) = socket(id) {
                on_net(|h| h.on_timeout(&s));
            }
        }
        NetEvent::Error(ev) => {
            if let Some(s) = socket(ev.socket) {
                on_net(|h| h.on_error(&s, ev.error.into()));
            }
        }
        NetEvent::Close(ev) => {
            if let Some(s) = SOCKETS.with(|m| m.borrow_mut().remove(&ev.socket)) {
                s.mark_closed();
                on_net(|h| h.on_close(&s, ev.had_error));
                s.clear_state();
            }
        }
        NetEvent::ServerClose(id) => {
            if let Some(server) = SERVERS.with(|m| m.borrow_mut().remove(&id)) {
                on_net(|h| h.on_server_close(&server));
            }
        }
        NetEvent::Drop(ev) => {
            if let Some(server) = server(ev.server) {
                on_net(|h| h.on_drop(&server, ev.local_address, ev.remote_address));
            }
        }
        NetEvent::ServerError(ev) => {
            if let Some(server) = server(ev.server) {
                on_net(|h| h.on_server_error(&server, ev.error.into()));
            }
        }
    }
}

fn dgram_event(ev: DgramEvent) {
    match ev {
        DgramEvent::Listening(ev) => {
            if let Some(raw) = ev.handle {
                adopt_dgram(&DgramSocket::new(raw));
            }
            if let Some(s) = dgram(ev.socket) {
                on_dgram(|h| h.on_listening(&s));
            }
        }
        DgramEvent::Message(ev) => {
            if let Some(s) = dgram(ev.socket) {
                on_dgram(|h| h.on_message(&s, ev.data, ev.rinfo));
            }
        }
        DgramEvent::Connect(id) => {
            if let Some(s) = dgram(id) {
                on_dgram(|h| h.on_connect(&s));
            }
        }
        DgramEvent::Error(ev) => {
            if let Some(s) = dgram(ev.socket) {
                on_dgram(|h| h.on_error(&s, ev.error.into()));
            }
        }
        DgramEvent::Close(id) => {
            if let Some(s) = DGRAMS.with(|m| m.borrow_mut().remove(&id)) {
                on_dgram(|h| h.on_close(&s));
            }
        }
    }
}
