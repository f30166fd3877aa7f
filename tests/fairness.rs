//! Fair under floods: a hostile *client* (not a hostile guest) against a real `netlet`
//! process, while a healthy client of the same handler makes a small request every
//! 10 ms. The healthy client's p99 stays under `common::probe::P99_BOUND` with no failure while one
//! connection floods `kv` with pipelined commands, streams tiny WebSocket frames, or
//! uploads half a million one-byte HTTP chunks, each plain and over TLS; a chat room lives
//! through 5,000 members leaving at once and 500 that stop reading; a WebSocket send
//! the instance's memory cannot hold fails alone; a TLS client is served at once while
//! thousands of handshakes stall.
//!
//! The tests run one at a time (they measure latency), each printing its figures
//! (`scripts/test --test fairness -- --nocapture` shows them).

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::probe::{Healthy, Probe, tcp};
use common::tls::{Client, Pki, rustls_client, s};
use common::*;
use netlet::testing::http::{HttpRequest, ResponseReader};
use netlet::testing::ws::{FrameReader, encode_frame, handshake_request, op};

/// How often the healthy client asks, and how long a flood is watched.
const PAUSE: Duration = Duration::from_millis(10);
const WINDOW: Duration = Duration::from_secs(3);

// --- healthy clients -------------------------------------------------------------

/// Redis `PING`, answered `+PONG`.
#[derive(Default)]
struct RedisPing(Option<TcpStream>);

fn ping_pong(c: &mut (impl Read + Write)) -> io::Result<()> {
    c.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut back = [0u8; 7];
    c.read_exact(&mut back)?;
    assert_eq!(&back, b"+PONG\r\n", "the healthy client got another answer");
    Ok(())
}

impl Healthy for RedisPing {
    fn open(&mut self, addr: SocketAddr) -> io::Result<()> {
        self.0 = Some(tcp(addr)?);
        Ok(())
    }
    fn trip(&mut self) -> io::Result<()> {
        ping_pong(self.0.as_mut().ok_or(io::ErrorKind::NotConnected)?)
    }
}

/// Redis `PING` over TLS.
struct TlsRedisPing {
    ca: std::path::PathBuf,
    conn: Option<Client>,
}

impl Healthy for TlsRedisPing {
    fn open(&mut self, addr: SocketAddr) -> io::Result<()> {
        let c = rustls_client(addr, &self.ca, "localhost", &[], None).map_err(io::Error::other)?;
        c.sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.sock.set_nodelay(true)?;
        self.conn = Some(c);
        Ok(())
    }
    fn trip(&mut self) -> io::Result<()> {
        ping_pong(self.conn.as_mut().ok_or(io::ErrorKind::NotConnected)?)
    }
}

/// `GET /` on a keep-alive connection, the whole response read.
#[derive(Default)]
struct HttpGet {
    conn: Option<TcpStream>,
    reader: ResponseReader,
}

impl Healthy for HttpGet {
    fn open(&mut self, addr: SocketAddr) -> io::Result<()> {
        self.conn = Some(tcp(addr)?);
        self.reader = ResponseReader::default();
        Ok(())
    }
    fn trip(&mut self) -> io::Result<()> {
        let c = self.conn.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        c.write_all(&HttpRequest::get("/healthy").to_bytes())?;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(res) = self.reader.parse(false, false) {
                let res = res.map_err(io::Error::other)?;
                assert_eq!(res.status, 200, "the healthy client got {}", res.status);
                return Ok(());
            }
            let n = c.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.reader.push(&buf[..n]);
        }
    }
}

/// A WebSocket text message, echoed.
#[derive(Default)]
struct WsEcho {
    conn: Option<TcpStream>,
    frames: FrameReader,
}

/// Opens a WebSocket on `path`: the handshake sent, the `101` read. What follows the
/// `101` in the same read is handed to `frames`.
fn ws_open(addr: SocketAddr, path: &str, frames: &mut FrameReader) -> io::Result<TcpStream> {
    let mut c = tcp(addr)?;
    c.write_all(&handshake_request(path, &[]))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(
                head.starts_with(b"HTTP/1.1 101"),
                "{}",
                String::from_utf8_lossy(&head)
            );
            frames.push(&head[end + 4..]);
            return Ok(c);
        }
    }
}

/// Reads the next frame.
fn next_frame(
    c: &mut TcpStream,
    frames: &mut FrameReader,
) -> io::Result<netlet::testing::ws::Frame> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = frames.next_frame() {
            return Ok(frame);
        }
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        frames.push(&buf[..n]);
    }
}

const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

impl Healthy for WsEcho {
    fn open(&mut self, addr: SocketAddr) -> io::Result<()> {
        self.frames = FrameReader::default();
        self.conn = Some(ws_open(addr, "/healthy", &mut self.frames)?);
        Ok(())
    }
    fn trip(&mut self) -> io::Result<()> {
        let c = self.conn.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        c.write_all(&encode_frame(op::TEXT, true, b"healthy", MASK))?;
        let frame = next_frame(c, &mut self.frames)?;
        assert_eq!(frame.payload, b"healthy");
        Ok(())
    }
}

// --- floods --------------------------------------------------------------------------

/// A client that writes `chunk` over and over while another thread reads (and drops)
/// what comes back, until stopped or its connection ends. Counts both directions.
struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
    /// The TLS client the flood goes through (`openssl s_client`), killed at the end.
    child: Option<std::process::Child>,
}

impl Flood {
    fn start(conn: TcpStream, head: Vec<u8>, chunk: Vec<u8>, tail: Vec<u8>, max: u64) -> Flood {
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let reader = conn.try_clone().unwrap();
        Flood::spawn(conn, reader, None, head, chunk, tail, max)
    }

    /// The same flood over TLS, through a real TLS client: `openssl s_client` connected
    /// to `addr`, written through its stdin and read from its stdout.
    fn start_tls(
        addr: SocketAddr,
        ca: &std::path::Path,
        head: Vec<u8>,
        chunk: Vec<u8>,
        tail: Vec<u8>,
        max: u64,
    ) -> Flood {
        use std::process::{Command, Stdio};
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-servername"])
            .arg("localhost")
            .arg("-connect")
            .arg(addr.to_string())
            .arg("-CAfile")
            .arg(ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl (scripts/test installs it)");
        let writer = child.stdin.take().unwrap();
        let reader = child.stdout.take().unwrap();
        Flood::spawn(writer, reader, Some(child), head, chunk, tail, max)
    }

    fn spawn(
        mut conn: impl Write + Send + 'static,
        mut reader: impl Read + Send + 'static,
        child: Option<std::process::Child>,
        head: Vec<u8>,
        chunk: Vec<u8>,
        tail: Vec<u8>,
        max: u64,
    ) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let writer = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let _ = conn.write_all(&head);
                let mut total = 0u64;
                while !stop.load(Ordering::SeqCst) && total < max {
                    if conn.write_all(&chunk).is_err() {
                        return;
                    }
                    total += chunk.len() as u64;
                    sent.store(total, Ordering::SeqCst);
                }
                let _ = conn.write_all(&tail);
                let _ = conn.flush();
            })
        };
        let reader = {
            let (stop, received) = (stop.clone(), received.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::SeqCst) {
                    match reader.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            received.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return,
                    }
                }
            })
        };
        Flood {
            stop,
            sent,
            received,
            threads: vec![writer, reader],
            child,
        }
    }

    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        // Its pipes close with it, so neither thread stays blocked on them.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.sent.load(Ordering::SeqCst),
            self.received.load(Ordering::SeqCst),
        )
    }
}

/// Runs `flood` beside a healthy client for [`WINDOW`]: p99 within the bound, not one
/// failure, and the flood really flowed both ways.
fn beside(what: &str, probe: Probe, flood: Flood) {
    probe.warm();
    let failures = probe.failures();
    let (p50, p99) = probe.watch(what, WINDOW);
    assert_eq!(
        probe.failures(),
        failures,
        "{what}: the healthy client failed (p50 {p50:?}, p99 {p99:?})"
    );
    probe.finish();
    let (sent, received) = flood.finish();
    println!("{what}: the flood sent {sent} bytes and read {received}");
    assert!(
        sent > 1 << 20 && received > 64 << 10,
        "{what}: the flood hardly ran ({sent} bytes out, {received} back)"
    );
}

/// Pipelined `SET`s, 31 bytes each, as `redis-benchmark -P` sends them.
fn pipelined_sets() -> Vec<u8> {
    b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n".repeat(2048)
}

#[test]
fn a_pipelined_kv_flood_that_reads_its_replies_stalls_no_one() {
    let _serial = serial();
    let netlet = Netlet::run("kv", &["--tcp", "127.0.0.1:0"]);
    let addr = netlet.tcp[0];
    let probe = Probe::start_with(addr, RedisPing::default(), PAUSE);
    probe.warm();
    let flood = Flood::start(
        connect(addr),
        Vec::new(),
        pipelined_sets(),
        Vec::new(),
        u64::MAX,
    );
    beside("kv: one client pipelining SETs", probe, flood);
}

#[test]
fn a_stream_of_tiny_websocket_frames_stalls_no_one() {
    let _serial = serial();
    let netlet = Netlet::run("ws-echo", &["--tcp", "127.0.0.1:0"]);
    let addr = netlet.tcp[0];
    let probe = Probe::start_with(addr, WsEcho::default(), PAUSE);
    probe.warm();
    let mut frames = FrameReader::default();
    let conn = ws_open(addr, "/flood", &mut frames).unwrap();
    let chunk = encode_frame(op::TEXT, true, b"x", MASK).repeat(8192);
    let flood = Flood::start(conn, Vec::new(), chunk, Vec::new(), u64::MAX);
    beside("ws-echo: one client streaming 1-byte frames", probe, flood);
}

#[test]
fn half_a_million_one_byte_http_chunks_stall_no_one() {
    let _serial = serial();
    let netlet = Netlet::run("http-echo", &["--tcp", "127.0.0.1:0"]);
    let addr = netlet.tcp[0];
    let probe = Probe::start_with(addr, HttpGet::default(), PAUSE);
    probe.warm();
    let head = b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = b"1\r\nx\r\n".repeat(10_000);
    // 500,000 chunks in all, then the body's end.
    let max = 50 * chunk.len() as u64;
    let flood = Flood::start(
        connect(addr),
        head.to_vec(),
        chunk,
        b"0\r\n\r\n".to_vec(),
        max,
    );
    beside(
        "http-echo: one client uploading 1-byte chunks",
        probe,
        flood,
    );
}

/// `ws-echo` or `http-echo` with a plain listener for the healthy client and a TLS one
/// for the flood, on one shard: they share its loop, as in the plain tests.
fn plain_and_tls(guest: &str, pki: &Pki) -> Netlet {
    let (cert, key) = pki.leaf("server", "localhost", &["localhost"]);
    Netlet::run(
        guest,
        &[
            "--shards",
            "1",
            "--tcp",
            "127.0.0.1:0",
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
        ],
    )
}

#[test]
fn a_stream_of_tiny_websocket_frames_over_tls_stalls_no_one() {
    let _serial = serial();
    let pki = Pki::new("fairness-ws-tls");
    let netlet = plain_and_tls("ws-echo", &pki);
    let probe = Probe::start_with(netlet.tcp[0], WsEcho::default(), PAUSE);
    probe.warm();
    // The frames follow the handshake at once, as a client that does not wait for the
    // 101 sends them.
    let chunk = encode_frame(op::TEXT, true, b"x", MASK).repeat(8192);
    let flood = Flood::start_tls(
        netlet.tls[0],
        &pki.ca(),
        handshake_request("/flood", &[]),
        chunk,
        Vec::new(),
        u64::MAX,
    );
    beside(
        "ws-echo over TLS: one client streaming 1-byte frames",
        probe,
        flood,
    );
}

#[test]
fn half_a_million_one_byte_http_chunks_over_tls_stall_no_one() {
    let _serial = serial();
    let pki = Pki::new("fairness-http-tls");
    let netlet = plain_and_tls("http-echo", &pki);
    let probe = Probe::start_with(netlet.tcp[0], HttpGet::default(), PAUSE);
    probe.warm();
    let head = b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = b"1\r\nx\r\n".repeat(10_000);
    let max = 50 * chunk.len() as u64;
    let flood = Flood::start_tls(
        netlet.tls[0],
        &pki.ca(),
        head.to_vec(),
        chunk,
        b"0\r\n\r\n".to_vec(),
        max,
    );
    beside(
        "http-echo over TLS: one client uploading 1-byte chunks",
        probe,
        flood,
    );
}

#[test]
fn a_pipelined_kv_flood_over_tls_stalls_no_one() {
    let _serial = serial();
    let pki = Pki::new("fairness-kv");
    let (cert, key) = pki.leaf("server", "localhost", &["localhost"]);
    let netlet = Netlet::run(
        "kv",
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
        ],
    );
    let addr = netlet.tls[0];
    let probe = Probe::start_with(
        addr,
        TlsRedisPing {
            ca: pki.ca(),
            conn: None,
        },
        PAUSE,
    );
    probe.warm();
    // One TLS stream cannot be read and written from two threads: the flood writes
    // 256 KiB of SETs, then reads their replies (5 bytes each), over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (stop, ca) = (stop.clone(), pki.ca());
        std::thread::spawn(move || {
            let mut c = rustls_client(addr, &ca, "localhost", &[], None).unwrap();
            let batch = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n".repeat(8192);
            let mut replies = vec![0u8; 8192 * 5];
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) {
                c.write_all(&batch).unwrap();
                c.read_exact(&mut replies).unwrap();
                sent += batch.len() as u64;
            }
            sent
        })
    };
    let failures = probe.failures();
    let what = "kv over TLS: one client pipelining SETs";
    let (p50, p99) = probe.watch(what, WINDOW);
    assert_eq!(
        probe.failures(),
        failures,
        "{what}: p50 {p50:?}, p99 {p99:?}"
    );
    probe.finish();
    stop.store(true, Ordering::SeqCst);
    let sent = flood.join().unwrap();
    println!("{what}: the flood sent {sent} bytes");
    assert!(
        sent > 1 << 20,
        "{what}: the flood hardly ran ({sent} bytes)"
    );
}

// --- a chat room under mass departures and stalled readers ----------------------------

/// WebSockets to the chat room, as members `names`, their `101`s read. Each socket's
/// receive buffer is `rcvbuf` bytes (set before connecting, so the window is that
/// small). Every handshake is sent before any answer is read, so that the room takes
/// the newcomers in batches, as it would a crowd.
fn members(addr: SocketAddr, names: impl Iterator<Item = String>, rcvbuf: usize) -> Vec<TcpStream> {
    let mut conns: Vec<(String, TcpStream)> = names
        .map(|name| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(rcvbuf).unwrap();
            socket.connect(&addr.into()).unwrap();
            let mut c: TcpStream = socket.into();
            c.set_read_timeout(Some(WAIT)).unwrap();
            c.write_all(&handshake_request(&format!("/ws?name={name}"), &[]))
                .unwrap();
            (name, c)
        })
        .collect();
    for (name, c) in &mut conns {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(c.read(&mut byte).unwrap(), 1, "the room closed {name}");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
    }
    conns.into_iter().map(|(_, c)| c).collect()
}

/// Reads text frames until one contains `needle`.
fn wait_for_text(c: &mut TcpStream, frames: &mut FrameReader, needle: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no message with {needle:?}");
        let frame = next_frame(c, frames).unwrap();
        if frame.payload_text().contains(needle) {
            return;
        }
    }
}

fn http_get_status(addr: SocketAddr, path: &str) -> u16 {
    let mut c = connect(addr);
    c.write_all(&HttpRequest::get(path).to_bytes()).unwrap();
    let mut reader = ResponseReader::default();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(res) = reader.parse(false, false) {
            return res.unwrap().status;
        }
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "no answer to GET {path}");
        reader.push(&buf[..n]);
    }
}

/// The room's memory: netlet's RSS stays within the guest's `--max-memory` and what
/// the host holds for its connections.
fn assert_room_rss(netlet: &Netlet, before_kib: u64, what: &str) {
    let after = rss_kib(netlet.pid());
    println!("{what}: RSS {before_kib} KiB -> {after} KiB");
    assert!(
        after <= before_kib + (64 << 10) + (48 << 10),
        "{what}: netlet grew from {before_kib} KiB to {after} KiB"
    );
}

#[test]
fn five_thousand_chat_members_leaving_at_once_leave_the_room_and_its_other_members_alive() {
    let _serial = serial();
    raise_fd_limit(16_384);
    let netlet = Netlet::run_with("ws-chat", &["--tcp", "127.0.0.1:0"], Some(16_384));
    let addr = netlet.tcp[0];
    let before = rss_kib(netlet.pid());
    let mut alice_frames = FrameReader::default();
    let mut alice = ws_open(addr, "/ws?name=alice", &mut alice_frames).unwrap();
    wait_for_text(&mut alice, &mut alice_frames, "* you are alice");
    // Alice reads all the while; the crowd reads nothing (their notices fit in their
    // receive buffers).
    let seen = Arc::new(AtomicU64::new(0));
    let reader = {
        let mut alice = alice.try_clone().unwrap();
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut frames = alice_frames;
            loop {
                match next_frame(&mut alice, &mut frames) {
                    Ok(frame) if frame.payload_text().contains("bob: still here") => return true,
                    Ok(_) => {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return false,
                }
            }
        })
    };
    let crowd = members(addr, (0..5000).map(|i| format!("m{i}")), 512 << 10);
    let mut bob_frames = FrameReader::default();
    let mut bob = ws_open(addr, "/ws?name=bob", &mut bob_frames).unwrap();
    wait_for_text(&mut bob, &mut bob_frames, "* you are bob (5002 here)");
    // Everyone in the crowd leaves at once.
    let left = Instant::now();
    for c in &crowd {
        let _ = c.shutdown(Shutdown::Both);
    }
    drop(crowd);
    // The room is still there: bob talks, alice hears him; the page is still served.
    bob.write_all(&encode_frame(op::TEXT, true, b"still here", MASK))
        .unwrap();
    assert!(reader.join().unwrap(), "alice's connection ended");
    println!(
        "5,000 leaving: alice heard bob {:?} after they left ({} notices before)",
        left.elapsed(),
        seen.load(Ordering::SeqCst)
    );
    assert_eq!(http_get_status(addr, "/"), 200);
    assert!(
        !netlet.stderr.contains("trapped"),
        "{}",
        netlet.stderr.text()
    );
    assert_room_rss(&netlet, before, "5,000 members leaving at once");
    drop(alice);
}

#[test]
fn five_hundred_stalled_members_and_a_talker_cost_the_room_a_bounded_memory() {
    let _serial = serial();
    raise_fd_limit(4096);
    let netlet = Netlet::run(
        "ws-chat",
        &["--tcp", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
    );
    let addr = netlet.tcp[0];
    let before = rss_kib(netlet.pid());
    let stalled = members(addr, (0..500).map(|i| format!("s{i}")), 4096);
    let mut frames = FrameReader::default();
    let mut listener = ws_open(addr, "/ws?name=listener", &mut frames).unwrap();
    wait_for_text(&mut listener, &mut frames, "* you are listener");
    let mut talker_frames = FrameReader::default();
    let mut talker = ws_open(addr, "/ws?name=talker", &mut talker_frames).unwrap();
    // 500 messages a second of 4,000 bytes, for 4 s; the listener must hear every one.
    let heard = {
        let mut listener = listener.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut n = 0;
            while n < 2000 {
                let frame = next_frame(&mut listener, &mut frames).unwrap();
                assert_ne!(
                    frame.opcode,
                    op::CLOSE,
                    "the listener was closed after {n} messages: {:?} {}",
                    frame.close_code(),
                    frame.close_reason()
                );
                if frame.payload_text().starts_with("talker: ") {
                    n += 1;
                }
            }
            n
        })
    };
    let mut peak = before;
    let started = Instant::now();
    for i in 0..2000u32 {
        let text = format!("{i:04}{}", "t".repeat(3996));
        talker
            .write_all(&encode_frame(op::TEXT, true, text.as_bytes(), MASK))
            .unwrap();
        let due = started + Duration::from_millis(2 * u64::from(i + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if i % 100 == 0 {
            peak = peak.max(rss_kib(netlet.pid()));
        }
    }
    assert_eq!(heard.join().unwrap(), 2000, "the listener missed messages");
    peak = peak.max(rss_kib(netlet.pid()));
    println!("500 stalled members: peak RSS {peak} KiB (from {before} KiB)");
    assert!(
        peak <= before + (64 << 10) + (48 << 10),
        "netlet grew from {before} KiB to {peak} KiB"
    );
    // The stalled members were sent away: only the listener and the talker are left.
    let line = netlet.stdout.wait_for("metrics on http://", WAIT);
    let metrics = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics");
    let deadline = Instant::now() + WAIT;
    loop {
        let active = metric(&scrape(metrics), "netlet_connections_active");
        if active <= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{active} connections still open: the stalled members were not sent away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stalled);
    assert_eq!(http_get_status(addr, "/"), 200);
    assert!(
        !netlet.stderr.contains("trapped"),
        "{}",
        netlet.stderr.text()
    );
    drop(talker_frames);
}

#[test]
fn a_websocket_send_the_memory_cannot_hold_fails_alone() {
    let _serial = serial();
    let netlet = Netlet::run(
        "ws-tester",
        &["--tcp", "127.0.0.1:0", "--max-memory", "8MiB"],
    );
    let addr = netlet.tcp[0];
    let mut frames = FrameReader::default();
    // This client never reads: everything the guest sends it queues.
    let mut sink = ws_open(addr, "/sink", &mut frames).unwrap();
    sink.write_all(&encode_frame(op::TEXT, true, b"flood:100000:1000", MASK))
        .unwrap();
    let line = netlet
        .stdout
        .wait_until(WAIT, |l| l.contains("flood sent"))
        .unwrap_or_else(|| netlet.stderr.wait_for("flood sent", WAIT));
    assert!(
        line.contains("the instance's memory cannot hold the message (--max-memory)"),
        "{line}"
    );
    // The instance goes on: another client is served.
    let mut other_frames = FrameReader::default();
    let mut other = ws_open(addr, "/other", &mut other_frames).unwrap();
    other
        .write_all(&encode_frame(op::TEXT, true, b"still echoing", MASK))
        .unwrap();
    let frame = next_frame(&mut other, &mut other_frames).unwrap();
    assert_eq!(frame.payload, b"still echoing");
    assert!(
        !netlet.stderr.contains("trapped"),
        "{}",
        netlet.stderr.text()
    );
    drop(sink);
}

#[test]
fn a_websocket_send_after_its_close_fails_at_once_and_the_instance_serves_on() {
    let _serial = serial();
    let netlet = Netlet::run("ws-tester", &["--tcp", "127.0.0.1:0"]);
    let addr = netlet.tcp[0];
    // The peer goes without a close frame (1006), then one that closes properly.
    let mut frames = FrameReader::default();
    let gone = ws_open(addr, "/gone", &mut frames).unwrap();
    drop(gone);
    netlet.stderr.wait_for("close client=false 1006", WAIT);
    let line = netlet.stderr.wait_for("send after close:", WAIT);
    assert!(
        line.ends_with("send after close: the WebSocket is closed"),
        "{line}"
    );
    let mut frames = FrameReader::default();
    let mut polite = ws_open(addr, "/polite", &mut frames).unwrap();
    polite
        .write_all(&encode_frame(op::CLOSE, true, &[0x03, 0xe8], MASK))
        .unwrap();
    let echo = next_frame(&mut polite, &mut frames).unwrap();
    assert_eq!(echo.opcode, op::CLOSE);
    // The handshake done, the client closes the connection, as `ws` does.
    drop(polite);
    netlet.stderr.wait_for("close client=false 1000", WAIT);
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let after: Vec<String> = netlet
            .stderr
            .all()
            .into_iter()
            .filter(|l| l.contains("send after close:"))
            .collect();
        if after.len() == 2 || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(after.len(), 2, "{:?}", netlet.stderr.all());
    assert!(
        after.iter().all(|l| l.ends_with("the WebSocket is closed")),
        "{after:?}"
    );
    // Nothing was queued for them: the instance serves the next client.
    let mut frames = FrameReader::default();
    let mut next = ws_open(addr, "/next", &mut frames).unwrap();
    next.write_all(&encode_frame(op::TEXT, true, b"still here", MASK))
        .unwrap();
    assert_eq!(
        next_frame(&mut next, &mut frames).unwrap().payload,
        b"still here"
    );
}

// --- TLS handshakes that stall ----------------------------------------------------

#[test]
fn a_tls_client_is_served_at_once_while_three_thousand_handshakes_stall() {
    let _serial = serial();
    raise_fd_limit(16_384);
    let pki = Pki::new("fairness-handshakes");
    let (cert, key) = pki.leaf("server", "localhost", &["localhost"]);
    let netlet = Netlet::run_with(
        "echo",
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
        ],
        Some(16_384),
    );
    let addr = netlet.tls[0];
    // A ClientHello, then silence: 3,000 times.
    let hello = {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
                .unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    };
    let stalled: Vec<TcpStream> = (0..3000)
        .map(|_| {
            let mut c = connect(addr);
            c.write_all(&hello).unwrap();
            c
        })
        .collect();
    // Give the listener time to take them in.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let started = Instant::now();
        let mut client = rustls_client(addr, &pki.ca(), "localhost", &[], None).unwrap();
        assert_eq!(read_exact_from(&mut client, 13), b"Echo server\r\n");
        let took = started.elapsed();
        println!("a TLS client beside 3,000 stalled handshakes: served in {took:?}");
        assert!(
            took <= Duration::from_millis(100),
            "a new TLS client waited {took:?} behind stalled handshakes"
        );
    }
    drop(stalled);
}

fn read_exact_from(c: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    c.read_exact(&mut buf).unwrap();
    buf
}
