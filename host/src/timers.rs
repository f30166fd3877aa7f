//! Timers: the guest's `set-timeout` / `set-interval` / `clear-timeout`, and the
//! deadlines of sockets' idle timeouts (Node's `socket.setTimeout`).
//!
//! An instance keeps its timers in a table; new deadlines are handed to the shard, whose
//! one heap orders every instance's deadlines. A cleared timer's heap entry is simply
//! skipped when it comes up.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::bindings::netlet::net::timers::Host;
use crate::events::HostEvent;
use crate::guest::GuestState;

/// The longest delay honoured (Node's limit: 2^31-1 ms, about 24.8 days).
pub const MAX_DELAY_MS: u64 = i32::MAX as u64;

/// What a deadline on the shard's heap is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// A guest timer, by id.
    Guest(u32),
    /// A TCP socket's idle timeout, by socket id.
    SocketIdle(u32),
    /// The host's `--idle-timeout` for a TCP connection, by socket id.
    HostIdle(u32),
    /// Accepting on a shard's listener (by index) failed; try again.
    AcceptRetry(u32),
    /// Restart the shard's primary instance (after a trap, with backoff).
    Restart,
    /// The grace period after a stop request is over.
    GraceOver,
    /// A retiring instance's `--drain-timeout` is over (after a swap).
    Retire,
}

struct TimerState {
    deadline: Instant,
    interval: Option<Duration>,
}

/// One instance's guest timers.
#[derive(Default)]
pub struct Timers {
    table: FxHashMap<u32, TimerState>,
    next_id: u32,
    /// Deadlines to put on the shard's heap once the current guest call returns.
    pub scheduled: Vec<(Instant, TimerKey)>,
}

impl Timers {
    /// True when no guest timer is pending. (Socket idle timeouts do not count: like
    /// Node's, they do not keep a process alive.)
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn add(&mut self, now: Instant, ms: u64, repeat: bool) -> wasmtime::Result<u32> {
        if self.table.len() >= crate::config::MAX_TIMERS {
            return Err(wasmtime::Error::msg(format!(
                "too many pending timers (the limit is {})",
                crate::config::MAX_TIMERS
            )));
        }
        let ms = ms.min(MAX_DELAY_MS);
        let delay = Duration::from_millis(if repeat { ms.max(1) } else { ms });
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        let deadline = now + delay;
        self.table.insert(
            id,
            TimerState {
                deadline,
                interval: repeat.then_some(delay),
            },
        );
        self.scheduled.push((deadline, TimerKey::Guest(id)));
        Ok(id)
    }

    /// A guest timer's deadline came up: queues its event, and re-arms an interval.
    pub fn fire(&mut self, id: u32, now: Instant, events: &mut Vec<HostEvent>) {
        let Some(timer) = self.table.get_mut(&id) else {
            return;
        };
        if timer.deadline > now {
            return;
        }
        events.push(HostEvent::Timer(id));
        match timer.interval {
            Some(every) => {
                // Skip missed beats rather than firing a burst after a stall.
                let mut next = timer.deadline + every;
                if next <= now {
                    next = now + every;
                }
                timer.deadline = next;
                self.scheduled.push((next, TimerKey::Guest(id)));
            }
            None => {
                self.table.remove(&id);
            }
        }
    }
}

impl Host for GuestState {
    fn set_timeout(&mut self, ms: u64) -> wasmtime::Result<u32> {
        let now = self.io.now();
        self.io.timers.add(now, ms, false)
    }

    fn set_interval(&mut self, ms: u64) -> wasmtime::Result<u32> {
        let now = self.io.now();
        self.io.timers.add(now, ms, true)
    }

    fn clear_timeout(&mut self, id: u32) {
        self.io.timers.table.remove(&id);
    }
}
