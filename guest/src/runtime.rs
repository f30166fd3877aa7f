//! The runtime: the guest's side of the event loop. It knows sockets, datagram sockets
//! and timers, and nothing of the protocols built on them.
//!
//! The host calls the instance with a batch of events, each naming a socket, a UDP
//! socket or a timer by its id. The runtime keeps every live [`Socket`] and
//! [`DgramSocket`] by id (the handles `connect` and `create_socket` returned, so
//! per-connection state is shared) and hands each event to whoever owns the id:
//!
//! - the code that **claimed** it: [`claim_socket`], [`claim_dgram`] or [`claim_timer`]
//!   with an owner ([`SocketOwner`], [`DgramOwner`], [`TimerOwner`]) that gets every
//!   later event of the id;
//! - otherwise the exported handler ([`NetHandler`], [`DgramHandler`]).
//!
//! This is how protocols are layered without the runtime knowing them: the HTTP client
//! claims the connections it opens, parses their bytes and calls the callback given
//! to [`http::request`](crate::http::request); the WebSocket client does the same for
//! [`ws::connect`](crate::ws::connect), and each WebSocket claims its close timer. A
//! new protocol (in this crate or another) does the same, in its own code. Servers
//! are layered the other way, as handlers wrapping handlers
//! ([`HttpServer`](crate::http::HttpServer) is a [`NetHandler`] that calls an
//! [`HttpHandler`](crate::http::HttpHandler)), since the sockets they serve are the
//! operator's listeners' and come to the exported handler.
//!
//! A claim lasts until it is released or, for a socket, until its `close` event (which
//! the owner gets, like every other). Events of a socket destroyed with
//! [`Socket::destroy`] are dropped, but its `close`, whoever owns it.
//!
//! ```no_run
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use netlet_guest::net::{self, Socket, SocketEvent};
//! use netlet_guest::runtime::{self, SocketOwner};
//!
//! /// A protocol that counts the bytes of the connections it opens.
//! struct Counter { bytes: Cell<usize> }
//!
//! impl SocketOwner for Counter {
//!     fn on_socket_event(&self, socket: &Socket, event: SocketEvent) {
//!         match event {
//!             SocketEvent::Data(data) => self.bytes.set(self.bytes.get() + data.len()),
//!             SocketEvent::Close { .. } => println!("{socket:?}: {} bytes", self.bytes.get()),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! fn open(host: &str, port: u16) -> Result<Socket, netlet_guest::Error> {
//!     let socket = net::connect_to(host, port)?;
//!     runtime::claim_socket(&socket, Rc::new(Counter { bytes: Cell::new(0) }));
//!     Ok(socket)
//! }
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use crate::bindings::exports::netlet::net::handler::Event;
use crate::bindings::netlet::net::dgram_handler::DgramEvent as RawDgramEvent;
use crate::bindings::netlet::net::net_handler::NetEvent;
use crate::dgram::{self, DgramEvent, DgramSocket};
use crate::handler::{DgramHandler, NetHandler};
use crate::ids::IdMap;
use crate::net::{self, Server, ServerOptions, Socket, SocketEvent};
use crate::timers::TimerId;

/// Code that owns sockets it claimed with [`claim_socket`]: their events come to it
/// instead of the handler.
pub trait SocketOwner {
    /// An event of a claimed socket. After [`SocketEvent::Close`] the claim is over.
    fn on_socket_event(&self, socket: &Socket, event: SocketEvent);
}

/// Code that owns UDP sockets it claimed with [`claim_dgram`].
pub trait DgramOwner {
    /// An event of a claimed UDP socket. After [`DgramEvent::Close`] the claim is over.
    fn on_dgram_event(&self, socket: &DgramSocket, event: DgramEvent);
}

/// Code that owns timers it claimed with [`claim_timer`].
pub trait TimerOwner {
    /// A claimed timer fired. A one-shot timer's claim should be released here.
    fn on_timer(&self, timer: TimerId);
}

thread_local! {
    static HANDLER: RefCell<Option<Box<dyn Dispatch>>> = const { RefCell::new(None) };
    // Kept apart from HANDLER: a handler claims, opens and closes while it is called.
    static SERVERS: RefCell<IdMap<Server>> = RefCell::new(IdMap::default());
    static SOCKET_OWNERS: RefCell<IdMap<Rc<dyn SocketOwner>>> = RefCell::new(IdMap::default());
    static DGRAM_OWNERS: RefCell<IdMap<Rc<dyn DgramOwner>>> = RefCell::new(IdMap::default());
    static TIMER_OWNERS: RefCell<IdMap<Rc<dyn TimerOwner>>> = RefCell::new(IdMap::default());
}

/// Claims `socket`: its events from now on go to `owner`, not to the handler (a
/// claim made before the socket's first event, as right after
/// [`connect`](crate::net::connect), gets them all).
pub fn claim_socket(socket: &Socket, owner: Rc<dyn SocketOwner>) {
    SOCKET_OWNERS.with(|o| o.borrow_mut().insert(socket.id(), owner));
}

/// Gives `socket` back to the handler: its later events go to
/// [`NetHandler`] again. Returns whether it was claimed.
pub fn release_socket(socket: &Socket) -> bool {
    SOCKET_OWNERS.with(|o| o.borrow_mut().remove(&socket.id()).is_some())
}

/// Claims UDP `socket`: its events from now on go to `owner`, not to the handler.
pub fn claim_dgram(socket: &DgramSocket, owner: Rc<dyn DgramOwner>) {
    DGRAM_OWNERS.with(|o| o.borrow_mut().insert(socket.id(), owner));
}

/// Gives UDP `socket` back to the handler. Returns whether it was claimed.
pub fn release_dgram(socket: &DgramSocket) -> bool {
    DGRAM_OWNERS.with(|o| o.borrow_mut().remove(&socket.id()).is_some())
}

/// Claims `timer` (from [`timers`](crate::timers)): it fires to `owner`, not to the
/// handler's `on_timer`, until [`release_timer`].
pub fn claim_timer(timer: TimerId, owner: Rc<dyn TimerOwner>) {
    TIMER_OWNERS.with(|o| o.borrow_mut().insert(timer.0, owner));
}

/// Ends the claim on `timer` (clear it with [`timers::clear`](crate::timers::clear)
/// if it may still fire). Returns whether it was claimed.
pub fn release_timer(timer: TimerId) -> bool {
    TIMER_OWNERS.with(|o| o.borrow_mut().remove(&timer.0).is_some())
}

/// What an export macro installs: the handler's TCP and/or UDP side.
#[doc(hidden)]
pub trait Dispatch {
    fn net(&mut self) -> Option<&mut dyn NetHandler>;
    fn dgram(&mut self) -> Option<&mut dyn DgramHandler>;
}

/// Adapter for [`export_net!`](crate::export_net).
#[doc(hidden)]
pub struct NetOnly<H>(pub H);
/// Adapter for [`export_dgram!`](crate::export_dgram).
#[doc(hidden)]
pub struct DgramOnly<H>(pub H);
/// Adapter for [`export_handler!`](crate::export_handler).
#[doc(hidden)]
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

fn with_handler(f: impl FnOnce(&mut dyn Dispatch)) {
    HANDLER.with(|h| {
        if let Some(handler) = h.borrow_mut().as_mut() {
            f(handler.as_mut())
        }
    })
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

/// The export's `init`: installs the handler, then runs its `init` hook(s).
#[doc(hidden)]
pub fn init(handler: Box<dyn Dispatch>, args: Vec<String>) -> Result<(), String> {
    HANDLER.with(|h| *h.borrow_mut() = Some(handler));
    let mut result = Ok(());
    with_handler(|h| {
        if let Some(net) = h.net() {
            let options = net.server_options();
            if options != ServerOptions::default() {
                net::set_server_options(options);
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
#[doc(hidden)]
pub fn handle(events: Vec<Event>) {
    for event in events {
        match event {
            Event::Net(ev) => net_event(ev),
            Event::Dgram(ev) => dgram_event(ev),
            Event::Timer(id) => timer_event(TimerId(id)),
        }
    }
}

fn timer_event(timer: TimerId) {
    if let Some(owner) = TIMER_OWNERS.with(|o| o.borrow().get(&timer.0).cloned()) {
        owner.on_timer(timer);
        return;
    }
    with_handler(|h| {
        if let Some(net) = h.net() {
            net.on_timer(timer);
        }
        if let Some(dgram) = h.dgram() {
            dgram.on_timer(timer);
        }
    })
}

fn net_event(ev: NetEvent) {
    let (id, event) = match ev {
        NetEvent::Connect(id) => (id, SocketEvent::Connect),
        NetEvent::Data(e) => (e.socket, SocketEvent::Data(e.data)),
        NetEvent::End(id) => (id, SocketEvent::End),
        NetEvent::Drain(id) => (id, SocketEvent::Drain),
        NetEvent::Timeout(id) => (id, SocketEvent::Timeout),
        NetEvent::Error(e) => (e.socket, SocketEvent::Error(e.error.into())),
        NetEvent::Close(e) => (
            e.socket,
            SocketEvent::Close {
                had_error: e.had_error,
            },
        ),
        NetEvent::Listening(raw) => {
            let server = Server::new(raw);
            SERVERS.with(|s| s.borrow_mut().insert(server.id(), server.clone()));
            return on_net(|h| h.on_listening(&server));
        }
        NetEvent::Connection(ev) => {
            let socket = Socket::new(ev.socket, Some(ev.server));
            net::adopt_socket(&socket);
            return on_net(|h| h.on_connection(&socket));
        }
        NetEvent::ServerClose(id) => {
            if let Some(server) = SERVERS.with(|m| m.borrow_mut().remove(&id)) {
                on_net(|h| h.on_server_close(&server));
            }
            return;
        }
        NetEvent::Drop(ev) => {
            if let Some(server) = server(ev.server) {
                on_net(|h| h.on_drop(&server, ev.local_address, ev.remote_address));
            }
            return;
        }
        NetEvent::ServerError(ev) => {
            if let Some(server) = server(ev.server) {
                on_net(|h| h.on_server_error(&server, ev.error.into()));
            }
            return;
        }
    };
    socket_event(id, event);
}

fn server(id: u32) -> Option<Server> {
    SERVERS.with(|s| s.borrow().get(&id).cloned())
}

/// Delivers an event of socket `id` to its owner or the handler. Unknown sockets'
/// events are dropped, and destroyed ones' but `close`, as in Node.
fn socket_event(id: u32, event: SocketEvent) {
    let closing = matches!(event, SocketEvent::Close { .. });
    let socket = if closing {
        net::forget_socket(id)
    } else {
        net::live_socket(id).filter(|s| !s.destroyed())
    };
    let Some(socket) = socket else {
        return;
    };
    if closing {
        socket.mark_closed();
    }
    let owner = SOCKET_OWNERS.with(|o| {
        let mut o = o.borrow_mut();
        if o.is_empty() {
            None
        } else if closing {
            o.remove(&id)
        } else {
            o.get(&id).cloned()
        }
    });
    match owner {
        Some(owner) => owner.on_socket_event(&socket, event),
        None => on_net(|h| match event {
            SocketEvent::Connect => h.on_connect(&socket),
            SocketEvent::Data(data) => h.on_data(&socket, data),
            SocketEvent::End => h.on_end(&socket),
            SocketEvent::Drain => h.on_drain(&socket),
            SocketEvent::Timeout => h.on_timeout(&socket),
            SocketEvent::Error(error) => h.on_error(&socket, error),
            SocketEvent::Close { had_error } => h.on_close(&socket, had_error),
        }),
    }
    if closing {
        socket.clear_state();
    }
}

fn dgram_event(ev: RawDgramEvent) {
    let (id, event) = match ev {
        RawDgramEvent::Listening(ev) => {
            if let Some(raw) = ev.handle {
                dgram::adopt_dgram(&DgramSocket::new(raw));
            }
            (ev.socket, DgramEvent::Listening)
        }
        RawDgramEvent::Message(ev) => (ev.socket, DgramEvent::Message(ev.data, ev.rinfo)),
        RawDgramEvent::Connect(id) => (id, DgramEvent::Connect),
        RawDgramEvent::Error(ev) => (ev.socket, DgramEvent::Error(ev.error.into())),
        RawDgramEvent::Close(id) => (id, DgramEvent::Close),
    };
    let closing = matches!(event, DgramEvent::Close);
    let socket = if closing {
        dgram::forget_dgram(id)
    } else {
        dgram::live_dgram(id)
    };
    let Some(socket) = socket else {
        return;
    };
    let owner = DGRAM_OWNERS.with(|o| {
        let mut o = o.borrow_mut();
        if o.is_empty() {
            None
        } else if closing {
            o.remove(&id)
        } else {
            o.get(&id).cloned()
        }
    });
    match owner {
        Some(owner) => owner.on_dgram_event(&socket, event),
        None => on_dgram(|h| match event {
            DgramEvent::Listening => h.on_listening(&socket),
            DgramEvent::Message(data, rinfo) => h.on_message(&socket, data, rinfo),
            DgramEvent::Connect => h.on_connect(&socket),
            DgramEvent::Error(error) => h.on_error(&socket, error),
            DgramEvent::Close => h.on_close(&socket),
        }),
    }
}
