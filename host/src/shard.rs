//! A shard: one thread with its own single-threaded tokio runtime, its listeners and its
//! guest instance. The loop is libuv's: poll I/O until something is ready, turn every
//! ready socket, timer and finished task into events, hand the guest all of them in one
//! call, then flush what it wrote. Guest calls happen between turns of the runtime,
//! never from inside a task (see DESIGN.md, "Execution model").

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::component::Resource;

use crate::bindings::netlet::net::net_handler::ServerErrorEvent;
use crate::bindings::{Event, NetEvent};
use crate::config::HandlerConfig;
use crate::dgram;
use crate::engine::Handler;
use crate::error::error_info;
use crate::guest::{GuestFailure, Instance, Io, ShardCtx};
use crate::log::LogSink;
use crate::net::listener::{Accepted, Listener};
use crate::net::{self, ServerView, conn};
use crate::policy::Policy;
use crate::reactor::{Completion, Kind, Reactor, Token};
use crate::timers::TimerKey;

/// Node reads sockets in 64 KiB chunks; so do we.
const READ_BUFFER: usize = 64 * 1024;
/// Connections accepted from one listener per turn before other work gets its go.
const ACCEPTS_PER_TURN: usize = 64;
/// How long to wait before accepting again after `accept` failed (e.g. out of fds).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The instance key used for shard-level deadlines.
const SHARD_KEY: u32 = u32::MAX;

/// What a shard is started with.
pub struct ShardSpec {
    pub index: usize,
    pub handler: Arc<Handler>,
    pub config: Arc<HandlerConfig>,
    pub policy: Arc<Policy>,
    pub log_prefix: Arc<str>,
    pub sink: LogSink,
    pub reactor: Arc<Reactor>,
    /// Listeners bound for this shard, with the server id the guest will see.
    pub tcp: Vec<(u32, std::net::TcpListener)>,
    pub udp: Vec<std::net::UdpSocket>,
}

/// How a shard ended.
#[derive(Debug)]
pub enum ShardExit {
    /// Asked to stop, or nothing was left to do (as a Node process exits).
    Done,
    /// The guest could not be (re)started.
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
            Ok((mut shard, udp)) => match shard.start_instance(udp) {
                Err(failure) => {
                    let msg = format!("{} {failure}", shard.ctx.log_prefix);
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

struct Shard {
    handler: Arc<Handler>,
    ctx: ShardCtx,
    sink: LogSink,
    rt: tokio::runtime::Runtime,
    /// Indexed by listener index; `None` once the guest closed it.
    listeners: Vec<Option<Listener>>,
    instance: Option<Instance>,
    next_key: u32,
    heap: BinaryHeap<Reverse<(Instant, u32, TimerKey)>>,
    buf: Vec<u8>,
    ready: Vec<Token>,
    completions: Vec<Completion>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Shard {
    fn new(spec: ShardSpec) -> Result<(Self, Vec<std::net::UdpSocket>), String> {
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
            log_prefix: spec.log_prefix,
        };
        let _enter = rt.enter();
        let mut listeners = Vec::new();
        for (index, (id, socket)) in spec.tcp.into_iter().enumerate() {
            let addr = socket.local_addr().map_err(|e| e.to_string())?;
            let socket = tokio::net::TcpListener::from_std(socket)
                .map_err(|e| format!("cannot register listener {addr}: {e}"))?;
            let waker = ctx.reactor.waker(Token {
                kind: Kind::Accept,
                inst: SHARD_KEY,
                id: index as u32,
            });
            listeners.push(Some(Listener {
                id,
                addr,
                socket,
                waker,
            }));
            // Poll once so the listener's waker is registered.
            ctx.reactor.push(Token {
                kind: Kind::Accept,
                inst: SHARD_KEY,
                id: index as u32,
            });
        }
        let sleep = Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365)));
        drop(_enter);
        let shard = Shard {
            handler: spec.handler,
            ctx,
            sink: spec.sink,
            rt,
            listeners,
            instance: None,
            next_key: 0,
            heap: BinaryHeap::new(),
            buf: vec![0; READ_BUFFER],
            ready: Vec::new(),
            completions: Vec::new(),
            sleep,
        };
        Ok((shard, spec.udp))
    }

    /// Instantiates the guest, runs its `init`, and hands it its servers and host-bound
    /// UDP sockets (`listening` events).
    fn start_instance(&mut self, udp: Vec<std::net::UdpSocket>) -> Result<(), GuestFailure> {
        let key = self.next_key;
        self.next_key += 1;
        let mut instance =
            Instance::start(&self.handler, key, self.ctx.clone(), self.sink.clone())?;
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
            io.events
                .push(Event::Net(NetEvent::Listening(Resource::new_own(
                    listener.id,
                ))));
        }
        {
            let _enter = self.rt.enter();
            for socket in udp {
                if let Err(e) = dgram::adopt_bound(io, socket, &mut self.buf) {
                    self.ctx
                        .log(format_args!("cannot register a UDP socket: {e}"));
                }
            }
        }
        self.instance = Some(instance);
        self.schedule_timers();
        Ok(())
    }

    /// The loop. Returns when asked to stop, or when nothing is left that could
    /// produce an event (no listener, socket, timer or pending operation), as Node does.
    fn run(&mut self) -> ShardExit {
        loop {
            if self.ctx.reactor.is_shutdown() {
                return ShardExit::Done;
            }
            let alive = self.listeners.iter().any(Option::is_some)
                || self.instance.as_mut().is_some_and(|i| i.io().is_alive());
            if !alive {
                return ShardExit::Done;
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
                if let Some(instance) = self.instance.as_mut() {
                    instance.io().turn += 1;
                }
                self.fire_timers();
                self.finish_tasks();
                self.handle_ready();
            }
            if let Err(exit) = self.deliver() {
                return exit;
            }
        }
    }

    /// Blocks in tokio's driver until a socket is ready, a task finished, a deadline is
    /// due or a stop is requested. With events already pending it only polls the driver.
    fn wait(&mut self) {
        let pending = self
            .instance
            .as_mut()
            .is_some_and(|i| !i.io().events.is_empty());
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

    /// Moves deadlines the instance created onto the shard's heap.
    fn schedule_timers(&mut self) {
        let Some(instance) = self.instance.as_mut() else {
            return;
        };
        let io = instance.io();
        let key = io.inst;
        for (at, timer) in io.timers.scheduled.drain(..) {
            self.heap.push(Reverse((at, key, timer)));
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, key, timer))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let TimerKey::AcceptRetry(index) = timer {
                self.ctx.reactor.push(Token {
                    kind: Kind::Accept,
                    inst: SHARD_KEY,
                    id: index,
                });
                continue;
            }
            let Some(instance) = self
                .instance
                .as_mut()
                .filter(|i| i.store.data().io.inst == key)
            else {
                continue;
            };
            let io = instance.io();
            match timer {
                TimerKey::Guest(id) => {
                    let Io { timers, events, .. } = io;
                    timers.fire(id, now, events);
                }
                TimerKey::SocketIdle(id) => conn::idle_check(io, id, now),
                TimerKey::AcceptRetry(_) => {}
            }
        }
    }

    fn finish_tasks(&mut self) {
        let mut completions = std::mem::take(&mut self.completions);
        for completion in completions.drain(..) {
            let (key, id) = match &completion {
                Completion::TcpConnect { inst, id, .. }
                | Completion::UdpResolved { inst, id, .. } => (*inst, *id),
            };
            let Some(instance) = self
                .instance
                .as_mut()
                .filter(|i| i.store.data().io.inst == key)
            else {
                continue;
            };
            let io = instance.io();
            match completion {
                Completion::TcpConnect { result, .. } => {
                    net::on_connected(io, id, result, &mut self.buf)
                }
                Completion::UdpResolved {
                    request, result, ..
                } => dgram::on_resolved(io, id, request, result),
            }
        }
        self.completions = completions;
    }

    fn handle_ready(&mut self) {
        let mut ready = std::mem::take(&mut self.ready);
        for token in ready.drain(..) {
            if token.kind == Kind::Accept {
                self.accept(token.id);
                continue;
            }
            let Some(instance) = self
                .instance
                .as_mut()
                .filter(|i| i.store.data().io.inst == token.inst)
            else {
                continue;
            };
            let io = instance.io();
            match token.kind {
                Kind::TcpRead => conn::read(io, token.id, &mut self.buf),
                Kind::TcpWrite => conn::flush(io, token.id),
                Kind::UdpRead => dgram::read(io, token.id, &mut self.buf),
                Kind::UdpWrite => dgram::flush(io, token.id),
                Kind::Accept => {}
            }
        }
        self.ready = ready;
    }

    fn accept(&mut self, index: u32) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = self.listeners.get(index as usize).and_then(Option::as_ref) else {
                return;
            };
            let server = listener.id;
            match listener.accept() {
                Accepted::None => return,
                Accepted::Retry => continue,
                Accepted::Conn(stream, peer) => {
                    if let Some(instance) = self.instance.as_mut() {
                        conn::accept(instance.io(), server, stream, peer, &mut self.buf);
                    }
                }
                Accepted::Fail(e) => {
                    self.ctx
                        .log(format_args!("accept on {} failed: {e}", listener.addr));
                    if let Some(instance) = self.instance.as_mut() {
                        instance.io().events.push(Event::Net(NetEvent::ServerError(
                            ServerErrorEvent {
                                server,
                                error: error_info(&e, "accept", None),
                            },
                        )));
                    }
                    self.heap.push(Reverse((
                        Instant::now() + ACCEPT_RETRY,
                        SHARD_KEY,
                        TimerKey::AcceptRetry(index),
                    )));
                    return;
                }
            }
        }
        // The listener may have more waiting; come back next turn.
        self.ctx.reactor.push(Token {
            kind: Kind::Accept,
            inst: SHARD_KEY,
            id: index,
        });
    }

    /// Hands the guest its pending events, then does what its calls asked for: flush
    /// writes, ends, closed servers, new timers. A trap replaces the instance.
    fn deliver(&mut self) -> Result<(), ShardExit> {
        let Some(instance) = self.instance.as_mut() else {
            return Ok(());
        };
        if !instance.io().events.is_empty()
            && let Err(failure) = instance.deliver()
        {
            return self.replace_instance(failure);
        }
        let io = instance.io();
        conn::after_call(io);
        dgram::after_call(io);
        for id in std::mem::take(&mut io.closed_servers) {
            if let Some(slot) = self
                .listeners
                .iter_mut()
                .find(|l| l.as_ref().is_some_and(|l| l.id == id))
            {
                *slot = None;
            }
        }
        self.schedule_timers();
        Ok(())
    }

    /// The guest trapped: every socket it held is closed, a fresh instance takes over the
    /// listeners and host-bound UDP sockets.
    fn replace_instance(&mut self, failure: GuestFailure) -> Result<(), ShardExit> {
        let Some(mut old) = self.instance.take() else {
            return Ok(());
        };
        let io = old.io();
        let open = io.tcp.len();
        self.ctx.log(format_args!(
            "{failure}; closing its {open} connection(s) and starting a new instance"
        ));
        let udp = {
            let _enter = self.rt.enter();
            dgram::take_host_bound(io)
        };
        conn::drop_all(io);
        dgram::drop_all(io);
        drop(old);
        match self.start_instance(udp) {
            Ok(()) => Ok(()),
            Err(failure) => {
                let msg = format!("{} {failure}", self.ctx.log_prefix);
                self.ctx.log(format_args!("{failure}; giving up"));
                Err(ShardExit::Failed(msg))
            }
        }
    }
}
