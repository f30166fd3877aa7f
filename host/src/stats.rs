//! Counters a handler keeps across its shards: what `--max-connections` counts, what the
//! logs and metrics report.

use std::sync::atomic::{AtomicU64, Ordering};

/// One handler's counters. Shards update them with relaxed atomics.
#[derive(Debug, Default)]
pub struct HandlerStats {
    /// Accepted connections open now.
    pub connections_active: AtomicU64,
    /// Accepted connections since start.
    pub connections_total: AtomicU64,
    /// Connections closed at once for `--max-connections`.
    pub connections_dropped: AtomicU64,
    /// Traps past `--event-timeout`.
    pub traps_deadline: AtomicU64,
    /// Traps from running out of `--max-memory`.
    pub traps_memory: AtomicU64,
    /// Other traps (panics, `unreachable`, bad handles, host limits).
    pub traps_fault: AtomicU64,
    /// Instances started again after a trap.
    pub restarts: AtomicU64,
    /// Events handed to guests.
    pub events_delivered: AtomicU64,
    /// `handle` calls made (each carries a batch of events).
    pub guest_calls: AtomicU64,
}

impl HandlerStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
