//! A TLS listener: accepts TCP connections, runs their handshakes, and hands out only
//! those that completed ([`Listener::poll_accept`]), as Node's `secureConnection`.
//!
//! Handshakes in progress are held here, at most [`MAX_HANDSHAKES`]; at the limit, a new
//! connection takes the place of the handshake that has waited longest without its
//! peer saying anything (a client that sent its hello and went quiet cannot keep the
//! others out). Each has its own waker: a socket that
//! becomes ready queues its handshake and wakes the listener, so a turn drives only the
//! handshakes that can progress. One timer per listener cuts those older than the
//! handshake timeout. A failed or timed-out handshake never reaches the guest: it is
//! counted on the listener's port and logged at a bounded rate (a flood of bad
//! handshakes cannot flood the log).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::{HandshakeError, MAX_HANDSHAKES, TlsCell, TlsStream};
use crate::log::InstanceLog;
use crate::stats::HandlerStats;
use crate::transport::{Listener, ListenerSource, Stream};

/// Connections taken from the kernel per call, before handshakes get their go.
const ACCEPTS_PER_POLL: usize = 64;

/// Where a TLS listener reports handshakes: its port's counters and a rate-limited log.
/// Shared by the listener's shards.
pub struct HandshakeReport {
    pub stats: Arc<HandlerStats>,
    /// The listener's server id (its counters' index).
    pub server: u32,
    pub addr: SocketAddr,
    pub log: InstanceLog,
}

impl HandshakeReport {
    fn failed(&self, peer: SocketAddr, why: &HandshakeError) {
        let port = self.stats.tcp_port(Some(self.server));
        let timed_out = matches!(why, HandshakeError::TimedOut(_));
        HandlerStats::add(
            if timed_out {
                &port.tls_handshake_timeouts
            } else {
                &port.tls_handshake_failures
            },
            1,
        );
        self.log.host(&format!(
            "tls {}: handshake with {} failed: {why}",
            self.addr,
            crate::resolve::display_addr(&peer)
        ));
    }
}

/// A TCP listener bound before its shard starts, to be opened as a TLS listener.
pub struct TlsListenerSource {
    pub tcp: Box<dyn ListenerSource>,
    pub cell: Arc<TlsCell>,
    pub report: Arc<HandshakeReport>,
}

impl ListenerSource for TlsListenerSource {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    fn open(self: Box<Self>) -> io::Result<Box<dyn Listener>> {
        let inner = self.tcp.open()?;
        Ok(Box::new(TlsListener {
            inner,
            cell: self.cell,
            report: self.report,
            slots: Vec::new(),
            free: Vec::new(),
            count: 0,
            generation: 0,
            queue: Arc::new(WakeQueue::default()),
            done: VecDeque::new(),
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365))),
            timer_at: None,
        }))
    }
}

/// Handshakes whose sockets became ready, and the listener's own waker.
#[derive(Default)]
struct WakeQueue {
    ready: Mutex<Vec<(usize, u64)>>,
    listener: Mutex<Option<Waker>>,
}

/// The waker of one handshake: queues it and wakes the listener.
struct SlotWaker {
    index: usize,
    generation: u64,
    queued: AtomicBool,
    queue: Arc<WakeQueue>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        self.queue
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.index, self.generation));
        if let Some(w) = self
            .queue
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}

struct Handshake {
    stream: TlsStream,
    peer: SocketAddr,
    deadline: Instant,
    /// When its socket last woke it (its peer sent something).
    active: Instant,
    waker: Arc<SlotWaker>,
}

/// A listener whose connections come out with their TLS handshake done.
pub struct TlsListener {
    inner: Box<dyn Listener>,
    cell: Arc<TlsCell>,
    report: Arc<HandshakeReport>,
    slots: Vec<Option<Handshake>>,
    free: Vec<usize>,
    /// Handshakes in progress.
    count: usize,
    generation: u64,
    queue: Arc<WakeQueue>,
    /// Completed handshakes not yet handed out.
    done: VecDeque<(Box<dyn Stream>, SocketAddr)>,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// When the timer is set for (the earliest deadline when it was set).
    timer_at: Option<Instant>,
}

impl TlsListener {
    /// Handshakes in progress.
    pub fn handshaking(&self) -> usize {
        self.count
    }

    /// Starts the handshake of a new connection.
    fn start(&mut self, cx: &mut Context<'_>, mut tcp: Box<dyn Stream>, peer: SocketAddr) {
        // TLS writes whole records (a flight, a session ticket, then the first reply):
        // Nagle would hold the small ones behind a delayed ACK for up to 40 ms.
        let _ = tcp.set_nodelay(true);
        let tls = self.cell.get();
        let Some(config) = tls.server.clone() else {
            return;
        };
        let conn = match rustls::ServerConnection::new(config) {
            Ok(conn) => conn,
            Err(e) => {
                self.report.failed(peer, &HandshakeError::Tls(e));
                return;
            }
        };
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.generation += 1;
        let waker = Arc::new(SlotWaker {
            index,
            generation: self.generation,
            queued: AtomicBool::new(false),
            queue: self.queue.clone(),
        });
        let now = Instant::now();
        let deadline = now + tls.handshake_timeout;
        self.slots[index] = Some(Handshake {
            stream: TlsStream::new(tcp, conn.into()),
            peer,
            deadline,
            active: now,
            waker,
        });
        self.count += 1;
        if self.timer_at.is_none_or(|at| deadline < at) {
            self.arm(cx, deadline);
        }
        // Most clients have sent their hello already.
        self.drive(index, self.generation);
    }

    fn arm(&mut self, cx: &mut Context<'_>, at: Instant) {
        self.timer_at = Some(at);
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::from_std(at));
        let _ = self.timer.as_mut().poll(cx);
    }

    fn remove(&mut self, index: usize) -> Option<Handshake> {
        let hs = self.slots.get_mut(index)?.take()?;
        self.free.push(index);
        self.count -= 1;
        Some(hs)
    }

    /// Runs a handshake as far as its socket allows.
    fn drive(&mut self, index: usize, generation: u64) {
        let Some(Some(hs)) = self.slots.get_mut(index) else {
            return;
        };
        if hs.waker.generation != generation {
            return;
        }
        hs.waker.queued.store(false, Ordering::Release);
        hs.active = Instant::now();
        let waker = Waker::from(hs.waker.clone());
        let mut cx = Context::from_waker(&waker);
        match hs.stream.poll_handshake(&mut cx) {
            Poll::Pending => {}
            Poll::Ready(result) => {
                let Some(hs) = self.remove(index) else {
                    return;
                };
                match result {
                    Ok(()) => {
                        HandlerStats::add(
                            &self
                                .report
                                .stats
                                .tcp_port(Some(self.report.server))
                                .tls_handshakes,
                            1,
                        );
                        self.done.push_back((Box::new(hs.stream), hs.peer));
                    }
                    Err(e) => self.report.failed(hs.peer, &e),
                }
            }
        }
    }

    /// At the limit: the handshake idle the longest gives its place to a new
    /// connection.
    fn evict_stalest(&mut self) {
        let stalest = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, hs)| hs.as_ref().map(|hs| (hs.active, i)))
            .min();
        if let Some((active, index)) = stalest
            && let Some(hs) = self.remove(index)
        {
            self.report.failed(
                hs.peer,
                &HandshakeError::Evicted {
                    idle: active.elapsed(),
                    limit: MAX_HANDSHAKES,
                },
            );
        }
    }

    /// Cuts the handshakes past their deadline; sets the timer for the next one.
    fn expire(&mut self, cx: &mut Context<'_>) {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for index in 0..self.slots.len() {
            let Some(hs) = &self.slots[index] else {
                continue;
            };
            if hs.deadline <= now {
                if let Some(hs) = self.remove(index) {
                    let timeout = self.cell.get().handshake_timeout;
                    self.report
                        .failed(hs.peer, &HandshakeError::TimedOut(timeout));
                }
            } else {
                next = Some(next.map_or(hs.deadline, |n| n.min(hs.deadline)));
            }
        }
        match next {
            Some(at) => self.arm(cx, at),
            None => self.timer_at = None,
        }
    }
}

impl Listener for TlsListener {
    fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        {
            let mut listener = self
                .queue
                .listener
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !listener.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *listener = Some(cx.waker().clone());
            }
        }
        // Bounded: each round either hands out a connection or has taken everything
        // that was queued; a handshake woken during the last round waits for the next call.
        for _ in 0..4 {
            if let Some(done) = self.done.pop_front() {
                return Poll::Ready(Ok(done));
            }
            let woken =
                std::mem::take(&mut *self.queue.ready.lock().unwrap_or_else(|p| p.into_inner()));
            for (index, generation) in woken {
                self.drive(index, generation);
            }
            if self.timer_at.is_some() && self.timer.as_mut().poll(cx).is_ready() {
                self.expire(cx);
            }
            let mut accepted = 0;
            while accepted < ACCEPTS_PER_POLL {
                match self.inner.poll_accept(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Ok((tcp, peer))) => {
                        accepted += 1;
                        if self.count >= MAX_HANDSHAKES {
                            self.evict_stalest();
                        }
                        self.start(cx, tcp, peer);
                    }
                    Poll::Ready(Err(e)) => {
                        if let Some(done) = self.done.pop_front() {
                            return Poll::Ready(Ok(done));
                        }
                        return Poll::Ready(Err(e));
                    }
                }
            }
            if self.done.is_empty()
                && accepted < ACCEPTS_PER_POLL
                && self
                    .queue
                    .ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_empty()
            {
                return Poll::Pending;
            }
        }
        if let Some(done) = self.done.pop_front() {
            return Poll::Ready(Ok(done));
        }
        // More to do: come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
