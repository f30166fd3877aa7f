//! The shard's own deadlines, typed apart from the guests' timers (which each instance
//! keeps, see [`crate::timers`]): retrying a failed accept, restarting a primary with
//! backoff, the end of the grace period, a retiring instance's `--drain-timeout`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a shard deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShardTimer {
    /// Accepting on listener `index` failed; try again.
    AcceptRetry(u32),
    /// Start the primary instance again (after a trap, with backoff).
    Restart,
    /// The grace period after a stop request is over.
    GraceOver,
    /// A retiring instance's `--drain-timeout` is over.
    Retire(u64),
    /// A per-connection instance's connection closed a while ago: whatever it still
    /// holds (timers, other sockets) goes with it.
    Linger(u64),
}

/// The shard's deadlines, earliest first. Each kind is bounded: one retry per listener,
/// one restart, one grace period, one retirement per instance of replaced code or per
/// per-connection instance whose connection closed.
#[derive(Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, ShardTimer)>>,
}

impl Deadlines {
    pub fn push(&mut self, at: Instant, what: ShardTimer) {
        self.heap.push(Reverse((at, what)));
    }

    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest deadline if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<ShardTimer> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, w))| w),
            _ => None,
        }
    }
}
