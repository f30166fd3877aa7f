//! The HTTP comparison: `wrk` (keep-alive) against `http-hello` on netlet, a native
//! hyper 1.x server on one thread and Node's `http` server. Two things show whether
//! wrk itself is the limit: a native server answering every request with canned bytes
//! (no parsing, the least work a server can do per request), and wrk's own CPU use in
//! each run (its one thread at 100% would mean it is the bottleneck). Also the
//! reference servers themselves (`netlet-bench serve-hyper`, `serve-canned`, and
//! Node's script).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::options::Options;
use crate::servers::{self, Kind};

/// The large response's size.
pub const BIG: usize = 1 << 20;

fn body_for(path: &str, big: &Bytes) -> Bytes {
    if path == "/1mib" {
        big.clone()
    } else {
        Bytes::from_static(b"Hello World\n")
    }
}

/// A hyper 1.x HTTP/1.1 server on a one-thread tokio runtime: `Hello World\n`, or
/// 1 MiB at `/1mib`. Prints `tcp ADDR`.
pub fn serve_hyper(addr: SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("tcp {}", listener.local_addr()?);
        let big = Bytes::from(vec![b'x'; BIG]);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            // As Node's http server (noDelay: true) and netlet's SDK do.
            let _ = stream.set_nodelay(true);
            let big = big.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let body = body_for(req.uri().path(), &big);
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("Content-Type", "text/plain")
                                .body(Full::new(body))
                                .expect("a valid response"),
                        )
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// wrk's ceiling: answers each request (each `\r\n\r\n` seen) with the same canned
/// response of `body` bytes, parsing nothing. Prints `tcp ADDR`.
pub fn serve_canned(addr: SocketAddr, body: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("tcp {}", listener.local_addr()?);
        let mut canned = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: {body}\r\n\r\n"
        )
        .into_bytes();
        if body == 12 {
            canned.extend_from_slice(b"Hello World\n");
        } else {
            canned.resize(canned.len() + body, b'x');
        }
        let canned = Bytes::from(canned);
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let canned = canned.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                // The last three bytes of the previous read, for a terminator split
                // across reads.
                let mut tail = [0u8; 3];
                let mut out = Vec::new();
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let mut joined = tail.to_vec();
                    joined.extend_from_slice(&buf[..n]);
                    let requests = joined.windows(4).filter(|w| *w == b"\r\n\r\n").count();
                    tail.copy_from_slice(&joined[joined.len() - 3..]);
                    out.clear();
                    for _ in 0..requests {
                        out.extend_from_slice(&canned);
                    }
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// What one wrk run measured.
#[derive(Clone, Debug, Default)]
struct Cell {
    rps: Option<f64>,
    mb_s: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    /// wrk's own CPU time over the run's wall time: near 1.0 (its one thread busy
    /// all the time), wrk was the bottleneck.
    wrk_cpu: Option<f64>,
    note: Option<String>,
}

/// CPU time (user + system) of the children this process has waited for.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A wrk latency such as `123.45us`, `1.23ms` or `1.01s`, in microseconds.
fn latency_us(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

/// A wrk transfer rate such as `1.23GB` or `456.7MB`, in MB/s.
fn transfer_mb(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "B" => n / 1e6,
        "KB" => n * 1024.0 / 1e6,
        "MB" => n * 1024.0 * 1024.0 / 1e6,
        "GB" => n * 1024.0 * 1024.0 * 1024.0 / 1e6,
        _ => return None,
    })
}

/// Runs `wrk -t1 -cN -dS --latency URL` (one wrk thread: the other core is the
/// server's) and reads its report; a run with errors or non-2xx answers fails.
fn wrk(url: &str, conns: usize, duration: Duration) -> anyhow::Result<Cell> {
    let secs = duration.as_secs().max(1);
    // The servers under test are waited for only once dropped, after this: the
    // children's CPU time that grows during `output()` is wrk's.
    let cpu_before = children_cpu();
    let started = std::time::Instant::now();
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--timeout",
            "10s",
            "--latency",
            url,
        ])
        .output()
        .context("running wrk (Debian: apt-get install wrk)")?;
    let wrk_cpu = (children_cpu() - cpu_before).as_secs_f64() / started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk saw errors:\n{text}");
    }
    let mut cell = Cell {
        wrk_cpu: Some(wrk_cpu),
        ..Cell::default()
    };
    let mut in_distribution = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => cell.rps = n.parse().ok(),
            ["Transfer/sec:", n] => cell.mb_s = transfer_mb(n),
            ["Latency", "Distribution", ..] => in_distribution = true,
            ["50%", v] if in_distribution => cell.p50_us = latency_us(v),
            ["99%", v] if in_distribution => cell.p99_us = latency_us(v),
            _ => {}
        }
    }
    if cell.rps.is_none() {
        bail!("no Requests/sec in wrk's report:\n{text}");
    }
    Ok(cell)
}

struct Row {
    name: &'static str,
    path: &'static str,
    conns: usize,
}

const ROWS: &[Row] = &[
    Row {
        name: "HTTP hello, keep-alive × 1 conn",
        path: "/",
        conns: 1,
    },
    Row {
        name: "HTTP hello, keep-alive × 32 conns",
        path: "/",
        conns: 32,
    },
    Row {
        name: "HTTP 1 MiB response, keep-alive × 1 conn",
        path: "/1mib",
        conns: 1,
    },
    Row {
        name: "HTTP 1 MiB response, keep-alive × 4 conns",
        path: "/1mib",
        conns: 4,
    },
];

fn fmt_cell(cell: &Cell, big: bool) -> String {
    if let Some(note) = &cell.note {
        return note.clone();
    }
    let Some(rps) = cell.rps else {
        return "failed".into();
    };
    let mut s = if rps >= 10_000.0 {
        format!("{:.1}k req/s", rps / 1000.0)
    } else {
        format!("{rps:.0} req/s")
    };
    if big && let Some(mb) = cell.mb_s {
        let _ = write!(s, " ({mb:.0} MB/s)");
    }
    if let (Some(p50), Some(p99)) = (cell.p50_us, cell.p99_us) {
        let _ = write!(s, ", p50/p99 {p50:.0}/{p99:.0} µs");
    }
    s
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

/// Runs the HTTP table; returns its markdown and the netlet cases that failed.
pub fn table(opts: &Options) -> anyhow::Result<(String, Vec<String>)> {
    let rows: Vec<&Row> = ROWS
        .iter()
        .filter(|r| opts.only.as_deref().is_none_or(|o| r.name.contains(o)))
        .collect();
    let mut out = String::new();
    let mut failures = Vec::new();
    if rows.is_empty() {
        return Ok((out, failures));
    }
    eprintln!("== HTTP");
    let _ = writeln!(
        out,
        "\n### HTTP: wrk -t1 (keep-alive) against one-thread servers\n"
    );
    let _ = writeln!(
        out,
        "| load | canned bytes, no parsing (1 thread) | hyper 1.x (1 thread) | Node http | netlet | netlet/hyper | netlet/Node | p99 netlet/hyper | wrk's CPU: canned / hyper / Node / netlet |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(9));
    for row in rows {
        let big = row.path == "/1mib";
        let kinds = [
            Kind::HttpCanned {
                body: if big { BIG } else { 12 },
            },
            Kind::HttpHyper,
            Kind::HttpNode,
            Kind::HttpNetlet {
                guest: if big {
                    "bench_http.wasm"
                } else {
                    "http_hello.wasm"
                },
            },
        ];
        let mut cells = Vec::new();
        for kind in &kinds {
            eprintln!("   {} / {kind:?}", row.name);
            let result = servers::start(kind, &opts.paths, false).and_then(|server| {
                let addr = server.tcp.context("no TCP address")?;
                wrk(
                    &format!("http://{addr}{}", row.path),
                    row.conns,
                    opts.duration,
                )
            });
            let cell = result.unwrap_or_else(|e| {
                eprintln!("      failed: {e:#}");
                if matches!(kind, Kind::HttpNetlet { .. }) {
                    failures.push(format!("{} / netlet: {e:#}", row.name));
                }
                Cell {
                    note: Some(format!("failed: {e}")),
                    ..Cell::default()
                }
            });
            eprintln!("      {}", fmt_cell(&cell, big));
            cells.push(cell);
        }
        let [ceiling, hyper, node, netlet] = [&cells[0], &cells[1], &cells[2], &cells[3]];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            fmt_cell(ceiling, big),
            fmt_cell(hyper, big),
            fmt_cell(node, big),
            fmt_cell(netlet, big),
            ratio(netlet.rps, hyper.rps),
            ratio(netlet.rps, node.rps),
            ratio(netlet.p99_us, hyper.p99_us),
            cells
                .iter()
                .map(|c| c
                    .wrk_cpu
                    .map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0)))
                .collect::<Vec<_>>()
                .join(" / "),
        );
    }
    Ok((out, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_units() {
        assert_eq!(latency_us("123.45us"), Some(123.45));
        assert_eq!(latency_us("1.50ms"), Some(1500.0));
        assert_eq!(latency_us("2.00s"), Some(2e6));
        assert_eq!(transfer_mb("1.00GB").map(|v| v.round()), Some(1074.0));
    }
}
