//! Counters a handler keeps across its shards: what `--max-connections` counts, what the
//! logs and `--metrics` report.
//!
//! Per-port counters are indexed the way the shards see ports: TCP by server id (1 is
//! the first `--tcp`; 0 collects outbound client sockets), UDP by position (1 is the
//! first `--udp`; 0 collects sockets the guest made itself).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One listener's (or one UDP socket group's) counters.
#[derive(Debug, Default)]
pub struct PortStats {
    /// The bound address (`None` for the outbound / guest-made group).
    pub addr: Option<SocketAddr>,
    /// A TLS listener (`--tls`).
    pub tls: bool,
    pub connections_active: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_dropped: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    /// Datagrams the guest asked to send that were refused (queue full) or failed.
    pub datagrams_dropped: AtomicU64,
    /// TLS handshakes completed (their connections went to the handler).
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes that failed (bad certificate, no common protocol, not TLS, the
    /// client gave up): never seen by the handler.
    pub tls_handshake_failures: AtomicU64,
    /// TLS handshakes cut at `--tls-handshake-timeout`.
    pub tls_handshake_timeouts: AtomicU64,
}

/// Upper bounds (seconds) of the guest call duration histogram's buckets.
pub const CALL_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// A fixed-bucket histogram of guest call durations (Prometheus' cumulative buckets are
/// computed when read).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (non-cumulative); the last slot is `+Inf`.
    counts: [AtomicU64; CALL_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = CALL_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(CALL_BUCKETS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (the last is the total), and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (
            cumulative,
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// One handler's counters. Shards update them with relaxed atomics.
#[derive(Debug)]
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
    /// Numbers connections for logs (connection isolation).
    pub connection_ids: AtomicU64,
    /// Code swaps done (per shard).
    pub swaps: AtomicU64,
    /// Events handed to guests.
    pub events_delivered: AtomicU64,
    /// `handle` calls made (each carries a batch of events).
    pub guest_calls: AtomicU64,
    /// How long those calls took.
    pub call_duration: Histogram,
    /// Per TCP listener, by server id (0: outbound connections).
    pub tcp: Box<[PortStats]>,
    /// Per bound UDP address (0: the guest's own sockets).
    pub udp: Box<[PortStats]>,
}

impl Default for HandlerStats {
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl HandlerStats {
    /// Counters for a handler listening on `tcp` then `tls` (server ids in that order)
    /// and bound to `udp`.
    pub fn listening(tcp: &[SocketAddr], tls: &[SocketAddr], udp: &[SocketAddr]) -> Self {
        let all: Vec<SocketAddr> = tcp.iter().chain(tls).copied().collect();
        let mut stats = Self::new(&all, udp);
        for port in stats.tcp.iter_mut().skip(1 + tcp.len()) {
            port.tls = true;
        }
        stats
    }

    /// Counters for a handler listening on `tcp` and bound to `udp` (in flag order).
    pub fn new(tcp: &[SocketAddr], udp: &[SocketAddr]) -> Self {
        let ports = |addrs: &[SocketAddr]| -> Box<[PortStats]> {
            std::iter::once(None)
                .chain(addrs.iter().copied().map(Some))
                .map(|addr| PortStats {
                    addr,
                    ..PortStats::default()
                })
                .collect()
        };
        HandlerStats {
            connections_active: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_dropped: AtomicU64::new(0),
            traps_deadline: AtomicU64::new(0),
            traps_memory: AtomicU64::new(0),
            traps_fault: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            swaps: AtomicU64::new(0),
            connection_ids: AtomicU64::new(0),
            events_delivered: AtomicU64::new(0),
            guest_calls: AtomicU64::new(0),
            call_duration: Histogram::default(),
            tcp: ports(tcp),
            udp: ports(udp),
        }
    }

    /// The counters of TCP server `server` (`None`: outbound).
    pub fn tcp_port(&self, server: Option<u32>) -> &PortStats {
        let index = server.map_or(0, |s| s as usize);
        self.tcp.get(index).unwrap_or(&self.tcp[0])
    }

    /// The index of the UDP counters for a socket bound at `addr` by the host.
    pub fn udp_index(&self, addr: Option<SocketAddr>) -> usize {
        addr.and_then(|a| self.udp.iter().position(|p| p.addr == Some(a)))
            .unwrap_or(0)
    }

    pub fn udp_port(&self, index: usize) -> &PortStats {
        self.udp.get(index).unwrap_or(&self.udp[0])
    }

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
