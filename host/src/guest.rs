//! One guest instance: its wasmtime store, and the host-side state of everything it owns
//! ([`Io`]: TCP sockets, servers it was handed, UDP sockets, timers, events waiting for
//! it).
//!
//! The store's data owns all of it, so host imports (called by the guest) and the shard
//! loop (between guest calls) reach the same tables without locks or reference counting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{Event, TcpUdp};
use crate::budget::{Permit, Refusal};
use crate::config::HandlerConfig;
use crate::dgram::UdpSock;
use crate::engine::Handler;
use crate::events::{Arena, HostEvent};
use crate::log::{GuestOutput, LogSink};
use crate::net::{ServerView, TcpConn};
use crate::policy::Policy;
use crate::reactor::{Kind, Reactor, Token};
use crate::timers::Timers;

/// What every instance of a shard shares with the shard: all `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct ShardCtx {
    pub reactor: Arc<Reactor>,
    pub rt: tokio::runtime::Handle,
    pub config: Arc<HandlerConfig>,
    pub policy: Arc<Policy>,
    /// `[name]`, or `[name#shard]` when there are several shards.
    pub log_tag: crate::log::LogTag,
    /// The handler's counters, shared by its shards.
    pub stats: Arc<crate::stats::HandlerStats>,
    /// Real time, or the testing harness's virtual time.
    pub clock: crate::clock::Clock,
    /// The in-memory network when running under the testing harness.
    pub mem: Option<crate::testing::mem::MemNet>,
    /// When set, every delivered event is recorded here (the harness's trace).
    pub trace: Option<Arc<std::sync::Mutex<Vec<TraceEvent>>>>,
    /// Where guest output and the host's lines about this handler go.
    pub sink: LogSink,
}

/// One delivered event, as the testing harness records it.
#[derive(Clone, Debug)]
pub struct TraceEvent {
    /// The instance it was delivered to.
    pub instance: u32,
    pub event: HostEvent,
    /// The event's payload (a `data` or `message`'s bytes).
    pub payload: Vec<u8>,
}

impl ShardCtx {
    /// Writes a host-side log line about this handler.
    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        self.sink.host(&self.log_tag, &msg.to_string());
    }
}

/// Everything netlet keeps for one instance.
pub struct Io {
    /// This instance's key in its shard; part of every [`Token`] of its sockets.
    pub inst: u32,
    pub ctx: ShardCtx,
    /// Events waiting for the next `handle` call, in order.
    pub events: Vec<HostEvent>,
    /// Their payloads.
    pub arena: Arena,
    pub tcp: FxHashMap<u32, TcpConn>,
    pub servers: FxHashMap<u32, ServerView>,
    pub udp: FxHashMap<u32, UdpSock>,
    pub timers: Timers,
    /// TCP sockets to revisit after the current guest call (flush, end, ...).
    pub touched_tcp: Vec<u32>,
    /// UDP sockets to revisit after the current guest call.
    pub touched_udp: Vec<u32>,
    /// Servers the guest closed during the current call.
    pub closed_servers: Vec<u32>,
    /// Outbound connects and name lookups still running.
    pub in_flight: u32,
    /// The shard loop's turn, as of the last time the shard handed this instance work
    /// (see `conn::read`).
    pub turn: u64,
    /// The share of the process's socket budget its `wasi:sockets` sockets hold.
    pub wasi_permit: Permit,
    /// A socket refusal was logged already.
    socket_refusal_logged: bool,
    next_id: u32,
}

impl Io {
    fn new(inst: u32, ctx: ShardCtx) -> Self {
        Io {
            inst,
            ctx,
            events: Vec::new(),
            arena: Arena::default(),
            tcp: FxHashMap::default(),
            servers: FxHashMap::default(),
            udp: FxHashMap::default(),
            timers: Timers::default(),
            touched_tcp: Vec::new(),
            touched_udp: Vec::new(),
            closed_servers: Vec::new(),
            in_flight: 0,
            turn: 0,
            wasi_permit: Permit::default(),
            socket_refusal_logged: false,
            next_id: 0,
        }
    }

    /// A fresh socket id: never reused by this instance, so a stale handle can never
    /// reach a newer socket.
    pub fn next_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    pub fn token(&self, kind: Kind, id: u32) -> Token {
        Token {
            kind,
            inst: self.inst,
            id,
        }
    }

    /// The time as the host schedules by it (virtual under the testing harness).
    pub fn now(&self) -> Instant {
        self.ctx.clock.now()
    }

    /// Whether the guest may resolve a host name for a destination on `port`: a rule
    /// names the host (`named`), or `--allow-dns` is on and some rule could match the
    /// address it resolves to. (A DNS query is itself reaching out: it can carry data.)
    pub fn may_resolve(&self, named: bool, port: u16) -> bool {
        named || (self.ctx.config.allow_dns && self.ctx.policy.any_for_port(port))
    }

    /// The process-wide budget's share for one more socket, if the guest may open one
    /// more socket (and start one more connect or lookup): the per-instance caps of
    /// `config::MAX_GUEST_SOCKETS` and `MAX_IN_FLIGHT`, and the [`crate::budget`].
    pub fn socket_permit(&mut self) -> Option<Permit> {
        let refusal = if self.own_sockets() >= crate::config::MAX_GUEST_SOCKETS {
            Refusal::Instance
        } else if self.in_flight >= crate::config::MAX_IN_FLIGHT {
            Refusal::InFlight
        } else {
            match Permit::one() {
                Some(permit) => return Some(permit),
                None => Refusal::Process,
            }
        };
        self.socket_refused(refusal);
        None
    }

    /// Logs the first socket an instance is refused (the guest gets an error each time;
    /// a guest retrying in a loop must not flood the log).
    pub fn socket_refused(&mut self, refusal: Refusal) {
        if !self.socket_refusal_logged {
            self.socket_refusal_logged = true;
            self.ctx.log(format_args!(
                "refused the guest a socket: the limit of {refusal} is reached (further refusals in this instance are not logged)"
            ));
        }
    }

    /// The sockets the guest created itself (not connections a server accepted, nor
    /// UDP sockets the host bound for it).
    pub fn own_sockets(&self) -> usize {
        self.tcp.values().filter(|c| c.server.is_none()).count()
            + self.udp.values().filter(|u| !u.host_bound).count()
    }

    /// True while the instance holds anything of its own that can still produce an
    /// event: a socket, a timer, a pending operation or event. (Servers belong to the
    /// shard, which counts them itself.)
    pub fn has_work(&self) -> bool {
        !self.events.is_empty()
            || !self.tcp.is_empty()
            || !self.udp.is_empty()
            || !self.timers.is_empty()
            || self.in_flight > 0
    }
}

/// Table elements an instance may grow its tables to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The store's resource limits: `--max-memory`, and bounds on tables and instance
/// counts so a guest cannot make the host allocate without end.
pub struct Limiter {
    max_memory: usize,
    /// A memory growth was refused: a trap that follows is an out-of-memory.
    pub memory_denied: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_memory;
        if !ok {
            self.memory_denied = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        4
    }
}

/// A store's data: WASI's context and netlet's [`Io`].
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    /// When the current guest call must end; blocking WASI calls give up here.
    pub deadline: Instant,
    pub io: Io,
}

impl GuestState {
    /// WASI's table with the current call's deadline, for the blocking shims.
    pub fn deadlined(&mut self) -> crate::wasi::Deadlined<'_> {
        crate::wasi::Deadlined::new(&mut self.table, self.deadline)
    }

    /// WASI's sockets with the instance's netlet side (its sockets, its budget share), for
    /// the capped socket creation.
    pub fn capped(&mut self) -> crate::wasi::Capped<'_> {
        let sockets = WasiSocketsCtxView {
            ctx: self.wasi.sockets(),
            table: &mut self.table,
        };
        crate::wasi::Capped::new(sockets, &mut self.io)
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// WASI resources (streams, pollables, sockets) one instance may hold: they live in host
/// memory, outside `--max-memory`, so their number is bounded; past it the call traps.
const MAX_WASI_RESOURCES: usize = 65_536;

fn wasi_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_WASI_RESOURCES);
    table
}

/// A live guest instance.
pub struct Instance {
    pub store: Store<GuestState>,
    /// Set once instantiated.
    bindings: Option<TcpUdp>,
    output: [GuestOutput; 2],
    /// Reused for each batch so its capacity is kept.
    batch: Vec<HostEvent>,
    /// Likewise for the arena of the batch being delivered.
    batch_arena: Arena,
    /// In the shard's list of instances to visit this turn.
    pub queued: bool,
}

/// What kind of fault stopped a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrapKind {
    /// It ran past `--event-timeout` (a loop, or a blocking call that never returned).
    Deadline,
    /// It needed more memory than `--max-memory`.
    Memory,
    /// Anything else: a panic, `unreachable`, a bad handle, a host limit.
    Fault,
}

impl TrapKind {
    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            TrapKind::Deadline => "deadline",
            TrapKind::Memory => "memory",
            TrapKind::Fault => "fault",
        }
    }
}

/// Why a guest call failed: the guest trapped, or its `init` returned an error.
#[derive(Debug)]
pub enum GuestFailure {
    Trap {
        kind: TrapKind,
        error: wasmtime::Error,
        /// The limit that applied, for the message.
        limit: String,
    },
    Init(String),
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestFailure::Trap {
                kind: TrapKind::Deadline,
                limit,
                ..
            } => {
                write!(
                    f,
                    "trapped: exceeded its CPU time for one event (--event-timeout {limit})"
                )
            }
            GuestFailure::Trap {
                kind: TrapKind::Memory,
                limit,
                error,
            } => write!(
                f,
                "trapped: out of memory (--max-memory {limit}): {}",
                describe_trap(error)
            ),
            GuestFailure::Trap { error, .. } => write!(f, "trapped: {}", describe_trap(error)),
            GuestFailure::Init(msg) => write!(f, "init failed: {msg}"),
        }
    }
}

/// A trap in one line: its message and the innermost guest functions of the author's
/// own code (frames of the standard library and panic machinery are left out).
pub fn describe_trap(e: &wasmtime::Error) -> String {
    let mut text = e.root_cause().to_string();
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let frames: Vec<String> = bt
            .frames()
            .iter()
            .filter_map(|f| {
                f.func_name()
                    .map(|n| format!("{:#}", rustc_demangle::demangle(n)))
            })
            .filter(|name| !is_runtime_frame(name))
            .take(3)
            .collect();
        if !frames.is_empty() {
            text.push_str(" (in ");
            text.push_str(&frames.join(" < "));
            text.push(')');
        }
    }
    text
}

/// Frames of Rust's standard library, panic and allocation machinery, or the SDK's
/// plumbing: not where a handler's bug is.
fn is_runtime_frame(name: &str) -> bool {
    const RUNTIME: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "__rustc",
        "__rust",
        "rust_panic",
        "abort",
        "dlmalloc",
        "wit_bindgen::",
        "cabi_realloc",
        "netlet_guest::runtime::",
        "<netlet_guest::",
    ];
    RUNTIME.iter().any(|p| name.starts_with(p))
        || name.contains("::__export")
        || name.starts_with("_RN")
}

impl Instance {
    /// Instantiates `handler` and runs its `init` with the configured arguments.
    pub fn start(handler: &Handler, inst: u32, ctx: ShardCtx) -> Result<Self, GuestFailure> {
        let sink = ctx.sink.clone();
        let stdout = GuestOutput::new(ctx.log_tag.clone(), sink.clone());
        let stderr = GuestOutput::new(ctx.log_tag.clone(), sink);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let policy = ctx.policy.clone();
        let log_tag = ctx.log_tag.clone();
        let log_sink = ctx.sink.clone();
        wasi.socket_addr_check(move |addr: SocketAddr, addr_use| {
            use wasmtime_wasi::sockets::SocketAddrUse as Use;
            let ok = match addr_use {
                // Reaching out: the allow-list decides, as for `net.connect`.
                Use::TcpConnect | Use::UdpSend => policy.allows(addr),
                // An ephemeral local port (the implicit bind before a connect or send)
                // is fine; a chosen one must be allowed like a destination.
                Use::TcpBind | Use::UdpBind => addr.port() == 0 || policy.allows(addr),
                Use::TcpListen => policy.allows(addr),
                // What arrives on a socket the policy already let the guest have.
                Use::TcpAccept | Use::UdpReceive => true,
            };
            if !ok {
                let shown = crate::resolve::display_addr(&addr);
                                log_sink.host(&log_tag, &format!(
                    "denied wasi:sockets {addr_use:?} {shown} (not allowed; run with --allow {shown} to permit it)"
                ));
            }
            Box::pin(async move { ok })
        });
        // wasi:sockets is there for guests that prefer owning a socket; every address
        // still goes through the policy check above (wasmtime-wasi turns TCP and UDP
        // off by default, so they are switched on here and the check decides).
        wasi.allow_tcp(true).allow_udp(true);
        wasi.allow_ip_name_lookup(ctx.config.allow_dns);
        let args = ctx.config.args.clone();
        let state = GuestState {
            wasi: wasi.build(),
            table: wasi_table(),
            limiter: Limiter {
                max_memory: ctx.config.max_memory,
                memory_denied: false,
            },
            deadline: Instant::now(),
            io: Io::new(inst, ctx),
        };
        let mut store = Store::new(&handler.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        let mut instance = Instance {
            bindings: None,
            store,
            output: [stdout, stderr],
            batch: Vec::new(),
            batch_arena: Arena::default(),
            queued: false,
        };
        instance.arm_deadline();
        let bindings = handler
            .pre
            .instantiate(&mut instance.store)
            .map_err(|e| instance.failure(e))?;
        instance.arm_deadline();
        let init = bindings
            .netlet_net_handler()
            .call_init(
                &mut instance.store,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .map_err(|e| instance.failure(e))?;
        init.map_err(GuestFailure::Init)?;
        instance.bindings = Some(bindings);
        Ok(instance)
    }

    /// Gives the next guest call its CPU deadline (`--event-timeout`).
    fn arm_deadline(&mut self) {
        let timeout = self.store.data().io.ctx.config.event_timeout;
        self.store
            .set_epoch_deadline(crate::engine::epoch_ticks(timeout));
        self.store.data_mut().deadline = Instant::now() + timeout;
    }

    /// Classifies the error a guest call ended with.
    fn failure(&self, error: wasmtime::Error) -> GuestFailure {
        let config = &self.store.data().io.ctx.config;
        let (kind, limit) = if matches!(
            error.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        ) || error.downcast_ref::<crate::wasi::Blocked>().is_some()
        {
            (TrapKind::Deadline, format!("{:?}", config.event_timeout))
        } else if self.store.data().limiter.memory_denied {
            (TrapKind::Memory, format!("{} MiB", config.max_memory >> 20))
        } else {
            (TrapKind::Fault, String::new())
        };
        GuestFailure::Trap { kind, error, limit }
    }

    pub fn io(&mut self) -> &mut Io {
        &mut self.store.data_mut().io
    }

    /// Delivers every pending event in one `handle` call. Events the guest's calls
    /// produce meanwhile wait for the next batch.
    pub fn deliver(&mut self) -> Result<(), GuestFailure> {
        let Some(bindings) = self.bindings.as_ref() else {
            return Ok(());
        };
        let handler = bindings.netlet_net_handler().clone();
        // Swap the pending events and their arena out: the guest's calls during `handle`
        // queue new events into the emptied ones.
        let io = &mut self.store.data_mut().io;
        let batch = std::mem::replace(&mut io.events, std::mem::take(&mut self.batch));
        let arena = std::mem::replace(&mut io.arena, std::mem::take(&mut self.batch_arena));
        if let Some(trace) = &io.ctx.trace {
            let mut trace = trace.lock().unwrap_or_else(|p| p.into_inner());
            for event in &batch {
                trace.push(TraceEvent {
                    instance: io.inst,
                    event: event.clone(),
                    payload: event.payload(&arena).to_vec(),
                });
            }
        }
        let wit: Vec<Event<'_>> = batch.iter().map(|e| e.to_wit(&arena)).collect();
        self.arm_deadline();
        let result = handler.call_handle(&mut self.store, &wit);
        drop(wit);
        let (mut batch, mut arena) = (batch, arena);
        batch.clear();
        arena.clear();
        self.batch = batch;
        self.batch_arena = arena;
        result.map_err(|e| self.failure(e))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for out in &self.output {
            out.finish();
        }
    }
}
