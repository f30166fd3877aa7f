//! Readiness plumbing between tokio's I/O driver and a shard's loop.
//!
//! A shard does not run a tokio task per socket. Each socket direction has its own
//! [`Waker`] that, when tokio's driver finds the socket ready, records the socket's
//! [`Token`] in the shard's [`Reactor`] and wakes the loop. The loop then does the
//! non-blocking reads and writes itself, outside any task, and hands the guest every
//! resulting event in one call: libuv's "poll, then run callbacks" phases.
//!
//! Work finished by the few real tasks a shard spawns (an outbound `connect`, a name
//! lookup) comes back the same way, as a [`Completion`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

/// What became ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A TCP socket may be read.
    TcpRead,
    /// A TCP socket may be written.
    TcpWrite,
    /// A UDP socket may be read.
    UdpRead,
    /// A UDP socket may be written.
    UdpWrite,
    /// A listener may accept (the id is the listener's index in its shard).
    Accept,
    /// A preemptive guest call yielded and may go on.
    Resume,
}

/// Names one direction of one socket of one instance in a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    pub kind: Kind,
    /// The instance's key in its shard (0 for `Accept`). Keys are never reused.
    pub inst: u64,
    /// The socket's id in that instance, or the listener's index.
    pub id: u32,
}

/// The result of a task a shard spawned.
pub enum Completion {
    /// An outbound TCP connection attempt finished.
    TcpConnect {
        inst: u64,
        id: u32,
        result: Result<Box<dyn crate::transport::Stream>, crate::transport::ConnectError>,
    },
    /// A UDP destination name was resolved (or failed to).
    UdpResolved {
        inst: u64,
        id: u32,
        request: UdpRequest,
        result: std::io::Result<Vec<SocketAddr>>,
    },
}

/// What a UDP socket wanted to do once its destination's name resolved.
pub enum UdpRequest {
    /// `name_allowed`: a rule names the host, so whatever it resolves to is allowed.
    Send {
        data: Vec<u8>,
        port: u16,
        name_allowed: bool,
    },
    Connect {
        port: u16,
        name_allowed: bool,
    },
}

#[derive(Default)]
struct Queues {
    ready: Vec<Token>,
    /// Tokens that go behind everything else queued for the next turn (see
    /// [`Reactor::push_last`]).
    later: Vec<Token>,
    completions: Vec<Completion>,
    loop_waker: Option<Waker>,
    /// The loop was asked to look at its requests (a stop, a swap).
    notified: bool,
}

/// The queues a shard's wakers and tasks fill and its loop drains.
///
/// The shard's own thread fills and drains it; other threads reach it too: tokio's
/// blocking pool finishing a name lookup, the supervisor asking for a swap or a stop.
/// The lock is held only to push or swap a vector.
#[derive(Default)]
pub struct Reactor {
    queues: Mutex<Queues>,
}

impl Reactor {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // A poisoned lock only means a panic elsewhere; the queues are still valid.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A waker that queues `token` and wakes the loop.
    pub fn waker(self: &Arc<Self>, token: Token) -> Waker {
        Waker::from(Arc::new(TokenWaker {
            token,
            reactor: self.clone(),
        }))
    }

    /// Queues `token` behind everything else queued before the next turn, whenever that
    /// was queued: a socket that just had its full share of a turn (a read that filled
    /// the batch, its datagrams or accepts per turn) goes behind the sockets that waited,
    /// so the ready list is served round-robin and no socket is first every turn.
    pub fn push_last(&self, token: Token) {
        let mut q = self.lock();
        q.later.push(token);
        if let Some(w) = q.loop_waker.take() {
            w.wake();
        }
    }

    /// Queues `token` now, as if its socket had become ready (e.g. on `resume`).
    pub fn push(&self, token: Token) {
        let mut q = self.lock();
        q.ready.push(token);
        if let Some(w) = q.loop_waker.take() {
            w.wake();
        }
    }

    /// Hands back the result of a spawned task.
    pub fn complete(&self, completion: Completion) {
        let mut q = self.lock();
        q.completions.push(completion);
        if let Some(w) = q.loop_waker.take() {
            w.wake();
        }
    }

    /// Wakes the loop to look at its requests (see `shard::control`).
    pub fn notify(&self) {
        let mut q = self.lock();
        q.notified = true;
        if let Some(w) = q.loop_waker.take() {
            w.wake();
        }
    }

    /// Ready when something is queued; otherwise remembers the loop's waker.
    pub fn poll_pending(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.lock();
        if !q.ready.is_empty() || !q.later.is_empty() || !q.completions.is_empty() || q.notified {
            Poll::Ready(())
        } else {
            q.loop_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Whether a token or a completion is queued.
    pub fn is_pending(&self) -> bool {
        let q = self.lock();
        !q.ready.is_empty() || !q.later.is_empty() || !q.completions.is_empty()
    }

    /// Moves everything queued into the loop's buffers (kept to reuse their capacity).
    pub fn take(&self, ready: &mut Vec<Token>, completions: &mut Vec<Completion>) {
        let mut q = self.lock();
        q.notified = false;
        let Queues {
            ready: now, later, ..
        } = &mut *q;
        now.append(later);
        std::mem::swap(&mut q.ready, ready);
        std::mem::swap(&mut q.completions, completions);
    }
}

struct TokenWaker {
    token: Token,
    reactor: Arc<Reactor>,
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // tokio wakes a registration once; a token that is queued twice (a wake racing
        // the host's own re-queue) costs one spurious poll, which finds nothing ready
        // and registers the waker again.
        self.reactor.push(self.token);
    }
}
