//! Where finished log lines go: stderr (through `tracing` when the binary set it up,
//! else the queue), or kept in memory for tests and embedders.

use std::sync::{Arc, Mutex};

use super::LogTag;
use super::format::{GUEST, HOST, tracing_on};
use super::queue::to_stderr;

/// Where finished log lines go.
#[derive(Clone, Debug, Default)]
pub enum LogSink {
    /// The host's stderr (the default).
    #[default]
    Stderr,
    /// Kept in memory, for tests and embedders.
    Capture(Arc<Mutex<CapturedLog>>),
}

/// Lines kept by [`LogSink::Capture`].
#[derive(Clone, Debug, Default)]
pub struct CapturedLog {
    /// What guests printed, one line each, without the `[name]` prefix.
    pub guest: Vec<String>,
    /// The host's own lines about the handler (faults, denials), as on stderr.
    pub host: Vec<String>,
}

impl LogSink {
    /// A new in-memory sink.
    pub fn capture() -> Self {
        LogSink::Capture(Arc::default())
    }

    /// A snapshot of what was captured (empty for stderr).
    pub fn captured(&self) -> CapturedLog {
        match self {
            LogSink::Stderr => CapturedLog::default(),
            LogSink::Capture(log) => log.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Writes one finished line of guest output.
    pub fn line(&self, tag: &LogTag, line: &str) {
        match self {
            LogSink::Stderr if tracing_on() => {
                tracing::info!(
                    target: GUEST,
                    handler = &*tag.handler,
                    shard = tag.shard,
                    connection = tag.connection,
                    "{line}"
                );
            }
            LogSink::Stderr => to_stderr(format!("{tag} {line}\n").into_bytes()),
            LogSink::Capture(log) => {
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .guest
                    .push(line.to_string());
            }
        }
    }

    /// Writes one line of the host's own about a handler (`netlet: [echo] ...`).
    pub fn host(&self, tag: &LogTag, msg: &str) {
        match self {
            LogSink::Stderr if tracing_on() => {
                tracing::warn!(
                    target: HOST,
                    handler = &*tag.handler,
                    shard = tag.shard,
                    connection = tag.connection,
                    "{msg}"
                );
            }
            LogSink::Stderr => to_stderr(format!("netlet: {tag} {msg}\n").into_bytes()),
            LogSink::Capture(log) => {
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .host
                    .push(format!("netlet: {tag} {msg}"));
            }
        }
    }
}
