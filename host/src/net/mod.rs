//! TCP: the host side of the `net` interface. [`Tcp`] is one instance's table of
//! connections and the servers it was handed; [`NetView`] is what the interface's code
//! works on (that table, the instance's event queue and deadlines, and the context its
//! interfaces share).
//!
//! - [`conn`]: moving a connection's bytes (reads, flushes, half-close, close), accepting;
//! - [`connect`]: outbound connections (`net.connect`), under the policy;
//! - [`host`]: the guest's socket and server methods (the WIT `Host*` traits);
//! - [`pipe`]: `socket.pipe(dest)`: bytes moved from one socket to another by the host;
//! - [`server`]: the servers an instance is handed or `listen`s on, and their options.
//!
//! Methods never block and never touch the network directly: `write` appends to the
//! connection's queue and marks it touched; the shard calls [`NetView::after_call`] when
//! the guest returns, which flushes touched connections, so many writes in one event
//! become one vectored write.

pub mod conn;
pub mod connect;
pub mod host;
pub mod pipe;
pub mod server;

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::bindings::{AddressInfo, IpFamily};
use crate::budget::{Charge, MemoryRefusal};
use crate::context::GuestSocket;
use crate::context::InstanceCtx;
use crate::events::{Events, HostEvent};
use crate::reactor::Kind;
use crate::stats::HandlerStats;
use crate::timers::{Slot, Timers};
use crate::transport::Stream;
use crate::transport::splice::KernelPipe;

pub use crate::bindings::{ServerRep, SocketRep};
pub use server::{NewListener, ServerView};

/// One instance's TCP state.
pub struct Tcp {
    conns: FxHashMap<u32, TcpConn>,
    /// How many of them a server accepted.
    accepted: usize,
    /// The servers the instance was handed, by id.
    pub servers: FxHashMap<u32, ServerView>,
    /// Connections to revisit after the current guest call (flush, end, ...).
    touched: Vec<u32>,
    /// Servers the guest closed during the current call: the shard stops accepting on
    /// them.
    pub closed_servers: Vec<u32>,
    /// Listeners `listen` bound during the current call: the shard registers them.
    pub new_listeners: Vec<NewListener>,
    /// How the sockets of servers handed without `listen` start (`set-server-options`).
    pub server_options: crate::bindings::netlet::net::net::ServerOptions,
    /// Empty kernel pipes kept for the next splice (see [`pipe`]).
    spare_pipes: Vec<KernelPipe>,
    /// Bytes pipes moved in the loop turn `.0` (see [`pipe::MAX_PIPED_PER_TURN`]).
    moved: (u64, usize),
    /// What closed sockets read and wrote, for the guest's `bytes-read` and
    /// `bytes-written` after the close (Node keeps them): until the guest drops its
    /// handle, and for the last [`MAX_CLOSED_COUNTS`] closed sockets at most.
    closed_counts: FxHashMap<u32, (u64, u64)>,
    closed_order: std::collections::VecDeque<u32>,
    /// Sockets whose read in the current batch filled their read size (see
    /// [`conn::READ_SLICE`]).
    full_reads: Vec<u32>,
}

/// Closed sockets whose byte counts an instance keeps for its guest (see
/// [`Tcp::closed_counts`]): ids are never reused, so a count cannot be a newer socket's.
pub const MAX_CLOSED_COUNTS: usize = 1024;

impl Default for Tcp {
    fn default() -> Self {
        Tcp {
            conns: FxHashMap::default(),
            accepted: 0,
            servers: FxHashMap::default(),
            touched: Vec::new(),
            full_reads: Vec::new(),
            closed_servers: Vec::new(),
            new_listeners: Vec::new(),
            server_options: server::default_options(),
            spare_pipes: Vec::new(),
            moved: (u64::MAX, 0),
            closed_counts: FxHashMap::default(),
            closed_order: std::collections::VecDeque::new(),
        }
    }
}

impl Tcp {
    /// Keeps a closed socket's byte counts for its guest.
    fn keep_counts(&mut self, id: u32, read: u64, written: u64) {
        if self.closed_order.len() >= MAX_CLOSED_COUNTS
            && let Some(old) = self.closed_order.pop_front()
        {
            self.closed_counts.remove(&old);
        }
        self.closed_order.push_back(id);
        self.closed_counts.insert(id, (read, written));
    }

    /// The byte counts (read, written) of a socket, open or recently closed.
    pub fn counts(&self, id: u32) -> (u64, u64) {
        match self.conns.get(&id) {
            Some(c) => (c.bytes_read, c.bytes_written),
            None => self.closed_counts.get(&id).copied().unwrap_or((0, 0)),
        }
    }

    /// The guest let go of a socket: its counts are not asked for again.
    pub fn forget_counts(&mut self, id: u32) {
        self.closed_counts.remove(&id);
    }

    /// Open connections (accepted and outbound).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Open connections a server accepted.
    pub fn accepted(&self) -> usize {
        self.accepted
    }

    pub fn get(&self, id: u32) -> Option<&TcpConn> {
        self.conns.get(&id)
    }

    /// The connection between `local` and `peer`, if any.
    pub fn find(&self, local: SocketAddr, peer: SocketAddr) -> Option<u32> {
        self.conns
            .iter()
            .find(|(_, c)| c.local == Some(local) && c.peer == Some(peer))
            .map(|(id, _)| *id)
    }

    /// Destroys every connection without telling the guest (it trapped, or is retired).
    pub fn drop_all(&mut self) {
        self.conns.clear();
        self.accepted = 0;
        self.spare_pipes.clear();
    }
}

/// Options applied once an outbound connection is up.
#[derive(Clone, Copy, Debug, Default)]
struct PendingOptions {
    no_delay: Option<bool>,
    keep_alive: Option<(bool, u32)>,
}

/// Where a connection is in ending our direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Shutdown {
    #[default]
    Open,
    /// `end` was called; the transport is finishing (flushing, `close_notify`, FIN).
    Ending,
    /// Our end of stream went out.
    Done,
}

/// One TCP connection's state.
pub struct TcpConn {
    /// The server that accepted it (`None` for a client socket).
    pub server: Option<u32>,
    stream: Option<Box<dyn Stream>>,
    /// An outbound connection not yet established.
    connecting: bool,
    /// The peer's end of stream was read (`end` delivered).
    read_eof: bool,
    /// The guest (or the host, for allowHalfOpen=false) ended our side.
    end_called: bool,
    shutdown: Shutdown,
    paused: bool,
    allow_half_open: bool,
    /// End our side once the guest has seen `end` (allowHalfOpen=false).
    auto_end: bool,
    /// In `Tcp::touched` already.
    touched: bool,
    /// A read token the host queued itself is waiting in the reactor.
    read_queued: bool,
    /// The loop turn of the last read.
    read_turn: u64,
    /// How much its next read may take: [`conn::READ_SIZE`], less while the guest's
    /// calls for this socket's data run past [`conn::READ_SLICE`].
    read_size: usize,
    /// `write` returned false; a `drain` is owed when the queue empties.
    need_drain: bool,
    out: WriteQueue,
    /// Where this socket's bytes go while it is piped (`pipe`).
    pipe: Option<pipe::PipeTo>,
    /// The sockets piped into this one.
    feeders: Vec<u32>,
    /// One of them waits for this socket's queue to fall below the high-water mark.
    holding: bool,
    /// Bytes spliced from a piped source, on their way out ahead of `out` (see [`pipe`]).
    spliced: Option<KernelPipe>,
    bytes_read: u64,
    bytes_written: u64,
    idle: Option<Duration>,
    last_active: Instant,
    /// This socket's idle deadline (`set-timeout`), while one is pending.
    idle_slot: Option<Slot>,
    /// Likewise for the host's `--idle-timeout`.
    host_idle_slot: Option<Slot>,
    /// The handler's counters (for accepted connections, also what
    /// `--max-connections` reads).
    pub(crate) stats: Arc<HandlerStats>,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    pending: PendingOptions,
    read_waker: Waker,
    write_waker: Waker,
    /// Its place in the instance's and the process's socket budgets (a client socket).
    _permit: Option<GuestSocket>,
}

impl TcpConn {
    fn new(cx: &InstanceCtx, id: u32, allow_half_open: bool) -> Self {
        TcpConn {
            server: None,
            stream: None,
            connecting: false,
            read_eof: false,
            end_called: false,
            shutdown: Shutdown::Open,
            paused: false,
            allow_half_open,
            auto_end: false,
            touched: false,
            read_queued: false,
            read_turn: u64::MAX,
            read_size: conn::READ_SIZE,
            need_drain: false,
            out: WriteQueue::new(Charge::new(cx.quota.memory.clone())),
            pipe: None,
            feeders: Vec::new(),
            holding: false,
            spliced: None,
            bytes_read: 0,
            bytes_written: 0,
            idle: None,
            last_active: cx.now(),
            idle_slot: None,
            host_idle_slot: None,
            stats: cx.shard.stats.clone(),
            local: None,
            peer: None,
            pending: PendingOptions::default(),
            read_waker: cx.shard.reactor.waker(cx.token(Kind::TcpRead, id)),
            write_waker: cx.shard.reactor.waker(cx.token(Kind::TcpWrite, id)),
            _permit: None,
        }
    }

    /// Whether the guest paused reading this socket.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Bytes on their way out: spliced and queued (Node's `writableLength`).
    pub fn queued(&self) -> usize {
        self.out.len() + self.spliced.as_ref().map_or(0, KernelPipe::held)
    }

    /// Whether bytes handed over now may be sent at once: connected, and nothing
    /// spliced is waiting to go first.
    fn sends_now(&self) -> bool {
        !self.connecting && self.spliced.as_ref().is_none_or(KernelPipe::is_empty)
    }
}

impl Drop for TcpConn {
    fn drop(&mut self) {
        if self.server.is_some() {
            HandlerStats::sub(&self.stats.connections_active, 1);
            HandlerStats::sub(&self.stats.tcp_port(self.server).connections_active, 1);
        }
    }
}

/// A socket's write queue: the guest's buffers as they came (a large write is queued
/// without a copy), small writes gathered into the last one, sent in order with one
/// vectored write. What it holds is charged to the instance's host memory.
pub struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the first chunk already sent.
    head: usize,
    /// Bytes queued, not yet sent.
    len: usize,
    charge: Charge,
}

/// A write this small is copied into the last chunk (one `send` for many small writes);
/// a larger one is queued as its own chunk.
const GATHER: usize = 16 * 1024;

/// Chunks one vectored write hands the kernel at most.
const VECTORED: usize = 64;

impl WriteQueue {
    pub fn new(charge: Charge) -> Self {
        WriteQueue {
            chunks: VecDeque::new(),
            head: 0,
            len: 0,
            charge,
        }
    }

    /// Bytes queued, not yet sent.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `data`, if the instance's host memory allows it.
    pub fn push(&mut self, data: Vec<u8>) -> Result<(), MemoryRefusal> {
        self.charge.grow(data.len())?;
        self.len += data.len();
        match self.chunks.back_mut() {
            Some(last)
                if data.len() < GATHER
                    && last.len() + data.len() <= last.capacity().max(GATHER) =>
            {
                last.extend_from_slice(&data)
            }
            _ => self.chunks.push_back(data),
        }
        Ok(())
    }

    /// Queues a copy of `data`, if the instance's host memory allows it: small writes
    /// gather into the last chunk, a large one gets its own.
    pub fn push_slice(&mut self, data: &[u8]) -> Result<(), MemoryRefusal> {
        self.charge.grow(data.len())?;
        self.len += data.len();
        match self.chunks.back_mut() {
            Some(last)
                if data.len() < GATHER
                    && last.len() + data.len() <= last.capacity().max(GATHER) =>
            {
                last.extend_from_slice(data)
            }
            _ => self.chunks.push_back(data.to_vec()),
        }
        Ok(())
    }

    /// Reads at most `max` bytes straight into the queue's tail with `read` (a piped
    /// source's bytes, on their way to this socket); returns how many came, or what
    /// `read` returned instead. The memory is charged before the read.
    pub fn read_from(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<()>>,
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if let Err(refusal) = self.charge.grow(max) {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                refusal.to_string(),
            )));
        }
        let fits = self
            .chunks
            .back()
            .is_some_and(|last| last.capacity() - last.len() >= max);
        if !fits {
            self.chunks.push_back(Vec::with_capacity(max));
        }
        let last = self.chunks.back_mut().expect("a chunk was just ensured");
        let start = last.len();
        let mut rb = tokio::io::ReadBuf::uninit(&mut last.spare_capacity_mut()[..max]);
        let polled = read(&mut rb);
        let n = rb.filled().len();
        // SAFETY: `ReadBuf` guarantees its filled part has been initialised, and it is
        // the start of the spare capacity.
        unsafe { last.set_len(start + n) };
        if n == 0 && !fits {
            // Nothing came: the chunk made for it goes (an idle socket holds no buffer).
            self.chunks.pop_back();
        }
        self.charge.shrink(max - n);
        self.len += n;
        polled.map_ok(|()| n)
    }

    /// Writes what is to be sent next with `write` (one vectored write); returns what
    /// it returned.
    pub fn send<T>(&self, write: impl FnOnce(&[IoSlice<'_>]) -> T) -> T {
        self.send_with(&[], write)
    }

    /// Writes what is queued and then `extra` (not queued) with `write`, in one
    /// vectored write; returns what it returned.
    pub fn send_with<T>(&self, extra: &[u8], write: impl FnOnce(&[IoSlice<'_>]) -> T) -> T {
        let mut slices = [IoSlice::new(&[]); VECTORED + 1];
        let mut n = 0;
        for (slot, (i, chunk)) in slices.iter_mut().zip(self.chunks.iter().enumerate()) {
            let from = if i == 0 { self.head } else { 0 };
            *slot = IoSlice::new(&chunk[from..]);
            n += 1;
        }
        if !extra.is_empty() && n < VECTORED {
            slices[n] = IoSlice::new(extra);
            n += 1;
        }
        write(&slices[..n])
    }

    /// `n` bytes went out.
    pub fn consume(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.charge.shrink(n);
        self.len -= n;
        while n > 0 {
            let Some(first) = self.chunks.front() else {
                break;
            };
            let left = first.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() {
            self.head = 0;
        }
    }
}

/// An address as the guest sees it: an IPv4-mapped IPv6 address (a dual-stack
/// listener's IPv4 peer) is reported as the IPv4 address, as Node does.
pub fn guest_ip(addr: SocketAddr) -> (IpAddr, IpFamily) {
    match addr.ip() {
        IpAddr::V4(ip) => (IpAddr::V4(ip), IpFamily::Ipv4),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), IpFamily::Ipv4),
            None => (IpAddr::V6(ip), IpFamily::Ipv6),
        },
    }
}

pub fn address_info(addr: SocketAddr) -> AddressInfo {
    let (ip, family) = guest_ip(addr);
    AddressInfo {
        address: ip.to_string(),
        family,
        port: addr.port(),
    }
}

/// What the `net` interface's code works on: one instance's TCP table, with its event
/// queue, its deadlines and the context its interfaces share.
pub struct NetView<'a> {
    pub tcp: &'a mut Tcp,
    pub events: &'a mut Events,
    pub timers: &'a mut Timers,
    pub cx: &'a mut InstanceCtx,
}

impl NetView<'_> {
    /// Marks a connection for the after-call pass (flush, end).
    fn touch(&mut self, id: u32) {
        if let Some(conn) = self.tcp.conns.get_mut(&id)
            && !conn.touched
        {
            conn.touched = true;
            self.tcp.touched.push(id);
        }
    }

    /// Queues a read of `id` for the next turn, once: however often the guest resumes
    /// or the loop finds more to read, one token waits in the reactor. A socket that
    /// just had a full read goes behind the others (`last`: see
    /// [`crate::reactor::Reactor::push_last`]); one that waited keeps its place.
    fn queue_read(&mut self, id: u32, last: bool) {
        if let Some(conn) = self.tcp.conns.get_mut(&id)
            && !conn.read_queued
        {
            conn.read_queued = true;
            let token = self.cx.token(Kind::TcpRead, id);
            if last {
                self.cx.shard.reactor.push_last(token);
            } else {
                self.cx.shard.reactor.push(token);
            }
        }
    }

    /// After `server.close()`: once the last connection has closed, `server-close` fires
    /// and the server is forgotten.
    pub fn maybe_server_closed(&mut self, id: u32) {
        if let Some(view) = self.tcp.servers.get(&id)
            && !view.listening
            && view.connections == 0
        {
            // A server the guest never heard of closes without a word.
            if self.tcp.servers.remove(&id).is_some_and(|v| v.announced) {
                self.events.push(HostEvent::ServerClose(id));
            }
        }
    }

    /// The instance's servers stop listening (a stop, or its code was replaced): as
    /// Node's `server.close()`, their `close` comes when their connections end.
    pub fn close_servers(&mut self) {
        let ids: Vec<u32> = self.tcp.servers.keys().copied().collect();
        for id in ids {
            if let Some(server) = self.tcp.servers.get_mut(&id) {
                server.listening = false;
            }
            self.maybe_server_closed(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_whose_data_keeps_the_guest_busy_reads_less_and_gets_its_full_reads_back() {
        use conn::{MIN_READ_SIZE, READ_SIZE, READ_SLICE, next_read_size};
        let slow = READ_SLICE * 7;
        let fast = READ_SLICE / 10;
        let mid = READ_SLICE / 2;
        let mut size = READ_SIZE;
        let mut steps = 0;
        while size > MIN_READ_SIZE {
            size = next_read_size(size, slow);
            steps += 1;
        }
        assert_eq!(steps, 4, "64 KiB halves to 4 KiB in four slow calls");
        assert_eq!(
            next_read_size(size, slow),
            MIN_READ_SIZE,
            "never below the least"
        );
        assert_eq!(
            next_read_size(16 << 10, mid),
            16 << 10,
            "calls in the band keep it"
        );
        for _ in 0..4 {
            size = next_read_size(size, fast);
        }
        assert_eq!(size, READ_SIZE);
        assert_eq!(
            next_read_size(size, fast),
            READ_SIZE,
            "never above a full read"
        );
    }

    #[test]
    fn closed_counts_are_kept_for_the_last_sockets_only_and_go_when_forgotten() {
        let mut tcp = Tcp::default();
        let many = MAX_CLOSED_COUNTS as u32 * 3;
        for id in 1..=many {
            tcp.keep_counts(id, u64::from(id), 2 * u64::from(id));
        }
        assert!(tcp.closed_counts.len() <= MAX_CLOSED_COUNTS);
        assert!(tcp.closed_order.len() <= MAX_CLOSED_COUNTS);
        assert_eq!(tcp.counts(many), (u64::from(many), 2 * u64::from(many)));
        // The oldest went: its counts read as a socket never seen.
        assert_eq!(tcp.counts(1), (0, 0));
        tcp.forget_counts(many);
        assert_eq!(tcp.counts(many), (0, 0));
        // Forgotten ids do not let the order queue grow past the bound either.
        for id in many + 1..=many + 5_000 {
            tcp.keep_counts(id, 1, 1);
            tcp.forget_counts(id);
        }
        assert!(tcp.closed_order.len() <= MAX_CLOSED_COUNTS);
        assert!(tcp.closed_counts.len() <= MAX_CLOSED_COUNTS);
    }
}
