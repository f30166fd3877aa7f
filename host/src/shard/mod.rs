//! A shard: one thread with its own single-threaded tokio runtime, its listeners and its
//! guest instances. The loop is libuv's: poll I/O until something is ready, turn every
//! ready socket, deadline and finished task into events, hand each instance all of its
//! events in one call, then flush what it wrote. Guest calls happen between turns of the
//! runtime, never from inside a task (see DESIGN.md, "Execution model").
//!
//! - [`turn`]: one turn of the loop, shared by [`Shard::run`] and the testing harness;
//! - [`instances`]: which instances live, the primary, retiring ones, their deadlines;
//! - [`lifecycle`]: starting instances, traps and restarts with backoff;
//! - [`accept`]: the listeners, accepting, `--max-connections`;
//! - [`swap`]: hot swap, retiring old code, draining on stop;
//! - [`control`]: stop and swap requests from other threads;
//! - [`deadlines`]: the shard's own deadlines.

mod accept;
pub mod control;
mod deadlines;
pub mod instances;
mod lifecycle;
mod swap;
mod turn;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::HandlerConfig;
use crate::context::{Observer, ShardCtx};
use crate::handler::Handler;
use crate::log::LogSink;
use crate::policy::Policy;
use crate::reactor::{Completion, Token};
use crate::stats::HandlerStats;
use crate::transport::{Datagram, DatagramSource, ListenerSource, Network, SystemNetwork};

pub use control::{Control, Swap};
pub use instances::FailureRecord;

use accept::Listeners;
use deadlines::Deadlines;
use instances::Instances;

/// What a shard is started with.
pub struct ShardSpec {
    pub index: usize,
    pub handler: Arc<Handler>,
    pub config: Arc<HandlerConfig>,
    pub policy: Arc<Policy>,
    pub stats: Arc<HandlerStats>,
    pub log_tag: crate::log::LogTag,
    pub sink: LogSink,
    /// Where other threads ask it to stop or swap code.
    pub control: Arc<Control>,
    /// Listeners bound for this shard (`--tcp`, `--tls`).
    pub tcp: Vec<HostListener>,
    /// UDP sockets bound for this shard (`--udp`).
    pub udp: Vec<HostDatagram>,
    /// The handler's TLS (its listeners' certificates, its TLS connects' roots).
    pub tls: Arc<crate::transport::tls::TlsCell>,
    /// Real time, or the testing harness's virtual time.
    pub clock: Clock,
    /// Where guests' connects, lookups and UDP sockets come from (`None`: the system's).
    pub network: Option<Arc<dyn Network>>,
    /// Told about every delivered event.
    pub observer: Option<Arc<dyn Observer>>,
}

/// A listener the operator configured, bound for one shard.
pub struct HostListener {
    /// The server id the guest sees.
    pub id: u32,
    /// The port the handler's code names it by (`listen(port)`; see
    /// [`crate::config::ListenAddr`]).
    pub code_port: u16,
    pub source: Box<dyn ListenerSource>,
}

/// A UDP socket the operator configured (`--udp`), bound for one shard.
pub struct HostDatagram {
    /// The port the handler's code names it by (`bind(port)`).
    pub code_port: u16,
    pub source: Box<dyn DatagramSource>,
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
    let control = spec.control.clone();
    std::thread::Builder::new()
        .name(format!("netlet-shard-{}", spec.index))
        .spawn(move || {
            let exit = match Shard::new(spec) {
                Err(e) => {
                    let _ = started.send(Err(e.clone()));
                    ShardExit::Failed(e)
                }
                Ok(mut shard) => match shard.start_primary() {
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
            };
            control.mark_exited();
            exit
        })
}

pub(crate) struct Shard {
    handler: Arc<Handler>,
    ctx: ShardCtx,
    control: Arc<Control>,
    rt: tokio::runtime::Runtime,
    listeners: Listeners,
    instances: Instances,
    deadlines: Deadlines,
    ready: Vec<Token>,
    completions: Vec<Completion>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Host-bound UDP sockets waiting for a (restarted) primary, with their code ports.
    orphan_udp: Vec<(u16, Box<dyn Datagram>)>,
    /// Every host-bound UDP socket's code port and address: what a primary's `init` may
    /// claim with `bind`.
    udp_ports: Vec<(u16, std::net::SocketAddr)>,
    /// Set when a stop was requested: the end of the grace period.
    draining: Option<Instant>,
    /// Counts loop turns (see `net::conn`).
    turn: u64,
    /// Why the shard is stopping for good (`--on-trap close`, a failed restart).
    failed: Option<String>,
    /// Lines about connections refused an instance: a flood of connections is not a
    /// flood of lines.
    refusals: crate::log::RateLimit,
}

impl Shard {
    pub(crate) fn new(spec: ShardSpec) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the shard's runtime: {e}"))?;
        let network = spec
            .network
            .unwrap_or_else(|| Arc::new(SystemNetwork::new(rt.handle().clone())));
        let first_free_server = spec.tcp.iter().map(|l| l.id).max().unwrap_or(0) + 1;
        let ctx = ShardCtx {
            reactor: spec.control.reactor().clone(),
            rt: rt.handle().clone(),
            config: spec.config,
            policy: spec.policy,
            log_tag: spec.log_tag,
            stats: spec.stats,
            clock: spec.clock,
            net: network,
            tls: spec.tls,
            observer: spec.observer,
            sink: spec.sink,
            next_server: Arc::new(std::sync::atomic::AtomicU32::new(first_free_server)),
        };
        let enter = rt.enter();
        let listeners = Listeners::open(spec.tcp, &ctx.reactor)
            .map_err(|e| format!("cannot register a listener: {e}"))?;
        let orphan_udp = spec
            .udp
            .into_iter()
            .map(|d| d.source.open().map(|sock| (d.code_port, sock)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot register a UDP socket: {e}"))?;
        let udp_ports = orphan_udp
            .iter()
            .filter_map(|(port, sock)| Some((*port, sock.local_addr().ok()?)))
            .collect();
        let sleep = Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365)));
        drop(enter);
        Ok(Shard {
            handler: spec.handler,
            ctx,
            control: spec.control,
            rt,
            listeners,
            instances: Instances::default(),
            deadlines: Deadlines::default(),
            ready: Vec::new(),
            completions: Vec::new(),
            sleep,
            orphan_udp,
            udp_ports,
            draining: None,
            failed: None,
            turn: 0,
            refusals: crate::log::RateLimit::new(crate::log::HOST_LINES),
        })
    }

    /// The loop. Returns when asked to stop and done draining, or when nothing is left
    /// that could produce an event (no listener, socket, timer or pending operation).
    fn run(&mut self) -> ShardExit {
        loop {
            self.take_requests();
            if let Some(exit) = self.finished() {
                return exit;
            }
            self.wait();
            self.turn();
        }
    }

    /// Runs turns, without waiting for I/O, until nothing is left to do at the current
    /// time: the testing harness's loop, where time moves only when the test moves it.
    /// Fails if the guest keeps making work (e.g. a zero-delay timer that sets itself).
    pub(crate) fn settle(&mut self, max_turns: usize) -> Result<(), String> {
        for _ in 0..max_turns {
            self.take_requests();
            let now = self.ctx.clock.now();
            let due = self.next_deadline().is_some_and(|at| at <= now);
            if !self.ctx.reactor.is_pending() && !self.instances.has_active() && !due {
                return Ok(());
            }
            self.turn();
        }
        Err(format!(
            "the handler did not settle within {max_turns} loop turns (does it keep scheduling work?)"
        ))
    }

    /// Stop and swap requests from other threads.
    fn take_requests(&mut self) {
        self.control.answer_pings();
        if self.control.take_shutdown() && self.draining.is_none() {
            self.begin_drain();
        }
        for swap in self.control.take_swaps() {
            self.apply_swap(swap);
        }
    }

    /// The earliest pending deadline, the shard's or an instance's.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match (self.deadlines.next(), self.instances.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The instances, by key.
    pub(crate) fn instances(&mut self) -> &mut Instances {
        &mut self.instances
    }

    /// Whether listener `index` still accepts.
    pub(crate) fn listening(&self, index: usize) -> bool {
        self.listeners.listening(index)
    }

    /// The latest faults.
    pub(crate) fn failures(&self) -> &[FailureRecord] {
        &self.instances.failures
    }

    /// Whether the shard is done, and how.
    fn finished(&mut self) -> Option<ShardExit> {
        if let Some(deadline) = self.draining {
            if !self.instances.any_open() || self.ctx.clock.now() >= deadline {
                return Some(ShardExit::Done);
            }
            return None;
        }
        let restarting = self.instances.primary.is_none() && self.failed.is_none();
        if self.instances.any_work() || self.listeners.any_open() || restarting {
            return None;
        }
        Some(match self.failed.take() {
            Some(msg) => ShardExit::Failed(msg),
            None => ShardExit::Done,
        })
    }

    /// Blocks in tokio's driver until a socket is ready, a task finished, a deadline is
    /// due or a stop is requested. With work already pending it only polls the driver.
    fn wait(&mut self) {
        let deadline = self.next_deadline();
        // Work that is ready now (events to deliver, tokens queued, a deadline already
        // due) must not keep the driver from looking at the sockets: yielding polls it
        // once without blocking, so a busy neighbour cannot starve everyone else's I/O.
        let pending = self.instances.has_active()
            || self.ctx.reactor.is_pending()
            || deadline.is_some_and(|at| at <= self.ctx.clock.now());
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
}
