//! A shard's instances: which are alive, which is the primary, which retire, which have
//! work this turn, when each next has a deadline, and the faults they had.
//!
//! The *primary* instance is started with the shard: it runs `init`, gets the
//! `listening` events and owns what the guest opens from `init`. With `--isolation
//! shared` it also serves every connection; with `--isolation connection` each accepted
//! connection gets a fresh instance, dropped once that connection and whatever else the
//! instance opened are gone. After a hot swap the instances of the old code *retire*:
//! they keep their connections until those close or `--drain-timeout` passes.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::instance::{GuestState, Instance};

/// Restart backoff: first delay, cap, and the quiet time after which it resets.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const BACKOFF_RESET: Duration = Duration::from_secs(30);

/// Per-connection instances whose connection has closed that may linger at once, per
/// shard (each for at most `turn::LINGER`).
pub const MAX_LINGERING: usize = 64;

/// Faults kept for the testing harness.
const FAILURES_KEPT: usize = 100;

/// Delays between restarts of a primary that keeps trapping.
#[derive(Default)]
pub struct Backoff {
    next: Duration,
    last: Option<Instant>,
}

impl Backoff {
    pub fn delay(&mut self, now: Instant) -> Duration {
        if self.last.is_some_and(|last| now - last > BACKOFF_RESET) {
            self.next = Duration::ZERO;
        }
        let delay = self.next;
        self.next = if delay.is_zero() {
            BACKOFF_FIRST
        } else {
            (delay * 2).min(BACKOFF_MAX)
        };
        self.last = Some(now);
        delay
    }

    /// The least delay before trying again after a failed restart.
    pub fn retry_delay(&mut self, now: Instant) -> Duration {
        self.delay(now).max(BACKOFF_FIRST)
    }
}

/// What kind of fault stopped an instance (kept for the testing harness).
#[derive(Clone, Debug)]
pub struct FailureRecord {
    /// The instance that failed.
    pub instance: u64,
    /// `None` for an `init` that returned an error.
    pub kind: Option<crate::instance::TrapKind>,
    pub message: String,
}

/// A shard's instances.
#[derive(Default)]
pub struct Instances {
    map: FxHashMap<u64, Instance>,
    /// The instance started with the shard (and restarted after traps).
    pub primary: Option<u64>,
    /// Keys are never reused (64 bits do not wrap).
    next_key: u64,
    /// Instances with something to deliver or flush this turn, in the order they got it.
    active: Vec<u64>,
    /// Instances running replaced code.
    pub retiring: FxHashSet<u64>,
    /// Each instance's earliest deadline, in order.
    due: BTreeSet<(Instant, u64)>,
    /// Per-connection instances whose connection has closed, oldest first.
    lingering: VecDeque<u64>,
    pub backoff: Backoff,
    /// The latest faults (bounded).
    pub failures: Vec<FailureRecord>,
}

impl Instances {
    /// A key for a new instance.
    pub fn next_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    pub fn insert(&mut self, key: u64, instance: Instance) {
        self.map.insert(key, instance);
        self.mark_active(key);
    }

    /// Removes an instance (its deadlines go with it).
    pub fn remove(&mut self, key: u64) -> Option<Instance> {
        self.retiring.remove(&key);
        let instance = self.map.remove(&key)?;
        if instance.lingering {
            self.lingering.retain(|k| *k != key);
        }
        if let Some(at) = instance.scheduled {
            self.due.remove(&(at, key));
        }
        Some(instance)
    }

    pub fn get(&mut self, key: u64) -> Option<&mut Instance> {
        self.map.get_mut(&key)
    }

    pub fn keys(&self) -> Vec<u64> {
        self.map.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Instance)> {
        self.map.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut Instance)> {
        self.map.iter_mut()
    }

    pub fn mark_active(&mut self, key: u64) {
        if let Some(instance) = self.map.get_mut(&key)
            && !instance.queued
        {
            instance.queued = true;
            self.active.push(key);
        }
    }

    /// Instance `key`'s state, marked to be visited this turn (turn `turn`).
    pub fn route(&mut self, key: u64, turn: u64) -> Option<&mut GuestState> {
        self.mark_active(key);
        self.map.get_mut(&key).map(|instance| {
            let state = instance.state();
            state.cx.turn = turn;
            state
        })
    }

    /// Takes the instances to visit this turn.
    pub fn take_active(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.active)
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Brings the deadline index up to date with instance `key`'s earliest deadline.
    pub fn reschedule(&mut self, key: u64) {
        let Some(instance) = self.map.get_mut(&key) else {
            return;
        };
        let next = instance.store.data().timers.next_deadline();
        if next == instance.scheduled {
            return;
        }
        if let Some(at) = instance.scheduled {
            self.due.remove(&(at, key));
        }
        if let Some(at) = next {
            self.due.insert((at, key));
        }
        instance.scheduled = next;
    }

    /// The earliest deadline of any instance.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Takes an instance whose earliest deadline is due at `now` (its index entry is
    /// removed; [`Instances::reschedule`] puts the next one back).
    pub fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let &(at, key) = self.due.first()?;
        if at > now {
            return None;
        }
        self.due.remove(&(at, key));
        if let Some(instance) = self.map.get_mut(&key) {
            instance.scheduled = None;
        }
        Some(key)
    }

    /// Marks a per-connection instance whose connection closed; false if it already was.
    /// At most [`MAX_LINGERING`] linger at once: the oldest goes to make room.
    pub fn linger(&mut self, key: u64) -> bool {
        let Some(instance) = self.map.get_mut(&key) else {
            return false;
        };
        if instance.lingering {
            return false;
        }
        instance.lingering = true;
        self.lingering.push_back(key);
        while self.lingering.len() > MAX_LINGERING
            && let Some(oldest) = self.lingering.pop_front()
        {
            self.drop_instance(oldest);
        }
        true
    }

    /// Drops an instance and everything it holds, telling its guest nothing.
    pub fn drop_instance(&mut self, key: u64) {
        if let Some(mut instance) = self.remove(key) {
            instance.state().tcp.drop_all();
            instance.state().udp.drop_all();
        }
    }

    /// Drops every lingering instance (their slots are wanted); returns how many.
    pub fn evict_lingering(&mut self) -> usize {
        let mut evicted = 0;
        while let Some(key) = self.lingering.pop_front() {
            self.drop_instance(key);
            evicted += 1;
        }
        evicted
    }

    /// Whether any instance holds something that can still produce an event.
    pub fn any_work(&self) -> bool {
        self.map.values().any(|i| i.store.data().has_work())
    }

    /// Whether any instance still holds a connection or an undelivered event.
    pub fn any_open(&self) -> bool {
        self.map.values().any(|i| {
            let state = i.store.data();
            !state.tcp.is_empty() || !state.events.is_empty()
        })
    }

    pub fn record_failure(&mut self, record: FailureRecord) {
        if self.failures.len() >= FAILURES_KEPT {
            self.failures.remove(0);
        }
        self.failures.push(record);
    }
}
