//! TCP semantics with real sockets: backpressure, concurrency, half-close, socket
//! options read back from the kernel, timeouts, pause/resume, resets, server close,
//! IPv6, shards.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// The id the scripted guest gave this connection.
fn socket_id(stream: &mut TcpStream) -> u32 {
    let info = command(stream, "info");
    info.split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no id in {info:?}"))
}

fn info_field(info: &str, key: &str) -> String {
    info.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {info:?}"))
        .to_string()
}

#[test]
fn echo_8_mib_with_a_slow_reader_loses_nothing_and_stays_bounded() {
    let netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
    let rss_before = rss_kib(netlet.pid());
    let payload = Arc::new(random_bytes(8 << 20, 0x5eed));
    let writer = {
        let mut w = c.try_clone().unwrap();
        let payload = payload.clone();
        std::thread::spawn(move || {
            // As fast as the kernel takes it, in uneven chunks.
            for chunk in payload.chunks(100_003) {
                w.write_all(chunk).unwrap();
            }
        })
    };
    // Read slowly at first, so the writer runs ahead and backpressure has to hold.
    let mut got = Vec::with_capacity(payload.len());
    let mut buf = vec![0; 32 * 1024];
    let slow_until = Instant::now() + Duration::from_millis(700);
    let mut peak_rss = rss_before;
    while got.len() < payload.len() {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        if Instant::now() < slow_until {
            std::thread::sleep(Duration::from_millis(20));
            peak_rss = peak_rss.max(rss_kib(netlet.pid()));
        }
    }
    writer.join().unwrap();
    assert!(got == *payload, "echoed bytes differ from what was sent");
    peak_rss = peak_rss.max(rss_kib(netlet.pid()));
    // Nothing buffered without bound: the host held far less than the 8 MiB in flight.
    assert!(
        peak_rss - rss_before < 6 * 1024,
        "netlet grew by {} KiB while echoing 8 MiB to a slow reader",
        peak_rss - rss_before
    );
}

fn many_connections(addr: SocketAddr, count: usize) {
    let go = Arc::new(std::sync::Barrier::new(count));
    let threads: Vec<_> = (0..count)
        .map(|i| {
            let go = go.clone();
            std::thread::spawn(move || {
                let mut c = connect(addr);
                assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
                go.wait(); // all connections open at once
                let msg = random_bytes(1000 + i * 37, i as u64 + 1);
                c.write_all(&msg).unwrap();
                assert_eq!(read_exact(&mut c, msg.len()), msg, "connection {i}");
                c.shutdown(Shutdown::Write).unwrap();
                let (rest, result) = read_to_end(&mut c);
                assert!(
                    result.is_ok() && rest.is_empty(),
                    "connection {i}: {rest:?} {result:?}"
                );
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn two_hundred_concurrent_connections() {
    let netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0"]);
    many_connections(netlet.tcp[0], 200);
}

#[test]
fn two_hundred_concurrent_connections_over_two_shards() {
    let netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0", "--shards", "2"]);
    many_connections(netlet.tcp[0], 200);
}

/// With `--isolation connection` every open connection holds an instance (and, for its
/// preemptive calls, a fiber stack): 1,200 connections open at once, past wasmtime's
/// default of 1,000 pooled stacks, are each served by their own instance.
#[test]
fn twelve_hundred_connections_each_with_its_own_instance() {
    raise_fd_limit(4096);
    let netlet = Netlet::run(
        "echo",
        &["--tcp", "127.0.0.1:0", "--isolation", "connection"],
    );
    let mut conns: Vec<TcpStream> = (0..1200)
        .map(|i| {
            let mut c = connect(netlet.tcp[0]);
            assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n", "connection {i}");
            c
        })
        .collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let msg = format!("connection {i} still served\n");
        c.write_all(msg.as_bytes()).unwrap();
        assert_eq!(read_exact(c, msg.len()), msg.as_bytes(), "connection {i}");
    }
    assert!(
        !netlet.stderr.contains("trapped"),
        "{}",
        netlet.stderr.text()
    );
}

/// Raises this process's soft descriptor limit to `want` (or the hard limit).
fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[test]
fn shards_each_get_connections() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0", "--shards", "2"]);
    let mut conns: Vec<TcpStream> = (0..40).map(|_| connect(netlet.tcp[0])).collect();
    for c in &mut conns {
        assert_eq!(command(c, "echo x"), "x");
    }
    // Guest lines reach stderr through the log queue, a moment after the replies.
    netlet.stderr.wait_for("[scripted#0] ev connection", WAIT);
    netlet.stderr.wait_for("[scripted#1] ev connection", WAIT);
}

#[test]
fn peer_half_close_ends_our_side_by_default() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    assert_eq!(command(&mut c, "after-end late"), "ok after-end");
    c.shutdown(Shutdown::Write).unwrap();
    // allowHalfOpen=false: the host ends our side as soon as the guest saw 'end'.
    let (rest, result) = read_to_end(&mut c);
    assert!(result.is_ok(), "{result:?}");
    assert!(rest.is_empty(), "got {:?}", String::from_utf8_lossy(&rest));
    netlet
        .stderr
        .wait_for(&format!("ev close {id} false"), WAIT);
    netlet
        .stderr
        .wait_for(&format!("ev late-write {id} ERR_SOCKET_CLOSED"), WAIT);
    let log = netlet.stderr.text();
    assert!(
        netlet.stderr.position(&format!("ev end {id}"))
            < netlet.stderr.position(&format!("ev close {id}")),
        "{log}"
    );
}

#[test]
fn peer_half_close_with_allow_half_open_lets_the_guest_decide() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0", "--allow-half-open"]);
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    assert_eq!(command(&mut c, "after-end late"), "ok after-end");
    c.shutdown(Shutdown::Write).unwrap();
    // The guest writes 100 ms after 'end', then ends: we read that, then EOF.
    let (rest, result) = read_to_end(&mut c);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(String::from_utf8_lossy(&rest), "late\n");
    netlet
        .stderr
        .wait_for(&format!("ev late-write {id} ok"), WAIT);
    netlet
        .stderr
        .wait_for(&format!("ev close {id} false"), WAIT);
}

#[test]
fn our_half_close_keeps_reading_until_the_peer_ends() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    c.write_all(b"endwith bye\n").unwrap();
    let (rest, result) = read_to_end(&mut c);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(String::from_utf8_lossy(&rest), "bye\n");
    // Our side is closed, theirs is not: the guest still receives data.
    c.write_all(b"log still-reading\n").unwrap();
    netlet.stderr.wait_for("[scripted] still-reading", WAIT);
    assert!(!netlet.stderr.contains(&format!("ev close {id}")));
    c.shutdown(Shutdown::Write).unwrap();
    netlet.stderr.wait_for(&format!("ev end {id}"), WAIT);
    netlet
        .stderr
        .wait_for(&format!("ev close {id} false"), WAIT);
}

#[test]
fn no_delay_and_keep_alive_are_really_set_on_the_socket() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(command(&mut c, "echo up"), "up");
    let server_side = netlet_socket_for_peer(netlet.pid(), c.local_addr().unwrap());
    // Node's default: Nagle on.
    assert_eq!(
        getsockopt_int(&server_side, libc::IPPROTO_TCP, libc::TCP_NODELAY),
        0
    );
    assert_eq!(command(&mut c, "nodelay 1"), "ok nodelay");
    assert_ne!(
        getsockopt_int(&server_side, libc::IPPROTO_TCP, libc::TCP_NODELAY),
        0
    );
    assert_eq!(command(&mut c, "nodelay 0"), "ok nodelay");
    assert_eq!(
        getsockopt_int(&server_side, libc::IPPROTO_TCP, libc::TCP_NODELAY),
        0
    );

    assert_eq!(
        getsockopt_int(&server_side, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        0
    );
    assert_eq!(command(&mut c, "keepalive 1 7000"), "ok keepalive");
    assert_ne!(
        getsockopt_int(&server_side, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        0
    );
    assert_eq!(
        getsockopt_int(&server_side, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
        7
    );
    assert_eq!(command(&mut c, "keepalive 0 0"), "ok keepalive");
    assert_eq!(
        getsockopt_int(&server_side, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        0
    );
}

#[test]
fn timeout_fires_without_closing_and_rearms_after_activity() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    let timeouts = || {
        netlet
            .stderr
            .all()
            .iter()
            .filter(|l| l.ends_with(&format!("ev timeout {id}")))
            .count()
    };
    let start = Instant::now();
    assert_eq!(command(&mut c, "timeout 300"), "ok timeout");
    netlet.stderr.wait_for(&format!("ev timeout {id}"), WAIT);
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "fired after {:?}",
        start.elapsed()
    );
    // A notice only: still open, still working.
    assert_eq!(command(&mut c, "echo still here"), "still here");
    // Fires again after that activity...
    let deadline = Instant::now() + WAIT;
    while timeouts() < 2 {
        assert!(
            Instant::now() < deadline,
            "no second timeout after activity"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...but not again without activity.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(timeouts(), 2, "{}", netlet.stderr.text());
    assert_eq!(command(&mut c, "timeout 0"), "ok timeout");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(timeouts(), 2, "timeout 0 did not disable it");
    assert_eq!(command(&mut c, "echo alive"), "alive");
}

#[test]
fn pause_stops_reading_and_slows_the_peer_resume_restarts() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut a = connect(netlet.tcp[0]);
    let mut b = connect(netlet.tcp[0]);
    let id = socket_id(&mut a);
    assert_eq!(command(&mut a, "sink pause"), "sinking paused");
    let total = 64 << 20;
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let mut w = a.try_clone().unwrap();
        let (done, sent) = (done.clone(), sent.clone());
        std::thread::spawn(move || {
            let chunk = vec![b'z'; 64 * 1024];
            while sent.load(Ordering::SeqCst) < total {
                w.write_all(&chunk).unwrap();
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(600));
    let read1: u64 = info_field(&command(&mut b, &format!("info {id}")), "read")
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let info = command(&mut b, &format!("info {id}"));
    let read2: u64 = info_field(&info, "read").parse().unwrap();
    assert_eq!(read1, read2, "data was read while paused");
    assert_eq!(info_field(&info, "paused"), "true");
    assert!(
        !done.load(Ordering::SeqCst),
        "the writer was not slowed (sent {})",
        sent.load(Ordering::SeqCst)
    );
    assert_eq!(command(&mut b, &format!("resume {id}")), "resumed");
    let deadline = Instant::now() + WAIT;
    while !done.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "writer still blocked after resume"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.join().unwrap();
    // Everything sent is read eventually.
    let deadline = Instant::now() + WAIT;
    loop {
        let read: u64 = info_field(&command(&mut b, &format!("info {id}")), "read")
            .parse()
            .unwrap();
        if read >= total as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {read} of {total} bytes read after resume"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn write_returns_false_past_the_high_water_mark_then_drain() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    let first_info = command(&mut c, "info");
    let id: u32 = info_field(&first_info, "id").parse().unwrap();
    c.write_all(b"write 100\n").unwrap();
    assert_eq!(read_exact(&mut c, 100), pattern(100));
    netlet
        .stderr
        .wait_for(&format!("ev wrote {id} 100 ok"), WAIT);
    // More than the kernel's buffers take while the client does not read (netlet hands
    // the kernel what it takes at once, as libuv does): the rest queues past the
    // high-water mark.
    c.write_all(b"write 12000000\n").unwrap();
    netlet
        .stderr
        .wait_for(&format!("ev wrote {id} 12000000 full"), WAIT);
    assert_eq!(read_exact(&mut c, 12_000_000), pattern(12_000_000));
    netlet.stderr.wait_for(&format!("ev drain {id}"), WAIT);
    let info = command(&mut c, "info");
    assert_eq!(info_field(&info, "buffer"), "0");
    // Counters include every byte: the command lines read, the bytes written.
    assert_eq!(
        info_field(&info, "written"),
        (first_info.len() + 1 + 100 + 12_000_000).to_string()
    );
    let read_so_far = "info\nwrite 100\nwrite 12000000\ninfo\n".len();
    assert_eq!(info_field(&info, "read"), read_so_far.to_string());
    assert_eq!(info_field(&info, "state"), "open");
    assert_eq!(
        info_field(&info, "remote"),
        c.local_addr().unwrap().to_string()
    );
    assert_eq!(info_field(&info, "local"), netlet.tcp[0].to_string());
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn a_reset_peer_gives_error_then_close() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    socket2::SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c); // RST
    let error = netlet.stderr.wait_for(&format!("ev error {id} "), WAIT);
    assert!(error.contains("ECONNRESET"), "{error}");
    netlet.stderr.wait_for(&format!("ev close {id} true"), WAIT);
    assert!(
        netlet.stderr.position(&format!("ev error {id}"))
            < netlet.stderr.position(&format!("ev close {id}"))
    );
    // The server is unaffected.
    let mut d = connect(netlet.tcp[0]);
    assert_eq!(command(&mut d, "echo fine"), "fine");
}

#[test]
fn reset_and_destroy_sends_rst() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    c.write_all(b"reset\n").unwrap();
    let (_, result) = read_to_end(&mut c);
    let err = result.expect_err("a reset, not a clean EOF");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    netlet
        .stderr
        .wait_for(&format!("ev close {id} false"), WAIT);
}

#[test]
fn destroy_closes_at_once_with_close_event() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    c.write_all(b"destroy\n").unwrap();
    let (rest, _) = read_to_end(&mut c);
    assert!(rest.is_empty());
    netlet
        .stderr
        .wait_for(&format!("ev close {id} false"), WAIT);
    assert!(!netlet.stderr.contains(&format!("ev end {id}")));
}

#[test]
fn server_close_waits_for_open_connections_then_the_process_exits() {
    let mut netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let addr = netlet.tcp[0];
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert_eq!(command(&mut a, "echo a"), "a");
    assert_eq!(command(&mut b, "connections"), "connections 2");
    assert_eq!(command(&mut b, "close-server"), "server closing");
    // No longer accepting.
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert!(
        refused.is_err(),
        "a new connection was accepted after close"
    );
    // Open connections keep working; the server's close waits for them.
    assert_eq!(command(&mut a, "echo still"), "still");
    assert_eq!(command(&mut a, "connections"), "connections 2");
    drop(b);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !netlet.stderr.contains("ev server-close"),
        "{}",
        netlet.stderr.text()
    );
    drop(a);
    netlet.stderr.wait_for("ev server-close 1", WAIT);
    // Nothing left to do: netlet exits by itself, as a Node process would.
    let status = netlet.wait_exit(WAIT);
    assert!(status.success(), "{status}");
}

#[test]
fn port_zero_and_ipv6_loopback() {
    let netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0", "--tcp", "[::1]:0"]);
    assert_eq!(netlet.tcp.len(), 2);
    assert!(netlet.tcp[0].is_ipv4() && netlet.tcp[0].port() != 0);
    assert!(netlet.tcp[1].is_ipv6() && netlet.tcp[1].port() != 0);
    for addr in &netlet.tcp {
        let mut c = connect(*addr);
        assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
        c.write_all(b"v6?").unwrap();
        assert_eq!(read_exact(&mut c, 3), b"v6?");
    }
}

#[test]
fn server_address_and_ipv6_peer_addresses() {
    let netlet = Netlet::run("scripted", &["--tcp", "[::1]:0"]);
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(
        command(&mut c, "address"),
        format!("address {}", netlet.tcp[0])
    );
    let info = command(&mut c, "info");
    assert_eq!(
        info_field(&info, "remote"),
        c.local_addr().unwrap().to_string()
    );
    netlet
        .stderr
        .wait_for(&format!("ev listening 1 {}", netlet.tcp[0]), WAIT);
}

#[test]
fn address_in_use_is_reported_with_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut netlet = Netlet::spawn(&["run", guest("echo").to_str().unwrap(), "--tcp", &addr]);
    let status = netlet.wait_exit(WAIT);
    assert!(!status.success());
    let err = netlet.stderr.text();
    assert!(err.contains("address already in use"), "{err}");
    assert!(err.contains(&addr), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected:\n{err}");
}

#[test]
fn guest_timers_fire_in_order() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    c.write_all(b"timer 300\ntimer 50\ntimer 0\n").unwrap();
    let start = Instant::now();
    let lines: Vec<String> = (0..3).map(|_| read_line(&mut c)).collect();
    assert!(start.elapsed() >= Duration::from_millis(250));
    // Ids are given in order (1, 2, 3); they fire by deadline.
    assert_eq!(lines, ["timer 3", "timer 2", "timer 1"]);
}

// Server options in the handler's code (Node's `net.createServer(options)`), and
// `listen(port)` claiming the operator's listener.

#[test]
fn server_option_allow_half_open_lets_the_guest_decide_without_the_flag() {
    let netlet = Netlet::run(
        "scripted",
        &["--tcp", "127.0.0.1:0", "--", "options=halfopen"],
    );
    let mut c = connect(netlet.tcp[0]);
    let id = socket_id(&mut c);
    assert_eq!(command(&mut c, "after-end late"), "ok after-end");
    c.shutdown(Shutdown::Write).unwrap();
    let (rest, result) = read_to_end(&mut c);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(String::from_utf8_lossy(&rest), "late\n");
    netlet
        .stderr
        .wait_for(&format!("ev late-write {id} ok"), WAIT);
}

#[test]
fn server_option_pause_on_connect_reads_nothing_until_resume() {
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--",
            "options=pause",
            "resume-after=400",
        ],
    );
    // Paused from the start: the guest sees the connection but none of its data until
    // its timer resumes it.
    let started = Instant::now();
    let mut c = connect(netlet.tcp[0]);
    c.write_all(b"echo one\n").unwrap();
    let line = netlet.stderr.wait_for("ev connection ", WAIT);
    let id: u32 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(read_line(&mut c), "resumed");
    assert_eq!(read_line(&mut c), "one");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "data was read {:?} after connecting, before the resume",
        started.elapsed()
    );
    // Guest lines reach stderr through the log queue, after the reply.
    netlet.stderr.wait_for(&format!("ev data {id} "), WAIT);
    let log = netlet.stderr.text();
    let resumed = netlet
        .stderr
        .position(&format!("ev resumed {id}"))
        .expect(&log);
    let data = netlet
        .stderr
        .position(&format!("ev data {id} "))
        .expect(&log);
    assert!(resumed < data, "{log}");
    assert_eq!(command(&mut c, "paused"), "paused false");
}

#[test]
fn server_options_no_delay_and_keep_alive_are_set_on_accepted_sockets() {
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--",
            "options=nodelay,keepalive:9000",
        ],
    );
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(command(&mut c, "echo up"), "up");
    let server_side = netlet_socket_for_peer(netlet.pid(), c.local_addr().unwrap());
    assert_ne!(
        getsockopt_int(&server_side, libc::IPPROTO_TCP, libc::TCP_NODELAY),
        0
    );
    assert_ne!(
        getsockopt_int(&server_side, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        0
    );
    assert_eq!(
        getsockopt_int(&server_side, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
        9
    );
}

#[test]
fn listen_claims_the_operators_listener_by_its_code_port() {
    // The code listens on 8124; the operator binds that at a free port.
    let netlet = Netlet::run(
        "scripted",
        &["--tcp", "127.0.0.1:0=8124", "--", "listen=8124"],
    );
    let addr = netlet.tcp[0];
    netlet
        .stderr
        .wait_for(&format!("ev init-listen ok 1 {addr}"), WAIT);
    // One `listening` for the claimed server, after the claim.
    netlet
        .stderr
        .wait_for(&format!("ev listening 1 {addr}"), WAIT);
    let mut c = connect(addr);
    assert_eq!(command(&mut c, "echo served"), "served");
    // A second listen on the same port is EADDRINUSE, as in Node.
    assert_eq!(command(&mut c, "listen 8124"), "listen err EADDRINUSE");
    // A port nobody configured, without --allow: EACCES, and the log names the flags.
    assert_eq!(command(&mut c, "listen 9999"), "listen err EACCES");
    netlet.stderr.wait_for(
        "denied listen on [::]:9999: no listener is configured for port 9999 (run with --tcp [::]:9999",
        WAIT,
    );
    let listening = netlet
        .stderr
        .all()
        .iter()
        .filter(|l| l.contains("ev listening "))
        .count();
    assert_eq!(listening, 1, "{}", netlet.stderr.text());
}

#[test]
fn listen_binds_a_port_the_operator_allows_and_serves_it() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let allow = format!("127.0.0.1:{port}");
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0", "--allow", &allow]);
    let mut c = connect(netlet.tcp[0]);
    let reply = command(&mut c, &format!("listen {port}"));
    // No host given: every interface, which the rule for 127.0.0.1 does not cover.
    assert_eq!(reply, "listen err EACCES");
    drop(c);
    let netlet = Netlet::run(
        "scripted",
        &["--tcp", "127.0.0.1:0", "--allow", &format!("*:{port}")],
    );
    let mut c = connect(netlet.tcp[0]);
    let reply = command(&mut c, &format!("listen {port}"));
    assert!(reply.starts_with("listen ok "), "{reply}");
    let id: u32 = reply.split_whitespace().nth(2).unwrap().parse().unwrap();
    netlet.stderr.wait_for(&format!("ev listening {id} "), WAIT);
    let mut d = connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(
        command(&mut d, "echo on the new listener"),
        "on the new listener"
    );
    // The connection came through the server `listen` made.
    netlet
        .stderr
        .wait_until(WAIT, |l| {
            l.contains("ev connection ") && l.ends_with(&format!(" {id}"))
        })
        .unwrap_or_else(|| panic!("{}", netlet.stderr.text()));
}
