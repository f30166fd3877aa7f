//! UDP: the host side of the `dgram` interface. [`Udp`] is one instance's table of
//! sockets; [`DgramView`] is what the interface's code works on (that table, the
//! instance's event queue, and the context its interfaces share).
//!
//! - [`io`]: receiving, sending and queueing datagrams, binding, connecting, lookups;
//! - [`host`]: the guest's socket methods (the WIT `Host*` traits);
//! - [`options`]: socket options (broadcast, TTLs, multicast, buffer sizes).
//!
//! Like TCP, nothing blocks: `send` tries the transport at once and queues what does
//! not fit; receiving happens in the shard loop when the socket's read waker fires. A
//! socket may always answer a peer it heard from, whatever the outbound policy says.

pub mod host;
pub mod io;
pub mod options;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::task::Waker;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::budget::Charge;
use crate::context::GuestSocket;
use crate::context::InstanceCtx;
use crate::events::{Events, HostEvent};
use crate::reactor::Kind;
use crate::transport::Datagram;

pub use crate::bindings::DgramRep;

/// Largest UDP payload over IPv4 (65,535 − 8 − 20).
pub const MAX_DATAGRAM_V4: usize = 65_507;
/// Largest UDP payload over IPv6 without jumbograms (65,535 − 8).
pub const MAX_DATAGRAM_V6: usize = 65_527;
/// A send queue holds at most this many datagrams...
const MAX_QUEUED: usize = 1024;
/// ...and this many bytes.
const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// Peers remembered per socket for the reply rule; the set restarts when full.
const MAX_PEERS: usize = 4096;
/// Datagrams read from one socket per loop turn before others get their go.
const READS_PER_TURN: usize = 64;

/// One instance's UDP state.
#[derive(Default)]
pub struct Udp {
    socks: FxHashMap<u32, UdpSock>,
    /// Sockets to revisit after the current guest call.
    touched: Vec<u32>,
}

impl Udp {
    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.socks.len()
    }

    /// Takes back the host-bound sockets (to hand them to another instance: after a
    /// trap, or to new code after a swap).
    pub fn take_host_bound(&mut self) -> Vec<Box<dyn Datagram>> {
        let ids: Vec<u32> = self
            .socks
            .iter()
            .filter(|(_, s)| s.host_bound)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.socks.remove(&id))
            .filter_map(|mut s| s.sock.take())
            .collect()
    }

    /// Drops every socket without telling the guest (it trapped, or is retired).
    pub fn drop_all(&mut self) {
        self.socks.clear();
    }
}

/// One UDP socket's state.
pub struct UdpSock {
    sock: Option<Box<dyn Datagram>>,
    v6: bool,
    bound: bool,
    connected: Option<SocketAddr>,
    /// `close` was called with datagrams still queued: close once they are sent.
    closing: bool,
    /// Bound by the host (`--udp`), not by the guest: survives an instance restart.
    host_bound: bool,
    /// Which of the handler's UDP counters this socket feeds.
    port: usize,
    queue: VecDeque<(Vec<u8>, Option<SocketAddr>)>,
    queue_bytes: usize,
    /// The queue's bytes, charged to the instance's host memory.
    charge: Charge,
    peers: FxHashSet<SocketAddr>,
    /// The last destination a `send` resolved and the policy allowed (as the guest wrote
    /// it, and as parsed): an echo answering the same peer skips parsing and checks.
    last_dest: Option<(String, u16, SocketAddr)>,
    touched: bool,
    /// A read token the host queued itself is waiting in the reactor.
    read_queued: bool,
    read_waker: Waker,
    write_waker: Waker,
    /// Its place in the instance's and the process's socket budgets (a socket the guest
    /// created).
    _permit: Option<GuestSocket>,
}

/// What the `dgram` interface's code works on: one instance's UDP table, with its event
/// queue and the context its interfaces share.
pub struct DgramView<'a> {
    pub udp: &'a mut Udp,
    pub events: &'a mut Events,
    pub cx: &'a mut InstanceCtx,
}

impl DgramView<'_> {
    fn new_sock(&self, id: u32, sock: Box<dyn Datagram>, v6: bool) -> UdpSock {
        UdpSock {
            sock: Some(sock),
            v6,
            bound: false,
            connected: None,
            closing: false,
            host_bound: false,
            port: 0,
            queue: VecDeque::new(),
            queue_bytes: 0,
            charge: Charge::new(self.cx.quota.memory.clone()),
            peers: FxHashSet::default(),
            last_dest: None,
            touched: false,
            read_queued: false,
            read_waker: self
                .cx
                .shard
                .reactor
                .waker(self.cx.token(Kind::UdpRead, id)),
            write_waker: self
                .cx
                .shard
                .reactor
                .waker(self.cx.token(Kind::UdpWrite, id)),
            _permit: None,
        }
    }

    /// A socket the host bound (`--udp`), handed to the guest with a `listening` event
    /// that carries its handle.
    pub fn adopt_bound(&mut self, sock: Box<dyn Datagram>) -> u32 {
        let local = sock.local_addr().ok();
        let v6 = local.is_some_and(|a| a.is_ipv6());
        let id = self.cx.ids.allocate();
        let mut udp = self.new_sock(id, sock, v6);
        udp.bound = true;
        udp.host_bound = true;
        udp.port = self.cx.shard.stats.udp_index(local);
        self.udp.socks.insert(id, udp);
        self.cx.ids.handle_given(id);
        self.events.push(HostEvent::UdpListening {
            socket: id,
            with_handle: true,
        });
        self.read(id);
        id
    }

    /// Closes the host-bound sockets (the host is stopping); the guest gets `close`.
    pub fn close_host_bound(&mut self) {
        let ids: Vec<u32> = self
            .udp
            .socks
            .iter()
            .filter(|(_, s)| s.host_bound)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.finish_close(id);
        }
    }

    /// Marks a socket for the after-call pass.
    fn touch(&mut self, id: u32) {
        if let Some(udp) = self.udp.socks.get_mut(&id)
            && !udp.touched
        {
            udp.touched = true;
            self.udp.touched.push(id);
        }
    }

    /// Queues a read of `id` for the next turn, once.
    fn queue_read(&mut self, id: u32) {
        if let Some(udp) = self.udp.socks.get_mut(&id)
            && !udp.read_queued
        {
            udp.read_queued = true;
            self.cx.shard.reactor.push(self.cx.token(Kind::UdpRead, id));
        }
    }

    /// Removes a socket; the guest gets `close`.
    fn finish_close(&mut self, id: u32) {
        if self.udp.socks.remove(&id).is_some() {
            self.cx.ids.release(id);
            self.events.push(HostEvent::UdpClose(id));
        }
    }
}
