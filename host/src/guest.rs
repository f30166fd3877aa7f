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
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{Event, TcpUdp};
use crate::config::HandlerConfig;
use crate::dgram::UdpSock;
use crate::engine::Handler;
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
    pub log_prefix: Arc<str>,
}

impl ShardCtx {
    /// Writes a host-side log line about this handler.
    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        eprintln!("netlet: {} {msg}", self.log_prefix);
    }
}

/// Everything netlet keeps for one instance.
pub struct Io {
    /// This instance's key in its shard; part of every [`Token`] of its sockets.
    pub inst: u32,
    pub ctx: ShardCtx,
    /// Events waiting for the next `handle` call, in order.
    pub events: Vec<Event>,
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
    /// The shard loop's turn counter (see `conn::read`).
    pub turn: u64,
    next_id: u32,
}

impl Io {
    fn new(inst: u32, ctx: ShardCtx) -> Self {
        Io {
            inst,
            ctx,
            events: Vec::new(),
            tcp: FxHashMap::default(),
            servers: FxHashMap::default(),
            udp: FxHashMap::default(),
            timers: Timers::default(),
            touched_tcp: Vec::new(),
            touched_udp: Vec::new(),
            closed_servers: Vec::new(),
            in_flight: 0,
            turn: 0,
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

    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// True while the instance holds anything that can still produce an event.
    pub fn is_alive(&self) -> bool {
        !self.events.is_empty()
            || !self.tcp.is_empty()
            || !self.servers.is_empty()
            || !self.udp.is_empty()
            || !self.timers.is_empty()
            || self.in_flight > 0
    }
}

/// A store's data: WASI's context and netlet's [`Io`].
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub io: Io,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A live guest instance.
pub struct Instance {
    pub store: Store<GuestState>,
    bindings: TcpUdp,
    output: [GuestOutput; 2],
    /// Reused for each batch so its capacity is kept.
    batch: Vec<Event>,
}

/// Why a guest call failed: the guest trapped, or its `init` returned an error.
#[derive(Debug)]
pub enum GuestFailure {
    Trap(wasmtime::Error),
    Init(String),
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestFailure::Trap(e) => write!(f, "trapped: {}", describe_trap(e)),
            GuestFailure::Init(msg) => write!(f, "init failed: {msg}"),
        }
    }
}

/// A trap in a few lines: its message and the guest frames wasmtime recorded.
pub fn describe_trap(e: &wasmtime::Error) -> String {
    let mut text = e.root_cause().to_string();
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let frames: Vec<String> = bt
            .frames()
            .iter()
            .take(8)
            .map(|f| {
                f.func_name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| format!("func[{}]", f.func_index()))
            })
            .collect();
        if !frames.is_empty() {
            text.push_str(" (in ");
            text.push_str(&frames.join(" < "));
            text.push(')');
        }
    }
    text
}

impl Instance {
    /// Instantiates `handler` and runs its `init` with the configured arguments.
    pub fn start(
        handler: &Handler,
        inst: u32,
        ctx: ShardCtx,
        sink: LogSink,
    ) -> Result<Self, GuestFailure> {
        let stdout = GuestOutput::new(ctx.log_prefix.clone(), sink.clone());
        let stderr = GuestOutput::new(ctx.log_prefix.clone(), sink);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let policy = ctx.policy.clone();
        wasi.socket_addr_check(move |addr: SocketAddr, _use| {
            let ok = policy.allows(addr);
            Box::pin(async move { ok })
        });
        let args = ctx.config.args.clone();
        let state = GuestState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            io: Io::new(inst, ctx),
        };
        let mut store = Store::new(&handler.engine, state);
        let bindings = handler
            .pre
            .instantiate(&mut store)
            .map_err(GuestFailure::Trap)?;
        let init = bindings
            .netlet_net_handler()
            .call_init(&mut store, &args)
            .map_err(GuestFailure::Trap)?;
        init.map_err(GuestFailure::Init)?;
        Ok(Instance {
            store,
            bindings,
            output: [stdout, stderr],
            batch: Vec::new(),
        })
    }

    pub fn io(&mut self) -> &mut Io {
        &mut self.store.data_mut().io
    }

    /// Delivers every pending event in one `handle` call. Events the guest's calls
    /// produce meanwhile wait for the next batch.
    pub fn deliver(&mut self) -> Result<(), GuestFailure> {
        let spare = std::mem::take(&mut self.batch);
        let batch = std::mem::replace(&mut self.store.data_mut().io.events, spare);
        let result = self
            .bindings
            .netlet_net_handler()
            .call_handle(&mut self.store, &batch);
        let mut batch = batch;
        batch.clear();
        self.batch = batch;
        result.map_err(GuestFailure::Trap)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for out in &self.output {
            out.finish();
        }
    }
}
