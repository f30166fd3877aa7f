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

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is written out anyway.
pub const MAX_LINE: usize = 16 * 1024;

/// How the binary's log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line each (`[echo] hello`, `netlet: [echo] ...`).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, handler, shard,
    /// connection.
    Json,
}

/// Installs the process-wide `tracing` subscriber that writes to stderr (once; later
/// calls do nothing).
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO);
    let _ = match format {
        LogFormat::Text => builder.event_format(TextFormat).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

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

/// Targets: guest output, the host's lines about a handler, the supervisor's lines.
const GUEST: &str = "netlet::guest";
const HOST: &str = "netlet::host";
const DEPLOY: &str = "netlet::deploy";

fn tracing_on() -> bool {
    tracing::dispatcher::has_been_set()
}

/// A line of the supervisor's (`netlet: NAME: ...`, or `netlet: ...`).
pub fn deploy(handler: Option<&str>, msg: &str) {
    if tracing_on() {
        tracing::info!(target: DEPLOY, handler, "{msg}");
    } else {
        match handler {
            Some(h) => eprintln!("netlet: {h}: {msg}"),
            None => eprintln!("netlet: {msg}"),
        }
    }
}

/// The readable format: the same lines netlet always printed.
struct TextFormat;

#[derive(Default)]
struct Fields {
    message: String,
    handler: Option<String>,
    shard: Option<u64>,
    connection: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "handler" => self.handler = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "shard" => self.shard = Some(value),
            "connection" => self.connection = Some(value),
            _ => {}
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let tag = fields.handler.as_deref().map(|h| LogTag {
            handler: h.into(),
            shard: fields.shard.map(|s| s as usize),
            connection: fields.connection,
        });
        let target = event.metadata().target();
        match (target, tag) {
            (GUEST, Some(tag)) => writeln!(writer, "{tag} {}", fields.message),
            (HOST, Some(tag)) => writeln!(writer, "netlet: {tag} {}", fields.message),
            (_, Some(tag)) => writeln!(writer, "netlet: {}: {}", tag.handler, fields.message),
            (_, None) => writeln!(writer, "netlet: {}", fields.message),
        }
    }
}

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
            LogSink::Stderr => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{tag} {line}");
            }
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
            LogSink::Stderr => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "netlet: {tag} {msg}");
            }
            LogSink::Capture(log) => {
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .host
                    .push(format!("netlet: {tag} {msg}"));
            }
        }
    }
}

/// A guest's stdout or stderr.
#[derive(Clone)]
pub struct GuestOutput {
    tag: LogTag,
    sink: LogSink,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    pub fn new(tag: LogTag, sink: LogSink) -> Self {
        Self {
            tag,
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
        self.sink.line(&self.tag, &String::from_utf8_lossy(line));
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
