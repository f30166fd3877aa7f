//! One guest instance: its wasmtime store, starting it (`init`), delivering a batch of
//! events in one `handle` call, and telling what kind of fault stopped it.
//!
//! The store's data ([`GuestState`], in [`state`]) owns everything netlet keeps for the
//! instance, so host imports (called by the guest) and the shard loop (between guest
//! calls) reach the same tables without locks or reference counting.

pub mod state;

use std::net::SocketAddr;
use std::time::Instant;

use wasmtime::Store;
use wasmtime_wasi::WasiCtx;

use crate::bindings::{Event, TcpUdp, TcpUdpPre};
use crate::events::{Arena, HostEvent};
use crate::log::{GuestOutput, InstanceLog};
use crate::policy::Use;

pub use state::GuestState;

use crate::context::{InstanceCtx, ShardCtx};

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
    /// Its earliest deadline as the shard's index has it.
    pub scheduled: Option<Instant>,
    /// A per-connection instance whose connection has closed, waiting to be dropped.
    pub lingering: bool,
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
    pub fn start(
        engine: &wasmtime::Engine,
        pre: &TcpUdpPre<GuestState>,
        key: u64,
        ctx: ShardCtx,
        per_connection: bool,
    ) -> Result<Self, GuestFailure> {
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
        let args = ctx.config.args.clone();
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
        let state = GuestState::new(wasi.build(), limiter, cx);
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        let mut instance = Instance {
            bindings: None,
            store,
            output: [stdout, stderr],
            batch: Vec::new(),
            batch_arena: Arena::default(),
            queued: false,
            scheduled: None,
            lingering: false,
        };
        instance.arm_deadline();
        let bindings = pre
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
        let timeout = self.store.data().cx.shard.config.event_timeout;
        self.store
            .set_epoch_deadline(crate::engine::epoch_ticks(timeout));
        let state = self.store.data_mut();
        state.deadline = Instant::now() + timeout;
        state.blocking_left = state.cx.shard.config.max_blocking;
        state.cx.quota.opened_this_call = 0;
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

    /// Delivers every pending event in one `handle` call. Events the guest's calls
    /// produce meanwhile wait for the next batch.
    pub fn deliver(&mut self) -> Result<(), GuestFailure> {
        let Some(bindings) = self.bindings.as_ref() else {
            return Ok(());
        };
        let handler = bindings.netlet_net_handler().clone();
        // Swap the pending events and their arena out: the guest's calls during `handle`
        // queue new events into the emptied ones.
        let state = self.store.data_mut();
        let batch = std::mem::replace(&mut state.events.queue, std::mem::take(&mut self.batch));
        let arena = std::mem::replace(
            &mut state.events.arena,
            std::mem::take(&mut self.batch_arena),
        );
        if let Some(observer) = &state.cx.shard.observer {
            for event in &batch {
                observer.delivered(state.cx.key, event, event.payload(&arena));
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
        self.store.data().cx.log.finish();
    }
}
