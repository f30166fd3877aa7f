//! What an instance's interfaces share: the shard's context ([`ShardCtx`]: its reactor,
//! runtime, settings, policy, log, counters, clock, network) and the instance's own
//! ([`InstanceCtx`]: its key, socket ids, and what it may still open).
//!
//! The TCP, UDP and timer code each work on their own state plus this; nothing here
//! knows about them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::budget::{MemoryAccount, Permit, Refusal};
use crate::config::HandlerConfig;
use crate::events::HostEvent;
use crate::log::{InstanceLog, LogSink};
use crate::policy::{Policy, Use};
use crate::reactor::{Kind, Reactor, Token};
use crate::transport::Network;

/// What every instance of a shard shares with the shard: all `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct ShardCtx {
    pub reactor: Arc<Reactor>,
    pub rt: tokio::runtime::Handle,
    pub config: Arc<HandlerConfig>,
    pub policy: Arc<Policy>,
    /// `[name]`, or `[name#shard]` when there are several shards.
    pub log_tag: crate::log::LogTag,
    /// The handler's counters, shared by its shards.
    pub stats: Arc<crate::stats::HandlerStats>,
    /// Real time, or the testing harness's virtual time.
    pub clock: crate::clock::Clock,
    /// Where guests' outbound connects, lookups and UDP sockets come from.
    pub net: Arc<dyn Network>,
    /// The handler's TLS: what its guests' TLS connects verify against.
    pub tls: Arc<crate::transport::tls::TlsCell>,
    /// Told about every event delivered (the testing harness records a trace).
    pub observer: Option<Arc<dyn Observer>>,
    /// Where guest output and the host's lines about this handler go.
    pub sink: LogSink,
    /// The next id for a server the guest's `listen` binds (the operator's listeners
    /// have the ids below it).
    pub next_server: Arc<std::sync::atomic::AtomicU32>,
}

impl ShardCtx {
    /// An id for a new server of this shard.
    pub fn next_server_id(&self) -> u32 {
        self.next_server.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes a host-side log line about this handler.
    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        self.sink.host(&self.log_tag, &msg.to_string());
    }
}

/// Watches deliveries: each event, with its payload, as it is handed to an instance.
pub trait Observer: Send + Sync {
    fn delivered(&self, instance: u64, event: &HostEvent, payload: &[u8]);
}

/// Socket ids of one instance (TCP and UDP share the space). An id is a guest handle's
/// `rep`, so it is never given out again while anything may still name it: the host's
/// state for the socket, or a handle the guest holds (until the guest drops it). After
/// 2^32 sockets the counter wraps and skips the ids still held.
#[derive(Default)]
pub struct Ids {
    next: u32,
    /// Holders of each live id: the host's state, the guest's handle.
    held: FxHashMap<u32, u8>,
}

impl Ids {
    /// A fresh id, held once (by the host's state for it).
    pub fn allocate(&mut self) -> u32 {
        loop {
            self.next = self.next.wrapping_add(1).max(1);
            if !self.held.contains_key(&self.next) {
                self.held.insert(self.next, 1);
                return self.next;
            }
        }
    }

    /// The guest got a handle to `id`.
    pub fn handle_given(&mut self, id: u32) {
        if let Some(n) = self.held.get_mut(&id) {
            *n += 1;
        }
    }

    /// One holder of `id` let go (the host's state is gone, or the guest dropped its
    /// handle).
    pub fn release(&mut self, id: u32) {
        if let Some(n) = self.held.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&id);
            }
        }
    }

    /// Starts the counter at `next` (to test the wrap).
    pub fn start_at(&mut self, next: u32) {
        self.next = next;
    }
}

/// A socket the guest opened itself: it counts against the instance's cap
/// (`config::MAX_GUEST_SOCKETS`) and holds a share of the process-wide [`crate::budget`]
/// until it is dropped.
#[derive(Debug)]
pub struct GuestSocket {
    _process: Permit,
    instance: Arc<AtomicUsize>,
}

impl Drop for GuestSocket {
    fn drop(&mut self) {
        self.instance.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an instance may still open or hold: its own sockets, connects and lookups in
/// flight, host memory in its queues.
pub struct Quota {
    /// Host memory its queues hold (`--max-host-memory`).
    pub memory: Arc<MemoryAccount>,
    own_sockets: Arc<AtomicUsize>,
    /// Outbound connects and name lookups still running.
    pub in_flight: u32,
    /// Sockets opened during the current guest call.
    pub opened_this_call: u32,
    /// The share of the process's socket budget its `wasi:sockets` sockets hold.
    pub wasi_permit: Permit,
    /// A socket refusal was logged already.
    refusal_logged: bool,
}

impl Quota {
    pub fn new(max_host_memory: usize) -> Self {
        Quota {
            memory: MemoryAccount::new(max_host_memory),
            own_sockets: Arc::default(),
            in_flight: 0,
            opened_this_call: 0,
            wasi_permit: Permit::default(),
            refusal_logged: false,
        }
    }

    /// Sockets the guest opened itself through netlet's `net`/`dgram` (not connections a
    /// server accepted, nor UDP sockets the host bound for it).
    pub fn own_sockets(&self) -> usize {
        self.own_sockets.load(Ordering::Relaxed)
    }
}

/// What an instance's interfaces share.
pub struct InstanceCtx {
    /// This instance's key in its shard; part of every [`Token`] of its sockets.
    pub key: u64,
    pub shard: ShardCtx,
    /// Its output and the host's lines about it (rate-limited).
    pub log: InstanceLog,
    /// It serves one connection (`--isolation connection`): it may not change what the
    /// handler's instances share (close a listener).
    pub per_connection: bool,
    pub ids: Ids,
    pub quota: Quota,
    /// The shard loop's turn, as of the last time the shard handed this instance work
    /// (see `net::conn`).
    pub turn: u64,
}

impl InstanceCtx {
    pub fn token(&self, kind: Kind, id: u32) -> Token {
        Token {
            kind,
            inst: self.key,
            id,
        }
    }

    /// The time as the host schedules by it (virtual under the testing harness).
    pub fn now(&self) -> Instant {
        self.shard.clock.now()
    }

    pub fn config(&self) -> &HandlerConfig {
        &self.shard.config
    }

    pub fn policy(&self) -> &Policy {
        &self.shard.policy
    }

    /// A host line about this instance (rate-limited: see [`crate::log`]).
    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        self.log.host(&msg.to_string());
    }

    /// Logs an outbound attempt the policy refused, in the one wording of
    /// [`crate::policy::denial`].
    pub fn denied(&mut self, what: Use, target: &str) {
        self.log.host(&crate::policy::denial(what, target));
    }

    /// A slot for one more socket of the guest's own, if it may open one (and start one
    /// more connect or lookup): the per-instance caps of `config::MAX_GUEST_SOCKETS` and
    /// `MAX_IN_FLIGHT`, and the [`crate::budget`].
    pub fn socket_permit(&mut self) -> Option<GuestSocket> {
        let refusal = if self.quota.own_sockets() >= crate::config::MAX_GUEST_SOCKETS {
            Refusal::Instance
        } else if self.quota.in_flight >= crate::config::MAX_IN_FLIGHT {
            Refusal::InFlight
        } else if self.quota.opened_this_call >= crate::config::MAX_SOCKETS_PER_EVENT {
            Refusal::PerEvent
        } else {
            match Permit::one() {
                Some(process) => {
                    self.quota.opened_this_call += 1;
                    self.quota.own_sockets.fetch_add(1, Ordering::Relaxed);
                    return Some(GuestSocket {
                        _process: process,
                        instance: self.quota.own_sockets.clone(),
                    });
                }
                None => Refusal::Process,
            }
        };
        self.socket_refused(refusal);
        None
    }

    /// Logs the first socket an instance is refused (the guest gets an error each time;
    /// a guest retrying in a loop must not flood the log).
    pub fn socket_refused(&mut self, refusal: Refusal) {
        if !self.quota.refusal_logged {
            self.quota.refusal_logged = true;
            self.log(format_args!(
                "refused the guest a socket: the limit of {refusal} is reached (further refusals in this instance are not logged)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ids;

    #[test]
    fn ids_near_the_end_wrap_and_skip_those_still_held() {
        let mut ids = Ids::default();
        ids.start_at(u32::MAX - 2);
        let a = ids.allocate();
        let b = ids.allocate();
        assert_eq!((a, b), (u32::MAX - 1, u32::MAX));
        // The guest holds a handle to `a`; the host state of both goes.
        ids.handle_given(a);
        ids.release(a);
        ids.release(b);
        // 0 is never an id; 1 is free.
        assert_eq!(ids.allocate(), 1);
        ids.start_at(u32::MAX - 2);
        // `a` is still named by the guest's handle: skipped. `b` is free again.
        assert_eq!(ids.allocate(), u32::MAX);
        ids.release(a);
        ids.start_at(u32::MAX - 2);
        assert_eq!(ids.allocate(), u32::MAX - 1);
    }
}
