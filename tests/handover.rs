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

// ---- handing a port over -----------------------------------------------------------

/// What the connecting clients saw.
#[derive(Default, Debug)]
struct Tally {
    made: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    /// Anything else (a timeout, a wrong reply): each with its reason.
    other: Mutex<Vec<String>>,
}

/// One short connection as a client of a web service makes it: connect, the banner,
/// one echo, close.
fn short_connection(addr: SocketAddr, tally: &Tally) {
    let classify = |e: &std::io::Error, tally: &Tally, stage: &str| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
        }
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::ConnectionAborted => {
            tally.reset.fetch_add(1, Ordering::Relaxed);
        }
        _ => tally.other.lock().unwrap().push(format!("{stage}: {e}")),
    };
    let mut s = match TcpStream::connect_timeout(&addr, WAIT) {
        Ok(s) => s,
        Err(e) => return classify(&e, tally, "connect"),
    };
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut banner = [0u8; 13];
    if let Err(e) = s.read_exact(&mut banner) {
        // An end of stream before the banner: the server closed an accepted socket.
        return classify(&e, tally, "banner");
    }
    if let Err(e) = s.write_all(b"hello\n") {
        return classify(&e, tally, "write");
    }
    let mut echo = [0u8; 6];
    if let Err(e) = s.read_exact(&mut echo) {
        return classify(&e, tally, "echo");
    }
    if &banner != b"Echo server\r\n" || &echo != b"hello\n" {
        tally
            .other
            .lock()
            .unwrap()
            .push(format!("wrong reply {banner:?} {echo:?}"));
        return;
    }
    tally.made.fetch_add(1, Ordering::Relaxed);
}

/// Opens `per_second` connections a second (over two threads, so one slow exchange does
/// not slow the rate) until `stop`. `RATE=8000 THREADS=32` in the environment make a
/// harder run (many connections in flight as a listener closes).
fn connection_load(
    addr: SocketAddr,
    per_second: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    let threads: u64 = std::env::var("THREADS").map_or(2, |r| r.parse().unwrap());
    (0..threads)
        .map(|_| {
            let (stop, tally) = (stop.clone(), tally.clone());
            let period = Duration::from_micros(threads * 1_000_000 / per_second);
            std::thread::spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    short_connection(addr, &tally);
                    next += period;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })
        })
        .collect()
}

/// A long-lived connection echoing a numbered line every 10 ms until `until`, then
/// waiting for the server to end it. Returns (echoes sent, echoes answered, when the
/// server ended it).
fn long_lived(mut s: TcpStream, until: Instant) -> (u64, u64, Instant) {
    let (mut sent, mut answered) = (0u64, 0u64);
    while Instant::now() < until {
        let line = format!("{sent:08}\n");
        sent += 1;
        if s.write_all(line.as_bytes()).is_err() {
            break;
        }
        let mut back = [0u8; 9];
        if s.read_exact(&mut back).is_err() {
            break;
        }
        if back == line.as_bytes() {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    (sent, answered, Instant::now())
}

/// One netlet of the handover: echo on `port` with `--reuse-port`.
fn reusing(port: u16) -> Netlet {
    let tcp = format!("127.0.0.1:{port}");
    Netlet::run(
        "echo",
        &[
            "--tcp",
            &tcp,
            "--reuse-port",
            "--metrics",
            "127.0.0.1:0",
            "--drain-delay",
            "500ms",
            "--grace",
            "3s",
        ],
    )
}

fn connections_total(metrics: SocketAddr) -> u64 {
    let (_, body) = probe(metrics, "/metrics");
    body.lines()
        .find(|l| l.starts_with("netlet_connections_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn reuse_port_hands_a_port_to_a_new_process_refusing_and_resetting_nothing() {
    let mut old = reusing(0);
    let addr = old.tcp[0];
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load = connection_load(
        addr,
        std::env::var("RATE").map_or(200, |r| r.parse().unwrap()),
        stop.clone(),
        tally.clone(),
    );
    let mut lost_echoes = 0;
    let mut handovers = Vec::new();
    // Two handovers in a row: old -> new, then new -> newer.
    for round in 0..2 {
        let old_metrics = metrics_addr(&old);
        let lived = greeted(addr);
        std::thread::sleep(Duration::from_millis(300));
        let new = reusing(addr.port());
        let new_metrics = metrics_addr(&new);
        wait_status(new_metrics, "/readyz", 200);
        std::thread::sleep(Duration::from_millis(300));
        old.signal(libc::SIGTERM);
        let sent = Instant::now();
        // Drain delay 500 ms + grace 3 s: the long-lived connection stops echoing just
        // before the grace ends, then sees the old process end it.
        let echoing_until = sent + Duration::from_millis(3_200);
        let lived = std::thread::spawn(move || long_lived(lived, echoing_until));
        wait_status(old_metrics, "/readyz", 503);
        let (echoes, answered, ended) = lived.join().unwrap();
        lost_echoes += echoes - answered;
        let status = old.wait_exit(WAIT);
        assert!(status.success(), "round {round}: {}", old.stderr.text());
        assert!(
            ended >= sent + Duration::from_millis(3_300),
            "round {round}: the long-lived connection ended {:?} after SIGTERM, before the grace period did",
            ended - sent
        );
        let served_by_new = connections_total(new_metrics);
        assert!(
            served_by_new > 0,
            "round {round}: the new process took no connection"
        );
        handovers.push((echoes, served_by_new));
        old = new;
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let (made, refused, reset) = (
        tally.made.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.reset.load(Ordering::Relaxed),
    );
    let other = tally.other.lock().unwrap().clone();
    eprintln!(
        "handover: {made} connections made, {refused} refused, {reset} reset, {} other; \
         long-lived echoes per round and connections the new process took: {handovers:?}; \
         {lost_echoes} echoes lost",
        other.len()
    );
    assert_eq!((refused, reset, lost_echoes), (0, 0, 0), "{other:?}");
    assert!(other.is_empty(), "{other:?}");
    assert!(made > 1000, "only {made} connections in the run");
}

#[test]
fn reuse_port_lets_a_second_process_bind_the_same_tcp_and_udp_ports() {
    let first = Netlet::run(
        "udp-echo",
        &[
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--reuse-port",
        ],
    );
    let (udp, tcp) = (first.udp[0].to_string(), first.tcp[0].to_string());
    let second = Netlet::run("udp-echo", &["--udp", &udp, "--tcp", &tcp, "--reuse-port"]);
    assert_eq!((second.udp[0], second.tcp[0]), (first.udp[0], first.tcp[0]));
    // Without it, the port is taken.
    let mut third = Netlet::spawn(&["run", guest("udp-echo").to_str().unwrap(), "--udp", &udp]);
    assert!(!third.wait_exit(WAIT).success());
    assert!(
        third.stderr.text().contains("address already in use"),
        "{}",
        third.stderr.text()
    );
}

#[test]
fn without_the_capabilities_to_migrate_a_queue_netlet_says_what_to_set() {
    // The kernel moves a closing listener's queue where netlet's program may be loaded
    // (CAP_BPF and CAP_NET_ADMIN) or where the sysctl says so; without both, netlet says
    // what to set.
    let sysctl = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").unwrap();
    let path = guest("echo");
    let mut command = std::process::Command::new("setpriv");
    command
        .args([
            "--bounding-set",
            "-bpf,-net_admin,-sys_admin",
            netlet_bin(),
            "run",
        ])
        .arg(&path)
        .args(["--tcp", "127.0.0.1:0", "--reuse-port"])
        .env("NETLET_CACHE_DIR", cache_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("setpriv (util-linux) runs netlet");
    let stdout = Lines::default();
    let stderr = Lines::default();
    stdout.spawn_reader(child.stdout.take().unwrap());
    stderr.spawn_reader(child.stderr.take().unwrap());
    stdout.wait_for("netlet: listening tcp", WAIT);
    let said = stderr.wait_until(Duration::from_secs(2), |l| {
        l.contains("--reuse-port: the kernel will not move")
    });
    let _ = child.kill();
    let _ = child.wait();
    if sysctl.trim() == "1" {
        assert!(said.is_none(), "{said:?}");
    } else {
        let said = said.unwrap_or_else(|| panic!("no warning; stderr:\n{}", stderr.text()));
        assert!(
            said.contains("needs CAP_BPF and CAP_NET_ADMIN")
                && said.contains("net.ipv4.tcp_migrate_req=1"),
            "{said}"
        );
    }
}
