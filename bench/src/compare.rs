//! The comparison: the same loads against each server, in one run, printed as a table
//! with absolute figures and the ratios netlet/native and netlet/Node.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::load::{self, Outcome};
use crate::options::Options;
use crate::servers::{self, Kind, Server};

#[derive(Clone, Copy, Debug)]
enum Case {
    PingPong { conns: usize, size: usize },
    Stream { conns: usize, chunk: usize },
    Churn { concurrency: usize },
    Udp { sockets: usize, size: usize },
    Idle,
    ColdStart,
    TlsStream { conns: usize, chunk: usize },
    TlsChurn { concurrency: usize },
}

struct Row {
    name: &'static str,
    case: Case,
    unit: &'static str,
    /// For memory and start time, lower is better.
    lower_is_better: bool,
}

const ROWS: &[Row] = &[
    Row {
        name: "TCP ping-pong 64 B × 32 conns",
        case: Case::PingPong {
            conns: 32,
            size: 64,
        },
        unit: "msg/s",
        lower_is_better: false,
    },
    Row {
        name: "TCP ping-pong 4 KiB × 8 conns",
        case: Case::PingPong {
            conns: 8,
            size: 4096,
        },
        unit: "msg/s",
        lower_is_better: false,
    },
    Row {
        name: "TCP stream 64 KiB chunks × 4 conns",
        case: Case::Stream {
            conns: 4,
            chunk: 65536,
        },
        unit: "MB/s",
        lower_is_better: false,
    },
    Row {
        name: "TCP churn × 16 (connect, 32 B echo, close)",
        case: Case::Churn { concurrency: 16 },
        unit: "conn/s",
        lower_is_better: false,
    },
    Row {
        name: "UDP ping-pong 64 B × 16 sockets",
        case: Case::Udp {
            sockets: 16,
            size: 64,
        },
        unit: "msg/s",
        lower_is_better: false,
    },
    Row {
        name: "TLS stream 64 KiB chunks × 4 conns",
        case: Case::TlsStream {
            conns: 4,
            chunk: 65536,
        },
        unit: "MB/s",
        lower_is_better: false,
    },
    Row {
        name: "TLS handshakes × 16 (connect, handshake, 32 B echo, close)",
        case: Case::TlsChurn { concurrency: 16 },
        unit: "conn/s",
        lower_is_better: false,
    },
    Row {
        name: "idle connections: RSS per connection",
        case: Case::Idle,
        unit: "KiB",
        lower_is_better: true,
    },
    Row {
        name: "cold start (spawn to first echo)",
        case: Case::ColdStart,
        unit: "ms",
        lower_is_better: true,
    },
];

/// One cell: a value, its latencies, and what was lost.
#[derive(Clone, Debug, Default)]
struct Cell {
    value: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    lost: Option<u64>,
    note: Option<String>,
}

fn rt(opts: &Options) -> tokio::runtime::Runtime {
    load::runtime(opts.load_threads)
}

fn tcp(server: &Server) -> anyhow::Result<SocketAddr> {
    server.tcp.context("no TCP address")
}

fn measure(kind: &Kind, case: Case, opts: &Options) -> anyhow::Result<Cell> {
    let d = opts.duration;
    if let Case::ColdStart = case {
        let server = servers::start(kind, &opts.paths, false)?;
        let addr = tcp(&server)?;
        // `started_in` covers spawn to the address line; add the first echo.
        let t = Instant::now();
        rt(opts).block_on(load::time_to_echo(addr, t, Duration::from_secs(30)))?;
        let ms = (server.started_in + t.elapsed()).as_secs_f64() * 1000.0;
        return Ok(Cell {
            value: Some(ms),
            ..Cell::default()
        });
    }
    let tls = matches!(case, Case::TlsStream { .. } | Case::TlsChurn { .. });
    let server = servers::start(kind, &opts.paths, tls)?;
    let cert = &opts.paths.tls.0;
    let outcome: Outcome = match case {
        Case::TlsStream { conns, chunk } => {
            let addr = server.tls.context("no TLS address")?;
            let mut o = rt(opts).block_on(crate::tls::stream(addr, cert, conns, chunk, d))?;
            o.rate /= 1e6;
            o
        }
        Case::TlsChurn { concurrency } => {
            let addr = server.tls.context("no TLS address")?;
            rt(opts).block_on(crate::tls::churn(addr, cert, concurrency, d))?
        }
        Case::PingPong { conns, size } => {
            rt(opts).block_on(load::ping_pong(tcp(&server)?, conns, size, d))?
        }
        Case::Stream { conns, chunk } => {
            let mut o = rt(opts).block_on(load::stream(tcp(&server)?, conns, chunk, d))?;
            o.rate /= 1e6;
            o
        }
        Case::Churn { concurrency } => {
            rt(opts).block_on(load::churn(tcp(&server)?, concurrency, d))?
        }
        Case::Udp { sockets, size } => {
            let Some(addr) = server.udp else {
                return Ok(Cell {
                    note: Some("-".into()),
                    ..Cell::default()
                });
            };
            rt(opts).block_on(load::udp_ping_pong(addr, sockets, size, d))?
        }
        Case::Idle => {
            let addr = tcp(&server)?;
            // Warm up (first connections allocate the server's fixed structures).
            let rt = rt(opts);
            drop(rt.block_on(load::open_idle(addr, 8, Duration::from_secs(10)))?);
            std::thread::sleep(Duration::from_millis(200));
            let before = server.rss_kib()?;
            let conns = rt.block_on(load::open_idle(addr, opts.idle, Duration::from_secs(60)))?;
            std::thread::sleep(Duration::from_millis(500));
            let after = server.rss_kib()?;
            drop(conns);
            let per = after.saturating_sub(before) as f64 / opts.idle as f64;
            return Ok(Cell {
                value: Some(per),
                ..Cell::default()
            });
        }
        Case::ColdStart => unreachable!("handled above"),
    };
    Ok(Cell {
        value: Some(outcome.rate),
        p50_us: outcome.p50_us,
        p99_us: outcome.p99_us,
        lost: outcome.lost,
        note: None,
    })
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "KiB" => format!("{v:.1} {unit}"),
        "ms" => format!("{v:.0} {unit}"),
        "MB/s" => format!("{v:.0} {unit}"),
        _ if v >= 10_000.0 => format!("{:.1}k {unit}", v / 1000.0),
        _ => format!("{v:.0} {unit}"),
    }
}

fn fmt_cell(cell: &Cell, unit: &str) -> String {
    if let Some(note) = &cell.note {
        return note.clone();
    }
    let Some(v) = cell.value else {
        return "failed".into();
    };
    let mut s = fmt_value(v, unit);
    if let (Some(p50), Some(p99)) = (cell.p50_us, cell.p99_us) {
        let _ = write!(s, ", p50/p99 {p50:.0}/{p99:.0} µs");
    }
    if let Some(lost) = cell.lost {
        let _ = write!(s, ", {lost} lost");
    }
    s
}

fn ratio(a: &Cell, b: &Cell) -> String {
    match (a.value, b.value) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

fn p99_ratio(a: &Cell, b: &Cell) -> String {
    match (a.p99_us, b.p99_us) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

/// A named column: which server.
struct Column {
    title: String,
    kind: Kind,
}

/// A ratio column beyond the usual three: its title, and the columns (by index) whose
/// values it divides.
struct Ratio {
    title: &'static str,
    of: usize,
    to: usize,
}

/// Runs one table; returns the netlet cases that failed (a byte mismatch, a dead
/// server), which fail the whole run. A reference server failing a case only marks it.
fn run_table(
    title: &str,
    columns: &[Column],
    extra: &[Ratio],
    opts: &Options,
    out: &mut String,
) -> anyhow::Result<Vec<String>> {
    let mut netlet_failures = Vec::new();
    eprintln!("== {title}");
    let _ = writeln!(out, "\n### {title}\n");
    let mut header = "| load |".to_string();
    for c in columns {
        let _ = write!(header, " {} |", c.title);
    }
    header.push_str(" netlet/native | netlet/Node | p99 netlet/native |");
    for r in extra {
        let _ = write!(header, " {} |", r.title);
    }
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "|{}", " --- |".repeat(columns.len() + 4 + extra.len()));
    for row in ROWS {
        if opts.only.as_deref().is_some_and(|o| !row.name.contains(o)) {
            continue;
        }
        let mut cells = Vec::new();
        for column in columns {
            let skip = (matches!(column.kind, Kind::Netlet { pipe: true, .. })
                && matches!(row.case, Case::Udp { .. } | Case::ColdStart))
                || (matches!(column.kind, Kind::Wstd)
                    && (opts.no_wstd
                        || matches!(
                            row.case,
                            Case::Udp { .. }
                                | Case::ColdStart
                                | Case::TlsStream { .. }
                                | Case::TlsChurn { .. }
                        )))
                || (column.title.starts_with("load ceiling")
                    && matches!(
                        row.case,
                        Case::Idle
                            | Case::ColdStart
                            | Case::TlsStream { .. }
                            | Case::TlsChurn { .. }
                    ));
            let cell = if skip {
                Cell {
                    note: Some("-".into()),
                    ..Cell::default()
                }
            } else {
                eprintln!("   {} / {}", row.name, column.title);
                match measure(&column.kind, row.case, opts) {
                    Ok(cell) => cell,
                    Err(e) => {
                        eprintln!("      failed: {e:#}");
                        if matches!(column.kind, Kind::Netlet { .. }) {
                            netlet_failures.push(format!("{} / {}: {e:#}", row.name, column.title));
                        }
                        Cell {
                            note: Some(format!("failed: {e}")),
                            ..Cell::default()
                        }
                    }
                }
            };
            eprintln!("      {}", fmt_cell(&cell, row.unit));
            cells.push(cell);
        }
        let find = |pred: fn(&Kind) -> bool| {
            columns
                .iter()
                .position(|c| pred(&c.kind))
                .map(|i| &cells[i])
        };
        let native = find(|k| matches!(k, Kind::Native { .. }));
        let node = find(|k| matches!(k, Kind::Node));
        let netlet = find(|k| {
            matches!(
                k,
                Kind::Netlet {
                    isolation: "shared",
                    ..
                }
            )
        });
        let mut line = format!(
            "| {} ({}{}) |",
            row.name,
            row.unit,
            if row.lower_is_better {
                ", lower is better"
            } else {
                ""
            }
        );
        for cell in &cells {
            let _ = write!(line, " {} |", fmt_cell(cell, row.unit));
        }
        let r = |other: Option<&Cell>| match (netlet, other) {
            (Some(n), Some(o)) => ratio(n, o),
            _ => "-".into(),
        };
        let p = match (netlet, native) {
            (Some(n), Some(o)) => p99_ratio(n, o),
            _ => "-".into(),
        };
        let _ = write!(line, " {} | {} | {} |", r(native), r(node), p);
        for x in extra {
            let _ = write!(line, " {} |", ratio(&cells[x.of], &cells[x.to]));
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(netlet_failures)
}

/// Runs every table; returns the markdown.
pub fn compare(opts: &Options) -> anyhow::Result<String> {
    servers::exists(&opts.paths.netlet)?;
    servers::exists(&opts.paths.bench_echo())?;
    // Compile the handler once so the cached runs do not pay for it.
    drop(servers::start(
        &Kind::Netlet {
            isolation: "shared",
            shards: "1".into(),
            cache: true,
            pipe: false,
        },
        &opts.paths,
        false,
    )?);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut out = String::new();
    let single = [
        Column {
            title: "native tokio (1 thread)".into(),
            kind: Kind::Native { threads: 1 },
        },
        Column {
            title: "Node".into(),
            kind: Kind::Node,
        },
        Column {
            title: "netlet shared".into(),
            kind: Kind::Netlet {
                isolation: "shared",
                shards: "1".into(),
                cache: true,
                pipe: false,
            },
        },
        // The same handler with each connection piped into itself by the host
        // (`Socket::pipe`): no `data` events, the bytes moved by `splice`.
        Column {
            title: "netlet pipe".into(),
            kind: Kind::Netlet {
                isolation: "shared",
                shards: "1".into(),
                cache: true,
                pipe: true,
            },
        },
        Column {
            title: "netlet connection".into(),
            kind: Kind::Netlet {
                isolation: "connection",
                shards: "1".into(),
                cache: true,
                pipe: false,
            },
        },
        Column {
            title: "wstd on wasmtime".into(),
            kind: Kind::Wstd,
        },
        // The load generator's own ceiling: the same load against a native server on
        // every core. Where it is well above every other column, the load did not cap
        // what they show.
        Column {
            title: format!("load ceiling: native tokio ({cores} threads)"),
            kind: Kind::Native { threads: cores },
        },
    ];
    let mut failures = run_table(
        "One thread: netlet (1 shard) against a one-thread native server",
        &single,
        &[Ratio {
            title: "pipe/native",
            of: 3,
            to: 0,
        }],
        opts,
        &mut out,
    )?;
    let multi = [
        Column {
            title: format!("native tokio ({cores} threads)"),
            kind: Kind::Native { threads: cores },
        },
        Column {
            title: "Node".into(),
            kind: Kind::Node,
        },
        Column {
            title: "netlet shared".into(),
            kind: Kind::Netlet {
                isolation: "shared",
                shards: "auto".into(),
                cache: true,
                pipe: false,
            },
        },
        Column {
            title: "netlet connection".into(),
            kind: Kind::Netlet {
                isolation: "connection",
                shards: "auto".into(),
                cache: true,
                pipe: false,
            },
        },
        // One shard in the same run: what `--shards auto` must never fall below.
        Column {
            title: "netlet shared, 1 shard".into(),
            kind: Kind::Netlet {
                isolation: "shared",
                shards: "1".into(),
                cache: true,
                pipe: false,
            },
        },
    ];
    failures.extend(run_table(
        &format!("All cores: netlet --shards auto ({cores}) against a multi-thread native server"),
        &multi,
        &[Ratio {
            title: "auto/1 shard",
            of: 2,
            to: 4,
        }],
        opts,
        &mut out,
    )?);
    let cold = [
        Column {
            title: "netlet, compiled component cached".into(),
            kind: Kind::Netlet {
                isolation: "shared",
                shards: "1".into(),
                cache: true,
                pipe: false,
            },
        },
        Column {
            title: "netlet, compiling (--no-cache)".into(),
            kind: Kind::Netlet {
                isolation: "shared",
                shards: "1".into(),
                cache: false,
                pipe: false,
            },
        },
    ];
    let cold_opts = Options {
        only: Some("cold start".into()),
        no_wstd: true,
        ..opts.clone()
    };
    failures.extend(run_table(
        "Cold start with and without the compile cache",
        &cold,
        &[],
        &cold_opts,
        &mut out,
    )?);
    let (http, http_failures) = crate::http::table(opts)?;
    out.push_str(&http);
    failures.extend(http_failures);
    if !opts.no_protocols && crate::protocols::selected(opts) {
        failures.extend(crate::protocols::run(opts, &mut out)?);
    }
    let (ws, ws_failures) = crate::ws::table(opts)?;
    out.push_str(&ws);
    failures.extend(ws_failures);
    if !failures.is_empty() {
        println!("{out}");
        anyhow::bail!(
            "netlet failed {} case(s):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(out)
}
