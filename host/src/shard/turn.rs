//! One turn of a shard's loop, the same for `netlet run` and the testing harness: take
//! what the reactor queued, fire due deadlines, finish completed tasks, read, accept and
//! flush ready sockets, then hand every instance with events its batch in one call and
//! do what its calls asked for.

use std::time::Instant;

use super::Shard;
use super::accept::accept_token;
use super::deadlines::ShardTimer;
use super::instances::{Deferred, Returned};
use crate::reactor::{Completion, Kind};
use crate::stats::HandlerStats;
use crate::timers::Deadline;

/// How long a per-connection instance may outlive its connection.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Deadlines a shard handles per turn, all instances together...
const DEADLINES_PER_TURN: usize = 256;
/// ...and one instance at a time, before the next due instance gets its go.
const DEADLINES_PER_VISIT: usize = 64;

impl Shard {
    pub(super) fn turn(&mut self) {
        self.ctx
            .reactor
            .take(&mut self.ready, &mut self.completions);
        {
            // Sockets made in this phase (accepted, adopted) register with the
            // "current" runtime. Guest calls run outside it: WASI's sync bindings then
            // use their own runtime, which can drive timers for a guest that sleeps,
            // where `Handle::block_on` on ours could not.
            let rt = self.ctx.rt.clone();
            let _enter = rt.enter();
            self.turn += 1;
            let now = self.ctx.clock.now();
            self.fire_shard_deadlines(now);
            self.fire_instance_deadlines(now);
            self.finish_tasks();
            self.handle_ready();
        }
        self.deliver_all();
    }

    fn fire_shard_deadlines(&mut self, now: Instant) {
        while let Some(what) = self.deadlines.pop_due(now) {
            match what {
                ShardTimer::AcceptRetry(index) => self.ctx.reactor.push(accept_token(index)),
                ShardTimer::Restart => self.restart_primary(),
                ShardTimer::GraceOver => {}
                ShardTimer::Retire(key) => self.retire_now(key),
                ShardTimer::Linger(key) => self.instances.drop_instance(key),
            }
        }
    }

    fn fire_instance_deadlines(&mut self, now: Instant) {
        // A bounded number per turn, shared out among the instances in deadline order:
        // instances with thousands of due timers (zero delays that set themselves
        // again) get them over several turns, and every other socket and instance gets
        // its turn in between.
        let mut budget = DEADLINES_PER_TURN;
        while budget > 0
            && let Some(key) = self.instances.pop_due(now)
        {
            let Some(state) = self.instances.route(key, self.turn) else {
                continue;
            };
            for _ in 0..budget.min(DEADLINES_PER_VISIT) {
                let Some(what) = state.timers.pop_due(now) else {
                    break;
                };
                budget -= 1;
                match what {
                    Deadline::Guest(id) => state.timers.fire(id, now, &mut state.events),
                    socket => state.net().on_deadline(socket, now),
                }
            }
        }
    }

    fn finish_tasks(&mut self) {
        for completion in self.completions.drain(..) {
            let key = match &completion {
                Completion::TcpConnect { inst, .. } | Completion::UdpResolved { inst, .. } => *inst,
            };
            if self.instances.is_running(key) {
                self.instances.defer(key, Deferred::Completion(completion));
                continue;
            }
            match completion {
                Completion::TcpConnect { inst, id, result } => {
                    if let Some(state) = self.instances.route(inst, self.turn) {
                        state.net().finish_connect(id, result);
                    }
                }
                Completion::UdpResolved {
                    inst,
                    id,
                    request,
                    result,
                } => {
                    if let Some(state) = self.instances.route(inst, self.turn) {
                        state.dgram().on_resolved(id, request, result);
                    }
                }
            }
        }
    }

    fn handle_ready(&mut self) {
        for i in 0..self.ready.len() {
            let token = self.ready[i];
            if token.kind == Kind::Accept {
                self.accept(token.id);
                continue;
            }
            if self.instances.is_running(token.inst) {
                if token.kind == Kind::Resume {
                    self.instances.mark_active(token.inst);
                } else {
                    self.instances.defer(token.inst, Deferred::Token(token));
                }
                continue;
            }
            let Some(state) = self.instances.route(token.inst, self.turn) else {
                continue;
            };
            match token.kind {
                Kind::TcpRead => state.net().on_readable(token.id),
                Kind::TcpWrite => state.net().flush(token.id),
                Kind::UdpRead => state.dgram().on_readable(token.id),
                Kind::UdpWrite => state.dgram().flush(token.id),
                Kind::Accept | Kind::Resume => {}
            }
        }
        self.ready.clear();
    }

    /// Hands every visited instance its pending events, then does what its calls asked
    /// for: flush writes, ends, closed servers. Traps are dealt with here.
    ///
    /// A preemptive instance's call (`--isolation connection`) runs until it yields at
    /// an epoch tick; it then goes on in later turns, after everyone else has had theirs.
    fn deliver_all(&mut self) {
        let mut failures = Vec::new();
        let mut again = Vec::new();
        // Instances in the middle of a preemptive call go last: whoever waited while one
        // ran its slice is served before it runs the next.
        let mut active = self.instances.take_active();
        active.sort_by_key(|key| self.instances.is_running(*key));
        for key in active {
            let mut took = std::time::Duration::ZERO;
            let returned = if self.instances.is_running(key) {
                match self.instances.resume(key, &self.ctx.reactor) {
                    None => continue,
                    Some(returned) => Some(returned),
                }
            } else {
                let Some(instance) = self.instances.get(key) else {
                    continue;
                };
                instance.queued = false;
                let batch = instance.state().events.len() as u64;
                if batch == 0 && !instance.needs_init() {
                    None
                } else {
                    HandlerStats::add(&self.ctx.stats.events_delivered, batch);
                    HandlerStats::add(&self.ctx.stats.guest_calls, 1);
                    if instance.is_preemptive() {
                        match self.instances.start_call(key, &self.ctx.reactor) {
                            None => continue,
                            Some(returned) => Some(returned),
                        }
                    } else {
                        let started = Instant::now();
                        let result = instance.deliver();
                        took = started.elapsed();
                        self.ctx.stats.call_duration.observe(took);
                        if let Err(failure) = result {
                            failures.push((key, failure));
                        }
                        None
                    }
                }
            };
            if let Some(Returned {
                instance,
                result,
                took: call,
            }) = returned
            {
                took = call;
                self.ctx.stats.call_duration.observe(took);
                self.instances.restore(key, instance);
                if let Err(failure) = result {
                    failures.push((key, failure));
                    continue;
                }
            }
            if failures.last().is_some_and(|(k, _)| *k == key) {
                continue;
            }
            self.after_visit(key, took, &mut again);
        }
        for key in again {
            self.instances.mark_active(key);
        }
        for (key, failure) in failures {
            self.on_failure(key, failure);
        }
    }

    /// What a visited instance's calls asked for: closed servers stop accepting, writes
    /// and ends go out; then whether it is visited again, retires or goes. `took` is how
    /// long its call ran (zero when it was not called).
    fn after_visit(&mut self, key: u64, took: std::time::Duration, again: &mut Vec<u64>) {
        let retiring = self.instances.retiring.contains(&key);
        let primary = self.instances.primary;
        let Some(instance) = self.instances.get(key) else {
            return;
        };
        let state = instance.state();
        // Servers the guest closed stop accepting before its writes go out, so no peer
        // that saw a reply can still connect. A retiring instance's servers are the new
        // code's now.
        for id in state.tcp.closed_servers.drain(..) {
            if !retiring {
                self.listeners.close(id);
            }
        }
        if !state.tcp.new_listeners.is_empty() {
            self.register_listeners(key);
        }
        let Some(instance) = self.instances.get(key) else {
            return;
        };
        let state = instance.state();
        state.net().after_call(took);
        state.dgram().after_call();
        let more = !state.events.is_empty();
        let idle = !state.has_work();
        let no_connections = state.tcp.is_empty();
        let connection_gone = state.cx.per_connection && state.tcp.accepted() == 0;
        self.instances.reschedule(key);
        if more {
            again.push(key);
        } else if retiring && no_connections {
            self.instances.remove(key);
            if self.instances.retiring.is_empty() {
                self.ctx.log(format_args!(
                    "the replaced code's connections have all closed; its instances are gone"
                ));
            }
        } else if idle && Some(key) != primary {
            // A per-connection instance whose connection is gone.
            self.instances.remove(key);
        } else if connection_gone && self.instances.linger(key) {
            // Its connection closed but it holds more (a timer, a socket of its own): it
            // may finish for a moment, then it goes, whatever it holds.
            self.deadlines
                .push(self.ctx.clock.now() + LINGER, ShardTimer::Linger(key));
        }
    }
}
