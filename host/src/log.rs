//! Where a guest's stdout and stderr go: the host's stderr, one line at a time, each
//! prefixed with the component's name (`[echo] hello`), or a shared buffer that tests
//! and embedders read.
//!
//! Lines are cut at [`MAX_LINE`] bytes so a guest printing without newlines cannot grow
//! the host's memory.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is written out anyway.
pub const MAX_LINE: usize = 16 * 1024;

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
    pub fn line(&self, prefix: &str, line: &str) {
        match self {
            LogSink::Stderr => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{prefix} {line}");
            }
            LogSink::Capture(log) => {
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .guest
                    .push(line.to_string());
            }
        }
    }

    /// Writes one line of the host's own (`netlet: ...`).
    pub fn host(&self, line: &str) {
        match self {
            LogSink::Stderr => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
            LogSink::Capture(log) => {
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .host
                    .push(line.to_string());
            }
        }
    }
}

/// A guest's stdout or stderr.
#[derive(Clone)]
pub struct GuestOutput {
    prefix: Arc<str>,
    sink: LogSink,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    pub fn new(prefix: Arc<str>, sink: LogSink) -> Self {
        Self {
            prefix,
            sink,
            partial: Arc::default(),
        }
    }

    fn write_bytes(&self, mut bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(n) = bytes.iter().position(|&b| b == b'\n') {
            partial.extend_from_slice(&bytes[..n]);
            self.emit(&mut partial);
            bytes = &bytes[n + 1..];
        }
        partial.extend_from_slice(bytes);
        while partial.len() >= MAX_LINE {
            let rest = partial.split_off(MAX_LINE);
            self.emit(&mut partial);
            *partial = rest;
        }
    }

    fn emit(&self, line: &mut Vec<u8>) {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.sink.line(&self.prefix, &String::from_utf8_lossy(line));
        line.clear();
    }

    /// Writes out an unfinished last line (when the instance goes away).
    pub fn finish(&self) {
        let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        if !partial.is_empty() {
            self.emit(&mut partial);
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
