//! Asking a running shard, from another thread, to stop or to take new code: the
//! requests wait here and wake the shard's loop through its reactor.

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
}

impl Default for Control {
    fn default() -> Self {
        Control {
            requests: Mutex::default(),
            reactor: Arc::new(Reactor::default()),
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
