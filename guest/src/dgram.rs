//! UDP: [`DgramSocket`] and [`create_socket`], Node's `dgram.Socket` and
//! `dgram.createSocket`.
//!
//! A socket the operator bound (`netlet run h.wasm --udp 127.0.0.1:41234`) comes to
//! [`DgramHandler::on_listening`](crate::DgramHandler::on_listening); an echo:
//!
//! ```no_run
//! use netlet_guest::{DgramHandler, DgramSocket, RemoteInfo};
//!
//! struct Echo;
//!
//! impl DgramHandler for Echo {
//!     fn on_message(&mut self, socket: &DgramSocket, msg: Vec<u8>, rinfo: RemoteInfo) {
//!         if let Err(e) = socket.send(msg, rinfo.port, &rinfo.address) {
//!             eprintln!("send to {rinfo}: {e}");
//!         }
//!     }
//! }
//!
//! netlet_guest::export_dgram!(Echo);
//! ```

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::bindings::netlet::net::dgram as raw;
use crate::error::Error;
use crate::ids::IdMap;
use crate::net::AddressInfo;

/// Node's `dgram.createSocket` type: `'udp4'` or `'udp6'`.
pub use crate::bindings::netlet::net::dgram::SocketType;

/// Who sent a datagram: Node's `rinfo` (`address`, `family`, `port`, `size`).
pub use crate::bindings::netlet::net::dgram_handler::RemoteInfo;

impl fmt::Display for RemoteInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.address, self.port)
    }
}

/// Options of [`create_socket`] (Node's `dgram.createSocket(options)`).
#[derive(Clone, Debug, Default)]
pub struct SocketOptions {
    /// SO_REUSEADDR (Node's `reuseAddr`).
    pub reuse_addr: bool,
    /// IPV6_V6ONLY for `udp6` (Node's `ipv6Only`).
    pub ipv6_only: bool,
    /// SO_RCVBUF in bytes.
    pub recv_buffer_size: Option<u32>,
    /// SO_SNDBUF in bytes.
    pub send_buffer_size: Option<u32>,
}

/// A UDP socket: Node's `dgram.Socket`. A cheap handle; clone it to keep it.
#[derive(Clone)]
pub struct DgramSocket(Rc<Inner>);

struct Inner {
    raw: raw::Socket,
    id: u32,
}

fn err(what: &str) -> impl FnOnce(crate::error::ErrorCode) -> Error + '_ {
    move |code| Error::from_code(code, what)
}

impl DgramSocket {
    pub(crate) fn new(raw: raw::Socket) -> Self {
        let id = raw.id();
        DgramSocket(Rc::new(Inner { raw, id }))
    }

    /// The socket's id, unique for the life of the instance.
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// Node's `socket.bind(port, address)`. Port 0 picks a free port; `None` binds every
    /// interface. `on_listening` follows. A chosen port (not 0) must be permitted by the
    /// host's `--allow` list, or this fails with `access-denied`.
    pub fn bind(&self, port: u16, address: Option<&str>) -> Result<(), Error> {
        self.0.raw.bind(port, address).map_err(err("bind"))
    }

    /// Node's `socket.send(msg, port, address)`. An unbound socket is bound to a free
    /// port first, as in Node. Errors found at once are returned; later ones arrive
    /// through `on_error`.
    pub fn send(&self, msg: impl AsRef<[u8]>, port: u16, address: &str) -> Result<(), Error> {
        self.0
            .raw
            .send(msg.as_ref(), port, Some(address))
            .map_err(err("send"))
    }

    /// Node's `socket.send(msg)` on a connected socket.
    pub fn send_connected(&self, msg: impl AsRef<[u8]>) -> Result<(), Error> {
        self.0.raw.send(msg.as_ref(), 0, None).map_err(err("send"))
    }

    /// Node's `socket.connect(port, address)`: `on_connect` follows.
    pub fn connect(&self, port: u16, address: Option<&str>) -> Result<(), Error> {
        self.0.raw.connect(port, address).map_err(err("connect"))
    }

    /// Node's `socket.disconnect()`.
    pub fn disconnect(&self) -> Result<(), Error> {
        self.0.raw.disconnect().map_err(err("disconnect"))
    }

    /// Node's `socket.address()`.
    pub fn address(&self) -> Result<AddressInfo, Error> {
        self.0.raw.address().map_err(err("address"))
    }

    /// Node's `socket.remoteAddress()`.
    pub fn remote_address(&self) -> Result<AddressInfo, Error> {
        self.0.raw.remote_address().map_err(err("remoteAddress"))
    }

    /// Node's `socket.close()`: `on_close` follows.
    pub fn close(&self) {
        self.0.raw.close()
    }

    /// Node's `socket.setBroadcast(flag)`.
    pub fn set_broadcast(&self, flag: bool) -> Result<(), Error> {
        self.0.raw.set_broadcast(flag).map_err(err("setBroadcast"))
    }

    /// Node's `socket.setTTL(ttl)` (1 to 255).
    pub fn set_ttl(&self, ttl: u8) -> Result<(), Error> {
        self.0.raw.set_ttl(ttl).map_err(err("setTTL"))
    }

    /// Node's `socket.setMulticastTTL(ttl)`.
    pub fn set_multicast_ttl(&self, ttl: u8) -> Result<(), Error> {
        self.0
            .raw
            .set_multicast_ttl(ttl)
            .map_err(err("setMulticastTTL"))
    }

    /// Node's `socket.setMulticastLoopback(flag)`.
    pub fn set_multicast_loopback(&self, flag: bool) -> Result<(), Error> {
        self.0
            .raw
            .set_multicast_loopback(flag)
            .map_err(err("setMulticastLoopback"))
    }

    /// Node's `socket.setMulticastInterface(interface)`.
    pub fn set_multicast_interface(&self, interface: &str) -> Result<(), Error> {
        self.0
            .raw
            .set_multicast_interface(interface)
            .map_err(err("setMulticastInterface"))
    }

    /// Node's `socket.addMembership(multicastAddress, multicastInterface)`.
    pub fn add_membership(&self, group: &str, interface: Option<&str>) -> Result<(), Error> {
        self.0
            .raw
            .add_membership(group, interface)
            .map_err(err("addMembership"))
    }

    /// Node's `socket.dropMembership(multicastAddress, multicastInterface)`.
    pub fn drop_membership(&self, group: &str, interface: Option<&str>) -> Result<(), Error> {
        self.0
            .raw
            .drop_membership(group, interface)
            .map_err(err("dropMembership"))
    }

    /// Node's `socket.getRecvBufferSize()`.
    pub fn recv_buffer_size(&self) -> Result<u32, Error> {
        self.0
            .raw
            .get_recv_buffer_size()
            .map_err(err("getRecvBufferSize"))
    }

    /// Node's `socket.setRecvBufferSize(size)`.
    pub fn set_recv_buffer_size(&self, size: u32) -> Result<(), Error> {
        self.0
            .raw
            .set_recv_buffer_size(size)
            .map_err(err("setRecvBufferSize"))
    }

    /// Node's `socket.getSendBufferSize()`.
    pub fn send_buffer_size(&self) -> Result<u32, Error> {
        self.0
            .raw
            .get_send_buffer_size()
            .map_err(err("getSendBufferSize"))
    }

    /// Node's `socket.setSendBufferSize(size)`.
    pub fn set_send_buffer_size(&self, size: u32) -> Result<(), Error> {
        self.0
            .raw
            .set_send_buffer_size(size)
            .map_err(err("setSendBufferSize"))
    }

    /// Node's `socket.getSendQueueSize()`: bytes accepted by `send`, not yet sent.
    pub fn send_queue_size(&self) -> u64 {
        self.0.raw.get_send_queue_size()
    }

    /// Node's `socket.getSendQueueCount()`.
    pub fn send_queue_count(&self) -> u32 {
        self.0.raw.get_send_queue_count()
    }
}

impl PartialEq for DgramSocket {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for DgramSocket {}

impl fmt::Debug for DgramSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DgramSocket")
            .field("id", &self.0.id)
            .finish()
    }
}

/// Node's `dgram.createSocket(type, options)`. The socket is unbound: [`DgramSocket::bind`]
/// it to receive, or just [`DgramSocket::send`] (which binds a free port first).
pub fn create_socket(kind: SocketType, options: SocketOptions) -> Result<DgramSocket, Error> {
    let raw_options = raw::SocketOptions {
        reuse_addr: options.reuse_addr,
        ipv6_only: options.ipv6_only,
        recv_buffer_size: options.recv_buffer_size,
        send_buffer_size: options.send_buffer_size,
    };
    let raw = raw::create_socket(kind, raw_options).map_err(err("createSocket"))?;
    let socket = DgramSocket::new(raw);
    adopt_dgram(&socket);
    Ok(socket)
}

/// One event of a UDP socket, as [`DgramHandler`](crate::DgramHandler) would receive
/// it: what the runtime hands to the code that claimed the socket
/// ([`DgramOwner`](crate::runtime::DgramOwner)).
#[derive(Debug)]
pub enum DgramEvent {
    /// Node's `'listening'`: the socket is bound.
    Listening,
    /// Node's `'message'`: a datagram and who sent it.
    Message(Vec<u8>, RemoteInfo),
    /// Node's `'connect'` after [`DgramSocket::connect`].
    Connect,
    /// Node's `'error'`; the socket stays open.
    Error(Error),
    /// Node's `'close'`; nothing follows.
    Close,
}

thread_local! {
    /// Every UDP socket the instance has and the host has not closed, by id: the
    /// handles the runtime passes with each event.
    static LIVE: RefCell<IdMap<DgramSocket>> = RefCell::new(IdMap::default());
}

/// Keeps `socket` until its `close` event.
pub(crate) fn adopt_dgram(socket: &DgramSocket) {
    LIVE.with(|s| s.borrow_mut().insert(socket.id(), socket.clone()));
}

/// The live UDP socket `id`.
pub(crate) fn live_dgram(id: u32) -> Option<DgramSocket> {
    LIVE.with(|s| s.borrow().get(&id).cloned())
}

/// Forgets UDP socket `id` (its `close` came) and returns it.
pub(crate) fn forget_dgram(id: u32) -> Option<DgramSocket> {
    LIVE.with(|s| s.borrow_mut().remove(&id))
}
