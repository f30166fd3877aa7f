//! TCP: the host side of the `net` interface. A [`TcpConn`] is one connection's state;
//! [`conn`] moves its bytes (reads, flushes, half-close, close) and [`listener`] binds
//! servers and accepts. This file implements the guest's socket and server methods.
//!
//! Methods never block and never touch the network directly: `write` appends to the
//! connection's queue and marks it touched; the shard flushes touched connections right
//! after the guest call returns, so many writes in one event become one `writev`.

pub mod conn;
pub mod listener;
pub mod stream;

use stream::Stream;

use std::net::{IpAddr, SocketAddr};
use std::task::Waker;
use std::time::{Duration, Instant};

use wasmtime::component::Resource;

use crate::bindings::netlet::net::net::{ConnectOptions, Host, HostServer, HostSocket, ReadyState};
use crate::bindings::{AddressInfo, ErrorCode, IpFamily};
use crate::guest::{GuestState, Io};
use crate::reactor::{Completion, ConnectError, Kind};
use crate::resolve;
use crate::stats::HandlerStats;
use crate::timers::TimerKey;
use std::sync::Arc;

/// The type behind the guest's `net.socket` handles; a handle's rep is the socket's id.
pub struct SocketRep;

/// The type behind the guest's `net.server` handles; a handle's rep is the server's id.
pub struct ServerRep;

/// Options applied once an outbound connection is up.
#[derive(Clone, Copy, Debug, Default)]
struct PendingOptions {
    no_delay: Option<bool>,
    keep_alive: Option<(bool, u32)>,
}

/// One TCP connection's state.
pub struct TcpConn {
    /// The server that accepted it (`None` for a client socket).
    pub server: Option<u32>,
    stream: Option<Stream>,
    /// An outbound connection not yet established.
    connecting: bool,
    /// The peer's FIN was read (`end` delivered).
    read_eof: bool,
    /// The guest (or the host, for allowHalfOpen=false) ended our side.
    end_called: bool,
    /// Our FIN went out.
    fin_sent: bool,
    paused: bool,
    allow_half_open: bool,
    /// End our side once the guest has seen `end` (allowHalfOpen=false).
    auto_end: bool,
    /// In `Io::touched_tcp` already.
    touched: bool,
    /// The loop turn of the last read.
    read_turn: u64,
    /// `write` returned false; a `drain` is owed when the queue empties.
    need_drain: bool,
    out: WriteQueue,
    bytes_read: u64,
    bytes_written: u64,
    idle: Option<Duration>,
    last_active: Instant,
    /// A deadline for this socket's idle timeout is on the shard's heap.
    idle_armed: bool,
    /// Likewise for the host's `--idle-timeout`.
    host_idle_armed: bool,
    /// The handler's counters (for accepted connections, also what
    /// `--max-connections` reads).
    pub(crate) stats: Arc<HandlerStats>,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    pending: PendingOptions,
    read_waker: Waker,
    write_waker: Waker,
    /// Its share of the process's socket budget (for a socket the guest opened).
    permit: Option<crate::budget::Permit>,
}

impl TcpConn {
    fn new(io: &Io, id: u32, allow_half_open: bool) -> Self {
        TcpConn {
            server: None,
            stream: None,
            connecting: false,
            read_eof: false,
            end_called: false,
            fin_sent: false,
            paused: false,
            allow_half_open,
            auto_end: false,
            touched: false,
            read_turn: u64::MAX,
            need_drain: false,
            out: WriteQueue::default(),
            bytes_read: 0,
            bytes_written: 0,
            idle: None,
            last_active: io.now(),
            idle_armed: false,
            host_idle_armed: false,
            stats: io.ctx.stats.clone(),
            local: None,
            peer: None,
            pending: PendingOptions::default(),
            read_waker: io.ctx.reactor.waker(io.token(Kind::TcpRead, id)),
            write_waker: io.ctx.reactor.waker(io.token(Kind::TcpWrite, id)),
            permit: None,
        }
    }

    /// Whether the guest paused reading this socket.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether this is the testing harness's connection to `peer`.
    pub fn is_for(&self, peer: &crate::testing::mem::Peer) -> bool {
        matches!(&self.stream, Some(Stream::Mem(s)) if s.is_for(peer))
    }

    fn ready_state(&self) -> ReadyState {
        if self.connecting {
            return ReadyState::Opening;
        }
        match (!self.read_eof, !self.end_called) {
            (true, true) => ReadyState::Open,
            (true, false) => ReadyState::ReadOnly,
            (false, true) => ReadyState::WriteOnly,
            (false, false) => ReadyState::Closed,
        }
    }

    /// Records activity for the idle timeouts (the guest's `set-timeout` and the host's
    /// `--idle-timeout`); re-arms one that already fired. Reads no clock when neither is
    /// set (the common case, on the hot path).
    fn active(
        &mut self,
        clock: &crate::clock::Clock,
        io_timers: &mut crate::timers::Timers,
        host_idle: Option<Duration>,
        id: u32,
    ) {
        if self.idle.is_none() && host_idle.is_none() {
            return;
        }
        let now = clock.now();
        self.last_active = now;
        if let Some(idle) = self.idle
            && !self.idle_armed
        {
            self.idle_armed = true;
            io_timers
                .scheduled
                .push((now + idle, TimerKey::SocketIdle(id)));
        }
        if let Some(idle) = host_idle
            && !self.host_idle_armed
        {
            self.host_idle_armed = true;
            io_timers
                .scheduled
                .push((now + idle, TimerKey::HostIdle(id)));
        }
    }
}

/// A socket's write queue: one contiguous buffer, sent from `head` with a single `send`.
/// A write into an empty queue takes the guest's buffer as it is (no copy).
#[derive(Default)]
pub struct WriteQueue {
    buf: Vec<u8>,
    head: usize,
}

impl WriteQueue {
    /// Bytes queued, not yet sent.
    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, data: Vec<u8>) {
        if self.is_empty() {
            self.buf = data;
            self.head = 0;
        } else {
            self.buf.extend_from_slice(&data);
        }
    }

    pub fn pending(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// `n` bytes went out.
    pub fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
            if self.buf.capacity() > 1 << 20 {
                // Do not hold on to a burst's worth of memory.
                self.buf = Vec::new();
            }
        } else if self.head >= 64 * 1024 && self.head * 2 >= self.buf.len() {
            // Amortised: the bytes moved are at most those already sent.
            self.buf.drain(..self.head);
            self.head = 0;
        }
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

/// What the guest sees of a server it was handed.
pub struct ServerView {
    pub addr: SocketAddr,
    /// Open connections it accepted (in this instance).
    pub connections: u32,
    /// Still accepting (`close` not called).
    pub listening: bool,
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

impl Io {
    /// Marks a connection for the after-call pass (flush, end).
    pub(crate) fn touch_tcp(&mut self, id: u32) {
        if let Some(conn) = self.tcp.get_mut(&id)
            && !conn.touched
        {
            conn.touched = true;
            self.touched_tcp.push(id);
        }
    }
}

impl HostSocket for GuestState {
    fn id(&mut self, this: Resource<SocketRep>) -> u32 {
        this.rep()
    }

    fn write(&mut self, this: Resource<SocketRep>, data: Vec<u8>) -> Result<bool, ErrorCode> {
        conn::write(&mut self.io, this.rep(), data)
    }

    fn end(&mut self, this: Resource<SocketRep>, data: Option<Vec<u8>>) {
        let id = this.rep();
        if let Some(data) = data {
            let _ = conn::write(&mut self.io, id, data);
        }
        if let Some(conn) = self.io.tcp.get_mut(&id) {
            conn.end_called = true;
            self.io.touch_tcp(id);
        }
    }

    fn destroy(&mut self, this: Resource<SocketRep>) {
        conn::close(&mut self.io, this.rep(), None);
    }

    fn reset_and_destroy(&mut self, this: Resource<SocketRep>) {
        let id = this.rep();
        if let Some(stream) = self.io.tcp.get(&id).and_then(|c| c.stream.as_ref()) {
            // SO_LINGER 0: close() sends RST and drops anything unsent.
            let _ = stream.reset_on_close();
        }
        conn::close(&mut self.io, id, None);
    }

    fn pause(&mut self, this: Resource<SocketRep>) {
        if let Some(conn) = self.io.tcp.get_mut(&this.rep()) {
            conn.paused = true;
        }
    }

    fn resume(&mut self, this: Resource<SocketRep>) {
        let id = this.rep();
        if let Some(conn) = self.io.tcp.get_mut(&id)
            && conn.paused
        {
            conn.paused = false;
            // Bytes may have arrived while paused, with no new readiness edge to tell us.
            self.io.ctx.reactor.push(self.io.token(Kind::TcpRead, id));
        }
    }

    fn is_paused(&mut self, this: Resource<SocketRep>) -> bool {
        self.io.tcp.get(&this.rep()).is_some_and(|c| c.paused)
    }

    fn set_no_delay(&mut self, this: Resource<SocketRep>, no_delay: bool) -> Result<(), ErrorCode> {
        let conn = self
            .io
            .tcp
            .get_mut(&this.rep())
            .ok_or(ErrorCode::InvalidState)?;
        match &conn.stream {
            Some(stream) => stream
                .set_nodelay(no_delay)
                .map_err(|e| crate::error::error_code(&e)),
            None => {
                conn.pending.no_delay = Some(no_delay);
                Ok(())
            }
        }
    }

    fn set_keep_alive(
        &mut self,
        this: Resource<SocketRep>,
        enable: bool,
        initial_delay_ms: u32,
    ) -> Result<(), ErrorCode> {
        let conn = self
            .io
            .tcp
            .get_mut(&this.rep())
            .ok_or(ErrorCode::InvalidState)?;
        match &conn.stream {
            Some(stream) => stream
                .set_keepalive(enable, initial_delay_ms)
                .map_err(|e| crate::error::error_code(&e)),
            None => {
                conn.pending.keep_alive = Some((enable, initial_delay_ms));
                Ok(())
            }
        }
    }

    fn set_timeout(&mut self, this: Resource<SocketRep>, ms: u32) {
        let id = this.rep();
        let Some(conn) = self.io.tcp.get_mut(&id) else {
            return;
        };
        conn.idle = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
        let host_idle = self.io.ctx.config.idle_timeout;
        conn.active(&self.io.ctx.clock, &mut self.io.timers, host_idle, id);
    }

    fn remote_address(&mut self, this: Resource<SocketRep>) -> Option<AddressInfo> {
        self.io
            .tcp
            .get(&this.rep())
            .and_then(|c| c.peer)
            .map(address_info)
    }

    fn local_address(&mut self, this: Resource<SocketRep>) -> Option<AddressInfo> {
        self.io
            .tcp
            .get(&this.rep())
            .and_then(|c| c.local)
            .map(address_info)
    }

    fn bytes_read(&mut self, this: Resource<SocketRep>) -> u64 {
        self.io.tcp.get(&this.rep()).map_or(0, |c| c.bytes_read)
    }

    fn bytes_written(&mut self, this: Resource<SocketRep>) -> u64 {
        self.io.tcp.get(&this.rep()).map_or(0, |c| c.bytes_written)
    }

    fn buffer_size(&mut self, this: Resource<SocketRep>) -> u64 {
        self.io
            .tcp
            .get(&this.rep())
            .map_or(0, |c| c.out.len() as u64)
    }

    fn ready_state(&mut self, this: Resource<SocketRep>) -> ReadyState {
        self.io
            .tcp
            .get(&this.rep())
            .map_or(ReadyState::Closed, TcpConn::ready_state)
    }

    fn drop(&mut self, this: Resource<SocketRep>) -> wasmtime::Result<()> {
        // The guest let go of its last handle: a socket still open is destroyed, as a
        // Rust `TcpStream` is when dropped.
        conn::close(&mut self.io, this.rep(), None);
        Ok(())
    }
}

impl HostServer for GuestState {
    fn id(&mut self, this: Resource<ServerRep>) -> u32 {
        this.rep()
    }

    fn address(&mut self, this: Resource<ServerRep>) -> Option<AddressInfo> {
        self.io
            .servers
            .get(&this.rep())
            .filter(|s| s.listening)
            .map(|s| address_info(s.addr))
    }

    fn get_connections(&mut self, this: Resource<ServerRep>) -> u32 {
        self.io
            .servers
            .get(&this.rep())
            .map_or(0, |s| s.connections)
    }

    fn listening(&mut self, this: Resource<ServerRep>) -> bool {
        self.io
            .servers
            .get(&this.rep())
            .is_some_and(|s| s.listening)
    }

    fn close(&mut self, this: Resource<ServerRep>) {
        let id = this.rep();
        if let Some(server) = self.io.servers.get_mut(&id)
            && server.listening
        {
            server.listening = false;
            self.io.closed_servers.push(id);
            listener::maybe_server_closed(&mut self.io, id);
        }
    }

    fn drop(&mut self, _this: Resource<ServerRep>) -> wasmtime::Result<()> {
        // Servers belong to the host (they came from `--tcp`); a dropped handle leaves
        // the server running, as losing the last reference to a listening Node server does.
        Ok(())
    }
}

impl Host for GuestState {
    fn connect(&mut self, options: ConnectOptions) -> Result<Resource<SocketRep>, ErrorCode> {
        conn::start_connect(&mut self.io, options).map(Resource::new_own)
    }
}

impl crate::bindings::netlet::net::net_handler::Host for GuestState {}
impl crate::bindings::netlet::net::types::Host for GuestState {}

/// The completion of an outbound connect: hands the stream to its socket.
pub fn on_connected(io: &mut Io, id: u32, result: Result<Stream, ConnectError>, buf: &mut [u8]) {
    io.in_flight = io.in_flight.saturating_sub(1);
    conn::finish_connect(io, id, result, buf);
}

/// Spawns the task for an outbound connection; its completion comes back through the
/// reactor.
fn spawn_connect(io: &mut Io, id: u32, plan: conn::ConnectPlan) {
    io.in_flight += 1;
    if let Some(mem) = &io.ctx.mem {
        // Under the testing harness the test answers the connect.
        mem.push_connect(crate::testing::mem::PendingConnect {
            inst: io.inst,
            id,
            host: plan.host().to_string(),
            port: plan.port(),
        });
        return;
    }
    let reactor = io.ctx.reactor.clone();
    let inst = io.inst;
    let policy = io.ctx.policy.clone();
    io.ctx.rt.spawn(async move {
        let result = plan.run(&policy).await.map(Stream::Tcp);
        reactor.complete(Completion::TcpConnect { inst, id, result });
    });
}

pub(crate) use resolve::display_addr;
