//! A shard's listeners and accepting on them: Node's `maxConnections` (close at once,
//! count it, tell the guest with `drop`), handing each connection to the primary
//! instance or, with `--isolation connection`, to a fresh one.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::Shard;
use super::deadlines::ShardTimer;
use crate::config::Isolation;
use crate::context::GuestSocket;
use crate::error::error_info;
use crate::events::HostEvent;
use crate::net::address_info;
use crate::reactor::{Kind, Reactor, Token};
use crate::stats::HandlerStats;
use crate::transport::{Listener, ListenerSource, Stream};

use super::HostListener;

/// Connections accepted from one listener per turn before other work gets its go.
const ACCEPTS_PER_TURN: usize = 64;
/// How long to wait before accepting again after `accept` failed (e.g. out of fds).
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// The token of listener `index`.
pub fn accept_token(index: u32) -> Token {
    Token {
        kind: Kind::Accept,
        inst: 0,
        id: index,
    }
}

/// A listening socket owned by a shard.
struct Entry {
    /// The server id the guest sees.
    id: u32,
    /// The port the handler's code names it by.
    code_port: u16,
    addr: SocketAddr,
    listener: Box<dyn Listener>,
    waker: Waker,
    /// A listener the guest's `listen` bound holds a place among its sockets.
    _permit: Option<GuestSocket>,
}

/// A shard's listeners, by index; a closed one leaves its slot empty.
#[derive(Default)]
pub struct Listeners {
    slots: Vec<Option<Entry>>,
}

impl Listeners {
    /// Opens the shard's listeners (registering them with its runtime, which must be
    /// entered) and queues a first poll of each, so their wakers are registered.
    pub fn open(sources: Vec<HostListener>, reactor: &Arc<Reactor>) -> io::Result<Self> {
        let mut listeners = Listeners::default();
        for l in sources {
            listeners.add(l.id, l.code_port, l.source, None, reactor)?;
        }
        Ok(listeners)
    }

    /// Opens one more listener (registering it with the shard's runtime, which must be
    /// entered) and queues a first poll of it.
    pub fn add(
        &mut self,
        id: u32,
        code_port: u16,
        source: Box<dyn ListenerSource>,
        permit: Option<GuestSocket>,
        reactor: &Arc<Reactor>,
    ) -> io::Result<()> {
        let listener = source.open()?;
        let token = accept_token(self.slots.len() as u32);
        self.slots.push(Some(Entry {
            id,
            code_port,
            addr: listener.local_addr(),
            listener,
            waker: reactor.waker(token),
            _permit: permit,
        }));
        reactor.push(token);
        Ok(())
    }

    /// Whether listener `index` still accepts.
    pub fn listening(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(Option::is_some)
    }

    pub fn any_open(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    /// The open servers: their ids, addresses and code ports.
    pub fn servers(&self) -> Vec<(u32, SocketAddr, u16)> {
        self.slots
            .iter()
            .flatten()
            .map(|e| (e.id, e.addr, e.code_port))
            .collect()
    }

    /// Stops accepting on server `id`.
    pub fn close(&mut self, id: u32) {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|l| l.as_ref().is_some_and(|l| l.id == id))
        {
            *slot = None;
        }
    }

    pub fn close_all(&mut self) {
        self.slots.iter_mut().for_each(|l| *l = None);
    }

    /// Queues a poll of every listener (connections may have waited in the backlog).
    pub fn poll_all(&self, reactor: &Reactor) {
        for index in 0..self.slots.len() {
            reactor.push(accept_token(index as u32));
        }
    }
}

impl Shard {
    /// Accepts what is waiting on listener `index` (a bounded number per turn).
    pub(super) fn accept(&mut self, index: u32) {
        if self.accept_up_to(index, ACCEPTS_PER_TURN) {
            // The listener may have more waiting; come back next turn, after the sockets
            // that are ready.
            self.ctx.reactor.push_last(accept_token(index));
        }
    }

    /// Before the listeners close for good: accepts every connection already queued on
    /// them, so the kernel does not reset them with the listening socket (they are
    /// served, within the grace period, like the other open connections).
    pub(super) fn accept_queued(&mut self) {
        for index in 0..self.listeners.slots.len() as u32 {
            // The backlog bounds what is queued; the bound only guards against a flood
            // arriving as fast as it is accepted.
            self.accept_up_to(index, 4 * crate::config::BACKLOG as usize);
        }
    }

    /// Accepts up to `limit` connections on listener `index`; true if it stopped at the
    /// limit (more may be waiting).
    fn accept_up_to(&mut self, index: u32, limit: usize) -> bool {
        // With no primary (restarting after a trap), connections wait in the backlog;
        // the restart polls the listeners again.
        let shared = self.ctx.config.isolation == Isolation::Shared;
        if shared && self.instances.primary.is_none() {
            return false;
        }
        for _ in 0..limit {
            let Some(Some(entry)) = self.listeners.slots.get_mut(index as usize) else {
                return false;
            };
            let server = entry.id;
            let mut cx = Context::from_waker(&entry.waker);
            match entry.listener.poll_accept(&mut cx) {
                Poll::Pending => return false,
                Poll::Ready(Ok((stream, peer))) => {
                    if self.over_max_connections() {
                        self.drop_connection(server, stream, peer);
                        continue;
                    }
                    let key = if shared {
                        self.instances.primary
                    } else {
                        self.instance_for_connection()
                    };
                    if let Some(state) = key.and_then(|key| self.instances.route(key, self.turn)) {
                        state.net().accept(server, stream, peer);
                    }
                }
                Poll::Ready(Err(e)) => {
                    let addr = entry.addr;
                    self.ctx.log(format_args!("accept on {addr} failed: {e}"));
                    if let Some(state) = self
                        .instances
                        .primary
                        .and_then(|key| self.instances.route(key, self.turn))
                    {
                        state.events.push(HostEvent::ServerError {
                            server,
                            error: error_info(&e, "accept", None),
                        });
                    }
                    self.deadlines.push(
                        self.ctx.clock.now() + ACCEPT_RETRY,
                        ShardTimer::AcceptRetry(index),
                    );
                    return false;
                }
            }
        }
        true
    }

    fn over_max_connections(&self) -> bool {
        self.ctx
            .config
            .max_connections
            .is_some_and(|max| HandlerStats::get(&self.ctx.stats.connections_active) >= max as u64)
    }

    /// Node's `maxConnections`: close at once, count it, tell the guest (`drop`).
    fn drop_connection(&mut self, server: u32, stream: Box<dyn Stream>, peer: SocketAddr) {
        let local = stream.local_addr().ok();
        drop(stream);
        HandlerStats::add(&self.ctx.stats.connections_dropped, 1);
        HandlerStats::add(
            &self.ctx.stats.tcp_port(Some(server)).connections_dropped,
            1,
        );
        if let Some(state) = self
            .instances
            .primary
            .and_then(|key| self.instances.route(key, self.turn))
        {
            state.events.push(HostEvent::Drop {
                server,
                local: local.map(address_info),
                remote: Some(address_info(peer)),
            });
        }
    }

    /// `--isolation connection`: a fresh instance for a new connection.
    fn instance_for_connection(&mut self) -> Option<u64> {
        let connection = self
            .ctx
            .stats
            .connection_ids
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut started = self.new_instance(Some(connection));
        if started.is_err() && self.instances.evict_lingering() > 0 {
            // The pool may have been full of instances whose connections are gone: they
            // never cost a live connection its place.
            started = self.new_instance(Some(connection));
        }
        match started {
            // `new_instance` handed it the servers.
            Ok(key) => Some(key),
            Err(failure) => {
                if let Some(held) = self.refusals.admit() {
                    let held = match held {
                        0 => String::new(),
                        n => format!(" ({n} more since the last such line)"),
                    };
                    // What fails here is nearly always the pool (full) or the host, not
                    // the guest's code: wasmtime's own words, without "trapped".
                    let why = match &failure {
                        crate::instance::GuestFailure::Trap { error, .. } => format!("{error:#}"),
                        other => other.to_string(),
                    };
                    self.ctx.log(format_args!(
                        "cannot start an instance for a new connection: {why}{held}"
                    ));
                }
                None
            }
        }
    }
}
