//! Starting instances and dealing with their faults: the primary (its `init`, its
//! servers, the host-bound UDP sockets), per-connection instances, and what a trap does
//! (`--on-trap restart` with backoff, or `close`).
//!
//! A trap kills only the instance that trapped; its sockets are closed. The listeners
//! never go down because of a guest, unless `--on-trap close` says so.

use super::Shard;
use super::deadlines::ShardTimer;
use super::instances::FailureRecord;
use crate::config::TrapPolicy;
use crate::instance::{GuestFailure, Instance, TrapKind};
use crate::stats::HandlerStats;
use crate::transport::Datagram;

impl Shard {
    /// Instantiates the guest (and runs its `init`, or has it run first thing in its
    /// first call); returns its key.
    pub(super) fn new_instance(&mut self, connection: Option<u64>) -> Result<u64, GuestFailure> {
        let key = self.instances.next_key();
        let mut ctx = self.ctx.clone();
        // In connection isolation the instance's log lines name its connection.
        ctx.log_tag.connection = connection;
        // A per-connection instance runs `init` in its first, preemptive call (see
        // `instance`); the primary runs it now, before it is given anything.
        let instance = if connection.is_some() {
            Instance::instantiate(&self.handler.engine, &self.handler.pre, key, ctx, true)?
        } else {
            Instance::start(&self.handler.engine, &self.handler.pre, key, ctx, false)?
        };
        self.instances.insert(key, instance);
        Ok(key)
    }

    /// Hands an instance the shard's open servers (`listening` events).
    pub(super) fn give_servers(&mut self, key: u64) {
        let servers = self.listeners.servers();
        if let Some(instance) = self.instances.get(key) {
            let state = instance.state();
            for (id, addr) in servers {
                state.tcp.add_server(&mut state.events, id, addr);
            }
        }
    }

    /// Hands an instance the host-bound UDP sockets.
    pub(super) fn give_udp(&mut self, key: u64, sockets: Vec<Box<dyn Datagram>>) {
        let Some(instance) = self.instances.get(key) else {
            self.orphan_udp.extend(sockets);
            return;
        };
        let mut dgram = instance.state().dgram();
        for sock in sockets {
            dgram.adopt_bound(sock);
        }
    }

    /// Starts (or restarts) the primary instance: `init`, its servers, the host-bound
    /// UDP sockets.
    pub(crate) fn start_primary(&mut self) -> Result<(), GuestFailure> {
        let key = self.new_instance(None)?;
        self.instances.primary = Some(key);
        self.give_servers(key);
        let udp = std::mem::take(&mut self.orphan_udp);
        self.give_udp(key, udp);
        // Connections may have queued while there was no primary.
        self.listeners.poll_all(&self.ctx.reactor);
        Ok(())
    }

    /// An instance trapped: close what it held, then apply `--on-trap`.
    pub(super) fn on_failure(&mut self, key: u64, failure: GuestFailure) {
        let Some(mut instance) = self.instances.remove(key) else {
            return;
        };
        self.instances.record_failure(FailureRecord {
            instance: key,
            kind: match &failure {
                GuestFailure::Trap { kind, .. } => Some(*kind),
                GuestFailure::Init(_) => None,
            },
            message: failure.to_string(),
        });
        let stats = &self.ctx.stats;
        if let GuestFailure::Trap { kind, .. } = &failure {
            HandlerStats::add(
                match kind {
                    TrapKind::Deadline => &stats.traps_deadline,
                    TrapKind::Memory => &stats.traps_memory,
                    TrapKind::Fault => &stats.traps_fault,
                },
                1,
            );
        }
        let state = instance.state();
        let open = state.tcp.len();
        let udp = state.udp.take_host_bound();
        state.tcp.drop_all();
        state.udp.drop_all();
        drop(instance);
        let is_primary = Some(key) == self.instances.primary;
        if is_primary {
            self.instances.primary = None;
            self.orphan_udp.extend(udp);
        }
        let what = if open == 1 {
            "its connection".to_string()
        } else {
            format!("its {open} connections")
        };
        if self.ctx.config.on_trap == TrapPolicy::Close {
            self.ctx.log(format_args!(
                "{failure}; closed {what}; --on-trap close: closing the listeners"
            ));
            self.listeners.close_all();
            self.orphan_udp.clear();
            self.failed = Some(format!(
                "{} stopped after a trap (--on-trap close)",
                self.ctx.log_tag
            ));
            return;
        }
        if !is_primary || self.draining.is_some() {
            self.ctx.log(format_args!("{failure}; closed {what}"));
            return;
        }
        let now = self.ctx.clock.now();
        let delay = self.instances.backoff.delay(now);
        if delay.is_zero() {
            self.ctx.log(format_args!(
                "{failure}; closed {what}; starting a new instance"
            ));
            self.restart_primary();
        } else {
            self.ctx.log(format_args!(
                "{failure}; closed {what}; starting a new instance in {delay:?} (it keeps trapping)"
            ));
            self.deadlines.push(now + delay, ShardTimer::Restart);
        }
    }

    pub(super) fn restart_primary(&mut self) {
        if self.instances.primary.is_some() || self.draining.is_some() || self.failed.is_some() {
            return;
        }
        HandlerStats::add(&self.ctx.stats.restarts, 1);
        if let Err(failure) = self.start_primary() {
            let now = self.ctx.clock.now();
            let delay = self.instances.backoff.retry_delay(now);
            self.ctx
                .log(format_args!("{failure}; trying again in {delay:?}"));
            self.deadlines.push(now + delay, ShardTimer::Restart);
        }
    }
}
