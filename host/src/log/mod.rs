//! Logs: the host's own lines and guests' stdout and stderr, one line at a time.
//!
//! The `netlet` binary sends them through `tracing` ([`init`]): human-readable by
//! default (`[echo] hello` for guest output, `netlet: [echo] ...` for the host's lines
//! about a handler), or one JSON object per line with `--log-format json`, each with its
//! `handler` (and `shard`, and `connection` in connection isolation) as fields. Without
//! a subscriber (an embedder's process) lines go straight to stderr; a
//! [`LogSink::Capture`] keeps them in memory for tests.
//!
//! Lines are cut at [`MAX_LINE`] bytes so a guest printing without newlines cannot grow
//! the host's memory.
//!
//! Logging never stalls or floods the host:
//! - lines for stderr go through a bounded queue ([`QUEUE_BYTES`]) to a thread of their
//!   own, so a shard never waits on a slow reader (a pipe nobody reads, a terminal
//!   paused); when the queue is full a line is dropped and counted, and the writer says
//!   how many were dropped once it catches up;
//! - each instance's output and the host's lines about it are rate-limited
//!   ([`GUEST_LINES`], [`HOST_LINES`]); what is held back is counted and summarised
//!   (`N lines suppressed`).
//!
//! - [`queue`]: the bounded queue to stderr and the thread that writes it;
//! - [`limit`]: rate limits, and an instance's rate-limited log ([`InstanceLog`]);
//! - [`format`]: `tracing` set-up, the readable and JSON formats, the supervisor's lines;
//! - [`sink`]: where finished lines go (stderr, or captured for tests);
//! - [`guest`]: a guest's stdout and stderr as WASI output streams, cut into lines.

mod format;
mod guest;
mod limit;
mod queue;
mod sink;

use std::fmt;
use std::sync::Arc;

pub use format::{LogFormat, deploy, init};
pub use guest::GuestOutput;
pub use limit::{InstanceLog, RateLimit};
pub use queue::{flush, to_stderr};
pub use sink::{CapturedLog, LogSink};

/// Longest line kept before it is written out anyway.
pub const MAX_LINE: usize = 16 * 1024;

/// Bytes of log lines that may wait for stderr; past it, lines are dropped (counted).
pub const QUEUE_BYTES: usize = 1 << 20;

/// Lines per second one instance may print, and the burst it may print at once.
pub const GUEST_LINES: (f64, f64) = (1000.0, 2000.0);

/// Host lines per second about one instance (denials, refusals), and the burst.
pub const HOST_LINES: (f64, f64) = (10.0, 20.0);

/// Who a log line is about: a handler, its shard (when it has several), and the
/// connection (in connection isolation, where an instance serves one).
#[derive(Clone, Debug)]
pub struct LogTag {
    pub handler: Arc<str>,
    pub shard: Option<usize>,
    pub connection: Option<u64>,
}

impl LogTag {
    pub fn new(handler: &str) -> Self {
        LogTag {
            handler: handler.into(),
            shard: None,
            connection: None,
        }
    }
}

impl fmt::Display for LogTag {
    /// `[echo]`, `[echo#1]`, `[echo conn=17]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}", self.handler)?;
        if let Some(shard) = self.shard {
            write!(f, "#{shard}")?;
        }
        if let Some(c) = self.connection {
            write!(f, " conn={c}")?;
        }
        write!(f, "]")
    }
}
