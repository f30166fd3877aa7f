//! `socket.pipe(dest)` carried out by the host, on real sockets: the `echo` and `proxy`
//! examples moving 64 MiB byte-exact to slow readers in bounded memory (kernel to kernel
//! with `splice`), and, through the `scripted` guest, Node's semantics: `end` passed on
//! unless `{ end: false }`, `unpipe` mid-stream, a reset on either side, TLS on either
//! side.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::tls::{Client, Pki, rustls_client, s};
use common::*;

const MIB: usize = 1 << 20;

/// Writes `data` in 64 KiB chunks, then half-closes.
fn send_all(mut s: TcpStream, data: Arc<Vec<u8>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for chunk in data.chunks(65536) {
            s.write_all(chunk).unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
    })
}

/// Reads `n` bytes, 64 KiB at a time with a pause after each read: a reader slower
/// than the writer on the other side, so the pipe's backpressure is what bounds memory.
fn read_slowly(mut s: TcpStream, n: usize) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut got = Vec::with_capacity(n);
        let mut buf = vec![0; 64 * 1024];
        while got.len() < n {
            let want = buf.len().min(n - got.len());
            let read = s.read(&mut buf[..want]).unwrap();
            assert!(read > 0, "EOF after {} of {n} bytes", got.len());
            got.extend_from_slice(&buf[..read]);
            std::thread::sleep(Duration::from_micros(1500));
        }
        got
    })
}

/// Kernel pipes the process holds (what `splice` moves bytes through).
fn kernel_pipes(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

/// Samples the process's RSS while `done` is false; returns the peak (KiB) and the most
/// kernel pipes seen.
fn watch(pid: u32, done: impl Fn() -> bool) -> (u64, usize) {
    let (mut rss, mut pipes) = (0, 0);
    while !done() {
        rss = rss.max(rss_kib(pid));
        pipes = pipes.max(kernel_pipes(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    (rss, pipes)
}

#[test]
fn echo_pipes_64_mib_byte_exact_to_a_slow_reader_in_bounded_memory_kernel_to_kernel() {
    let netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0"]);
    let pipes_before = kernel_pipes(netlet.pid());
    // Warm up once, so the baseline includes what the first connection allocates.
    {
        let mut c = connect(netlet.tcp[0]);
        assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
        c.write_all(b"warm").unwrap();
        assert_eq!(read_exact(&mut c, 4), b"warm");
    }
    std::thread::sleep(Duration::from_millis(100));
    let baseline = rss_kib(netlet.pid());
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
    let payload = Arc::new(random_bytes(64 * MIB, 24));
    let writer = send_all(c.try_clone().unwrap(), payload.clone());
    let reader = read_slowly(c.try_clone().unwrap(), payload.len());
    let (peak, pipes) = watch(netlet.pid(), || reader.is_finished());
    writer.join().unwrap();
    let got = reader.join().unwrap();
    assert!(got == *payload, "the echo differs from what was sent");
    // The client's end is passed on: the echo ends once everything went back.
    let (rest, end) = read_to_end(&mut c);
    assert!(
        rest.is_empty() && end.is_ok(),
        "{} more bytes, {end:?}",
        rest.len()
    );
    assert!(
        peak - baseline < 6 * 1024,
        "netlet grew by {} KiB echoing 64 MiB to a slow reader",
        peak - baseline
    );
    assert!(
        pipes > pipes_before,
        "no kernel pipe was used ({pipes_before} before, {pipes} at most during the echo)"
    );
    assert!(
        !netlet.stderr.text().contains("trapped"),
        "{}",
        netlet.stderr.text()
    );
}

#[test]
fn proxy_pipes_64_mib_each_way_to_slow_readers_in_bounded_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    let netlet = Netlet::run(
        "proxy",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &upstream,
            "--",
            &upstream,
        ],
    );
    let accept = || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        s
    };
    {
        let mut c = connect(netlet.tcp[0]);
        let mut s = accept();
        c.write_all(b"warm").unwrap();
        assert_eq!(read_exact(&mut s, 4), b"warm");
        s.write_all(b"up").unwrap();
        assert_eq!(read_exact(&mut c, 2), b"up");
    }
    std::thread::sleep(Duration::from_millis(100));
    let baseline = rss_kib(netlet.pid());
    let c = connect(netlet.tcp[0]);
    let s = accept();
    let to_upstream = Arc::new(random_bytes(64 * MIB, 1));
    let to_client = Arc::new(random_bytes(64 * MIB, 2));
    let writers = [
        send_all(c.try_clone().unwrap(), to_upstream.clone()),
        send_all(s.try_clone().unwrap(), to_client.clone()),
    ];
    let readers = [
        read_slowly(s.try_clone().unwrap(), to_upstream.len()),
        read_slowly(c.try_clone().unwrap(), to_client.len()),
    ];
    let (peak, _) = watch(netlet.pid(), || readers.iter().all(|r| r.is_finished()));
    for w in writers {
        w.join().unwrap();
    }
    let [at_upstream, at_client] = readers.map(|r| r.join().unwrap());
    assert!(at_upstream == *to_upstream, "client -> upstream differs");
    assert!(at_client == *to_client, "upstream -> client differs");
    // Both half-closes passed through.
    for mut side in [c, s] {
        let (rest, end) = read_to_end(&mut side);
        assert!(
            rest.is_empty() && end.is_ok(),
            "{} more bytes, {end:?}",
            rest.len()
        );
    }
    assert!(
        peak - baseline < 6 * 1024,
        "netlet grew by {} KiB proxying 64 MiB each way to slow readers",
        peak - baseline
    );
}

/// netlet running the scripted guest on one TCP listener (and a TLS one with `tls`).
fn scripted(tls: Option<&Pki>) -> Netlet {
    let mut args = vec!["--tcp".to_string(), "127.0.0.1:0".to_string()];
    if let Some(pki) = tls {
        let (cert, key) = pki.leaf("server", "server", &["localhost"]);
        args.extend(
            [
                "--tls",
                "127.0.0.1:0",
                "--tls-cert",
                s(&cert),
                "--tls-key",
                s(&key),
            ]
            .map(String::from),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Netlet::run("scripted", &args)
}

/// A connection and its socket id in the guest.
fn client(netlet: &Netlet) -> (TcpStream, u32) {
    let mut c = connect(netlet.tcp[0]);
    let info = command(&mut c, "info");
    let id = info
        .split_whitespace()
        .find_map(|f| f.strip_prefix("id="))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {info:?}"));
    (c, id)
}

#[test]
fn end_passes_through_unless_end_false() {
    let netlet = scripted(None);
    // `end`: the source's end ends the destination once the bytes are through.
    let (mut dest, dest_id) = client(&netlet);
    let (mut source, source_id) = client(&netlet);
    assert_eq!(
        command(&mut dest, &format!("pipe {source_id} {dest_id}")),
        "pipe ok"
    );
    source.write_all(b"through the pipe").unwrap();
    assert_eq!(read_exact(&mut dest, 16), b"through the pipe");
    source.write_all(b", then the end").unwrap();
    source.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_to_end(&mut dest);
    assert_eq!(got, b", then the end");
    assert!(end.is_ok(), "{end:?}");
    netlet.stderr.wait_for(&format!("ev end {source_id}"), WAIT);
    let data_events = netlet
        .stderr
        .all()
        .iter()
        .filter(|l| l.contains(&format!("ev data {source_id} ")))
        .count();
    assert_eq!(
        data_events, 1,
        "a piped source got data events (beyond its `info`)"
    );

    // `{ end: false }`: the destination stays open, and keeps serving commands.
    let (mut dest, dest_id) = client(&netlet);
    let (mut source, source_id) = client(&netlet);
    assert_eq!(
        command(&mut dest, &format!("pipe {source_id} {dest_id} noend")),
        "pipe ok"
    );
    source.write_all(b"last words\n").unwrap();
    source.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_line(&mut dest), "last words");
    netlet.stderr.wait_for(&format!("ev end {source_id}"), WAIT);
    assert_eq!(command(&mut dest, "echo still open"), "still open");
    // The source itself ended (allowHalfOpen false) and closed.
    let (rest, end) = read_to_end(&mut source);
    assert!(rest.is_empty() && end.is_ok(), "{rest:?} {end:?}");
    netlet
        .stderr
        .wait_for(&format!("ev close {source_id} false"), WAIT);
}

#[test]
fn unpipe_mid_stream_leaves_the_source_paused_until_resumed() {
    let netlet = scripted(None);
    let (mut dest, dest_id) = client(&netlet);
    let (mut source, source_id) = client(&netlet);
    let (mut control, _) = client(&netlet);
    assert_eq!(
        command(&mut control, &format!("pipe {source_id} {dest_id}")),
        "pipe ok"
    );
    let first = random_bytes(MIB, 5);
    source.write_all(&first).unwrap();
    assert!(read_exact(&mut dest, first.len()) == first);
    assert_eq!(
        command(&mut control, &format!("unpipe {source_id}")),
        "unpipe ok"
    );
    // Not moved any more, and not read either: Node's unpipe pauses the source.
    source.write_all(b"echo mine again\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let info = command(&mut control, &format!("info {source_id}"));
    assert!(info.contains("paused=true"), "{info}");
    // Everything moved, plus its own `info` line: nothing read since.
    assert!(
        info.contains(&format!("read={}", first.len() + 5)),
        "{info}"
    );
    // Resumed, its bytes are its own again: a command, answered on the source.
    assert_eq!(
        command(&mut control, &format!("resume {source_id}")),
        "resumed"
    );
    assert_eq!(read_line(&mut source), "mine again");
    // The destination got nothing after the unpipe.
    dest.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0; 64];
    let e = dest.read(&mut buf).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    // It can be piped again (which resumes it).
    assert_eq!(
        command(&mut control, &format!("pipe {source_id} {dest_id}")),
        "pipe ok"
    );
    source.write_all(b"piped again").unwrap();
    dest.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(read_exact(&mut dest, 11), b"piped again");
}

/// Closes `s` with a TCP RST (SO_LINGER 0).
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

#[test]
fn a_reset_on_either_side_of_a_pipe() {
    let netlet = scripted(None);
    // The source resets: the guest sees its error and close; the destination is left
    // alone.
    let (mut dest, dest_id) = client(&netlet);
    let (mut source, source_id) = client(&netlet);
    assert_eq!(
        command(&mut dest, &format!("pipe {source_id} {dest_id}")),
        "pipe ok"
    );
    source.write_all(b"x").unwrap();
    assert_eq!(read_exact(&mut dest, 1), b"x");
    reset(source);
    netlet
        .stderr
        .wait_for(&format!("ev error {source_id} ECONNRESET"), WAIT);
    netlet
        .stderr
        .wait_for(&format!("ev close {source_id} true"), WAIT);
    assert_eq!(command(&mut dest, "echo still here"), "still here");

    // The destination resets: it closes with its error; the source is unpiped and
    // paused, open.
    let (dest, dest_id) = client(&netlet);
    let (mut source, source_id) = client(&netlet);
    let (mut control, _) = client(&netlet);
    assert_eq!(
        command(&mut control, &format!("pipe {source_id} {dest_id}")),
        "pipe ok"
    );
    reset(dest);
    netlet
        .stderr
        .wait_for(&format!("ev close {dest_id} true"), WAIT);
    source.write_all(b"echo nobody hears\n").unwrap();
    let info = command(&mut control, &format!("info {source_id}"));
    assert!(
        info.contains("paused=true") && info.contains("state=open"),
        "{info}"
    );
    assert_eq!(
        command(&mut control, &format!("resume {source_id}")),
        "resumed"
    );
    assert_eq!(read_line(&mut source), "nobody hears");
}

/// Reads `n` bytes from a TLS client.
fn tls_read(c: &mut Client, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    c.read_exact(&mut got).unwrap();
    got
}

#[test]
fn tls_on_either_side_of_a_pipe() {
    let pki = Pki::new("pipe");
    let netlet = scripted(Some(&pki));
    let addr = netlet.tls[0];
    let pipes_before = kernel_pipes(netlet.pid());
    let tls_client = || {
        let mut c = rustls_client(addr, &pki.ca(), "localhost", &[], None).unwrap();
        c.write_all(b"info\n").unwrap();
        let mut line = Vec::new();
        let mut byte = [0];
        while byte[0] != b'\n' {
            c.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let id: u32 = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("id="))
            .and_then(|id| id.parse().ok())
            .unwrap();
        (c, id)
    };

    // TLS into itself: an echo through rustls on both ends of the pipe.
    let (mut t, _) = tls_client();
    t.write_all(b"pipe self self\n").unwrap();
    assert_eq!(tls_read(&mut t, 8), b"pipe ok\n");
    let payload = random_bytes(4 * MIB, 9);
    for chunk in payload.chunks(64 * 1024) {
        t.write_all(chunk).unwrap();
        assert!(
            tls_read(&mut t, chunk.len()) == chunk,
            "the TLS echo differs"
        );
    }

    // TCP into TLS and TLS into TCP.
    let (mut t, tls_id) = tls_client();
    let (mut p, tcp_id) = client(&netlet);
    assert_eq!(command(&mut p, &format!("pipe self {tls_id}")), "pipe ok");
    t.write_all(format!("pipe self {tcp_id}\n").as_bytes())
        .unwrap();
    assert_eq!(tls_read(&mut t, 8), b"pipe ok\n");
    let to_tls = Arc::new(random_bytes(4 * MIB, 10));
    let writer = {
        let (p, data) = (p.try_clone().unwrap(), to_tls.clone());
        std::thread::spawn(move || {
            let mut p = p;
            p.write_all(&data).unwrap();
        })
    };
    assert!(
        tls_read(&mut t, to_tls.len()) == *to_tls,
        "TCP -> TLS differs"
    );
    writer.join().unwrap();
    let to_tcp = random_bytes(4 * MIB, 11);
    let reader = {
        let (mut p, n) = (p.try_clone().unwrap(), to_tcp.len());
        std::thread::spawn(move || read_exact(&mut p, n))
    };
    t.write_all(&to_tcp).unwrap();
    assert!(reader.join().unwrap() == to_tcp, "TLS -> TCP differs");
    // The TLS side's end (close_notify) ends the TCP side.
    t.conn.send_close_notify();
    t.flush().unwrap();
    let (rest, end) = read_to_end(&mut p);
    assert!(rest.is_empty() && end.is_ok(), "{rest:?} {end:?}");
    // With TLS on a side the bytes are copied through the host: no kernel pipe.
    assert_eq!(kernel_pipes(netlet.pid()), pipes_before);
}
