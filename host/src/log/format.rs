//! The process-wide `tracing` subscriber: readable lines (`[echo] hello`, `netlet:
//! [echo] ...`) or one JSON object per line, and the supervisor's own lines.

use std::fmt;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::LogTag;
use super::queue::{QueueWriter, to_stderr};

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

/// Targets: guest output, the host's lines about a handler, the supervisor's lines.
pub(super) const GUEST: &str = "netlet::guest";
pub(super) const HOST: &str = "netlet::host";
const DEPLOY: &str = "netlet::deploy";

pub(super) fn tracing_on() -> bool {
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
