//! Replacing a shard's code while it serves (hot swap), retiring the old code's
//! instances, and stopping (drain with a grace period).

use super::Shard;
use super::control::Swap;
use super::deadlines::ShardTimer;
use crate::stats::HandlerStats;

impl Shard {
    /// Hot swap: a new primary instance of the new code takes the listeners (and the
    /// host-bound UDP sockets); every instance running so far retires. Listeners stay
    /// open throughout, so no connection is refused. If the new code's `init` fails, it
    /// is not swapped in and the old code keeps serving.
    pub(super) fn apply_swap(&mut self, swap: Swap) {
        if self.draining.is_some() || self.failed.is_some() {
            let _ = swap.done.send(Err("the handler is stopping".into()));
            return;
        }
        let old_handler = std::mem::replace(&mut self.handler, swap.handler);
        let old_config = std::mem::replace(&mut self.ctx.config, swap.config);
        let old_policy = std::mem::replace(&mut self.ctx.policy, swap.policy);
        let new_key = match self.new_instance(None) {
            Ok(key) => key,
            Err(failure) => {
                self.handler = old_handler;
                self.ctx.config = old_config;
                self.ctx.policy = old_policy;
                self.ctx.log(format_args!(
                    "the new code was not swapped in: {failure}; the old code keeps serving"
                ));
                let _ = swap.done.send(Err(failure.to_string()));
                return;
            }
        };
        let old_primary = self.instances.primary.replace(new_key);
        let mut udp = std::mem::take(&mut self.orphan_udp);
        if let Some(instance) = old_primary.and_then(|key| self.instances.get(key)) {
            udp.extend(instance.state().udp.take_host_bound());
        }
        self.give_udp(new_key, udp);
        let deadline = self.ctx.clock.now() + self.ctx.config.drain_timeout;
        let mut open = 0;
        for key in self.instances.keys() {
            if key == new_key {
                continue;
            }
            self.instances.retiring.insert(key);
            self.deadlines.push(deadline, ShardTimer::Retire(key));
            let Some(state) = self.instances.route(key, self.turn) else {
                continue;
            };
            open += state.tcp.len();
            // As Node's `server.close()` in a process being replaced: it gets no new
            // connections, and its servers' `close` comes when its connections end.
            state.net().close_servers();
        }
        self.listeners.poll_all(&self.ctx.reactor);
        HandlerStats::add(&self.ctx.stats.swaps, 1);
        self.ctx.log(format_args!(
            "swapped in new code (sha256 {}): new connections go to it; {open} open \
             connection(s) stay on the old code (at most {:?})",
            &self.handler.sha256[..12],
            self.ctx.config.drain_timeout
        ));
        let _ = swap.done.send(Ok(()));
    }

    /// A retiring instance's drain timeout passed: close what it still holds.
    pub(super) fn retire_now(&mut self, key: u64) {
        if !self.instances.retiring.contains(&key) {
            return;
        }
        let Some(mut instance) = self.instances.remove(key) else {
            return;
        };
        let state = instance.state();
        let open = state.tcp.len();
        state.tcp.drop_all();
        state.udp.drop_all();
        if open > 0 {
            self.ctx.log(format_args!(
                "--drain-timeout: closed {open} connection(s) still on the replaced code"
            ));
        }
    }

    /// A stop was requested: take what is queued on the listeners, close them (the
    /// guest's servers `close`), close host-bound UDP sockets, and give open connections
    /// `--grace` to finish.
    pub(super) fn begin_drain(&mut self) {
        // Connections the kernel queued but we did not accept would be reset with the
        // listening socket; accepted now, they get the grace period like the rest.
        self.accept_queued();
        let deadline = self.ctx.clock.now() + self.ctx.config.grace;
        self.draining = Some(deadline);
        self.deadlines.push(deadline, ShardTimer::GraceOver);
        self.listeners.close_all();
        for key in self.instances.keys() {
            let Some(state) = self.instances.route(key, self.turn) else {
                continue;
            };
            state.net().close_servers();
            state.dgram().close_host_bound();
        }
    }
}
