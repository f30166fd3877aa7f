//! Rate limits on log lines, and one instance's log: its output and the host's lines
//! about it, each limited, what is held back counted and summarised.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::sink::LogSink;
use super::{GUEST_LINES, HOST_LINES, LogTag};

/// A token bucket: `rate` lines a second, at most `burst` at once; what it refuses is
/// counted until the next line it lets through (or [`RateLimit::take_suppressed`]).
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

impl RateLimit {
    pub fn new((rate, burst): (f64, f64)) -> Self {
        RateLimit {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
            suppressed: 0,
        }
    }

    /// Whether a line may go out now; `Some(n)`: yes, after `n` that were held back.
    pub fn admit(&mut self) -> Option<u64> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Lines held back and not yet reported.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

/// Where one instance's lines go: its output (both streams) and the host's lines about
/// it, each rate-limited.
#[derive(Clone)]
pub struct InstanceLog {
    tag: LogTag,
    sink: LogSink,
    limits: Arc<Mutex<(RateLimit, RateLimit)>>,
}

impl InstanceLog {
    pub fn new(tag: LogTag, sink: LogSink) -> Self {
        InstanceLog {
            tag,
            sink,
            limits: Arc::new(Mutex::new((
                RateLimit::new(GUEST_LINES),
                RateLimit::new(HOST_LINES),
            ))),
        }
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, (RateLimit, RateLimit)> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One line the guest printed.
    pub fn guest(&self, line: &str) {
        let admitted = self.limits().0.admit();
        if let Some(held) = admitted {
            if held > 0 {
                self.sink.host(
                    &self.tag,
                    &format!(
                        "{held} line(s) of guest output suppressed (more than {} a second)",
                        GUEST_LINES.0
                    ),
                );
            }
            self.sink.line(&self.tag, line);
        }
    }

    /// One line of the host's about this instance.
    pub fn host(&self, msg: &str) {
        let admitted = self.limits().1.admit();
        if let Some(held) = admitted {
            if held > 0 {
                self.sink
                    .host(&self.tag, &format!("{held} similar line(s) suppressed"));
            }
            self.sink.host(&self.tag, msg);
        }
    }

    /// Reports what is still held back (the instance is going away).
    pub fn finish(&self) {
        let (guest, host) = {
            let mut limits = self.limits();
            (limits.0.take_suppressed(), limits.1.take_suppressed())
        };
        if guest > 0 {
            self.sink.host(
                &self.tag,
                &format!(
                    "{guest} line(s) of guest output suppressed (more than {} a second)",
                    GUEST_LINES.0
                ),
            );
        }
        if host > 0 {
            self.sink
                .host(&self.tag, &format!("{host} similar line(s) suppressed"));
        }
    }
}
