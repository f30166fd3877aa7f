//! The `proxy` example on real sockets: clients on one side, a server started by the
//! test on the other, and what each sees of the other through the proxy.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// netlet running the proxy in front of `upstream`. No `--allow-half-open`: the proxy
/// asks for half-open itself (its server options).
fn proxy(upstream: SocketAddr, extra: &[&str]) -> Netlet {
    let target = upstream.to_string();
    let mut args = vec!["--tcp", "127.0.0.1:0", "--allow", &target, "--", &target];
    args.extend_from_slice(extra);
    Netlet::run("proxy", &args)
}

fn upstream_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Writes `data` in 64 KiB chunks, then half-closes.
fn send_all(mut s: TcpStream, data: Arc<Vec<u8>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for chunk in data.chunks(65536) {
            s.write_all(chunk).unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
    })
}

/// Reads to EOF, 16 KiB at a time with a pause after each read: a slow reader
/// (about 4 MiB/s).
fn read_slowly(mut s: TcpStream) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            std::thread::sleep(Duration::from_millis(4));
        }
    })
}

#[test]
fn eight_mib_each_way_with_slow_readers_on_both_sides_in_bounded_memory() {
    let (listener, addr) = upstream_listener();
    let netlet = proxy(addr, &[]);
    // Warm up once, so the baseline includes what the first connection allocates.
    {
        let mut c = connect(netlet.tcp[0]);
        let mut s = accept(&listener);
        c.write_all(b"warm").unwrap();
        assert_eq!(read_exact(&mut s, 4), b"warm");
        s.write_all(b"up").unwrap();
        assert_eq!(read_exact(&mut c, 2), b"up");
    }
    std::thread::sleep(Duration::from_millis(100));
    let baseline = rss_kib(netlet.pid());
    let c = connect(netlet.tcp[0]);
    let s = accept(&listener);
    let to_upstream = Arc::new(random_bytes(8 << 20, 1));
    let to_client = Arc::new(random_bytes(8 << 20, 2));
    let writers = [
        send_all(c.try_clone().unwrap(), to_upstream.clone()),
        send_all(s.try_clone().unwrap(), to_client.clone()),
    ];
    let readers = [read_slowly(s), read_slowly(c)];
    // Both writers run far ahead of the slow readers: without backpressure the proxy
    // would hold most of the 16 MiB in flight.
    let mut peak = baseline;
    while !readers.iter().all(|r| r.is_finished()) {
        peak = peak.max(rss_kib(netlet.pid()));
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in writers {
        w.join().unwrap();
    }
    let [at_upstream, at_client] = readers.map(|r| r.join().unwrap());
    assert!(
        at_upstream == *to_upstream,
        "client -> upstream: {} bytes, not the ones sent",
        at_upstream.len()
    );
    assert!(
        at_client == *to_client,
        "upstream -> client: {} bytes, not the ones sent",
        at_client.len()
    );
    assert!(
        peak - baseline < 6 * 1024,
        "netlet grew by {} KiB proxying 8 MiB each way to slow readers",
        peak - baseline
    );
}

#[test]
fn half_close_passes_through_both_ways() {
    let (listener, addr) = upstream_listener();
    let netlet = proxy(addr, &[]);

    // The client finishes its request; the upstream sees the end, then answers.
    let mut c = connect(netlet.tcp[0]);
    let mut s = accept(&listener);
    c.write_all(b"request").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_to_end(&mut s);
    assert_eq!(got, b"request");
    assert!(end.is_ok(), "{end:?}");
    s.write_all(b"response after the client's end").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_to_end(&mut c);
    assert_eq!(got, b"response after the client's end");
    assert!(end.is_ok(), "{end:?}");

    // The upstream finishes first; the client sees the end, then still talks.
    let mut c = connect(netlet.tcp[0]);
    let mut s = accept(&listener);
    s.write_all(b"banner").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_to_end(&mut c);
    assert_eq!(got, b"banner");
    assert!(end.is_ok(), "{end:?}");
    c.write_all(b"words after the upstream's end").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_to_end(&mut s);
    assert_eq!(got, b"words after the upstream's end");
    assert!(end.is_ok(), "{end:?}");
}

#[test]
fn a_4_mib_upload_then_half_close_gets_its_whole_answer_without_the_operator_flag() {
    // The upstream echoes until the client's end, then ends: every byte of the answer
    // comes after the client half-closed, and must reach it.
    let (listener, addr) = upstream_listener();
    let upstream = std::thread::spawn(move || {
        let mut s = accept(&listener);
        let (got, end) = read_to_end(&mut s);
        end.unwrap();
        s.write_all(&got).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        got.len()
    });
    let netlet = proxy(addr, &[]);
    let c = connect(netlet.tcp[0]);
    let upload = Arc::new(random_bytes(4 << 20, 7));
    send_all(c.try_clone().unwrap(), upload.clone())
        .join()
        .unwrap();
    let mut c = c;
    let (answer, end) = read_to_end(&mut c);
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(upstream.join().unwrap(), upload.len());
    assert!(
        answer == *upload,
        "the client got {} of {} bytes back",
        answer.len(),
        upload.len()
    );
}

/// Closes `s` with a TCP RST (SO_LINGER 0).
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

fn read_error(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let (got, end) = read_to_end(s);
    end.map(|()| got)
}

#[test]
fn a_reset_on_either_side_resets_the_other() {
    let (listener, addr) = upstream_listener();
    let netlet = proxy(addr, &[]);

    let mut c = connect(netlet.tcp[0]);
    let mut s = accept(&listener);
    c.write_all(b"x").unwrap();
    assert_eq!(read_exact(&mut s, 1), b"x");
    reset(c);
    let err = read_error(&mut s).expect_err("the upstream saw a clean end, not a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");

    let mut c = connect(netlet.tcp[0]);
    let mut s = accept(&listener);
    s.write_all(b"y").unwrap();
    assert_eq!(read_exact(&mut c, 1), b"y");
    reset(s);
    let err = read_error(&mut c).expect_err("the client saw a clean end, not a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn an_upstream_that_refuses_closes_the_client() {
    // A port nothing listens on.
    let addr = upstream_listener().1;
    let netlet = proxy(addr, &[]);
    for _ in 0..3 {
        let mut c = connect(netlet.tcp[0]);
        let _ = c.write_all(b"hello?");
        let (got, _) = read_to_end(&mut c);
        assert!(got.is_empty(), "{got:?}");
    }
    netlet.stderr.wait_for(
        &format!("proxy: upstream {addr}: connect ECONNREFUSED"),
        WAIT,
    );
    assert!(!netlet.stderr.text().contains("trapped"));
}

#[test]
fn an_upstream_that_does_not_answer_closes_the_client_after_the_connect_timeout() {
    // A listener whose accept queue is full: the kernel drops further SYNs, so a
    // connect hangs (on loopback, as a filtered or dead host would on a network).
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let filler =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        filler.set_nonblocking(true).unwrap();
        let _ = filler.connect(&addr.into());
        fillers.push(filler);
    }
    std::thread::sleep(Duration::from_millis(100));

    let netlet = proxy(addr, &["--connect-timeout", "300ms"]);
    let started = Instant::now();
    let mut c = connect(netlet.tcp[0]);
    let (got, _) = read_to_end(&mut c);
    let took = started.elapsed();
    assert!(got.is_empty(), "{got:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
    netlet.stderr.wait_for(
        &format!("proxy: upstream {addr}: connect timed out after 300ms"),
        WAIT,
    );
}

#[test]
fn two_hundred_concurrent_proxied_connections() {
    const N: usize = 200;
    let (listener, addr) = upstream_listener();
    let netlet = proxy(addr, &[]);
    // The upstream echoes, and counts how many connections it holds at once.
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let server = {
        let (open, most) = (open.clone(), most.clone());
        std::thread::spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..N {
                let mut s = accept(&listener);
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let open = open.clone();
                handlers.push(std::thread::spawn(move || {
                    let mut buf = [0; 4096];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => s.write_all(&buf[..n]).unwrap(),
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                }));
            }
            for h in handlers {
                h.join().unwrap();
            }
        })
    };
    // Every client connects and is echoed once before any of them closes.
    let barrier = Arc::new(Barrier::new(N));
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let barrier = barrier.clone();
            let addr = netlet.tcp[0];
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let msg = format!("client {i} says hello through the proxy\n");
                c.write_all(msg.as_bytes()).unwrap();
                assert_eq!(read_exact(&mut c, msg.len()), msg.as_bytes());
                barrier.wait();
                let msg = random_bytes(10_000, i as u64 + 1);
                c.write_all(&msg).unwrap();
                assert!(read_exact(&mut c, msg.len()) == msg, "client {i}");
                c.shutdown(Shutdown::Write).unwrap();
                let (rest, end) = read_to_end(&mut c);
                assert!(rest.is_empty() && end.is_ok(), "{rest:?} {end:?}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
    assert_eq!(
        most.load(Ordering::SeqCst),
        N,
        "upstream never held all {N} at once"
    );
    assert_eq!(open.load(Ordering::SeqCst), 0);
}

#[test]
fn redis_clients_through_the_proxy_to_kv() {
    let kv = Netlet::run("kv", &["--tcp", "127.0.0.1:0"]);
    let netlet = proxy(kv.tcp[0], &[]);
    let port = netlet.tcp[0].port().to_string();
    let out = tool("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port])
        .args(["-t", "set,get", "-P", "16", "-n", "20000", "-c", "20", "-q"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run redis-benchmark (Debian package redis-tools)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SET: ") && stdout.contains("GET: "),
        "{stdout}"
    );
    let mut c = connect(netlet.tcp[0]);
    c.write_all(b"SET via proxy\r\nGET via\r\n").unwrap();
    assert_eq!(read_exact(&mut c, 5 + 11), b"+OK\r\n$5\r\nproxy\r\n");
}
