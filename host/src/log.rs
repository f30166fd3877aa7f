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

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is written out anyway.
pub const MAX_LINE: usize = 16 * 1024;

/// Bytes of log lines that may wait for stderr; past it, lines are dropped (counted).
pub const QUEUE_BYTES: usize = 1 << 20;

/// Lines per second one instance may print, and the burst it may print at once.
pub const GUEST_LINES: (f64, f64) = (1000.0, 2000.0);

/// Host lines per second about one instance (denials, refusals), and the burst.
pub const HOST_LINES: (f64, f64) = (10.0, 20.0);

/// Lines waiting for stderr, and the thread that writes them.
struct Queue {
    lines: Mutex<(VecDeque<Vec<u8>>, usize)>,
    ready: Condvar,
    /// Lines that did not fit, not yet reported.
    dropped: AtomicU64,
    /// Lines queued and not yet written, for [`flush`].
    pending: AtomicU64,
    done: Condvar,
}

fn queue() -> &'static Queue {
    static QUEUE: OnceLock<&'static Queue> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let queue: &'static Queue = Box::leak(Box::new(Queue {
            lines: Mutex::new((VecDeque::new(), 0)),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            done: Condvar::new(),
        }));
        let _ = std::thread::Builder::new()
            .name("netlet-log".into())
            .spawn(move || write_lines(queue));
        queue
    })
}

/// The log thread: writes queued lines to stderr, blocking on it if it must (only this
/// thread waits), and reports dropped lines.
fn write_lines(queue: &'static Queue) {
    let lock =
        |m: &'static Mutex<(VecDeque<Vec<u8>>, usize)>| m.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let line = {
            let mut q = lock(&queue.lines);
            loop {
                if let Some(line) = q.0.pop_front() {
                    q.1 -= line.len();
                    break line;
                }
                q = queue.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let mut err = std::io::stderr().lock();
        let dropped = queue.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                err,
                "netlet: {dropped} log line(s) dropped: stderr was not keeping up"
            );
        }
        let _ = err.write_all(&line);
        drop(err);
        let _q = lock(&queue.lines);
        queue.pending.fetch_sub(1, Ordering::Relaxed);
        queue.done.notify_all();
    }
}

/// Queues one finished line (with its newline) for stderr; never blocks. A line that
/// does not fit is dropped and counted.
pub fn to_stderr(line: Vec<u8>) {
    let queue = queue();
    let mut q = queue.lines.lock().unwrap_or_else(|p| p.into_inner());
    if q.1 + line.len() > QUEUE_BYTES {
        queue.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    q.1 += line.len();
    q.0.push_back(line);
    queue.pending.fetch_add(1, Ordering::Relaxed);
    queue.ready.notify_one();
}

/// Waits (at most `timeout`) until every queued line is written: before the process
/// exits, so its last words are not lost.
pub fn flush(timeout: Duration) {
    let queue = queue();
    let deadline = Instant::now() + timeout;
    let mut q = queue.lines.lock().unwrap_or_else(|p| p.into_inner());
    while queue.pending.load(Ordering::Relaxed) > 0 {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        q = queue
            .done
            .wait_timeout(q, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// `tracing`'s writer: each event's text goes to the queue as one line.
#[derive(Clone, Copy, Default)]
struct QueueWriter;

/// One event being formatted.
struct EventText(Vec<u8>);

impl Write for EventText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventText {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            to_stderr(std::mem::take(&mut self.0));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueueWriter {
    type Writer = EventText;

    fn make_writer(&'a self) -> Self::Writer {
        EventText(Vec::new())
    }
}

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
        .with_writer(QueueWriter)
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
        to_stderr(
            match handler {
                Some(h) => format!("netlet: {h}: {msg}\n"),
                None => format!("netlet: {msg}\n"),
            }
            .into_bytes(),
        );
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

/// A guest's stdout or stderr.
#[derive(Clone)]
pub struct GuestOutput {
    log: InstanceLog,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    pub fn new(log: InstanceLog) -> Self {
        Self {
            log,
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
        self.log.guest(&String::from_utf8_lossy(line));
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
