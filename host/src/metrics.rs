//! `--metrics ADDR`: the handlers' counters in Prometheus' text format on `/metrics`, and
//! the probes an orchestrator asks: `/healthz` (the process is alive and every shard's
//! loop answers) and `/readyz` (every handler has started and the process is not
//! draining), each `200` or `503` with a one-line reason.
//!
//! A small blocking HTTP/1.1 server on its own thread: scrapes and probes are rare and
//! tiny, and keeping it off the shards keeps it off the hot path. Every read and write is
//! bounded by a timeout, so a client that stalls cannot hold it for long.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::serve::Probe;
use crate::stats::{CALL_BUCKETS, HandlerStats, PortStats};

/// How long `/healthz` waits for a shard's loop to answer. A loop answers between guest
/// calls, so a call longer than this (up to `--event-timeout`) fails one probe; an
/// orchestrator acts on several failures in a row.
pub const HEALTH_WAIT: Duration = Duration::from_secs(1);

/// Where the process is in its life, for `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Loading components, binding, running `init`.
    Starting = 0,
    /// Every handler has started.
    Serving = 1,
    /// SIGINT/SIGTERM came: listeners close (after `--drain-delay`), connections finish.
    Draining = 2,
}

/// A running handler as the metrics listener sees it.
struct Registered {
    stats: Arc<HandlerStats>,
    probe: Probe,
}

/// The running handlers (their counters, a probe of their shards) and the process's
/// phase: what `/metrics`, `/healthz` and `/readyz` answer from.
#[derive(Default)]
pub struct Registry {
    handlers: Mutex<BTreeMap<String, Registered>>,
    phase: AtomicU8,
}

impl Registry {
    fn handlers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Registered>> {
        self.handlers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handler has started (or restarted) as `name`.
    pub fn insert(&self, name: &str, stats: Arc<HandlerStats>, probe: Probe) {
        self.handlers()
            .insert(name.to_string(), Registered { stats, probe });
    }

    /// Handler `name` has gone.
    pub fn remove(&self, name: &str) {
        self.handlers().remove(name);
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// `/healthz`: alive, and every shard's loop answers (a draining handler's shards
    /// may have ended).
    pub fn healthz(&self) -> Result<String, String> {
        let phase = self.phase();
        let probes: Vec<(String, Probe)> = self
            .handlers()
            .iter()
            .map(|(name, r)| (name.clone(), r.probe.clone()))
            .collect();
        for (name, probe) in &probes {
            match probe.check(HEALTH_WAIT) {
                Err(why) if !(phase == Phase::Draining && why.ends_with("has stopped")) => {
                    return Err(format!("handler {name}: {why}"));
                }
                _ => {}
            }
        }
        Ok(match phase {
            Phase::Starting => "alive: starting".to_string(),
            Phase::Serving => format!("alive: {} handler(s) answering", probes.len()),
            Phase::Draining => "alive: draining".to_string(),
        })
    }

    /// `/readyz`: every handler started and serving, and not draining.
    pub fn readyz(&self) -> Result<String, String> {
        match self.phase() {
            Phase::Starting => {
                Err("not ready: starting (loading and starting the handlers)".into())
            }
            Phase::Draining => {
                Err("not ready: draining (stopping: listeners close after --drain-delay)".into())
            }
            Phase::Serving => {
                let handlers = self.handlers();
                if let Some((name, _)) = handlers.iter().find(|(_, r)| r.probe.stopped()) {
                    return Err(format!("not ready: handler {name} has stopped"));
                }
                Ok(format!("ready: {} handler(s) serving", handlers.len()))
            }
        }
    }
}

/// Binds `addr` and serves `/metrics`, `/healthz` and `/readyz` from a background
/// thread; returns the bound address.
pub fn serve(addr: SocketAddr, registry: Arc<Registry>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("netlet-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &registry);
            }
        })?;
    Ok(bound)
}

fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(registry),
        ),
        ("GET" | "HEAD", "/healthz" | "/readyz") => {
            let verdict = if path == "/healthz" {
                registry.healthz()
            } else {
                registry.readyz()
            };
            match verdict {
                Ok(why) => ("200 OK", "text/plain; charset=utf-8", why + "\n"),
                Err(why) => (
                    "503 Service Unavailable",
                    "text/plain; charset=utf-8",
                    why + "\n",
                ),
            }
        }
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "netlet: metrics are on /metrics, probes on /healthz and /readyz\n".to_string(),
        ),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "not found\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "use GET\n".into()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response)
}

/// Escapes a label value (Prometheus: backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics text for every registered handler.
pub fn render(registry: &Registry) -> String {
    let handlers: Vec<(String, Arc<HandlerStats>)> = registry
        .handlers()
        .iter()
        .map(|(n, r)| (label(n), r.stats.clone()))
        .collect();
    let get = HandlerStats::get;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    // Per listener: TCP ports are `tcp://ADDR` (and `outbound` for client sockets), UDP
    // ports `udp://ADDR` (and `udp:guest` for sockets the guest made).
    let tcp_rows = |f: &dyn Fn(&PortStats) -> u64, listeners_only: bool| -> Vec<(String, u64)> {
        let mut rows = Vec::new();
        for (h, s) in &handlers {
            for (i, p) in s.tcp.iter().enumerate() {
                if i == 0 && listeners_only {
                    continue;
                }
                let scheme = if p.tls { "tls" } else { "tcp" };
                let l = p
                    .addr
                    .map_or("outbound".to_string(), |a| format!("{scheme}://{a}"));
                rows.push((format!("handler=\"{h}\",listener=\"{l}\""), f(p)));
            }
        }
        rows
    };
    let udp_rows = |f: &dyn Fn(&PortStats) -> u64| -> Vec<(String, u64)> {
        let mut rows = Vec::new();
        for (h, s) in &handlers {
            for p in s.udp.iter() {
                let l = p
                    .addr
                    .map_or("udp:guest".to_string(), |a| format!("udp://{a}"));
                rows.push((format!("handler=\"{h}\",listener=\"{l}\""), f(p)));
            }
        }
        rows
    };
    let per_handler = |f: &dyn Fn(&HandlerStats) -> u64| -> Vec<(String, u64)> {
        handlers
            .iter()
            .map(|(h, s)| (format!("handler=\"{h}\""), f(s)))
            .collect()
    };
    family(
        "netlet_connections_active",
        "gauge",
        "Accepted TCP connections open now.",
        tcp_rows(&|p| get(&p.connections_active), true),
    );
    family(
        "netlet_connections_total",
        "counter",
        "TCP connections accepted.",
        tcp_rows(&|p| get(&p.connections_total), true),
    );
    family(
        "netlet_connections_dropped_total",
        "counter",
        "TCP connections closed at once because of max-connections.",
        tcp_rows(&|p| get(&p.connections_dropped), true),
    );
    let tls_rows = |f: &dyn Fn(&PortStats) -> u64| -> Vec<(String, u64)> {
        let mut rows = Vec::new();
        for (h, s) in &handlers {
            for p in s.tcp.iter().filter(|p| p.tls) {
                let l = p.addr.map(|a| format!("tls://{a}")).unwrap_or_default();
                rows.push((format!("handler=\"{h}\",listener=\"{l}\""), f(p)));
            }
        }
        rows
    };
    family(
        "netlet_tls_handshakes_total",
        "counter",
        "TLS handshakes completed on a TLS listener.",
        tls_rows(&|p| get(&p.tls_handshakes)),
    );
    family(
        "netlet_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed (never seen by the handler).",
        tls_rows(&|p| get(&p.tls_handshake_failures)),
    );
    family(
        "netlet_tls_handshake_timeouts_total",
        "counter",
        "TLS handshakes cut at tls-handshake-timeout.",
        tls_rows(&|p| get(&p.tls_handshake_timeouts)),
    );
    let mut bytes_in = tcp_rows(&|p| get(&p.bytes_in), false);
    bytes_in.extend(udp_rows(&|p| get(&p.bytes_in)));
    family(
        "netlet_bytes_received_total",
        "counter",
        "Bytes read from peers (TCP data, UDP payloads).",
        bytes_in,
    );
    let mut bytes_out = tcp_rows(&|p| get(&p.bytes_out), false);
    bytes_out.extend(udp_rows(&|p| get(&p.bytes_out)));
    family(
        "netlet_bytes_sent_total",
        "counter",
        "Bytes the handler wrote (TCP data queued, UDP payloads sent).",
        bytes_out,
    );
    family(
        "netlet_udp_datagrams_received_total",
        "counter",
        "UDP datagrams received.",
        udp_rows(&|p| get(&p.datagrams_in)),
    );
    family(
        "netlet_udp_datagrams_sent_total",
        "counter",
        "UDP datagrams sent.",
        udp_rows(&|p| get(&p.datagrams_out)),
    );
    family(
        "netlet_udp_datagrams_dropped_total",
        "counter",
        "UDP datagrams the handler sent that were refused (full send queue) or failed.",
        udp_rows(&|p| get(&p.datagrams_dropped)),
    );
    family(
        "netlet_events_delivered_total",
        "counter",
        "Events handed to the handler's instances.",
        per_handler(&|s| get(&s.events_delivered)),
    );
    family(
        "netlet_guest_calls_total",
        "counter",
        "Calls into the handler (each carries a batch of events).",
        per_handler(&|s| get(&s.guest_calls)),
    );
    let mut traps = Vec::new();
    for (h, s) in &handlers {
        for (kind, c) in [
            ("deadline", &s.traps_deadline),
            ("memory", &s.traps_memory),
            ("fault", &s.traps_fault),
        ] {
            traps.push((format!("handler=\"{h}\",kind=\"{kind}\""), get(c)));
        }
    }
    family(
        "netlet_traps_total",
        "counter",
        "Instances stopped by a trap: deadline (event-timeout), memory (max-memory), fault (panic, bad handle, ...).",
        traps,
    );
    family(
        "netlet_instance_restarts_total",
        "counter",
        "Instances started again after a trap.",
        per_handler(&|s| get(&s.restarts)),
    );
    family(
        "netlet_swaps_total",
        "counter",
        "Hot swaps of the handler's code (counted per shard).",
        per_handler(&|s| get(&s.swaps)),
    );
    let _ = writeln!(
        out,
        "# HELP netlet_guest_call_duration_seconds How long each call into the handler took.\n\
         # TYPE netlet_guest_call_duration_seconds histogram"
    );
    for (h, s) in &handlers {
        let (cumulative, sum) = s.call_duration.snapshot();
        for (bound, count) in CALL_BUCKETS.iter().zip(&cumulative) {
            let _ = writeln!(
                out,
                "netlet_guest_call_duration_seconds_bucket{{handler=\"{h}\",le=\"{bound}\"}} {count}"
            );
        }
        let total = cumulative.last().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "netlet_guest_call_duration_seconds_bucket{{handler=\"{h}\",le=\"+Inf\"}} {total}\n\
             netlet_guest_call_duration_seconds_sum{{handler=\"{h}\"}} {sum}\n\
             netlet_guest_call_duration_seconds_count{{handler=\"{h}\"}} {total}"
        );
    }
    out
}
