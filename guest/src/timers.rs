//! Timers: Node's `setTimeout`, `setInterval` and `clearTimeout`.
//!
//! A timer fires as an event: [`NetHandler::on_timer`](crate::NetHandler::on_timer) (or
//! [`DgramHandler::on_timer`](crate::DgramHandler::on_timer)) is called with its id.
//!
//! ```no_run
//! use std::time::Duration;
//! use netlet_guest::{NetHandler, TimerId, timers};
//!
//! struct Ticker { tick: Option<TimerId> }
//! impl NetHandler for Ticker {
//!     fn init(&mut self, _args: Vec<String>) -> Result<(), String> {
//!         self.tick = Some(timers::set_interval(Duration::from_secs(1)));
//!         Ok(())
//!     }
//!     fn on_timer(&mut self, timer: TimerId) {
//!         println!("tick {timer:?}");
//!     }
//! }
//! # netlet_guest::export_net!(Ticker { tick: None });
//! ```

use std::time::Duration;

use crate::bindings::netlet::net::timers as raw;

/// Identifies a timer set with [`set_timeout`] or [`set_interval`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u32);

fn millis(after: Duration) -> u64 {
    u64::try_from(after.as_millis()).unwrap_or(u64::MAX)
}

/// Node's `setTimeout`: fires once after `after` (zero: on the loop's next turn).
pub fn set_timeout(after: Duration) -> TimerId {
    TimerId(raw::set_timeout(millis(after)))
}

/// Node's `setInterval`: fires every `every` (at least 1 ms) until cleared.
pub fn set_interval(every: Duration) -> TimerId {
    TimerId(raw::set_interval(millis(every)))
}

/// Node's `clearTimeout` / `clearInterval`. Clearing a timer that already fired is a no-op.
pub fn clear(timer: TimerId) {
    raw::clear_timeout(timer.0)
}
