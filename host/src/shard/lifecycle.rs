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
    /// Instantiates the guest and hands it the shard's servers; returns its key.
    ///
    /// A per-connection instance runs `init` in its first, preemptive call (see
    /// `instance`); its servers are announced now, ahead of its connection. A primary
    /// (`connection` is `None`) runs `init` here, with the operator's listeners and UDP
    /// ports on offer, so that code naming its port (`listen(8124)`, `bind(41234)`)
    /// claims them; the servers it did not claim are announced once `init` returned. Its
    /// UDP sockets are handed by [`Shard::give_udp`] once it is the primary.
    pub(super) fn new_instance(&mut self, connection: Option<u64>) -> Result<u64, GuestFailure> {
        let key = self.instances.next_key();
        let mut ctx = self.ctx.clone();
        // In connection isolation the instance's log lines name its connection.
        ctx.log_tag.connection = connection;
        let per_connection = connection.is_some();
        let instance = Instance::instantiate(
            &self.handler.engine,
            &self.handler.pre,
            key,
            ctx,
            per_connection,
        )?;
        self.instances.insert(key, instance);
        self.give_servers(key);
        let Some(instance) = self.instances.get(key) else {
            return Ok(key);
        };
        if per_connection {
            instance.state().net().announce_servers();
            return Ok(key);
        }
        instance.state().udp.offer(self.udp_ports.clone());
        if let Err(failure) = instance.init() {
            self.instances.remove(key);
            return Err(failure);
        }
        self.register_listeners(key);
        if let Some(instance) = self.instances.get(key) {
            instance.state().net().announce_servers();
        }
        Ok(key)
    }

    /// Hands an instance the shard's open servers, unannounced (see `net::server`). A
    /// per-connection instance serves its connection as the primary's code said: it
    /// takes the primary's server options.
    pub(super) fn give_servers(&mut self, key: u64) {
        let servers = self.listeners.servers();
        let options = self
            .instances
            .primary
            .filter(|primary| *primary != key)
            .and_then(|primary| self.instances.get(primary))
            .map(|primary| primary.state().tcp.server_options_snapshot());
        if let Some(instance) = self.instances.get(key) {
            let tcp = &mut instance.state().tcp;
            for (id, addr, code_port) in servers {
                tcp.add_server(id, addr, code_port);
            }
            if let Some(options) = options {
                tcp.take_server_options(options);
            }
        }
    }

    /// Registers the listeners an instance's `listen` bound during its last call.
    pub(super) fn register_listeners(&mut self, key: u64) {
        let Some(instance) = self.instances.get(key) else {
            return;
        };
        let new = std::mem::take(&mut instance.state().tcp.new_listeners);
        if new.is_empty() {
            return;
        }
        let _enter = self.ctx.rt.enter();
        for l in new {
            if let Err(e) = self.listeners.add(
                l.id,
                l.code_port,
                l.source,
                Some(l.permit),
                &self.ctx.reactor,
            ) {
                // The socket is bound; only registering it with the runtime failed.
                self.ctx.log(format_args!(
                    "cannot serve the listener the handler bound for port {}: {e}",
                    l.code_port
                ));
            }
        }
    }

    /// Hands an instance the host-bound UDP sockets (to the sockets that claimed their
    /// ports during `init`, or with `listening` events of their own).
    pub(super) fn give_udp(&mut self, key: u64, sockets: Vec<(u16, Box<dyn Datagram>)>) {
        let Some(instance) = self.instances.get(key) else {
            self.orphan_udp.extend(sockets);
            return;
        };
        let mut dgram = instance.state().dgram();
        for (code_port, sock) in sockets {
            dgram.adopt_bound(code_port, sock);
        }
        dgram.end_offer();
    }

    /// Starts (or restarts) the primary instance: `init`, its servers, the host-bound
    /// UDP sockets.
    pub(crate) fn start_primary(&mut self) -> Result<(), GuestFailure> {
        let key = self.new_instance(None)?;
        self.instances.primary = Some(key);
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
