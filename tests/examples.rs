//! Each example component behaves as its seed says, with real clients (Rust and Node).

mod common;

use std::io::Write;
use std::net::{Shutdown, UdpSocket};
use std::time::Duration;

use common::*;

const GREETING: &str = "欢迎光临《深入浅出Node.js》示例：\n";

#[test]
fn hello_greets_answers_each_data_and_logs_end() {
    let netlet = Netlet::run("hello", &["--tcp", "127.0.0.1:0"]);
    netlet.stderr.wait_for("[hello] server bound", WAIT);
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(read_exact(&mut c, GREETING.len()), GREETING.as_bytes());
    c.write_all(b"one").unwrap();
    assert_eq!(read_exact(&mut c, "你好".len()), "你好".as_bytes());
    c.write_all(b"two").unwrap();
    assert_eq!(read_exact(&mut c, "你好".len()), "你好".as_bytes());
    c.shutdown(Shutdown::Write).unwrap();
    netlet.stderr.wait_for("[hello] 连接断开", WAIT);
    // allowHalfOpen=false: the server ends its side after 'end'.
    let (rest, result) = read_to_end(&mut c);
    assert!(result.is_ok(), "{result:?}");
    assert!(rest.is_empty(), "unexpected bytes after end: {rest:?}");
}

#[test]
fn hello_with_a_node_client() {
    let netlet = Netlet::run("hello", &["--tcp", "127.0.0.1:0"]);
    let out = node(
        r#"
        const net = require('net');
        const c = net.connect(+process.argv[1], '127.0.0.1', () => c.write('hi'));
        let got = '';
        c.on('data', d => { got += d; if (got.endsWith('你好')) c.end(); });
        c.on('end', () => console.log(JSON.stringify(got)));
        "#,
        &[&netlet.tcp[0].port().to_string()],
    );
    assert_eq!(out.trim(), serde_like_json(&format!("{GREETING}你好")));
}

/// JSON-quotes a string the way `JSON.stringify` does for these texts.
fn serde_like_json(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    )
}

#[test]
fn echo_sends_banner_then_echoes_byte_exact() {
    let netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
    for msg in [&b"hello"[..], b"\0\x01\xff binary \r\n", &[b'x'; 5000]] {
        c.write_all(msg).unwrap();
        assert_eq!(read_exact(&mut c, msg.len()), msg);
    }
    c.shutdown(Shutdown::Write).unwrap();
    let (rest, result) = read_to_end(&mut c);
    assert!(result.is_ok() && rest.is_empty(), "{rest:?} {result:?}");
}

#[test]
fn echo_with_a_node_client_using_pipe_semantics() {
    let netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0"]);
    let out = node(
        r#"
        const net = require('net');
        const c = net.connect(+process.argv[1], '127.0.0.1');
        const payload = Buffer.alloc(1 << 20, 7);
        let got = [];
        c.on('data', d => got.push(d));
        c.on('end', () => {
          const all = Buffer.concat(got);
          const banner = all.subarray(0, 13).toString();
          const body = all.subarray(13);
          console.log(JSON.stringify(banner), body.length, body.equals(payload));
        });
        c.end(payload);
        "#,
        &[&netlet.tcp[0].port().to_string()],
    );
    assert_eq!(out.trim(), r#""Echo server\r\n" 1048576 true"#);
}

#[test]
fn udp_echo_logs_and_echoes_to_the_sender() {
    let netlet = Netlet::run("udp-echo", &["--udp", "127.0.0.1:0"]);
    netlet
        .stderr
        .wait_for("[udp_echo] server listening 127.0.0.1:", WAIT);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    client.send_to(b"hello udp", netlet.udp[0]).unwrap();
    let mut buf = [0; 100];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello udp");
    assert_eq!(from, netlet.udp[0]);
    let port = client.local_addr().unwrap().port();
    netlet.stderr.wait_for(
        &format!("[udp_echo] server got: hello udp from 127.0.0.1:{port}"),
        WAIT,
    );
}

#[test]
fn udp_echo_with_a_node_client() {
    let netlet = Netlet::run("udp-echo", &["--udp", "127.0.0.1:0"]);
    let out = node(
        r#"
        const s = require('dgram').createSocket('udp4');
        s.on('message', (m, rinfo) => { console.log(m.toString(), rinfo.port === +process.argv[1]); s.close(); });
        s.send('深入浅出Node.js', +process.argv[1], 'localhost');
        "#,
        &[&netlet.udp[0].port().to_string()],
    );
    assert_eq!(out.trim(), "深入浅出Node.js true");
}

#[test]
fn tcp_client_talks_to_a_node_server_and_exits() {
    let server = NodeProcess::start(
        r#"
        const net = require('net');
        const srv = net.createServer(s => {
          s.on('data', d => { console.log('server got ' + JSON.stringify(d.toString())); s.write('hello from node'); });
          s.on('end', () => { console.log('server saw end'); srv.close(); });
        });
        srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
        "#,
        &[],
    );
    let port_line = server.stdout.wait_for("port ", WAIT);
    let port = port_line.trim_start_matches("port ").to_string();
    let target = format!("127.0.0.1:{port}");
    let mut netlet = Netlet::run("tcp-client", &["--allow", &target, "--", &target]);
    let status = netlet.wait_exit(WAIT);
    assert!(
        status.success(),
        "{status}; stderr:\n{}",
        netlet.stderr.text()
    );
    server.stdout.wait_for(r#"server got "world!\r\n""#, WAIT);
    server.stdout.wait_for("server saw end", WAIT);
    let log = netlet.stderr.text();
    let connected = netlet
        .stderr
        .position("[tcp_client] client connected")
        .expect(&log);
    let data = netlet
        .stderr
        .position("[tcp_client] hello from node")
        .expect(&log);
    let disconnected = netlet
        .stderr
        .position("[tcp_client] client disconnected")
        .expect(&log);
    assert!(connected < data && data < disconnected, "{log}");
}

#[test]
fn tcp_client_without_permission_is_denied() {
    let mut netlet = Netlet::run("tcp-client", &["--", "127.0.0.1:9"]);
    let status = netlet.wait_exit(WAIT);
    assert!(!status.success());
    let log = netlet.stderr.text();
    assert!(log.contains("denied connect to 127.0.0.1:9"), "{log}");
    assert!(log.contains("--allow 127.0.0.1:9"), "{log}");
    assert!(log.contains("init failed"), "{log}");
}

fn node_udp_server() -> (NodeProcess, String) {
    let server = NodeProcess::start(
        r#"
        const s = require('dgram').createSocket('udp4');
        s.on('message', (m, r) => { console.log('got ' + m.toString() + ' size ' + r.size); s.close(); });
        s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));
        "#,
        &[],
    );
    let port = server
        .stdout
        .wait_for("port ", WAIT)
        .trim_start_matches("port ")
        .to_string();
    (server, port)
}

#[test]
fn udp_client_sends_to_a_node_server_and_exits() {
    let (server, port) = node_udp_server();
    let mut netlet = Netlet::run(
        "udp-client",
        &[
            "--allow",
            &format!("127.0.0.1:{port}"),
            "--",
            &format!("localhost:{port}"),
        ],
    );
    let status = netlet.wait_exit(WAIT);
    assert!(
        status.success(),
        "{status}; stderr:\n{}",
        netlet.stderr.text()
    );
    server.stdout.wait_for("got hello world size 11", WAIT);
    netlet.stderr.wait_for("[udp_client] sent 11 bytes", WAIT);

    // Its arguments become the message; a rule naming the host allows it too.
    let (server, port) = node_udp_server();
    let mut netlet = Netlet::run(
        "udp-client",
        &[
            "--allow",
            &format!("localhost:{port}"),
            "--",
            &format!("localhost:{port}"),
            "hi",
            "there",
        ],
    );
    assert!(netlet.wait_exit(WAIT).success(), "{}", netlet.stderr.text());
    server.stdout.wait_for("got hi there size 8", WAIT);
}

#[test]
fn chat_broadcasts_lines_to_the_other_clients() {
    let netlet = Netlet::run("chat", &["--tcp", "127.0.0.1:0"]);
    let mut a = connect(netlet.tcp[0]);
    let mut b = connect(netlet.tcp[0]);
    let mut c = connect(netlet.tcp[0]);
    // Let the three connections register before speaking.
    std::thread::sleep(Duration::from_millis(200));
    a.write_all(b"hello from a\nand a second ").unwrap();
    a.write_all(b"line\n").unwrap();
    let a_addr = a.local_addr().unwrap();
    let expected = format!("[{a_addr}] hello from a\n[{a_addr}] and a second line\n");
    assert_eq!(read_exact(&mut b, expected.len()), expected.as_bytes());
    assert_eq!(read_exact(&mut c, expected.len()), expected.as_bytes());
    c.write_all(b"c here\n").unwrap();
    let c_line = format!("[{}] c here\n", c.local_addr().unwrap());
    assert_eq!(read_exact(&mut a, c_line.len()), c_line.as_bytes());
    assert_eq!(read_exact(&mut b, c_line.len()), c_line.as_bytes());
    // A departed client no longer receives anything, and others are unaffected.
    drop(b);
    std::thread::sleep(Duration::from_millis(100));
    a.write_all(b"after b left\n").unwrap();
    let line = format!("[{a_addr}] after b left\n");
    assert_eq!(read_exact(&mut c, line.len()), line.as_bytes());
}

#[test]
fn demo_serves_the_seed_servers_http_hello_and_the_chat_room() {
    let cache = cache_dir();
    let netlet = Netlet::start(&[
        "demo",
        "--hello",
        "127.0.0.1:0",
        "--echo",
        "127.0.0.1:0",
        "--echo-tls",
        "127.0.0.1:0",
        "--udp-echo",
        "127.0.0.1:0",
        "--http-hello",
        "127.0.0.1:0",
        "--ws-chat",
        "127.0.0.1:0",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    // The helper only counts --tcp/--udp arguments: wait for the demo's last line.
    netlet.stdout.wait_for("Ctrl-C stops the demo", WAIT);
    let lines = netlet.stdout.all();
    // hello, echo, echo over TLS, UDP echo, HTTP hello, the chat room.
    let addrs: Vec<std::net::SocketAddr> = lines
        .iter()
        .filter(|l| l.starts_with("netlet: listening "))
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
        .collect();
    assert_eq!(addrs.len(), 6, "{lines:?}");
    assert!(
        netlet
            .stdout
            .contains(&format!("open http://{}/ in two browser tabs", addrs[5])),
        "instructions missing: {lines:?}"
    );
    assert!(
        netlet
            .stdout
            .contains("openssl s_client -connect 127.0.0.1:"),
        "instructions missing: {lines:?}"
    );
    assert!(
        netlet
            .stdout
            .contains(&format!("curl -i http://{}/", addrs[4])),
        "instructions missing: {lines:?}"
    );
    assert!(
        netlet.stdout.contains("nc 127.0.0.1"),
        "instructions missing: {lines:?}"
    );
    assert!(
        netlet.stdout.contains("node -e"),
        "instructions missing: {lines:?}"
    );

    let mut hello = connect(addrs[0]);
    assert_eq!(read_exact(&mut hello, GREETING.len()), GREETING.as_bytes());
    let mut echo = connect(addrs[1]);
    assert_eq!(read_exact(&mut echo, 13), b"Echo server\r\n");
    echo.write_all(b"ping").unwrap();
    assert_eq!(read_exact(&mut echo, 4), b"ping");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    udp.send_to(b"dgram", addrs[3]).unwrap();
    let mut buf = [0; 16];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"dgram");
    let mut http = connect(addrs[4]);
    http.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (got, _) = read_to_end(&mut http);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nHello World\n"),
        "{text}"
    );
    let mut chat = connect(addrs[5]);
    chat.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (got, _) = read_to_end(&mut chat);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("new WebSocket(url)"),
        "{text}"
    );
}
