//! An instance's deadlines: the guest's timers (`set-timeout`, `set-interval`,
//! `clear-timeout`) and its sockets' idle timeouts (Node's `socket.setTimeout`, the
//! host's `--idle-timeout`), with the WIT `timers` interface beside them.
//!
//! Each instance keeps its own deadlines in order; the shard only indexes each
//! instance's earliest one. A cleared timer, or the idle deadline of a socket that
//! closed, is removed at once: nothing waits for a deadline that no longer matters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::bindings::netlet::net::timers::Host;
use crate::clock::Clock;
use crate::events::{Events, HostEvent};

/// The longest delay honoured (Node's limit: 2^31-1 ms, about 24.8 days).
pub const MAX_DELAY_MS: u64 = i32::MAX as u64;

/// What one of an instance's deadlines is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// A guest timer, by id.
    Guest(u32),
    /// A TCP socket's idle timeout (`set-timeout`), by socket id.
    SocketIdle(u32),
    /// The host's `--idle-timeout` for a TCP connection, by socket id.
    HostIdle(u32),
}

/// Where a deadline sits in the order: its time, and a sequence number that keeps
/// deadlines of the same instant in the order they were set.
pub type Slot = (Instant, u64);

struct GuestTimer {
    slot: Slot,
    interval: Option<Duration>,
}

/// One instance's deadlines.
#[derive(Default)]
pub struct Timers {
    due: BTreeMap<Slot, Deadline>,
    seq: u64,
    guest: FxHashMap<u32, GuestTimer>,
    next_id: u32,
}

impl Timers {
    /// True when no guest timer is pending. (Socket idle timeouts do not count: like
    /// Node's, they do not keep a process alive.)
    pub fn is_empty(&self) -> bool {
        self.guest.is_empty()
    }

    /// Pending guest timers.
    pub fn guest_timers(&self) -> usize {
        self.guest.len()
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// Adds a deadline; the slot removes it again ([`Timers::cancel`]).
    pub fn schedule(&mut self, at: Instant, what: Deadline) -> Slot {
        self.seq += 1;
        let slot = (at, self.seq);
        self.due.insert(slot, what);
        slot
    }

    /// Removes a deadline that no longer matters.
    pub fn cancel(&mut self, slot: Slot) {
        self.due.remove(&slot);
    }

    /// Takes the earliest deadline if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Deadline> {
        let (&slot, _) = self.due.first_key_value()?;
        if slot.0 > now {
            return None;
        }
        self.due.remove(&slot)
    }

    fn add(&mut self, now: Instant, ms: u64, repeat: bool) -> wasmtime::Result<u32> {
        if self.guest.len() >= crate::config::MAX_TIMERS {
            return Err(wasmtime::Error::msg(format!(
                "too many pending timers (the limit is {})",
                crate::config::MAX_TIMERS
            )));
        }
        let ms = ms.min(MAX_DELAY_MS);
        let delay = Duration::from_millis(if repeat { ms.max(1) } else { ms });
        // Ids wrap after 2^32 timers: skip one still pending rather than replace it.
        let id = loop {
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.guest.contains_key(&self.next_id) {
                break self.next_id;
            }
        };
        let slot = self.schedule(now + delay, Deadline::Guest(id));
        self.guest.insert(
            id,
            GuestTimer {
                slot,
                interval: repeat.then_some(delay),
            },
        );
        Ok(id)
    }

    fn clear(&mut self, id: u32) {
        if let Some(timer) = self.guest.remove(&id) {
            self.cancel(timer.slot);
        }
    }

    /// A guest timer came due: queues its event, and re-arms an interval.
    pub fn fire(&mut self, id: u32, now: Instant, events: &mut Events) {
        let Some(timer) = self.guest.get(&id) else {
            return;
        };
        events.push(HostEvent::Timer(id));
        match timer.interval {
            Some(every) => {
                // Skip missed beats rather than firing a burst after a stall.
                let mut next = timer.slot.0 + every;
                if next <= now {
                    next = now + every;
                }
                let slot = self.schedule(next, Deadline::Guest(id));
                if let Some(timer) = self.guest.get_mut(&id) {
                    timer.slot = slot;
                }
            }
            None => {
                self.guest.remove(&id);
            }
        }
    }

    /// Forgets every deadline (the instance is going away).
    pub fn clear_all(&mut self) {
        self.due.clear();
        self.guest.clear();
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.due.len()
    }
}

/// The guest's view for the WIT `timers` interface.
pub struct TimersView<'a> {
    pub timers: &'a mut Timers,
    pub clock: &'a Clock,
}

impl Host for TimersView<'_> {
    fn set_timeout(&mut self, ms: u64) -> wasmtime::Result<u32> {
        let now = self.clock.now();
        self.timers.add(now, ms, false)
    }

    fn set_interval(&mut self, ms: u64) -> wasmtime::Result<u32> {
        let now = self.clock.now();
        self.timers.add(now, ms, true)
    }

    fn clear_timeout(&mut self, id: u32) {
        self.timers.clear(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_timer_leaves_nothing_behind() {
        let mut t = Timers::default();
        let now = Instant::now();
        for _ in 0..100_000 {
            let id = t.add(now, 3_600_000, false).unwrap();
            t.clear(id);
        }
        assert_eq!(t.pending(), 0);
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn ids_that_wrap_skip_pending_timers() {
        let mut t = Timers::default();
        let now = Instant::now();
        t.next_id = u32::MAX - 2;
        let a = t.add(now, 10, false).unwrap();
        let b = t.add(now, 10, false).unwrap();
        assert_eq!((a, b), (u32::MAX - 1, u32::MAX));
        t.next_id = u32::MAX - 2;
        // u32::MAX - 1 and u32::MAX are pending; 0 is never an id.
        assert_eq!(t.add(now, 10, false).unwrap(), 1);
        assert_eq!(t.guest.len(), 3);
    }

    #[test]
    fn intervals_rearm_and_timeouts_fire_once_in_order() {
        let mut t = Timers::default();
        let mut events = Events::default();
        let now = Instant::now();
        let every = t.add(now, 10, true).unwrap();
        let once = t.add(now, 15, false).unwrap();
        let mut fired = Vec::new();
        let later = now + Duration::from_millis(25);
        while let Some(Deadline::Guest(id)) = t.pop_due(later) {
            fired.push(id);
            t.fire(id, later, &mut events);
        }
        // A stall skips missed beats: the interval fired once, and comes next one
        // period after `later`.
        assert_eq!(fired, [every, once]);
        assert_eq!(t.next_deadline(), Some(later + Duration::from_millis(10)));
        assert_eq!(t.guest_timers(), 1);
    }
}
