//! TLS terminated by the host: listeners (`--tls`) and guests' TLS connects, with real
//! clients (`openssl s_client`, `curl`, Node's `tls`, a Rust rustls client) and real
//! servers (Node's `tls.createServer`). Certificates are made here, by rcgen, in a fresh
//! folder per test: no private key is checked in.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::{Client, Pki, rustls_client, s};
use common::*;
use rustls::pki_types::CertificateDer;

const ECHO_BANNER: &[u8] = b"Echo server\r\n";

fn read_n(client: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    client.read_exact(&mut buf).unwrap();
    buf
}

fn line(client: &mut impl Read) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = client.read(&mut byte).unwrap();
        if n == 0 || byte[0] == b'\n' {
            return String::from_utf8_lossy(&out).into_owned();
        }
        out.push(byte[0]);
    }
}

/// The DER of the leaf certificate a server presented.
fn presented(client: &Client) -> Vec<u8> {
    client.conn.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem_file: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(pem_file).unwrap().to_vec()
}

/// Runs `echo` with a TLS listener on `cert`/`key` (and a plain one), plus `extra`.
fn echo_tls(cert: &Path, key: &Path, extra: &[&str]) -> Netlet {
    let mut args = vec![
        "--tcp",
        "127.0.0.1:0",
        "--tls",
        "127.0.0.1:0",
        "--tls-cert",
        s(cert),
        "--tls-key",
        s(key),
    ];
    args.extend_from_slice(extra);
    Netlet::run("echo", &args)
}

#[test]
fn openssl_s_client_verifies_and_echo_serves_tls_unchanged() {
    let pki = Pki::new("openssl");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let netlet = echo_tls(&cert, &key, &[]);
    assert_eq!(netlet.tls.len(), 1, "{:?}", netlet.stdout.all());
    let addr = netlet.tls[0].to_string();
    let mut child = tool("openssl")
        .args([
            "s_client",
            "-connect",
            &addr,
            "-servername",
            "localhost",
            "-CAfile",
            s(&pki.ca()),
            "-verify_return_error",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    let out = Lines::default();
    out.spawn_reader(child.stdout.take().unwrap());
    out.wait_for("Echo server", WAIT);
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello over tls\n")
        .unwrap();
    out.wait_for("hello over tls", WAIT);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.contains("Verify return code: 0 (ok)"), "{}", out.text());
    assert!(out.contains("TLSv1.3"), "{}", out.text());
    // The plain listener beside it is plain TCP.
    let mut plain = connect(netlet.tcp[0]);
    assert_eq!(read_exact(&mut plain, ECHO_BANNER.len()), ECHO_BANNER);
}

#[test]
fn curl_with_the_ca_gets_through_and_without_it_is_refused() {
    let pki = Pki::new("curl");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let netlet = echo_tls(&cert, &key, &["--tls-alpn", "http/1.1"]);
    let url = format!("https://localhost:{}/hello", netlet.tls[0].port());
    let resolve = format!("localhost:{}:127.0.0.1", netlet.tls[0].port());
    // The echo server answers with its banner and the request itself: HTTP/0.9 to curl.
    let out = tool("curl")
        .args([
            "-sS",
            "--http0.9",
            "--max-time",
            "2",
            "--resolve",
            &resolve,
            "--cacert",
            s(&pki.ca()),
            &url,
        ])
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.starts_with("Echo server\r\nGET /hello HTTP/1.1"),
        "curl: {} {body} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // 28: curl's timeout (the echo never closes); not a TLS failure.
    assert_eq!(out.status.code(), Some(28));
    let refused = tool("curl")
        .args(["-sS", "--max-time", "5", "--resolve", &resolve, &url])
        .output()
        .expect("curl");
    // 60: the peer's certificate cannot be verified (the platform does not know our CA).
    assert_eq!(
        refused.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(refused.stdout.is_empty());
}

#[test]
fn node_echoes_8_mib_byte_exact_through_a_slow_reader() {
    let pki = Pki::new("node8m");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let netlet = echo_tls(&cert, &key, &[]);
    let script = r#"
const tls = require('tls'), fs = require('fs'), crypto = require('crypto');
const [port, ca] = process.argv.slice(1);
const data = crypto.randomBytes(8 << 20);
const chunks = [];
const s = tls.connect({port: +port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(ca)}, () => {
  // A slow reader first: the writer runs ahead, backpressure has to hold.
  s.pause();
  setTimeout(() => s.resume(), 700);
  s.end(data);
});
s.on('data', d => chunks.push(d));
s.on('end', () => {
  const all = Buffer.concat(chunks);
  const banner = all.subarray(0, 13).toString();
  const same = Buffer.compare(all.subarray(13), data) === 0;
  console.log(JSON.stringify({banner, same, len: all.length - 13, protocol: s.getProtocol()}));
});
s.on('error', e => { console.log('error ' + e.message); process.exit(1); });
"#;
    let out = node(script, &[&netlet.tls[0].port().to_string(), s(&pki.ca())]);
    assert!(out.contains(r#""banner":"Echo server\r\n""#), "{out}");
    assert!(out.contains(r#""same":true"#), "{out}");
    assert!(out.contains(&format!(r#""len":{}"#, 8 << 20)), "{out}");
    assert!(out.contains(r#""protocol":"TLSv1.3""#), "{out}");
}

#[test]
fn sni_chooses_the_certificate_wildcards_included_and_the_first_is_the_default() {
    let pki = Pki::new("sni");
    let (default_cert, default_key) = pki.leaf("default", "default", &["default.test"]);
    let (wild_cert, wild_key) = pki.leaf("wild", "wild", &["*.sni.test"]);
    let (exact_cert, exact_key) = pki.leaf("exact", "exact", &["exact.sni.test"]);
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&default_cert),
            "--tls-key",
            s(&default_key),
            "--tls-cert",
            s(&wild_cert),
            "--tls-key",
            s(&wild_key),
            "--tls-cert",
            s(&exact_cert),
            "--tls-key",
            s(&exact_key),
        ],
    );
    let addr = netlet.tls[0];
    let ca = pki.ca();
    for (name, expected) in [
        ("a.sni.test", &wild_cert),
        ("exact.sni.test", &exact_cert),
        ("default.test", &default_cert),
    ] {
        let mut c = rustls_client(addr, &ca, name, &[], None).unwrap();
        assert_eq!(presented(&c), der_of(expected), "SNI {name}");
        // The guest sees the name the client asked for.
        c.write_all(b"tlsinfo\n").unwrap();
        let info = line(&mut c);
        assert!(
            info.starts_with("tls TLSv1.3 TLS_") && info.contains(&format!("sni={name} ")),
            "{info}"
        );
        assert!(info.contains("peer=- "), "{info}");
    }
    // A name no certificate has gets the default, which the client then rejects.
    let e = rustls_client(addr, &ca, "nothing.test", &[], None).unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");
    // Node, with no SNI at all (an IP address): the default.
    let script = r#"
const tls = require('tls'), fs = require('fs');
const [port, ca] = process.argv.slice(1);
const s = tls.connect({port: +port, host: '127.0.0.1', ca: fs.readFileSync(ca), checkServerIdentity: () => undefined}, () => {
  console.log(s.getPeerCertificate().subjectaltname); s.end();
});
"#;
    let out = node(script, &[&addr.port().to_string(), s(&ca)]);
    assert_eq!(out.trim(), "DNS:default.test");
}

#[test]
fn alpn_is_negotiated_and_a_client_offering_none_of_ours_is_refused() {
    let pki = Pki::new("alpn");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--tls-alpn",
            "h2",
            "--tls-alpn",
            "http/1.1",
        ],
    );
    let script = r#"
const tls = require('tls'), fs = require('fs');
const [port, ca, protos] = process.argv.slice(1);
const s = tls.connect({port: +port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(ca), ALPNProtocols: protos.split(',')}, () => {
  s.write('tlsinfo\n');
});
s.on('data', d => { console.log('alpn=' + s.alpnProtocol + ' guest: ' + d.toString().trim()); s.end(); });
s.on('error', e => console.log('error ' + e.code + ' ' + e.message));
"#;
    let port = netlet.tls[0].port().to_string();
    let out = node(script, &[&port, s(&pki.ca()), "http/1.1"]);
    assert!(
        out.contains("alpn=http/1.1 guest: tls TLSv1.3") && out.contains(" alpn=http/1.1 "),
        "{out}"
    );
    let out = node(script, &[&port, s(&pki.ca()), "spdy/1,h2"]);
    assert!(
        out.contains("alpn=h2 ") && out.contains(" alpn=h2 "),
        "{out}"
    );
    let out = node(script, &[&port, s(&pki.ca()), "spdy/3"]);
    assert!(
        out.starts_with("error") && out.contains("no application protocol"),
        "{out}"
    );
    netlet
        .stderr
        .wait_for("no ALPN protocol in common with the peer", WAIT);
    assert_eq!(
        netlet
            .stderr
            .all()
            .iter()
            .filter(|l| l.contains("ev connection"))
            .count(),
        2,
        "{}",
        netlet.stderr.text()
    );
}

#[test]
fn mtls_accepts_a_verified_client_and_tells_the_guest_who_and_refuses_others() {
    let pki = Pki::new("mtls");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let (client_cert, client_key) = pki.leaf("client", "client one", &["client.test"]);
    let stranger = Pki::new("mtls-stranger");
    let (other_cert, other_key) = stranger.leaf("client", "stranger", &["stranger.test"]);
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--tls-client-ca",
            s(&pki.ca()),
        ],
    );
    let addr = netlet.tls[0];
    let mut c = rustls_client(
        addr,
        &pki.ca(),
        "localhost",
        &[],
        Some((&client_cert, &client_key)),
    )
    .unwrap();
    c.write_all(b"tlsinfo\n").unwrap();
    let info = line(&mut c);
    assert!(
        info.contains("peer=CN=client one sans=DNS:client.test"),
        "{info}"
    );
    // Node with the client certificate too.
    let script = r#"
const tls = require('tls'), fs = require('fs');
const [port, ca, cert, key] = process.argv.slice(1);
const o = {port: +port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(ca)};
if (cert) { o.cert = fs.readFileSync(cert); o.key = fs.readFileSync(key); }
const s = tls.connect(o, () => s.write('echo hi\n'));
s.on('data', d => { console.log('data ' + d.toString().trim()); s.end(); });
s.on('error', e => console.log('error ' + e.code));
s.on('close', () => console.log('closed'));
"#;
    let port = addr.port().to_string();
    let ok = node(
        script,
        &[&port, s(&pki.ca()), s(&client_cert), s(&client_key)],
    );
    assert!(ok.contains("data hi"), "{ok}");
    // No certificate, or one from another CA: refused, and the guest sees nothing.
    let none = node(script, &[&port, s(&pki.ca())]);
    assert!(none.contains("error") && !none.contains("data"), "{none}");
    let other = node(
        script,
        &[&port, s(&pki.ca()), s(&other_cert), s(&other_key)],
    );
    assert!(
        other.contains("error") && !other.contains("data"),
        "{other}"
    );
    netlet.stderr.wait_for("presented no certificate", WAIT);
    netlet.stderr.wait_for("certificate verify failed", WAIT);
    let connections = netlet
        .stderr
        .all()
        .iter()
        .filter(|l| l.contains("ev connection"))
        .count();
    assert_eq!(connections, 2, "{}", netlet.stderr.text());
}

#[test]
fn plaintext_and_silent_clients_never_reach_the_guest_and_the_listener_stays_up() {
    let pki = Pki::new("plaintext");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--tls-handshake-timeout",
            "300ms",
        ],
    );
    let addr = netlet.tls[0];
    // A plaintext client: it gets an alert (or nothing), then the end.
    let mut plain = connect(addr);
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (got, _) = read_to_end(&mut plain);
    assert!(!String::from_utf8_lossy(&got).contains("HTTP"), "{got:?}");
    netlet.stderr.wait_for("not a TLS handshake", WAIT);
    // A silent client is cut at the handshake timeout.
    let started = Instant::now();
    let mut silent = connect(addr);
    let (got, _) = read_to_end(&mut silent);
    let took = started.elapsed();
    assert!(got.is_empty(), "{got:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "cut after {took:?}"
    );
    netlet.stderr.wait_for("no handshake within 300ms", WAIT);
    // The listener still serves.
    let mut c = rustls_client(addr, &pki.ca(), "localhost", &[], None).unwrap();
    c.write_all(b"echo still here\n").unwrap();
    assert_eq!(line(&mut c), "still here");
    netlet.stderr.wait_for("ev connection", WAIT);
    let connections = netlet
        .stderr
        .all()
        .iter()
        .filter(|l| l.contains("ev connection"))
        .count();
    assert_eq!(connections, 1, "{}", netlet.stderr.text());
}

#[test]
fn a_flood_of_bad_handshakes_is_counted_and_logged_at_a_bounded_rate() {
    let pki = Pki::new("flood");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let config = netlet::HandlerConfig {
        tls: vec!["127.0.0.1:0".parse().unwrap()],
        tls_cert: vec![cert],
        tls_key: vec![key],
        ..netlet::HandlerConfig::default()
    };
    let server = netlet::testing::Server::start(guest("echo"), config).unwrap();
    let addr = server.tls[0];
    for _ in 0..200 {
        let mut c = connect(addr);
        c.write_all(b"not tls at all\r\n\r\n").unwrap();
        let _ = read_to_end(&mut c);
    }
    let stats = server.stats().unwrap();
    let port = stats.tcp_port(Some(1));
    assert!(port.tls);
    let failures = netlet::stats::HandlerStats::get(&port.tls_handshake_failures);
    assert_eq!(failures, 200);
    assert_eq!(
        netlet::stats::HandlerStats::get(&stats.connections_total),
        0
    );
    let logged = server
        .host_logs()
        .iter()
        .filter(|l| l.contains("handshake with"))
        .count();
    assert!(
        (1..=40).contains(&logged),
        "{logged} lines for 200 failures"
    );
    // A good client afterwards is served (and counted).
    let mut c = rustls_client(addr, &pki.ca(), "localhost", &[], None).unwrap();
    assert_eq!(read_n(&mut c, ECHO_BANNER.len()), ECHO_BANNER);
    assert_eq!(netlet::stats::HandlerStats::get(&port.tls_handshakes), 1);
    server.shutdown().unwrap();
}

/// A Node TLS echo server with `cert`/`key`; prints its port.
fn node_tls_server(cert: &Path, key: &Path) -> (NodeProcess, u16) {
    let script = r#"
const tls = require('tls'), fs = require('fs');
const [cert, key] = process.argv.slice(1);
const server = tls.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)}, s => {
  s.on('data', d => s.write('node got ' + d.toString()));
  s.on('error', () => {});
});
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
"#;
    let node = NodeProcess::start(script, &[s(cert), s(key)]);
    let port = node.stdout.wait_for("port ", WAIT);
    let port: u16 = port.trim_start_matches("port ").trim().parse().unwrap();
    (node, port)
}

#[test]
fn a_guests_tls_client_verifies_the_server_and_a_mismatch_is_an_error_not_data() {
    let pki = Pki::new("client");
    let (cert, key) = pki.leaf("server", "node server", &["localhost", "node.test"]);
    let (_node, port) = node_tls_server(&cert, &key);
    let allow = format!("127.0.0.1:{port}");
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &allow,
            "--tls-ca",
            s(&pki.ca()),
        ],
    );
    let mut c = connect(netlet.tcp[0]);
    c.write_all(format!("tlsconnect 127.0.0.1 {port} localhost\n").as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut c), "connecting");
    let connected = read_line(&mut c);
    assert!(
        connected.starts_with("client connect tls TLSv1.3 TLS_")
            && connected.contains("sni=localhost")
            && connected.contains("peer=CN=node server sans=DNS:localhost,DNS:node.test"),
        "{connected}"
    );
    c.write_all(b"csend hi node\n").unwrap();
    assert_eq!(read_line(&mut c), "client data node got hi node");
    c.write_all(b"cend\n").unwrap();
    assert_eq!(read_line(&mut c), "client end");
    assert_eq!(read_line(&mut c), "client close false");

    // A name the certificate does not have: an error saying so, then close, no data.
    c.write_all(format!("tlsconnect 127.0.0.1 {port} wrong.test\n").as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut c), "connecting");
    c.write_all(b"csend must not arrive\n").unwrap();
    let error = read_line(&mut c);
    assert!(
        error.starts_with("client error ERR_TLS_HANDSHAKE TLS handshake with 127.0.0.1:")
            && error.contains("name mismatch")
            && error.contains("wrong.test"),
        "{error}"
    );
    assert_eq!(read_line(&mut c), "client close true");
    // Not allowed: refused at once, as for plain connects.
    c.write_all(b"tlsconnect 127.0.0.1 1 localhost\n").unwrap();
    assert_eq!(read_line(&mut c), "connect failed EACCES");
}

#[test]
fn a_guests_tls_client_without_the_ca_sees_an_unknown_issuer() {
    let pki = Pki::new("client-roots");
    let (cert, key) = pki.leaf("server", "node server", &["localhost"]);
    let (_node, port) = node_tls_server(&cert, &key);
    let allow = format!("127.0.0.1:{port}");
    // No --tls-ca: the platform's roots, which do not know the test CA.
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0", "--allow", &allow]);
    let mut c = connect(netlet.tcp[0]);
    c.write_all(format!("tlsconnect 127.0.0.1 {port} localhost h2,http/1.1\n").as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut c), "connecting");
    let error = read_line(&mut c);
    assert!(error.contains("unknown issuer"), "{error}");
    assert_eq!(read_line(&mut c), "client close true");
}

/// The SDK's HTTP client speaks HTTPS (Node's `https.request`) to Node's `https` server:
/// the certificate verified through `--tls-ca`, ALPN `http/1.1`, both requests on one
/// pooled connection; a certificate for another name is an error, never a response.
#[test]
fn the_sdks_https_client_verifies_the_server_and_reuses_its_connection() {
    let pki = Pki::new("https-client");
    let (cert, key) = pki.leaf("server", "node https", &["localhost"]);
    let script = r#"
const https = require('https'), fs = require('fs');
const [cert, key] = process.argv.slice(1);
let conns = 0;
const srv = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key),
                                ALPNProtocols: ['http/1.1']}, (req, res) => {
  let body = '';
  req.on('data', d => body += d);
  req.on('end', () => res.end(`${req.method} ${req.url} ${body} alpn=${req.socket.alpnProtocol} conns=${conns}`));
});
srv.on('secureConnection', () => conns++);
srv.on('tlsClientError', e => console.log('tls client error ' + e.code));
srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
"#;
    let node = NodeProcess::start(script, &[s(&cert), s(&key)]);
    let port = node.stdout.wait_for("port ", WAIT);
    let port = port.trim_start_matches("port ").trim();
    let allow = format!("localhost:{port}");
    let target = format!("https://localhost:{port}");
    let netlet = Netlet::run(
        "http-tester",
        &[
            "--allow",
            &allow,
            "--tls-ca",
            s(&pki.ca()),
            "--",
            &target,
            "GET /a",
            "POST /b hello-tls",
        ],
    );
    netlet.stderr.wait_for("[http_tester] done", WAIT);
    let lines: Vec<String> = netlet
        .stderr
        .all()
        .into_iter()
        .filter(|l| l.contains("response "))
        .collect();
    assert_eq!(lines.len(), 2, "{}", netlet.stderr.text());
    assert!(
        lines[0].contains("response GET /a 200")
            && lines[0].contains("body=\"GET /a  alpn=http/1.1 conns=1\""),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("response POST /b 200")
            && lines[1].contains("POST /b hello-tls alpn=http/1.1 conns=1"),
        "{lines:?}"
    );
    let socket = |l: &str| {
        l.split_whitespace()
            .find(|w| w.starts_with("socket="))
            .map(str::to_string)
    };
    assert_eq!(
        socket(&lines[0]),
        socket(&lines[1]),
        "one connection: {lines:?}"
    );

    // The same server reached by its address: the certificate does not name it.
    let allow = format!("127.0.0.1:{port}");
    let target = format!("https://127.0.0.1:{port}");
    let netlet = Netlet::run(
        "http-tester",
        &[
            "--allow",
            &allow,
            "--tls-ca",
            s(&pki.ca()),
            "--",
            &target,
            "GET /x",
        ],
    );
    netlet.stderr.wait_for("[http_tester] done", WAIT);
    let text = netlet.stderr.text();
    assert!(
        text.contains("error GET /x ") && text.contains("certificate"),
        "{text}"
    );
    assert!(!text.contains("response GET /x"), "{text}");
}

/// The SDK's WebSocket client opens `wss://` to netlet's `ws-echo` behind a TLS listener:
/// the handshake, a message each way and the close handshake, all over TLS; without the
/// CA it is an error naming the unknown issuer, then close 1006.
#[test]
fn the_sdks_websocket_client_opens_wss_and_an_untrusted_server_is_an_error() {
    let pki = Pki::new("wss-client");
    let (cert, key) = pki.leaf("server", "ws server", &["localhost"]);
    let echo = Netlet::run(
        "ws-echo",
        &[
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
        ],
    );
    let port = echo.tls[0].port();
    let allow = format!("localhost:{port}");
    let url = format!("wss://localhost:{port}/secure");
    let client = Netlet::run(
        "ws-tester",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &allow,
            "--tls-ca",
            s(&pki.ca()),
            "--",
            "--connect",
            &url,
        ],
    );
    client
        .stderr
        .wait_for("open /secure client=true protocol=None", WAIT);
    client
        .stderr
        .wait_for("client got hello from the guest client", WAIT);
    client.stderr.wait_for("close client=true 1000 ", WAIT);

    let untrusted = Netlet::run(
        "ws-tester",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &allow,
            "--",
            "--connect",
            &url,
        ],
    );
    let error = untrusted.stderr.wait_for("error client=true ", WAIT);
    assert!(error.contains("unknown issuer"), "{error}");
    untrusted.stderr.wait_for("close client=true 1006 ", WAIT);
    assert!(!untrusted.stderr.text().contains("open /secure"));
}

#[test]
fn a_bad_certificate_or_key_stops_the_start_with_one_line_naming_the_file() {
    let pki = Pki::new("bad");
    let (cert, key) = pki.leaf("server", "server", &["localhost"]);
    let (_, other_key) = pki.leaf("other", "other", &["other.test"]);
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let missing = pki.path("missing.pem");
    let cases: [(&Path, &Path, &str); 4] = [
        (&missing, &key, "missing.pem: cannot read: no such file"),
        (&garbage, &key, "garbage.pem: no certificate in it"),
        (&cert, &garbage, "garbage.pem: no private key in it"),
        (
            &cert,
            &other_key,
            "other.key: this key does not match the certificate in",
        ),
    ];
    for (c, k, expected) in cases {
        let mut netlet = Netlet::spawn(&[
            "run",
            s(&guest("echo")),
            "--tls",
            "127.0.0.1:0",
            "--tls-cert",
            s(c),
            "--tls-key",
            s(k),
        ]);
        let status = netlet.wait_exit(WAIT);
        assert!(!status.success());
        let lines: Vec<String> = netlet
            .stderr
            .all()
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(expected), "{lines:?}");
        assert!(netlet.stdout.all().iter().all(|l| !l.contains("listening")));
    }
}

#[test]
fn certificates_rotate_on_sighup_open_connections_keep_theirs_and_a_bad_one_is_refused() {
    let pki = Pki::new("rotate");
    let (a_cert, a_key) = pki.leaf("a", "first", &["localhost"]);
    let (b_cert, b_key) = pki.leaf("b", "second", &["localhost"]);
    let (live_cert, live_key) = (pki.path("live.pem"), pki.path("live.key"));
    std::fs::copy(&a_cert, &live_cert).unwrap();
    std::fs::copy(&a_key, &live_key).unwrap();
    let netlet = echo_tls(&live_cert, &live_key, &[]);
    let addr = netlet.tls[0];
    let ca = pki.ca();
    let mut old = rustls_client(addr, &ca, "localhost", &[], None).unwrap();
    assert_eq!(presented(&old), der_of(&a_cert));
    assert_eq!(read_n(&mut old, ECHO_BANNER.len()), ECHO_BANNER);

    std::fs::copy(&b_cert, &live_cert).unwrap();
    std::fs::copy(&b_key, &live_key).unwrap();
    netlet.signal(libc::SIGHUP);
    netlet
        .stderr
        .wait_for("reloaded its TLS certificates", WAIT);
    // No code swap: the instance (and so its state) is the same.
    assert!(
        !netlet.stderr.contains("swapped in"),
        "{}",
        netlet.stderr.text()
    );
    let mut new = rustls_client(addr, &ca, "localhost", &[], None).unwrap();
    assert_eq!(presented(&new), der_of(&b_cert));
    assert_eq!(read_n(&mut new, ECHO_BANNER.len()), ECHO_BANNER);
    // The open connection kept its session.
    old.write_all(b"still the first").unwrap();
    assert_eq!(read_n(&mut old, 15), b"still the first");

    // A certificate that does not match its key: refused, the current ones keep serving.
    std::fs::copy(&a_cert, &live_cert).unwrap();
    netlet.signal(libc::SIGHUP);
    netlet.stderr.wait_for("TLS not reloaded", WAIT);
    assert!(
        netlet.stderr.contains("live.key: this key does not match"),
        "{}",
        netlet.stderr.text()
    );
    let mut after = rustls_client(addr, &ca, "localhost", &[], None).unwrap();
    assert_eq!(presented(&after), der_of(&b_cert));
    assert_eq!(read_n(&mut after, ECHO_BANNER.len()), ECHO_BANNER);
}

#[test]
fn watch_reloads_a_rotated_certificate_while_clients_keep_connecting() {
    let pki = Pki::new("watch");
    let (a_cert, a_key) = pki.leaf("a", "first", &["localhost"]);
    let (b_cert, b_key) = pki.leaf("b", "second", &["localhost"]);
    let (live_cert, live_key) = (pki.path("live.pem"), pki.path("live.key"));
    std::fs::copy(&a_cert, &live_cert).unwrap();
    std::fs::copy(&a_key, &live_key).unwrap();
    let netlet = echo_tls(&live_cert, &live_key, &["--watch"]);
    let addr = netlet.tls[0];
    let ca = pki.ca();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let ca = ca.clone();
        std::thread::spawn(move || {
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut c = rustls_client(addr, &ca, "localhost", &[], None)
                    .unwrap_or_else(|e| panic!("a connection was refused: {e}"));
                assert_eq!(read_n(&mut c, ECHO_BANNER.len()), ECHO_BANNER);
                served += 1;
            }
            served
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    // Key first, then the certificate: the reload waits for the files to settle.
    std::fs::copy(&b_key, &live_key).unwrap();
    std::fs::copy(&b_cert, &live_cert).unwrap();
    netlet
        .stderr
        .wait_for("reloaded its TLS certificates", WAIT);
    let mut c = rustls_client(addr, &ca, "localhost", &[], None).unwrap();
    assert_eq!(presented(&c), der_of(&b_cert));
    assert_eq!(read_n(&mut c, ECHO_BANNER.len()), ECHO_BANNER);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = load.join().unwrap();
    assert!(served > 5, "{served}");
}

#[test]
fn a_manifest_takes_tls_keys_relative_to_its_folder() {
    let pki = Pki::new("manifest");
    pki.leaf("server", "server", &["localhost"]);
    std::fs::copy(guest("echo"), pki.path("echo.wasm")).unwrap();
    let manifest = pki.path("netlet.toml");
    std::fs::write(
        &manifest,
        "[handler.secure]\ncomponent = \"echo.wasm\"\ntls = \"127.0.0.1:0\"\n\
         tls-cert = \"server.pem\"\ntls-key = \"server.key\"\ntls-alpn = [\"http/1.1\"]\n\
         tls-handshake-timeout = \"2s\"\n",
    )
    .unwrap();
    let cache = cache_dir();
    let netlet = Netlet::spawn(&["up", s(&manifest), "--cache-dir", cache.to_str().unwrap()]);
    let listening = netlet.stdout.wait_for("netlet: listening tls ", WAIT);
    assert!(listening.ends_with(" (secure)"), "{listening}");
    let addr: SocketAddr = listening
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    let mut c = rustls_client(addr, &pki.ca(), "localhost", &["http/1.1"], None).unwrap();
    assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(read_n(&mut c, ECHO_BANNER.len()), ECHO_BANNER);

    // A bad key in a manifest: FILE:LINE: handler.NAME.KEY: the file and the problem.
    std::fs::write(pki.path("bad.key"), "nope\n").unwrap();
    let bad = pki.path("bad.toml");
    std::fs::write(
        &bad,
        "[handler.secure]\ncomponent = \"echo.wasm\"\ntls = \"127.0.0.1:0\"\n\
         tls-cert = \"server.pem\"\ntls-key = \"bad.key\"\n",
    )
    .unwrap();
    let mut failed = Netlet::spawn(&["up", s(&bad), "--cache-dir", cache.to_str().unwrap()]);
    assert!(!failed.wait_exit(WAIT).success());
    let text = failed.stderr.text();
    assert!(
        text.contains("bad.toml:5: handler.secure.tls-key:")
            && text.contains("bad.key: no private key in it"),
        "{text}"
    );
}

#[test]
fn inspect_says_when_a_component_makes_tls_connections() {
    let inspect = |name: &str| {
        let out = Command::new(netlet_bin())
            .args(["inspect", s(&guest(name))])
            .env("NETLET_CACHE_DIR", cache_dir())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let scripted = inspect("scripted");
    assert!(
        scripted.contains("outbound TLS (tls.connect)"),
        "{scripted}"
    );
    assert!(scripted.contains("connect-tls"), "{scripted}");
    let client = inspect("tcp-client");
    assert!(!client.contains("TLS"), "{client}");
}

#[test]
fn the_demo_serves_echo_over_tls_with_a_certificate_made_at_start() {
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
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    netlet.stdout.wait_for("Ctrl-C stops the demo", WAIT);
    let listening = netlet.stdout.wait_for("netlet: listening tls ", WAIT);
    let addr: SocketAddr = listening
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    let hint = netlet
        .stdout
        .wait_for(&format!("openssl s_client -connect {addr}"), WAIT);
    let ca = hint
        .split_whitespace()
        .skip_while(|w| *w != "-CAfile")
        .nth(1)
        .unwrap()
        .to_string();
    let mut c = rustls_client(addr, Path::new(&ca), "localhost", &[], None).unwrap();
    assert_eq!(read_n(&mut c, ECHO_BANNER.len()), ECHO_BANNER);
    c.write_all(b"https's foundation").unwrap();
    assert_eq!(read_n(&mut c, 18), b"https's foundation");
}
