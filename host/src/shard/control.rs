//! Asking a running shard, from another thread, to stop or to take new code, or whether
//! it still answers (`/healthz`): the requests wait here and wake the shard's loop
//! through its reactor.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use crate::config::HandlerConfig;
use crate::handler::Handler;
use crate::policy::Policy;
use crate::reactor::Reactor;

/// New code for a running shard (hot swap): new connections go to an instance of
/// `handler` started with `config`; the instances already running keep theirs until
/// their connections close or `drain_timeout` passes.
pub struct Swap {
    pub handler: Arc<Handler>,
    pub config: Arc<HandlerConfig>,
    pub policy: Arc<Policy>,
    /// Receives whether the new instance started (`Err`: the old code keeps serving).
    pub done: mpsc::Sender<Result<(), String>>,
}

#[derive(Default)]
struct Requests {
    shutdown: bool,
    swaps: Vec<Swap>,
}

/// One shard's requests, and the reactor that wakes its loop.
pub struct Control {
    requests: Mutex<Requests>,
    reactor: Arc<Reactor>,
    /// Liveness pings asked for, and the last one the loop answered: a loop that
    /// answers is not stuck (in a guest call, or at all).
    pings: AtomicU64,
    answered: AtomicU64,
    /// Set when the shard's thread has ended: it will never answer again.
    exited: AtomicBool,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            requests: Mutex::default(),
            reactor: Arc::new(Reactor::default()),
            pings: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            exited: AtomicBool::new(false),
        }
    }
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shard's reactor.
    pub fn reactor(&self) -> &Arc<Reactor> {
        &self.reactor
    }

    /// Asks the shard to stop.
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.reactor.notify();
    }

    /// Hands the shard new code.
    pub fn swap(&self, swap: Swap) {
        self.lock().swaps.push(swap);
        self.reactor.notify();
    }

    /// Asks the loop to show it is alive; returns the ping's number for [`Self::answered`].
    pub fn ping(&self) -> u64 {
        let seq = self.pings.fetch_add(1, Ordering::AcqRel) + 1;
        self.reactor.notify();
        seq
    }

    /// Whether the loop has answered ping `seq` (it answers at its next turn).
    pub fn answered(&self, seq: u64) -> bool {
        self.answered.load(Ordering::Acquire) >= seq
    }

    /// Whether the shard's thread has ended.
    pub fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// Answers every ping asked so far (the loop calls it each time round).
    pub(super) fn answer_pings(&self) {
        self.answered
            .store(self.pings.load(Ordering::Acquire), Ordering::Release);
    }

    /// The shard's thread is ending.
    pub(super) fn mark_exited(&self) {
        self.exited.store(true, Ordering::Release);
    }

    /// Whether a stop was requested since the last call (the flag is consumed, so a
    /// draining loop does not wake up for it again).
    pub(super) fn take_shutdown(&self) -> bool {
        std::mem::take(&mut self.lock().shutdown)
    }

    /// Swaps requested since the last call, oldest first.
    pub(super) fn take_swaps(&self) -> Vec<Swap> {
        std::mem::take(&mut self.lock().swaps)
    }
}
