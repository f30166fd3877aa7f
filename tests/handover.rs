//! Running under an orchestrator: `/healthz` and `/readyz` on the metrics listener,
//! SIGTERM's drain (readiness off at once, listeners kept for `--drain-delay`, then
//! `--grace`), and handing a port from one netlet process to another with
//! `--reuse-port` while clients keep connecting.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// `GET PATH` on the metrics listener: the status code and the body.
fn probe(metrics: SocketAddr, path: &str) -> (u16, String) {
    let mut s = connect(metrics);
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The metrics address netlet printed.
fn metrics_addr(netlet: &Netlet) -> SocketAddr {
    let line = netlet.stdout.wait_for("metrics on http://", WAIT);
    line.split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .parse()
        .unwrap()
}

/// Polls `path` until its status is `status`; returns the body and how long it took.
fn wait_status(metrics: SocketAddr, path: &str, status: u16) -> (String, Duration) {
    let start = Instant::now();
    loop {
        let (got, body) = probe(metrics, path);
        if got == status {
            return (body, start.elapsed());
        }
        assert!(
            start.elapsed() < WAIT,
            "{path} stayed {got} ({body:?}), expected {status}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The echo example's banner, then one echoed line.
fn echo_once(s: &mut TcpStream, line: &[u8]) {
    s.write_all(line).unwrap();
    assert_eq!(read_exact(s, line.len()), line);
}

fn greeted(addr: SocketAddr) -> TcpStream {
    let mut s = connect(addr);
    assert_eq!(read_exact(&mut s, 13), b"Echo server\r\n");
    s
}

#[test]
fn probes_answer_and_sigterm_turns_readiness_off_before_the_listeners_close() {
    let drain_delay = Duration::from_secs(2);
    let mut netlet = Netlet::run(
        "echo",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--drain-delay",
            "2s",
            "--grace",
            "20s",
        ],
    );
    let metrics = metrics_addr(&netlet);
    let addr = netlet.tcp[0];
    let (status, body) = probe(metrics, "/healthz");
    assert_eq!(
        (status, body.as_str()),
        (200, "alive: 1 handler(s) answering\n")
    );
    let (status, body) = probe(metrics, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (200, "ready: 1 handler(s) serving\n")
    );
    assert_eq!(probe(metrics, "/nope").0, 404);

    let mut open = greeted(addr);
    netlet.signal(libc::SIGTERM);
    let sent = Instant::now();
    let (body, _) = wait_status(metrics, "/readyz", 503);
    assert!(body.starts_with("not ready: draining"), "{body}");
    // Readiness is off, but the listener still takes connections for the delay: a load
    // balancer that has not seen the change yet loses nothing.
    let mut late = greeted(addr);
    echo_once(&mut late, b"late\n");
    assert!(
        sent.elapsed() < drain_delay,
        "readiness flipped and a connection was served only after the drain delay"
    );
    let (status, body) = probe(metrics, "/healthz");
    assert_eq!((status, body.as_str()), (200, "alive: draining\n"));
    // Then the listener closes...
    while TcpStream::connect(addr).is_ok() {
        assert!(sent.elapsed() < WAIT, "the listener never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sent.elapsed() >= drain_delay,
        "the listener closed after {:?}, before --drain-delay",
        sent.elapsed()
    );
    // ...and the open connections have their grace period.
    echo_once(&mut open, b"still here\n");
    echo_once(&mut late, b"me too\n");
    drop(open);
    drop(late);
    assert!(netlet.wait_exit(WAIT).success());
}

#[test]
fn sigint_closes_the_listeners_at_once_whatever_the_drain_delay() {
    let mut netlet = Netlet::run(
        "echo",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--drain-delay",
            "1m",
            "--grace",
            "20s",
        ],
    );
    let addr = netlet.tcp[0];
    let mut open = greeted(addr);
    netlet.signal(libc::SIGINT);
    let sent = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(sent.elapsed() < WAIT, "the listener never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    echo_once(&mut open, b"grace\n");
    drop(open);
    assert!(netlet.wait_exit(WAIT).success());
}

#[test]
fn healthz_fails_while_a_shard_is_stuck_in_a_call_and_recovers() {
    let netlet = Netlet::run(
        "hostile",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--event-timeout",
            "4s",
        ],
    );
    let metrics = metrics_addr(&netlet);
    assert_eq!(probe(metrics, "/healthz").0, 200);
    let mut s = connect(netlet.tcp[0]);
    s.write_all(b"!loop\n").unwrap();
    let (body, _) = wait_status(metrics, "/healthz", 503);
    assert_eq!(body, "handler hostile: shard 0 did not answer within 1s\n");
    // Readiness does not ping: the handler is still started.
    assert_eq!(probe(metrics, "/readyz").0, 200);
    // The event timeout stops the loop; the restarted instance answers again.
    netlet.stderr.wait_for("starting a new instance", WAIT);
    wait_status(metrics, "/healthz", 200);
}

#[test]
fn a_handler_that_stopped_is_not_ready() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("handover-stopped");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("netlet.toml");
    std::fs::write(
        &manifest,
        format!(
            "[handler.echo]\ncomponent = \"{}\"\ntcp = \"127.0.0.1:0\"\n\
             [handler.fragile]\ncomponent = \"{}\"\ntcp = \"127.0.0.1:0\"\non-trap = \"close\"\n\
             event-timeout = \"100ms\"\n",
            guest("echo").display(),
            guest("hostile").display()
        ),
    )
    .unwrap();
    let netlet = Netlet::start(&["up", manifest.to_str().unwrap(), "--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&netlet);
    wait_status(metrics, "/readyz", 200);
    let fragile = netlet
        .stdout
        .wait_for("(fragile)", WAIT)
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    let mut s = connect(fragile);
    s.write_all(b"!loop\n").unwrap();
    let (body, _) = wait_status(metrics, "/readyz", 503);
    assert_eq!(body, "not ready: handler fragile has stopped\n");
}
