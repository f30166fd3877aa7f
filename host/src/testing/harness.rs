//! The in-memory harness: a handler run by the same shard code as `netlet run`, with
//! an in-memory network and a virtual clock. The test plays every peer; after each of
//! its actions the harness runs the handler until nothing is left to do, so what the
//! test reads next is everything the handler did in answer.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::{HandlerConfig, Isolation, ListenAddr, TrapPolicy};
use crate::context::Observer;
use crate::engine::{EngineOptions, LoadError, Loader, Pooling, Precompiled, default_cache_dir};
use crate::events::HostEvent;
use crate::handler::Handler;
use crate::log::LogSink;
use crate::policy::{AllowRule, Policy};
use crate::shard::{Control, FailureRecord, HostDatagram, HostListener, Shard, ShardSpec};
use crate::stats::HandlerStats;
use crate::transport::ConnectError;

use super::mem::{Closed, MemNet, Peer, PendingConnect, SentDatagram, pair};

/// One delivered event, as the harness records it.
#[derive(Clone, Debug)]
pub struct TraceEvent {
    /// The instance it was delivered to.
    pub instance: u64,
    pub event: HostEvent,
    /// The event's payload (a `data` or `message`'s bytes).
    pub payload: Vec<u8>,
}

/// Records every delivered event.
#[derive(Default)]
struct Recorder(Mutex<Vec<TraceEvent>>);

impl Observer for Recorder {
    fn delivered(&self, instance: u64, event: &HostEvent, payload: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(TraceEvent {
                instance,
                event: event.clone(),
                payload: payload.to_vec(),
            });
    }
}

/// Loop turns one action may take before the harness gives up on the handler.
const MAX_TURNS: usize = 100_000;

/// Why a harness operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Start(String),
    /// The handler's `init` failed or trapped.
    #[error("the handler did not start: {0}")]
    Init(String),
    #[error("{0}")]
    Settle(String),
    #[error("there is no TCP listener {0} (the harness has {1})")]
    NoListener(usize, usize),
    #[error("connection refused: listener {0} is closed")]
    Refused(usize),
    #[error("there is no UDP socket {0} (the harness has {1})")]
    NoUdp(usize, usize),
    #[error("no guest socket is bound at {0}")]
    NoUdpAt(SocketAddr),
    #[error("no outbound connect is waiting for an answer")]
    NoConnect,
    #[error("invalid setting: {0}")]
    Config(String),
}

/// The first TCP listener's address in memory (when none is given); the next ones
/// follow it (8001, ...).
pub const DEFAULT_TCP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);

/// The first host-bound UDP socket's address in memory (when none is given).
pub const DEFAULT_UDP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9000);

/// The address `i` places after `first`.
fn nth(first: SocketAddr, i: usize) -> SocketAddr {
    let port = u16::try_from(i).map_or(u16::MAX, |i| first.port().saturating_add(i));
    SocketAddr::new(first.ip(), port)
}

/// `n` addresses from `first` up.
fn addrs_from(first: SocketAddr, n: usize) -> Vec<ListenAddr> {
    (0..n).map(|i| nth(first, i).into()).collect()
}

/// Settings for a harness: the handler's configuration, as for `netlet run`, checked by
/// [`HandlerConfig::validate`] when the harness starts.
pub struct HarnessBuilder {
    config: HandlerConfig,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        Self {
            config: Self::default_config(),
        }
    }
}

impl HarnessBuilder {
    /// What a harness runs with unless told otherwise: `netlet run`'s defaults, one TCP
    /// listener at [`DEFAULT_TCP`] and one UDP socket at [`DEFAULT_UDP`].
    pub fn default_config() -> HandlerConfig {
        HandlerConfig {
            tcp: vec![DEFAULT_TCP.into()],
            udp: vec![DEFAULT_UDP.into()],
            ..HandlerConfig::default()
        }
    }

    /// How many TCP listeners the handler gets (default 1), at 127.0.0.1:8000, 8001, ...
    pub fn tcp(mut self, listeners: usize) -> Self {
        self.config.tcp = addrs_from(DEFAULT_TCP, listeners);
        self
    }

    /// How many host-bound UDP sockets the handler gets (default 1), at 127.0.0.1:9000, ...
    pub fn udp(mut self, sockets: usize) -> Self {
        self.config.udp = addrs_from(DEFAULT_UDP, sockets);
        self
    }

    /// Arguments for the handler's `init`.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.config.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Allow an outbound destination (`--allow HOST:PORT`).
    pub fn allow(mut self, rule: &str) -> Result<Self, HarnessError> {
        let rule: AllowRule = rule
            .parse()
            .map_err(|e: crate::policy::AllowRuleError| HarnessError::Config(e.to_string()))?;
        self.config.allow.push(rule);
        Ok(self)
    }

    pub fn allow_dns(mut self, on: bool) -> Self {
        self.config.allow_dns = on;
        self
    }

    pub fn allow_half_open(mut self, on: bool) -> Self {
        self.config.allow_half_open = on;
        self
    }

    /// Let the component be precompiled machine code (`--allow-precompiled`).
    pub fn allow_precompiled(mut self, on: bool) -> Self {
        self.config.allow_precompiled = on;
        self
    }

    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.config.isolation = isolation;
        self
    }

    pub fn on_trap(mut self, policy: TrapPolicy) -> Self {
        self.config.on_trap = policy;
        self
    }

    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.config.max_connections = max;
        self
    }

    pub fn idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.config.idle_timeout = idle;
        self
    }

    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.config.max_memory = bytes;
        self
    }

    pub fn event_timeout(mut self, timeout: Duration) -> Self {
        self.config.event_timeout = timeout;
        self
    }

    pub fn high_water_mark(mut self, bytes: usize) -> Self {
        self.config.high_water_mark = bytes;
        self
    }

    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.config.max_write_buffer = bytes;
        self
    }

    /// Replaces the whole configuration: its `tcp`/`udp` addresses become the
    /// harness's listeners and sockets (none when empty; port 0 takes the default
    /// address of its place). The harness always runs one shard.
    pub fn config(mut self, config: HandlerConfig) -> Self {
        self.config = config;
        self
    }

    /// Loads the component at `path`.
    pub fn load(self, path: impl AsRef<Path>) -> Result<Harness, HarnessError> {
        let this = self.validated()?;
        let precompiled = Precompiled::allowed(this.config.allow_precompiled);
        let handler = Handler::from_file(&this.loader()?, path.as_ref(), precompiled)?;
        this.start(handler)
    }

    /// Loads a component from memory; `name` is what its log lines are prefixed with.
    pub fn from_bytes(self, name: &str, bytes: &[u8]) -> Result<Harness, HarnessError> {
        let this = self.validated()?;
        let precompiled = Precompiled::allowed(this.config.allow_precompiled);
        let handler = Handler::from_bytes(&this.loader()?, name, name, bytes, precompiled)?;
        this.start(handler)
    }

    /// The settings, checked as every configuration is before it runs.
    fn validated(self) -> Result<Self, HarnessError> {
        let config = self.config.validate().map_err(HarnessError::Config)?;
        Ok(Self { config })
    }

    /// The engine, pooled in connection isolation as `netlet run`'s is.
    fn loader(&self) -> Result<Loader, HarnessError> {
        Loader::new(&EngineOptions {
            cache_dir: default_cache_dir(),
            pooling: Pooling::for_config(&self.config),
        })
        .map_err(|e| HarnessError::Start(format!("{e:#}")))
    }

    fn start(self, handler: Handler) -> Result<Harness, HarnessError> {
        let mut config = self.config;
        let net = MemNet::default();
        let clock = Clock::new_virtual();
        let sink = LogSink::capture();
        let trace = Arc::new(Recorder::default());
        let mut tcp = Vec::new();
        let mut listeners = Vec::new();
        for (i, requested) in config.tcp.iter().enumerate() {
            let addr = Some(requested.addr)
                .filter(|a| a.port() != 0)
                .unwrap_or_else(|| nth(DEFAULT_TCP, i));
            listeners.push(HostListener {
                id: i as u32 + 1,
                code_port: requested.code_port,
                source: Box::new(net.listen(addr)),
            });
            tcp.push(ListenAddr {
                addr,
                code_port: requested.code_port,
            });
        }
        let mut udp = Vec::new();
        let mut sockets = Vec::new();
        for (i, requested) in config.udp.iter().enumerate() {
            let addr = Some(requested.addr)
                .filter(|a| a.port() != 0)
                .unwrap_or_else(|| nth(DEFAULT_UDP, i));
            let sock = net
                .udp(Some(addr))
                .map_err(|e| HarnessError::Start(format!("cannot make a UDP socket: {e}")))?;
            sockets.push(HostDatagram {
                code_port: requested.code_port,
                source: Box::new(sock),
            });
            udp.push(ListenAddr {
                addr,
                code_port: requested.code_port,
            });
        }
        config.tcp = tcp.clone();
        config.udp = udp.clone();
        config.shards = 1;
        let config = Arc::new(config);
        let spec = ShardSpec {
            index: 0,
            handler: Arc::new(handler),
            policy: Arc::new(Policy::new(config.allow.clone(), config.allow_dns)),
            config,
            stats: Arc::new(HandlerStats::default()),
            log_tag: crate::log::LogTag::new("guest"),
            sink: sink.clone(),
            control: Arc::new(Control::default()),
            tcp: listeners,
            udp: sockets,
            tls: crate::transport::tls::TlsCell::empty(),
            clock: clock.clone(),
            network: Some(Arc::new(net.clone())),
            observer: Some(trace.clone()),
        };
        let mut shard = Shard::new(spec).map_err(HarnessError::Start)?;
        shard
            .start_primary()
            .map_err(|e| HarnessError::Init(e.to_string()))?;
        let inner = Rc::new(RefCell::new(Inner {
            shard,
            net,
            clock,
            sink,
            trace,
            tcp: tcp.iter().map(|l| l.addr).collect(),
            udp: udp.iter().map(|l| l.addr).collect(),
        }));
        let harness = Harness { inner };
        harness.settle()?;
        Ok(harness)
    }
}

struct Inner {
    shard: Shard,
    net: MemNet,
    clock: Clock,
    sink: LogSink,
    trace: Arc<Recorder>,
    tcp: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
}

/// A handler under test, with an in-memory network and virtual time.
///
/// ```no_run
/// use netlet::testing::Harness;
///
/// let h = Harness::load("target/wasm32-wasip2/release/echo.wasm")?;
/// let c = h.connect()?;
/// assert_eq!(c.take_output(), b"Echo server\r\n");
/// c.send(b"hi")?;
/// assert_eq!(c.take_output(), b"hi");
/// c.end()?;
/// assert!(c.is_closed());
/// # Ok::<(), netlet::testing::HarnessError>(())
/// ```
pub struct Harness {
    inner: Rc<RefCell<Inner>>,
}

impl Harness {
    /// Loads the component at `path` with the defaults of `netlet run` and one TCP
    /// listener and one UDP socket.
    pub fn load(path: impl AsRef<Path>) -> Result<Harness, HarnessError> {
        HarnessBuilder::default().load(path)
    }

    /// Settings first: `Harness::builder().args(["x"]).tcp(2).load(path)`.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    fn settle(&self) -> Result<(), HarnessError> {
        settle(&self.inner)
    }

    /// The address of TCP listener `index`.
    pub fn tcp_addr(&self, index: usize) -> Option<SocketAddr> {
        self.inner.borrow().tcp.get(index).copied()
    }

    /// The address of host-bound UDP socket `index`.
    pub fn udp_addr(&self, index: usize) -> Option<SocketAddr> {
        self.inner.borrow().udp.get(index).copied()
    }

    /// A client connects to the first listener.
    pub fn connect(&self) -> Result<Conn, HarnessError> {
        self.connect_to(0)
    }

    /// A client connects to listener `index`.
    pub fn connect_to(&self, index: usize) -> Result<Conn, HarnessError> {
        let peer = {
            let inner = self.inner.borrow();
            if index >= inner.tcp.len() {
                return Err(HarnessError::NoListener(index, inner.tcp.len()));
            }
            if !inner.shard.listening(index) {
                return Err(HarnessError::Refused(index));
            }
            inner
                .net
                .connect(index)
                .ok_or(HarnessError::NoListener(index, inner.tcp.len()))?
        };
        self.settle()?;
        let conn = Conn {
            inner: self.inner.clone(),
            peer,
            socket: Default::default(),
        };
        conn.resolve();
        Ok(conn)
    }

    /// Moves virtual time forward by `by`, firing every timer and socket timeout that
    /// comes due, in order.
    pub fn advance(&self, by: Duration) -> Result<(), HarnessError> {
        let target = self.inner.borrow().clock.now() + by;
        loop {
            let next = self.inner.borrow().shard.next_deadline();
            let now = self.inner.borrow().clock.now();
            match next {
                Some(at) if at <= target => {
                    if at > now {
                        self.inner.borrow().clock.advance(at - now);
                    }
                    self.settle()?;
                }
                _ => break,
            }
        }
        let now = self.inner.borrow().clock.now();
        if target > now {
            self.inner.borrow().clock.advance(target - now);
        }
        self.settle()
    }

    /// A datagram from `from` arrives at the first host-bound UDP socket.
    pub fn datagram(&self, from: SocketAddr, data: impl AsRef<[u8]>) -> Result<(), HarnessError> {
        let to = {
            let inner = self.inner.borrow();
            *inner.udp.first().ok_or(HarnessError::NoUdp(0, 0))?
        };
        self.datagram_to(to, from, data)
    }

    /// A datagram from `from` arrives at whatever guest socket is bound at `to` (a
    /// host-bound one, or one the guest created).
    pub fn datagram_to(
        &self,
        to: SocketAddr,
        from: SocketAddr,
        data: impl AsRef<[u8]>,
    ) -> Result<(), HarnessError> {
        let delivered = self.inner.borrow().net.deliver(from, to, data.as_ref());
        if !delivered {
            return Err(HarnessError::NoUdpAt(to));
        }
        self.settle()
    }

    /// The datagrams the guest sent since the last call, with their destinations.
    pub fn take_datagrams(&self) -> Vec<SentDatagram> {
        self.inner.borrow().net.take_sent()
    }

    /// Outbound TCP connects the guest started and the test has not answered.
    pub fn pending_connects(&self) -> Vec<PendingConnect> {
        self.inner.borrow().net.pending_connects()
    }

    /// Accepts the oldest outbound connect: the test plays the server.
    pub fn accept_connect(&self) -> Result<Conn, HarnessError> {
        let (pending, done) = self
            .inner
            .borrow()
            .net
            .pop_connect()
            .ok_or(HarnessError::NoConnect)?;
        let peer = {
            let inner = self.inner.borrow();
            let remote = crate::resolve::resolve_now(&pending.host)
                .and_then(|ips| ips.into_iter().next())
                .map(|ip| SocketAddr::new(ip, pending.port))
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], pending.port)));
            let local = SocketAddr::new(remote.ip(), inner.net.next_port());
            let (host_end, peer) = pair(local, remote);
            done(Ok(Box::new(host_end)));
            peer
        };
        self.settle()?;
        let conn = Conn {
            inner: self.inner.clone(),
            peer,
            socket: Default::default(),
        };
        conn.resolve();
        Ok(conn)
    }

    /// Refuses the oldest outbound connect (the guest gets `ECONNREFUSED`).
    pub fn refuse_connect(&self) -> Result<(), HarnessError> {
        let (pending, done) = self
            .inner
            .borrow()
            .net
            .pop_connect()
            .ok_or(HarnessError::NoConnect)?;
        done(Err(ConnectError {
            error: std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
            target: crate::resolve::display_target(&pending.host, pending.port),
            denied: false,
        }));
        self.settle()
    }

    /// Lets the in-memory resolver answer `name` (for a guest sending to, or connecting
    /// to, a host name); other names are not found.
    pub fn add_host(&self, name: &str, addrs: Vec<std::net::IpAddr>) {
        self.inner.borrow().net.add_host(name, addrs);
    }

    /// Whether TCP listener `index` still accepts (the guest may have closed it).
    pub fn listening(&self, index: usize) -> bool {
        self.inner.borrow().shard.listening(index)
    }

    /// What the guest printed, one line each.
    pub fn logs(&self) -> Vec<String> {
        self.inner.borrow().sink.captured().guest
    }

    /// The host's lines about the handler (faults, denied destinations).
    pub fn host_logs(&self) -> Vec<String> {
        self.inner.borrow().sink.captured().host
    }

    /// Every event delivered so far, in order.
    pub fn trace_events(&self) -> Vec<TraceEvent> {
        self.inner
            .borrow()
            .trace
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every event delivered so far, one readable line each (`data socket=1 "hi"`).
    pub fn trace(&self) -> Vec<String> {
        self.trace_events().iter().map(describe).collect()
    }

    /// The faults so far: traps (deadline, memory, panics, ...) and failed `init`s.
    pub fn traps(&self) -> Vec<FailureRecord> {
        self.inner.borrow().shard.failures().to_vec()
    }
}

fn settle(inner: &Rc<RefCell<Inner>>) -> Result<(), HarnessError> {
    inner
        .borrow_mut()
        .shard
        .settle(MAX_TURNS)
        .map_err(HarnessError::Settle)
}

/// One connection, seen from the peer the test plays.
pub struct Conn {
    inner: Rc<RefCell<Inner>>,
    peer: Peer,
    /// The guest's (instance, socket id) for it, once known.
    socket: std::cell::Cell<Option<(u64, u32)>>,
}

impl Conn {
    /// Finds which guest socket this connection is.
    fn resolve(&self) {
        if self.socket.get().is_some() {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        for (key, instance) in inner.shard.instances().iter_mut() {
            let tcp = &instance.state().tcp;
            if let Some(id) = tcp.find(self.peer.host_addr, self.peer.addr) {
                self.socket.set(Some((*key, id)));
                return;
            }
        }
    }

    fn settle(&self) -> Result<(), HarnessError> {
        settle(&self.inner)
    }

    /// The peer sends `data`; the handler runs until it has nothing left to do.
    pub fn send(&self, data: impl AsRef<[u8]>) -> Result<(), HarnessError> {
        self.peer.send(data.as_ref());
        self.settle()
    }

    /// The peer half-closes (FIN).
    pub fn end(&self) -> Result<(), HarnessError> {
        self.peer.end();
        self.settle()
    }

    /// The peer resets the connection (RST).
    pub fn reset(&self) -> Result<(), HarnessError> {
        self.peer.reset();
        self.settle()
    }

    /// Everything the handler wrote since the last read. Reading makes room: a handler
    /// waiting for `drain` gets it (and may write more) before this returns; what it
    /// writes then is in the next read.
    pub fn take_output(&self) -> Vec<u8> {
        let out = self.peer.take_output();
        let _ = self.settle();
        out
    }

    /// Reads at most `n` bytes of what the handler wrote.
    pub fn read(&self, n: usize) -> Vec<u8> {
        let out = self.peer.read(n);
        let _ = self.settle();
        out
    }

    /// Runs the handler until it has nothing left to do (after reads, say).
    pub fn flush(&self) -> Result<(), HarnessError> {
        self.settle()
    }

    /// The peer stops reading: once `window` unread bytes are waiting, the handler's
    /// writes queue up (and `write` returns false past the high-water mark).
    pub fn stop_reading(&self, window: usize) {
        self.peer.set_window(Some(window));
    }

    /// The peer reads everything again.
    pub fn resume_reading(&self) -> Result<(), HarnessError> {
        self.peer.set_window(None);
        self.settle()
    }

    /// Bytes the handler wrote that the peer has not read.
    pub fn unread(&self) -> usize {
        self.peer.pending_output()
    }

    /// The handler ended its side (FIN) or closed.
    pub fn is_ended(&self) -> bool {
        self.peer.host_ended()
    }

    /// The handler's side is gone (closed, destroyed, reset, or its instance trapped).
    pub fn is_closed(&self) -> bool {
        self.peer.host_closed().is_some()
    }

    /// The handler reset the connection (`reset-and-destroy`).
    pub fn was_reset(&self) -> bool {
        self.peer.host_closed() == Some(Closed::Reset)
    }

    /// The connection ended in error: the guest got `error` then `close(had-error)`, or
    /// the instance holding it trapped.
    pub fn closed_with_error(&self) -> bool {
        self.resolve();
        let Some((inst, id)) = self.socket.get() else {
            return false;
        };
        let inner = self.inner.borrow();
        let trapped = inner.shard.failures().iter().any(|f| f.instance == inst);
        let errored = inner.trace.0.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|t| {
            t.instance == inst && matches!(t.event, HostEvent::Close { socket, had_error: true } if socket == id)
        });
        trapped || errored
    }

    /// Whether the handler paused reading this socket.
    pub fn is_paused(&self) -> bool {
        self.resolve();
        let Some((inst, id)) = self.socket.get() else {
            return false;
        };
        let mut inner = self.inner.borrow_mut();
        inner
            .shard
            .instances()
            .get(inst)
            .and_then(|i| i.state().tcp.get(id).map(|c| c.is_paused()))
            .unwrap_or(false)
    }

    /// TCP_NODELAY as the handler set it.
    pub fn no_delay(&self) -> bool {
        self.peer.no_delay()
    }

    /// The peer's address (what the guest sees as `remote-address`).
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr
    }

    /// The guest's socket id for this connection, once it was accepted.
    pub fn socket_id(&self) -> Option<u32> {
        self.resolve();
        self.socket.get().map(|(_, id)| id)
    }
}

fn printable(bytes: &[u8]) -> String {
    const SHOWN: usize = 64;
    let shown: String = bytes
        .iter()
        .take(SHOWN)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    if bytes.len() > SHOWN {
        format!("\"{shown}\"... ({} bytes)", bytes.len())
    } else {
        format!("\"{shown}\"")
    }
}

/// One trace line: `instance 0: data socket=1 "hi"`.
pub fn describe(t: &TraceEvent) -> String {
    let what = match &t.event {
        HostEvent::Listening(server) => format!("listening server={server}"),
        HostEvent::Connection { server, socket } => {
            format!("connection server={server} socket={socket}")
        }
        HostEvent::Connect(id) => format!("connect socket={id}"),
        HostEvent::Data { socket, .. } => format!("data socket={socket} {}", printable(&t.payload)),
        HostEvent::End(id) => format!("end socket={id}"),
        HostEvent::Drain(id) => format!("drain socket={id}"),
        HostEvent::Timeout(id) => format!("timeout socket={id}"),
        HostEvent::Error { socket, error } => format!("error socket={socket} {}", error.message),
        HostEvent::Close { socket, had_error } => {
            format!("close socket={socket} had_error={had_error}")
        }
        HostEvent::ServerClose(id) => format!("server-close server={id}"),
        HostEvent::ServerError { server, error } => {
            format!("server-error server={server} {}", error.message)
        }
        HostEvent::Drop { server, remote, .. } => format!(
            "drop server={server} remote={}",
            remote
                .as_ref()
                .map_or("-".to_string(), |a| format!("{}:{}", a.address, a.port))
        ),
        HostEvent::UdpListening { socket, .. } => format!("udp-listening socket={socket}"),
        HostEvent::UdpMessage { socket, port, .. } => {
            format!(
                "message socket={socket} port={port} {}",
                printable(&t.payload)
            )
        }
        HostEvent::UdpConnect(id) => format!("udp-connect socket={id}"),
        HostEvent::UdpError { socket, error } => {
            format!("udp-error socket={socket} {}", error.message)
        }
        HostEvent::UdpClose(id) => format!("udp-close socket={id}"),
        HostEvent::Timer(id) => format!("timer {id}"),
    };
    format!("instance {}: {what}", t.instance)
}
