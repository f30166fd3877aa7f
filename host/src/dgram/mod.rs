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

use crate::bindings::ErrorCode;
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
    /// The operator's sockets (`--udp`) a primary will be handed once its `init` has
    /// run, by code port, with their addresses: during `init`, a `bind` to one of those
    /// ports claims it (see [`DgramView::adopt_bound`]).
    offered: Vec<(u16, SocketAddr)>,
    /// Guest sockets that claimed an offered port, by code port.
    claims: FxHashMap<u16, u32>,
}

impl Udp {
    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.socks.len()
    }

    /// Takes back the host-bound sockets, with their code ports (to hand them to
    /// another instance: after a trap, or to new code after a swap).
    pub fn take_host_bound(&mut self) -> Vec<(u16, Box<dyn Datagram>)> {
        let ids: Vec<u32> = self
            .socks
            .iter()
            .filter(|(_, s)| s.host_bound)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.socks.remove(&id))
            .filter_map(|mut s| Some((s.code_port, s.sock.take()?)))
            .collect()
    }

    /// Offers the operator's sockets, by code port and address, to the coming `init`.
    pub fn offer(&mut self, ports: Vec<(u16, SocketAddr)>) {
        self.offered = ports;
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
    /// The port the code names a host-bound socket by.
    code_port: u16,
    /// A guest socket that claimed a host-bound one with `bind(code_port)`.
    claimed: bool,
    /// Claimed during `init`: where the operator's socket, not yet handed, is bound.
    offered_addr: Option<SocketAddr>,
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
            code_port: 0,
            claimed: false,
            offered_addr: None,
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

    /// A socket the host bound (`--udp`), handed to the guest: to the guest socket
    /// that claimed its port during `init`, or with a `listening` event that carries its
    /// handle.
    pub fn adopt_bound(&mut self, code_port: u16, sock: Box<dyn Datagram>) -> u32 {
        let local = sock.local_addr().ok();
        if let Some(id) = self.udp.claims.remove(&code_port)
            && let Some(udp) = self.udp.socks.get_mut(&id)
            && udp.offered_addr.is_some()
        {
            udp.offered_addr = None;
            udp.v6 = local.is_some_and(|a| a.is_ipv6());
            udp.port = self.cx.shard.stats.udp_index(local);
            udp.sock = Some(sock);
            // What it sent meanwhile goes out now.
            self.touch(id);
            self.read(id);
            return id;
        }
        let v6 = local.is_some_and(|a| a.is_ipv6());
        let id = self.cx.ids.allocate();
        let mut udp = self.new_sock(id, sock, v6);
        udp.bound = true;
        udp.host_bound = true;
        udp.code_port = code_port;
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

    /// Ends the offer of the operator's sockets (they have been handed): a claim whose
    /// socket never came (its port closed meanwhile) is closed.
    pub fn end_offer(&mut self) {
        self.udp.offered.clear();
        let unfulfilled: Vec<u32> = self.udp.claims.drain().map(|(_, id)| id).collect();
        for id in unfulfilled {
            self.finish_close(id);
        }
    }

    /// `bind(port)` to a port the operator configured: this socket takes the operator's
    /// socket for it. `None` when no configured socket has that code port.
    fn claim_host_port(&mut self, id: u32, port: u16) -> Option<Result<(), ErrorCode>> {
        let taken = self
            .udp
            .socks
            .iter()
            .any(|(other, s)| *other != id && s.claimed && s.code_port == port);
        if taken {
            return Some(Err(ErrorCode::AddressInUse));
        }
        // Handed already, with a handle of its own: this socket takes it over, and the
        // other handle's socket closes.
        let holder = self
            .udp
            .socks
            .iter()
            .find(|(other, s)| **other != id && s.host_bound && s.code_port == port)
            .map(|(other, _)| *other);
        let (sock, offered_addr) = if let Some(holder) = holder {
            let mut old = self.udp.socks.remove(&holder)?;
            self.cx.ids.release(holder);
            self.events.push(HostEvent::UdpClose(holder));
            (old.sock.take(), None)
        } else {
            let &(_, addr) = self.udp.offered.iter().find(|(p, _)| *p == port)?;
            self.udp.claims.insert(port, id);
            (None, Some(addr))
        };
        let local = sock.as_ref().and_then(|s| s.local_addr().ok());
        let port_index = self.cx.shard.stats.udp_index(local);
        let udp = self.udp.socks.get_mut(&id)?;
        udp.v6 = local.or(offered_addr).is_some_and(|a| a.is_ipv6());
        // The socket it had (unbound) is dropped for the operator's.
        udp.sock = sock;
        udp.offered_addr = offered_addr;
        udp.bound = true;
        udp.host_bound = true;
        udp.claimed = true;
        udp.code_port = port;
        udp.port = port_index;
        self.events.push(HostEvent::UdpListening {
            socket: id,
            with_handle: false,
        });
        self.read(id);
        Some(Ok(()))
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

    /// Queues a read of `id` for the next turn, once; behind the other ready sockets
    /// when it just had its share (`last`, as for TCP).
    fn queue_read(&mut self, id: u32, last: bool) {
        if let Some(udp) = self.udp.socks.get_mut(&id)
            && !udp.read_queued
        {
            udp.read_queued = true;
            let token = self.cx.token(Kind::UdpRead, id);
            if last {
                self.cx.shard.reactor.push_last(token);
            } else {
                self.cx.shard.reactor.push(token);
            }
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
