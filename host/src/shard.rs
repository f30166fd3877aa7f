//! A shard: one thread with its own single-threaded tokio runtime, its listeners and its
//! guest instances. The loop is libuv's: poll I/O until something is ready, turn every
//! ready socket, timer and finished task into events, hand each instance all of its
//! events in one call, then flush what it wrote. Guest calls happen between turns of the
//! runtime, never from inside a task (see DESIGN.md, "Execution model").
//!
//! Instances: the shard's *primary* instance is started with the shard (it runs `init`,
//! gets the `listening` events, owns what the guest opens from `init`). With
//! `--isolation shared` it also serves every connection; with `--isolation connection`
//! each accepted connection gets a fresh instance, dropped once that connection and
//! whatever else the instance opened are gone.
//!
//! Faults: a trap kills only the instance that trapped; its sockets are closed. A primary
//! is restarted with backoff (`--on-trap restart`), or the listeners are closed
//! (`--on-trap close`). The listeners themselves never go down because of a guest.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::clock::Clock;
use crate::config::{HandlerConfig, Isolation, TrapPolicy};
use crate::dgram;
use crate::dgram::UdpSource;
use crate::engine::Handler;
use crate::error::error_info;
use crate::events::HostEvent;
use crate::guest::{GuestFailure, Instance, Io, ShardCtx, TraceEvent, TrapKind};
use crate::log::LogSink;
use crate::net::listener::{Accepted, Listener, ListenerSock, ListenerSource};
use crate::net::{self, ServerView, address_info, conn};
use crate::policy::Policy;
use crate::reactor::{Completion, Kind, Reactor, Swap, Token};
use crate::stats::HandlerStats;
use crate::testing::mem::MemNet;
use crate::timers::TimerKey;

/// Node reads sockets in 64 KiB chunks; so do we.
const READ_BUFFER: usize = 64 * 1024;
/// Connections accepted from one listener per turn before other work gets its go.
const ACCEPTS_PER_TURN: usize = 64;
/// How long to wait before accepting again after `accept` failed (e.g. out of fds).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The instance key used for shard-level deadlines.
const SHARD_KEY: u32 = u32::MAX;
/// Restart backoff: first delay, cap, and the quiet time after which it resets.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const BACKOFF_RESET: Duration = Duration::from_secs(30);

/// What a shard is started with.
pub struct ShardSpec {
    pub index: usize,
    pub handler: Arc<Handler>,
    pub config: Arc<HandlerConfig>,
    pub policy: Arc<Policy>,
    pub stats: Arc<HandlerStats>,
    pub log_tag: crate::log::LogTag,
    pub sink: LogSink,
    pub reactor: Arc<Reactor>,
    /// Listeners bound for this shard, with the server id the guest will see.
    pub tcp: Vec<(u32, ListenerSource)>,
    pub udp: Vec<UdpSource>,
    /// Real time, or the testing harness's virtual time.
    pub clock: Clock,
    /// The testing harness's in-memory network (`None`: real sockets).
    pub mem: Option<MemNet>,
    /// Where to record delivered events (the harness's trace).
    pub trace: Option<Arc<std::sync::Mutex<Vec<TraceEvent>>>>,
}

/// How a shard ended.
#[derive(Debug)]
pub enum ShardExit {
    /// Asked to stop, or nothing was left to do (as a Node process exits).
    Done,
    /// The guest could not be (re)started, or `--on-trap close` closed it.
    Failed(String),
}

/// Starts a shard's thread. `started` receives `Ok` once the guest's `init` succeeded,
/// or the reason it did not.
pub fn spawn(
    spec: ShardSpec,
    started: mpsc::Sender<Result<(), String>>,
) -> std::io::Result<std::thread::JoinHandle<ShardExit>> {
    std::thread::Builder::new()
        .name(format!("netlet-shard-{}", spec.index))
        .spawn(move || match Shard::new(spec) {
            Err(e) => {
                let _ = started.send(Err(e.clone()));
                ShardExit::Failed(e)
            }
            Ok((mut shard, udp)) => match shard.start_primary(udp) {
                Err(failure) => {
                    let msg = format!("{} {failure}", shard.ctx.log_tag);
                    let _ = started.send(Err(msg.clone()));
                    ShardExit::Failed(msg)
                }
                Ok(()) => {
                    let _ = started.send(Ok(()));
                    shard.run()
                }
            },
        })
}

/// Delays between restarts of a primary that keeps trapping.
#[derive(Default)]
struct Backoff {
    next: Duration,
    last: Option<Instant>,
}

impl Backoff {
    fn delay(&mut self, now: Instant) -> Duration {
        if self.last.is_some_and(|last| now - last > BACKOFF_RESET) {
            self.next = Duration::ZERO;
        }
        let delay = self.next;
        self.next = if delay.is_zero() {
            BACKOFF_FIRST
        } else {
            (delay * 2).min(BACKOFF_MAX)
        };
        self.last = Some(now);
        delay
    }
}

/// A trap the shard dealt with (kept for the testing harness).
#[derive(Clone, Debug)]
pub struct FailureRecord {
    /// The instance that failed.
    pub instance: u32,
    /// `None` for an `init` that returned an error.
    pub kind: Option<TrapKind>,
    pub message: String,
}

pub(crate) struct Shard {
    handler: Arc<Handler>,
    ctx: ShardCtx,
    rt: tokio::runtime::Runtime,
    /// Indexed by listener index; `None` once closed.
    listeners: Vec<Option<Listener>>,
    instances: FxHashMap<u32, Instance>,
    /// The instance started with the shard (and restarted after traps).
    primary: Option<u32>,
    next_key: u32,
    /// Instances with something to deliver or flush this turn.
    active: Vec<u32>,
    heap: BinaryHeap<Reverse<(Instant, u32, TimerKey)>>,
    buf: Vec<u8>,
    ready: Vec<Token>,
    completions: Vec<Completion>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    backoff: Backoff,
    /// Host-bound UDP sockets waiting for a restarted primary.
    orphan_udp: Vec<UdpSource>,
    /// Set when a stop was requested: the end of the grace period.
    draining: Option<Instant>,
    /// Counts loop turns (see `conn::read`).
    turn: u64,
    /// Why the shard is stopping for good (`--on-trap close`, a failed restart).
    failed: Option<String>,
    /// Instances running replaced code: they keep their connections until those close
    /// or `--drain-timeout` passes, and take no new ones.
    retiring: FxHashSet<u32>,
    /// The latest faults, for the testing harness (bounded).
    pub(crate) failures: Vec<FailureRecord>,
}

impl Shard {
    pub(crate) fn new(spec: ShardSpec) -> Result<(Self, Vec<UdpSource>), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the shard's runtime: {e}"))?;
        let ctx = ShardCtx {
            reactor: spec.reactor,
            rt: rt.handle().clone(),
            config: spec.config,
            policy: spec.policy,
            log_tag: spec.log_tag,
            stats: spec.stats,
            clock: spec.clock,
            mem: spec.mem,
            trace: spec.trace,
            sink: spec.sink,
        };
        let enter = rt.enter();
        let mut listeners = Vec::new();
        for (index, (id, source)) in spec.tcp.into_iter().enumerate() {
            let (addr, socket) = match source {
                ListenerSource::Std(socket) => {
                    let addr = socket.local_addr().map_err(|e| e.to_string())?;
                    let socket = tokio::net::TcpListener::from_std(socket)
                        .map_err(|e| format!("cannot register listener {addr}: {e}"))?;
                    (addr, ListenerSock::Tcp(socket))
                }
                ListenerSource::Mem(mem_index) => {
                    let net = ctx
                        .mem
                        .clone()
                        .ok_or("an in-memory listener needs the in-memory network")?;
                    let addr = net
                        .listener_addr(mem_index)
                        .ok_or("no such in-memory listener")?;
                    (addr, ListenerSock::Mem(net, mem_index))
                }
            };
            let token = accept_token(index as u32);
            listeners.push(Some(Listener {
                id,
                addr,
                socket,
                waker: ctx.reactor.waker(token),
            }));
            // Poll once so the listener's waker is registered.
            ctx.reactor.push(token);
        }
        let sleep = Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365)));
        drop(enter);
        let shard = Shard {
            handler: spec.handler,
            ctx,
            rt,
            listeners,
            instances: FxHashMap::default(),
            primary: None,
            next_key: 0,
            active: Vec::new(),
            heap: BinaryHeap::new(),
            buf: vec![0; READ_BUFFER],
            ready: Vec::new(),
            completions: Vec::new(),
            sleep,
            backoff: Backoff::default(),
            orphan_udp: Vec::new(),
            draining: None,
            failed: None,
            turn: 0,
            retiring: FxHashSet::default(),
            failures: Vec::new(),
        };
        Ok((shard, spec.udp))
    }

    /// Instantiates the guest and runs its `init`; returns its key.
    fn new_instance(&mut self, connection: Option<u64>) -> Result<u32, GuestFailure> {
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1) % SHARD_KEY;
        let mut ctx = self.ctx.clone();
        // In connection isolation the instance's log lines name its connection.
        ctx.log_tag.connection = connection;
        let instance = Instance::start(&self.handler, key, ctx)?;
        self.instances.insert(key, instance);
        self.mark_active(key);
        Ok(key)
    }

    /// Hands an instance the shard's open servers (`listening` events).
    fn give_servers(&mut self, key: u32) {
        let Some(instance) = self.instances.get_mut(&key) else {
            return;
        };
        let io = instance.io();
        for listener in self.listeners.iter().flatten() {
            io.servers.insert(
                listener.id,
                ServerView {
                    addr: listener.addr,
                    connections: 0,
                    listening: true,
                },
            );
            io.events.push(HostEvent::Listening(listener.id));
        }
    }

    /// Starts (or restarts) the primary instance: `init`, its servers, the host-bound
    /// UDP sockets.
    pub(crate) fn start_primary(&mut self, udp: Vec<UdpSource>) -> Result<(), GuestFailure> {
        let key = match self.new_instance(None) {
            Ok(key) => key,
            Err(e) => {
                self.orphan_udp = udp;
                return Err(e);
            }
        };
        self.primary = Some(key);
        self.give_servers(key);
        let instance = self.instances.get_mut(&key).expect("just inserted");
        let io = instance.io();
        let _enter = self.ctx.rt.enter();
        for socket in udp {
            if let Err(e) = dgram::adopt_bound(io, socket, &mut self.buf) {
                self.ctx
                    .log(format_args!("cannot register a UDP socket: {e}"));
            }
        }
        // Connections may have queued while there was no primary.
        for index in 0..self.listeners.len() {
            self.ctx.reactor.push(accept_token(index as u32));
        }
        self.schedule_timers(key);
        Ok(())
    }

    fn mark_active(&mut self, key: u32) {
        if let Some(instance) = self.instances.get_mut(&key)
            && !instance.queued
        {
            instance.queued = true;
            self.active.push(key);
        }
    }

    /// The instance `key`, marked to be visited this turn.
    fn route(&mut self, key: u32) -> Option<&mut Io> {
        self.mark_active(key);
        let turn = self.turn;
        self.instances.get_mut(&key).map(|instance| {
            let io = instance.io();
            io.turn = turn;
            io
        })
    }

    /// The loop. Returns when asked to stop and done draining, or when nothing is left
    /// that could produce an event (no listener, socket, timer or pending operation).
    fn run(&mut self) -> ShardExit {
        loop {
            if self.ctx.reactor.take_shutdown() && self.draining.is_none() {
                self.begin_drain();
            }
            for swap in self.ctx.reactor.take_swaps() {
                self.apply_swap(swap);
            }
            if let Some(exit) = self.finished() {
                return exit;
            }
            self.wait();
            self.ctx
                .reactor
                .take(&mut self.ready, &mut self.completions);
            {
                // Sockets made in this phase (accepted, adopted) register with the
                // "current" runtime. Guest calls run outside it: WASI's sync bindings
                // then use their own runtime, which can drive timers for a guest that
                // sleeps, where `Handle::block_on` on ours could not.
                let rt = self.ctx.rt.clone();
                let _enter = rt.enter();
                self.turn += 1;
                self.fire_timers();
                self.finish_tasks();
                self.handle_ready();
            }
            self.deliver_all();
        }
    }

    /// Runs turns, without waiting for I/O, until nothing is left to do at the current
    /// time: the testing harness's loop, where time moves only when the test moves it.
    /// Fails if the guest keeps making work (e.g. a zero-delay timer that sets itself).
    pub(crate) fn settle(&mut self, max_turns: usize) -> Result<(), String> {
        for _ in 0..max_turns {
            if self.ctx.reactor.take_shutdown() && self.draining.is_none() {
                self.begin_drain();
            }
            self.ctx
                .reactor
                .take(&mut self.ready, &mut self.completions);
            let now = self.ctx.clock.now();
            let due = self
                .heap
                .peek()
                .is_some_and(|Reverse((at, _, _))| *at <= now);
            if self.ready.is_empty()
                && self.completions.is_empty()
                && self.active.is_empty()
                && !due
            {
                return Ok(());
            }
            {
                let rt = self.ctx.rt.clone();
                let _enter = rt.enter();
                self.turn += 1;
                self.fire_timers();
                self.finish_tasks();
                self.handle_ready();
            }
            self.deliver_all();
        }
        Err(format!(
            "the handler did not settle within {max_turns} loop turns (does it keep scheduling work?)"
        ))
    }

    /// The earliest pending deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The instances, by key.
    pub(crate) fn instances(&mut self) -> &mut FxHashMap<u32, Instance> {
        &mut self.instances
    }

    /// Whether listener `index` still accepts.
    pub(crate) fn listening(&self, index: usize) -> bool {
        self.listeners.get(index).is_some_and(Option::is_some)
    }

    /// Whether the shard is done, and how.
    fn finished(&mut self) -> Option<ShardExit> {
        let has_work = self
            .instances
            .values()
            .any(|i| i.store.data().io.has_work());
        let listening = self.listeners.iter().any(Option::is_some);
        let restarting = self.primary.is_none() && self.failed.is_none() && self.draining.is_none();
        if let Some(deadline) = self.draining {
            let open = self
                .instances
                .values()
                .any(|i| !i.store.data().io.tcp.is_empty() || !i.store.data().io.events.is_empty());
            if !open || self.ctx.clock.now() >= deadline {
                return Some(ShardExit::Done);
            }
            return None;
        }
        if has_work || listening || restarting {
            return None;
        }
        Some(match self.failed.take() {
            Some(msg) => ShardExit::Failed(msg),
            None => ShardExit::Done,
        })
    }

    /// A stop was requested: close the listeners (the guest's servers `close`), close
    /// host-bound UDP sockets, and give open connections `--grace` to finish.
    fn begin_drain(&mut self) {
        let grace = self.ctx.config.grace;
        let deadline = self.ctx.clock.now() + grace;
        self.draining = Some(deadline);
        self.heap
            .push(Reverse((deadline, SHARD_KEY, TimerKey::GraceOver)));
        self.listeners.iter_mut().for_each(|l| *l = None);
        let keys: Vec<u32> = self.instances.keys().copied().collect();
        for key in keys {
            let Some(io) = self.route(key) else { continue };
            let ids: Vec<u32> = io.servers.keys().copied().collect();
            for id in ids {
                if let Some(server) = io.servers.get_mut(&id) {
                    server.listening = false;
                }
                net::listener::maybe_server_closed(io, id);
            }
            dgram::close_host_bound(io);
        }
    }

    /// Blocks in tokio's driver until a socket is ready, a task finished, a deadline is
    /// due or a stop is requested. With events already pending it only polls the driver.
    fn wait(&mut self) {
        let pending = !self.active.is_empty();
        let deadline = self.heap.peek().map(|Reverse((at, _, _))| *at);
        let reactor = self.ctx.reactor.clone();
        let sleep = &mut self.sleep;
        self.rt.block_on(async move {
            if pending {
                tokio::task::yield_now().await;
                return;
            }
            if let Some(at) = deadline {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
            }
            poll_fn(|cx| {
                if reactor.poll_pending(cx).is_ready() {
                    return Poll::Ready(());
                }
                if deadline.is_some() && sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await
        });
    }

    /// Moves the deadlines an instance created onto the shard's heap.
    fn schedule_timers(&mut self, key: u32) {
        let Some(instance) = self.instances.get_mut(&key) else {
            return;
        };
        for (at, timer) in instance.io().timers.scheduled.drain(..) {
            self.heap.push(Reverse((at, key, timer)));
        }
    }

    fn fire_timers(&mut self) {
        let now = self.ctx.clock.now();
        while let Some(Reverse((at, key, timer))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            match timer {
                TimerKey::AcceptRetry(index) => self.ctx.reactor.push(accept_token(index)),
                TimerKey::Restart => self.restart_primary(),
                TimerKey::GraceOver => {}
                TimerKey::Retire => self.retire_now(key),
                TimerKey::Guest(id) => {
                    if let Some(Io { timers, events, .. }) = self.route(key) {
                        timers.fire(id, now, events);
                    }
                }
                TimerKey::SocketIdle(id) => {
                    if let Some(io) = self.route(key) {
                        conn::idle_check(io, id, now);
                    }
                }
                TimerKey::HostIdle(id) => {
                    if let Some(io) = self.route(key) {
                        conn::host_idle_check(io, id, now);
                    }
                }
            }
        }
    }

    fn finish_tasks(&mut self) {
        let mut completions = std::mem::take(&mut self.completions);
        for completion in completions.drain(..) {
            match completion {
                Completion::TcpConnect { inst, id, result } => {
                    let mut buf = std::mem::take(&mut self.buf);
                    if let Some(io) = self.route(inst) {
                        net::on_connected(io, id, result, &mut buf);
                    }
                    self.buf = buf;
                }
                Completion::UdpResolved {
                    inst,
                    id,
                    request,
                    result,
                } => {
                    if let Some(io) = self.route(inst) {
                        dgram::on_resolved(io, id, request, result);
                    }
                }
            }
        }
        self.completions = completions;
    }

    fn handle_ready(&mut self) {
        let mut ready = std::mem::take(&mut self.ready);
        let mut buf = std::mem::take(&mut self.buf);
        for token in ready.drain(..) {
            if token.kind == Kind::Accept {
                self.buf = std::mem::take(&mut buf);
                self.accept(token.id);
                buf = std::mem::take(&mut self.buf);
                continue;
            }
            let Some(io) = self.route(token.inst) else {
                continue;
            };
            match token.kind {
                Kind::TcpRead => conn::read(io, token.id, &mut buf),
                Kind::TcpWrite => conn::flush(io, token.id),
                Kind::UdpRead => dgram::read(io, token.id, &mut buf),
                Kind::UdpWrite => dgram::flush(io, token.id),
                Kind::Accept => {}
            }
        }
        self.buf = buf;
        self.ready = ready;
    }

    fn accept(&mut self, index: u32) {
        // With no primary (restarting after a trap), connections wait in the backlog;
        // the restart polls the listeners again.
        let shared = self.ctx.config.isolation == Isolation::Shared;
        if shared && self.primary.is_none() {
            return;
        }
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = self.listeners.get(index as usize).and_then(Option::as_ref) else {
                return;
            };
            let server = listener.id;
            match listener.accept() {
                Accepted::None => return,
                Accepted::Retry => continue,
                Accepted::Conn(stream, peer) => {
                    if self.over_max_connections() {
                        self.drop_connection(server, stream, peer);
                        continue;
                    }
                    let key = if shared {
                        self.primary
                    } else {
                        self.instance_for_connection()
                    };
                    let mut buf = std::mem::take(&mut self.buf);
                    if let Some(io) = key.and_then(|key| self.route(key)) {
                        conn::accept(io, server, stream, peer, &mut buf);
                    }
                    self.buf = buf;
                }
                Accepted::Fail(e) => {
                    self.ctx
                        .log(format_args!("accept on {} failed: {e}", listener.addr));
                    if let Some(io) = self.primary.and_then(|key| self.route(key)) {
                        io.events.push(HostEvent::ServerError {
                            server,
                            error: error_info(&e, "accept", None),
                        });
                    }
                    self.heap.push(Reverse((
                        self.ctx.clock.now() + ACCEPT_RETRY,
                        SHARD_KEY,
                        TimerKey::AcceptRetry(index),
                    )));
                    return;
                }
            }
        }
        // The listener may have more waiting; come back next turn.
        self.ctx.reactor.push(accept_token(index));
    }

    fn over_max_connections(&self) -> bool {
        self.ctx
            .config
            .max_connections
            .is_some_and(|max| HandlerStats::get(&self.ctx.stats.connections_active) >= max as u64)
    }

    /// Node's `maxConnections`: close at once, count it, tell the guest (`drop`).
    fn drop_connection(
        &mut self,
        server: u32,
        stream: crate::net::stream::Stream,
        peer: std::net::SocketAddr,
    ) {
        let local = stream.local_addr().ok();
        drop(stream);
        HandlerStats::add(&self.ctx.stats.connections_dropped, 1);
        HandlerStats::add(
            &self.ctx.stats.tcp_port(Some(server)).connections_dropped,
            1,
        );
        if let Some(io) = self.primary.and_then(|key| self.route(key)) {
            io.events.push(HostEvent::Drop {
                server,
                local: local.map(address_info),
                remote: Some(address_info(peer)),
            });
        }
    }

    /// `--isolation connection`: a fresh instance for a new connection.
    fn instance_for_connection(&mut self) -> Option<u32> {
        let connection = self
            .ctx
            .stats
            .connection_ids
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        match self.new_instance(Some(connection)) {
            Ok(key) => {
                self.give_servers(key);
                self.schedule_timers(key);
                Some(key)
            }
            Err(failure) => {
                self.ctx.log(format_args!(
                    "cannot start an instance for a new connection: {failure}"
                ));
                None
            }
        }
    }

    /// Hands every visited instance its pending events, then does what its calls asked
    /// for: flush writes, ends, closed servers, new timers. Traps are dealt with here.
    fn deliver_all(&mut self) {
        let keys = std::mem::take(&mut self.active);
        let mut failures = Vec::new();
        let mut again = Vec::new();
        for key in keys {
            let Some(instance) = self.instances.get_mut(&key) else {
                continue;
            };
            instance.queued = false;
            let batch = instance.io().events.len() as u64;
            if batch > 0 {
                HandlerStats::add(&self.ctx.stats.events_delivered, batch);
                HandlerStats::add(&self.ctx.stats.guest_calls, 1);
                let started = Instant::now();
                let result = instance.deliver();
                self.ctx.stats.call_duration.observe(started.elapsed());
                if let Err(failure) = result {
                    failures.push((key, failure));
                    continue;
                }
            }
            // Servers the guest closed stop accepting before its writes go out, so no
            // peer that saw a reply can still connect.
            let closed = std::mem::take(&mut instance.io().closed_servers);
            // A retiring instance's servers are the new code's now.
            if !self.retiring.contains(&key) {
                for id in closed {
                    close_listener(&mut self.listeners, id);
                }
            }
            let Some(instance) = self.instances.get_mut(&key) else {
                continue;
            };
            let io = instance.io();
            conn::after_call(io);
            dgram::after_call(io);
            let more = !io.events.is_empty();
            let idle = !io.has_work();
            let retired = self.retiring.contains(&key) && io.tcp.is_empty();
            self.schedule_timers(key);
            if more {
                again.push(key);
            } else if retired {
                self.retiring.remove(&key);
                self.instances.remove(&key);
                if self.retiring.is_empty() {
                    self.ctx.log(format_args!(
                        "the replaced code's connections have all closed; its instances are gone"
                    ));
                }
            } else if idle && Some(key) != self.primary {
                // A per-connection instance whose connection is gone.
                self.instances.remove(&key);
            }
        }
        for key in again {
            self.mark_active(key);
        }
        for (key, failure) in failures {
            self.on_failure(key, failure);
        }
    }

    /// An instance trapped: close what it held, then apply `--on-trap`.
    fn on_failure(&mut self, key: u32, failure: GuestFailure) {
        let Some(mut instance) = self.instances.remove(&key) else {
            return;
        };
        self.retiring.remove(&key);
        if self.failures.len() >= 100 {
            self.failures.remove(0);
        }
        self.failures.push(FailureRecord {
            instance: key,
            kind: match &failure {
                GuestFailure::Trap { kind, .. } => Some(*kind),
                GuestFailure::Init(_) => None,
            },
            message: failure.to_string(),
        });
        let stats = &self.ctx.stats;
        if let GuestFailure::Trap { kind, .. } = &failure {
            HandlerStats::add(
                match kind {
                    TrapKind::Deadline => &stats.traps_deadline,
                    TrapKind::Memory => &stats.traps_memory,
                    TrapKind::Fault => &stats.traps_fault,
                },
                1,
            );
        }
        let io = instance.io();
        let open = io.tcp.len();
        let udp = {
            let _enter = self.ctx.rt.enter();
            dgram::take_host_bound(io)
        };
        conn::drop_all(io);
        dgram::drop_all(io);
        drop(instance);
        let is_primary = Some(key) == self.primary;
        if is_primary {
            self.primary = None;
            self.orphan_udp.extend(udp);
        }
        let closing = self.ctx.config.on_trap == TrapPolicy::Close;
        let what = if open == 1 {
            "its connection".to_string()
        } else {
            format!("its {open} connections")
        };
        if closing {
            self.ctx.log(format_args!(
                "{failure}; closed {what}; --on-trap close: closing the listeners"
            ));
            self.listeners.iter_mut().for_each(|l| *l = None);
            self.orphan_udp.clear();
            self.failed = Some(format!(
                "{} stopped after a trap (--on-trap close)",
                self.ctx.log_tag
            ));
            return;
        }
        if !is_primary {
            self.ctx.log(format_args!("{failure}; closed {what}"));
            return;
        }
        if self.draining.is_some() {
            self.ctx.log(format_args!("{failure}; closed {what}"));
            return;
        }
        let delay = self.backoff.delay(self.ctx.clock.now());
        if delay.is_zero() {
            self.ctx.log(format_args!(
                "{failure}; closed {what}; starting a new instance"
            ));
            self.restart_primary();
        } else {
            self.ctx.log(format_args!(
                "{failure}; closed {what}; starting a new instance in {delay:?} (it keeps trapping)"
            ));
            self.heap.push(Reverse((
                self.ctx.clock.now() + delay,
                SHARD_KEY,
                TimerKey::Restart,
            )));
        }
    }

    /// Hot swap: a new primary instance of the new code takes the listeners (and the
    /// host-bound UDP sockets); every instance running so far retires. Listeners stay
    /// open throughout, so no connection is refused. If the new code's `init` fails, it
    /// is not swapped in and the old code keeps serving.
    fn apply_swap(&mut self, swap: Swap) {
        if self.draining.is_some() || self.failed.is_some() {
            let _ = swap.done.send(Err("the handler is stopping".into()));
            return;
        }
        let old_handler = std::mem::replace(&mut self.handler, swap.handler);
        let old_config = std::mem::replace(&mut self.ctx.config, swap.config);
        let old_policy = std::mem::replace(&mut self.ctx.policy, swap.policy);
        let new_key = match self.new_instance(None) {
            Ok(key) => key,
            Err(failure) => {
                self.handler = old_handler;
                self.ctx.config = old_config;
                self.ctx.policy = old_policy;
                self.ctx.log(format_args!(
                    "the new code was not swapped in: {failure}; the old code keeps serving"
                ));
                let _ = swap.done.send(Err(failure.to_string()));
                return;
            }
        };
        let old_primary = self.primary.replace(new_key);
        self.give_servers(new_key);
        let mut udp = std::mem::take(&mut self.orphan_udp);
        {
            let _enter = self.ctx.rt.enter();
            if let Some(instance) = old_primary.and_then(|key| self.instances.get_mut(&key)) {
                udp.extend(dgram::take_host_bound(instance.io()));
            }
            if let Some(instance) = self.instances.get_mut(&new_key) {
                let io = instance.io();
                for socket in udp {
                    if let Err(e) = dgram::adopt_bound(io, socket, &mut self.buf) {
                        self.ctx
                            .log(format_args!("cannot register a UDP socket: {e}"));
                    }
                }
            }
        }
        self.schedule_timers(new_key);
        let deadline = self.ctx.clock.now() + self.ctx.config.drain_timeout;
        let old: Vec<u32> = self
            .instances
            .keys()
            .copied()
            .filter(|key| *key != new_key)
            .collect();
        let mut open = 0;
        for key in old {
            self.retiring.insert(key);
            self.heap.push(Reverse((deadline, key, TimerKey::Retire)));
            let Some(io) = self.route(key) else { continue };
            open += io.tcp.len();
            // As Node's `server.close()` in a process being replaced: it gets no new
            // connections, and its servers' `close` comes when its connections end.
            let ids: Vec<u32> = io.servers.keys().copied().collect();
            for id in ids {
                if let Some(server) = io.servers.get_mut(&id) {
                    server.listening = false;
                }
                net::listener::maybe_server_closed(io, id);
            }
        }
        for index in 0..self.listeners.len() {
            self.ctx.reactor.push(accept_token(index as u32));
        }
        HandlerStats::add(&self.ctx.stats.swaps, 1);
        self.ctx.log(format_args!(
            "swapped in new code (sha256 {}): new connections go to it; {open} open \
             connection(s) stay on the old code (at most {:?})",
            &self.handler.sha256[..12],
            self.ctx.config.drain_timeout
        ));
        let _ = swap.done.send(Ok(()));
    }

    /// A retiring instance's drain timeout passed: close what it still holds.
    fn retire_now(&mut self, key: u32) {
        if !self.retiring.remove(&key) {
            return;
        }
        let Some(mut instance) = self.instances.remove(&key) else {
            return;
        };
        let io = instance.io();
        let open = io.tcp.len();
        conn::drop_all(io);
        dgram::drop_all(io);
        if open > 0 {
            self.ctx.log(format_args!(
                "--drain-timeout: closed {open} connection(s) still on the replaced code"
            ));
        }
    }

    fn restart_primary(&mut self) {
        if self.primary.is_some() || self.draining.is_some() || self.failed.is_some() {
            return;
        }
        HandlerStats::add(&self.ctx.stats.restarts, 1);
        let udp = std::mem::take(&mut self.orphan_udp);
        if let Err(failure) = self.start_primary(udp) {
            let delay = self.backoff.delay(self.ctx.clock.now()).max(BACKOFF_FIRST);
            self.ctx
                .log(format_args!("{failure}; trying again in {delay:?}"));
            self.heap.push(Reverse((
                self.ctx.clock.now() + delay,
                SHARD_KEY,
                TimerKey::Restart,
            )));
        }
    }
}

fn close_listener(listeners: &mut [Option<Listener>], id: u32) {
    if let Some(slot) = listeners
        .iter_mut()
        .find(|l| l.as_ref().is_some_and(|l| l.id == id))
    {
        *slot = None;
    }
}

fn accept_token(index: u32) -> Token {
    Token {
        kind: Kind::Accept,
        inst: SHARD_KEY,
        id: index,
    }
}
