//! One guest instance: its wasmtime store, starting it (`init`), delivering a batch of
//! events in one `handle` call, and telling what kind of fault stopped it.
//!
//! The store's data ([`GuestState`], in [`state`]) owns everything netlet keeps for the
//! instance, so host imports (called by the guest) and the shard loop (between guest
//! calls) reach the same tables without locks or reference counting.

pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime_wasi::WasiCtx;

use crate::bindings::{Event, TcpUdp, TcpUdpPre};
use crate::events::{Arena, HostEvent, MAX_EVENTS_PER_CALL};
use crate::log::{GuestOutput, InstanceLog};
use crate::policy::Use;

pub use state::GuestState;

use crate::context::{InstanceCtx, ShardCtx};

/// A live guest instance.
pub struct Instance {
    pub store: Store<GuestState>,
    /// Set once instantiated.
    bindings: Option<TcpUdp>,
    exports: Option<Exports>,
    output: [GuestOutput; 2],
    /// Reused for each batch so its capacity is kept.
    batch: Vec<HostEvent>,
    /// Likewise for the arena of the batch being delivered.
    batch_arena: Arena,
    /// The part of the pending events the current call does not carry.
    leftover: Vec<HostEvent>,
    /// The CPU time of its current call, against `--event-timeout` (across the yields
    /// of a preemptive call).
    slices: Arc<Slices>,
    /// Its calls yield at every epoch tick (a per-connection instance).
    preemptive: bool,
    /// `init` has yet to run (a preemptive instance runs it in its first call).
    needs_init: bool,
    /// In the shard's list of instances to visit this turn.
    pub queued: bool,
    /// Its earliest deadline as the shard's index has it.
    pub scheduled: Option<Instant>,
    /// A per-connection instance whose connection has closed, waiting to be dropped.
    pub lingering: bool,
    /// A per-connection instance's place under the process's mapping limit.
    _slot: Option<crate::engine::PoolSlot>,
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
                error,
            } => match error.downcast_ref::<crate::wasi::Blocked>() {
                Some(blocked) => write!(f, "trapped: {blocked}"),
                None => write!(
                    f,
                    "trapped: exceeded its CPU time for one event (--event-timeout {limit})"
                ),
            },
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
    if text == "unknown handle index 0" {
        // Handle 0 is never given out: dropping it is how the JavaScript SDK stops an
        // instance after an uncaught exception, once it has logged it.
        return "the handler stopped after an uncaught exception (logged just before)".to_string();
    }
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
    /// Instantiates `handler`; its `init` is still to run ([`Instance::init`] or
    /// [`Instance::init_async`]). A per-connection instance's calls are preemptive: they
    /// yield at every epoch tick so the other instances of its shard get their turn.
    pub fn instantiate(
        engine: &wasmtime::Engine,
        pre: &TcpUdpPre<GuestState>,
        key: u64,
        ctx: ShardCtx,
        per_connection: bool,
    ) -> Result<Self, GuestFailure> {
        let slot = if per_connection {
            Some(crate::engine::PoolSlot::take().map_err(GuestFailure::Init)?)
        } else {
            None
        };
        let log = InstanceLog::new(ctx.log_tag.clone(), ctx.sink.clone());
        let stdout = GuestOutput::new(log.clone());
        let stderr = GuestOutput::new(log.clone());
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let policy = ctx.policy.clone();
        let denials = log.clone();
        wasi.socket_addr_check(move |addr: SocketAddr, addr_use| {
            use wasmtime_wasi::sockets::SocketAddrUse as Wasi;
            let what = match addr_use {
                Wasi::TcpConnect => Use::Connect,
                Wasi::UdpSend => Use::Send,
                Wasi::TcpBind => Use::Bind,
                Wasi::UdpBind => Use::UdpBind,
                Wasi::TcpListen => Use::Listen,
                Wasi::TcpAccept | Wasi::UdpReceive => Use::Receive,
            };
            let ok = policy.permits(what, addr);
            if !ok {
                let target = crate::resolve::display_addr(&addr);
                denials.host(&format!(
                    "wasi:sockets: {}",
                    crate::policy::denial(what, &target)
                ));
            }
            Box::pin(async move { ok })
        });
        // wasi:sockets is there for guests that prefer owning a socket; every address
        // still goes through the policy check above (wasmtime-wasi turns TCP and UDP
        // off by default, so they are switched on here and the check decides).
        wasi.allow_tcp(true).allow_udp(true);
        wasi.allow_ip_name_lookup(ctx.config.allow_dns);
        let limiter = state::Limiter {
            max_memory: ctx.config.max_memory,
            memory_denied: false,
        };
        let max_host_memory = ctx.config.max_host_memory;
        let cx = InstanceCtx {
            key,
            shard: ctx,
            log,
            per_connection,
            ids: Default::default(),
            quota: crate::context::Quota::new(max_host_memory),
            turn: 0,
        };
        let timeout = cx.shard.config.event_timeout;
        let state = GuestState::new(wasi.build(), limiter, cx);
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        let slices = Arc::new(Slices::new(timeout));
        {
            let slices = slices.clone();
            store.epoch_deadline_callback(move |_| Ok(slices.at_tick()));
        }
        let mut instance = Instance {
            bindings: None,
            exports: None,
            store,
            output: [stdout, stderr],
            batch: Vec::new(),
            batch_arena: Arena::default(),
            leftover: Vec::new(),
            slices,
            preemptive: per_connection,
            needs_init: true,
            queued: false,
            scheduled: None,
            lingering: false,
            _slot: slot,
        };
        instance.arm_deadline(false);
        let component = pre
            .instance_pre()
            .instantiate(&mut instance.store)
            .map_err(|e| instance.failure(e))?;
        let bindings =
            TcpUdp::new(&mut instance.store, &component).map_err(|e| instance.failure(e))?;
        instance.exports =
            Some(Exports::find(&mut instance.store, &component).map_err(|e| instance.failure(e))?);
        instance.bindings = Some(bindings);
        Ok(instance)
    }

    /// The arguments `init` gets.
    fn args(&self) -> Vec<String> {
        self.store.data().cx.shard.config.args.clone()
    }

    /// Runs the guest's `init`.
    pub fn init(&mut self) -> Result<(), GuestFailure> {
        self.needs_init = false;
        let Some(bindings) = self.bindings.as_ref() else {
            return Ok(());
        };
        let handler = bindings.netlet_net_handler().clone();
        let args = self.args();
        self.arm_deadline(false);
        let init = handler
            .call_init(
                &mut self.store,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .map_err(|e| self.failure(e))?;
        init.map_err(GuestFailure::Init)
    }

    /// Runs the guest's `init` preemptively (see [`Instance::instantiate`]).
    pub async fn init_async(&mut self) -> Result<(), GuestFailure> {
        let Some(exports) = self.exports.clone() else {
            return Ok(());
        };
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.arm_deadline(true);
        let result = async {
            let init = exports
                .init
                .typed::<(&[&str],), (Result<(), String>,)>(&self.store)?;
            init.call_async(&mut self.store, (&args,)).await
        }
        .await;
        match result {
            Ok((init,)) => init.map_err(GuestFailure::Init),
            Err(e) => Err(self.failure(e)),
        }
    }

    /// Whether its calls are preemptive.
    pub fn is_preemptive(&self) -> bool {
        self.preemptive
    }

    /// A preemptive instance's CPU clock, for the shard to tell when its call runs.
    pub fn slices(&self) -> Option<Arc<Slices>> {
        self.preemptive.then(|| self.slices.clone())
    }

    /// Runs what a preemptive instance has pending: its `init` if it has not run yet,
    /// then one `handle` call with its events.
    pub async fn call_async(&mut self) -> Result<(), GuestFailure> {
        let result = async {
            if std::mem::take(&mut self.needs_init) {
                self.init_async().await?;
            }
            if self.store.data().events.is_empty() {
                return Ok(());
            }
            self.deliver_async().await
        }
        .await;
        // So the next call's first stretch does not read the CPU clock for nothing.
        self.slices.finish();
        result
    }

    /// Whether `init` has yet to run.
    pub fn needs_init(&self) -> bool {
        self.needs_init
    }

    /// Gives the next guest call its CPU deadline (`--event-timeout`): at every epoch
    /// tick while it runs, [`Slices`] adds the CPU time the shard's thread spent in it
    /// and stops it past the limit; a preemptive call (`preempt`) also yields there.
    fn arm_deadline(&mut self, preempt: bool) {
        let timeout = self.store.data().cx.shard.config.event_timeout;
        self.slices.start(preempt);
        self.store.set_epoch_deadline(1);
        let state = self.store.data_mut();
        // A preemptive call may be suspended for a while: its blocking WASI calls are
        // bounded by `--max-blocking` alone.
        state.deadline = Instant::now() + if preempt { timeout * 1000 } else { timeout };
        state.blocking_left = state.cx.shard.config.max_blocking;
        state.cx.quota.opened_this_call = 0;
        // A refused growth in an earlier call (a guest may survive one) says nothing of
        // why this call might trap.
        state.limiter.memory_denied = false;
    }

    /// Classifies the error a guest call ended with.
    fn failure(&self, error: wasmtime::Error) -> GuestFailure {
        let config = &self.store.data().cx.shard.config;
        let (kind, limit) = if error.downcast_ref::<crate::wasi::Blocked>().is_some()
            || matches!(
                error.downcast_ref::<wasmtime::Trap>(),
                Some(wasmtime::Trap::Interrupt)
            ) {
            (TrapKind::Deadline, format!("{:?}", config.event_timeout))
        } else if self.store.data().limiter.memory_denied {
            (TrapKind::Memory, format!("{} MiB", config.max_memory >> 20))
        } else {
            (TrapKind::Fault, String::new())
        };
        GuestFailure::Trap { kind, error, limit }
    }

    /// netlet's state for this instance.
    pub fn state(&mut self) -> &mut GuestState {
        self.store.data_mut()
    }

    /// Takes the pending events (and their arena) for one `handle` call, at most
    /// [`MAX_EVENTS_PER_CALL`] of them, telling the observer. Events the guest's calls
    /// produce meanwhile queue for the next batch.
    fn take_batch(&mut self) -> (Vec<HostEvent>, Arena) {
        let state = self.store.data_mut();
        let mut batch = std::mem::replace(&mut state.events.queue, std::mem::take(&mut self.batch));
        let arena = std::mem::replace(
            &mut state.events.arena,
            std::mem::take(&mut self.batch_arena),
        );
        if batch.len() > MAX_EVENTS_PER_CALL {
            self.leftover = batch.split_off(MAX_EVENTS_PER_CALL);
        }
        if let Some(observer) = &state.cx.shard.observer {
            for event in &batch {
                observer.delivered(state.cx.key, event, event.payload(&arena));
            }
        }
        (batch, arena)
    }

    /// Puts back what the call did not carry, ahead of what it queued; keeps the
    /// emptied batch and arena for the next call (their capacity).
    fn return_batch(&mut self, mut batch: Vec<HostEvent>, mut arena: Arena) {
        if !self.leftover.is_empty() {
            let leftover = std::mem::take(&mut self.leftover);
            self.store.data_mut().events.put_back(leftover, &arena);
        }
        batch.clear();
        arena.clear();
        self.batch = batch;
        self.batch_arena = arena;
    }

    /// Delivers every pending event in one `handle` call.
    pub fn deliver(&mut self) -> Result<(), GuestFailure> {
        let Some(bindings) = self.bindings.as_ref() else {
            return Ok(());
        };
        let handler = bindings.netlet_net_handler().clone();
        let (batch, arena) = self.take_batch();
        let wit: Vec<Event<'_>> = batch.iter().map(|e| e.to_wit(&arena)).collect();
        self.arm_deadline(false);
        let result = handler.call_handle(&mut self.store, &wit);
        drop(wit);
        self.return_batch(batch, arena);
        result.map_err(|e| self.failure(e))
    }

    /// Delivers every pending event in one preemptive `handle` call (see
    /// [`Instance::instantiate`]).
    pub async fn deliver_async(&mut self) -> Result<(), GuestFailure> {
        let Some(exports) = self.exports.clone() else {
            return Ok(());
        };
        let (batch, arena) = self.take_batch();
        self.arm_deadline(true);
        let result = async {
            let wit: Vec<Event<'_>> = batch.iter().map(|e| e.to_wit(&arena)).collect();
            let handle = exports.handle.typed::<(&[Event<'_>],), ()>(&self.store)?;
            handle.call_async(&mut self.store, (&wit,)).await
        }
        .await;
        self.return_batch(batch, arena);
        result.map_err(|e| self.failure(e))
    }
}

/// The handler's exported functions, for the calls made through `Func` (preemptive
/// calls are `call_async`, which the generated bindings do not offer).
#[derive(Clone)]
struct Exports {
    init: wasmtime::component::Func,
    handle: wasmtime::component::Func,
}

impl Exports {
    fn find(
        store: &mut Store<GuestState>,
        component: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Exports> {
        let interface = component
            .get_export_index(&mut *store, None, crate::engine::HANDLER_EXPORT)
            .ok_or_else(|| wasmtime::Error::msg("no handler export"))?;
        let mut func = |name: &str| {
            component
                .get_export_index(&mut *store, Some(&interface), name)
                .and_then(|index| component.get_func(&mut *store, index))
                .ok_or_else(|| wasmtime::Error::msg(format!("no `{name}` export")))
        };
        Ok(Exports {
            init: func("init")?,
            handle: func("handle")?,
        })
    }
}

/// The CPU time of a guest call against `--event-timeout`: the time the shard's thread
/// spent running it (the guest and the host calls it makes), across the stretches
/// between a preemptive call's yields. Time the thread waited for a core is not
/// charged, so a busy machine does not stop a guest that a quiet one would let finish.
///
/// The thread's CPU clock is a system call (about half a microsecond), too dear for
/// every call: it is read only once a call has run into an epoch tick. Until its first
/// tick a call is charged the wall time it ran, which is at most one tick.
pub struct Slices {
    limit: Duration,
    state: std::sync::Mutex<SliceState>,
}

#[derive(Default)]
struct SliceState {
    /// CPU time charged so far.
    used: Duration,
    /// When the running stretch began, while no CPU reading was taken in it.
    since: Option<Instant>,
    /// The thread's CPU clock at the last reading in the running stretch.
    cpu_mark: Option<Duration>,
    /// The call has run into a tick: its later stretches read the CPU clock.
    ticked: bool,
    /// The call may yield (it was made with `call_async`).
    preemptive: bool,
}

/// The calling thread's CPU time.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

impl Slices {
    fn new(limit: Duration) -> Self {
        Slices {
            limit,
            state: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SliceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call begins.
    fn start(&self, preemptive: bool) {
        *self.lock() = SliceState {
            since: Some(Instant::now()),
            preemptive,
            ..SliceState::default()
        };
    }

    /// The call is over.
    fn finish(&self) {
        *self.lock() = SliceState::default();
    }

    /// A stretch of the call begins (the shard polls it) or ends (it yielded or
    /// finished): only the time it runs counts.
    pub fn set_running(&self, running: bool) {
        let mut state = self.lock();
        if let Some(mark) = state.cpu_mark.take() {
            state.used += thread_cpu_time().saturating_sub(mark);
        } else if let Some(since) = state.since.take() {
            state.used += since.elapsed();
        }
        if running {
            if state.ticked {
                state.cpu_mark = Some(thread_cpu_time());
            } else {
                state.since = Some(Instant::now());
            }
        }
    }

    /// An epoch tick in the guest: charge what it ran since the last reading, then
    /// stop it once it has run its `--event-timeout`, else let it go on (a preemptive
    /// call yields first and comes back at the next tick).
    fn at_tick(&self) -> wasmtime::UpdateDeadline {
        let mut state = self.lock();
        let now = thread_cpu_time();
        if let Some(mark) = state.cpu_mark {
            state.used += now.saturating_sub(mark);
        } else if let Some(since) = state.since.take() {
            state.used += since.elapsed();
        }
        state.cpu_mark = Some(now);
        state.ticked = true;
        if state.used >= self.limit {
            wasmtime::UpdateDeadline::Interrupt
        } else if state.preemptive {
            wasmtime::UpdateDeadline::Yield(1)
        } else {
            wasmtime::UpdateDeadline::Continue(1)
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for out in &self.output {
            out.finish();
        }
        self.store.data().cx.log.finish();
    }
}
