//! WebSocket handlers (`netlet_guest::ws`) with real clients on loopback: Node's `ws`
//! package, Python's `websockets`, raw sockets for every RFC 6455 violation, 500
//! concurrent chat clients, headless Chromium on the chat page; and the in-memory
//! harness's WebSocket client.
//!
//! Node's packages (`ws`, `playwright-core`), Python's `websockets` and Debian's
//! `chromium` are installed by `scripts/test` (see `common::test_clients`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::*;
use netlet::testing::Harness;
use netlet::testing::ws::{
    self as wst, Frame, FrameReader, WsClient, close_payload, encode_frame, encode_frame_rsv, op,
};

/// Runs a Node script with the WebSocket packages on its path; returns stdout.
fn node_ws(script: &str, args: &[&str]) -> String {
    let out = tool("node")
        .arg("-e")
        .arg(script)
        .args(args)
        .env("NODE_PATH", node_modules())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "node failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a Python script; returns stdout.
fn python(script: &str, args: &[&str]) -> String {
    let out = common::python()
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn ws_url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

// ---------------------------------------------------------------------------------
// Node's `ws`
// ---------------------------------------------------------------------------------

const NODE_ECHO_SIZES: &str = r#"
const WebSocket = require('ws');
const url = process.argv[1];
const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];
function pattern(n, seed) {
  const b = Buffer.alloc(n); let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) & 0x7fffffff; b[i] = x >> 16; }
  return b;
}
function text(n) {
  // 1-, 2-, 3- and 4-byte characters, padded to n bytes.
  let s = 'aé€😀'.repeat(Math.floor(n / 10));
  return s + 'x'.repeat(n - Buffer.byteLength(s));
}
const ws = new WebSocket(url, { maxPayload: 64 << 20 });
ws.on('error', e => { console.log('error', e.message); process.exit(1); });
ws.on('open', async () => {
  for (const n of sizes) for (const binary of [false, true]) {
    const data = binary ? pattern(n, n + 1) : text(n);
    const [msg, isBinary] = await new Promise(resolve => {
      ws.once('message', (m, b) => resolve([m, b]));
      ws.send(data, { binary });
    });
    const same = isBinary === binary &&
      (binary ? Buffer.compare(msg, data) === 0 : msg.toString() === data);
    console.log(n, binary ? 'binary' : 'text', same ? 'ok' : 'MISMATCH');
  }
  ws.close(1000, 'done');
});
ws.on('close', (code) => console.log('close', code));
"#;

#[test]
fn node_ws_echoes_text_and_binary_from_0_b_to_16_mib_byte_exact() {
    let netlet = Netlet::run("ws-echo", &["--tcp", "127.0.0.1:0"]);
    let out = node_ws(NODE_ECHO_SIZES, &[&ws_url(netlet.tcp[0], "/any/path")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 17, "{out}");
    for (i, n) in [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]
        .iter()
        .enumerate()
    {
        assert_eq!(lines[2 * i], format!("{n} text ok"), "{out}");
        assert_eq!(lines[2 * i + 1], format!("{n} binary ok"), "{out}");
    }
    assert_eq!(lines[16], "close 1000", "{out}");
}

#[test]
fn node_ws_fragments_pings_and_subprotocols() {
    let netlet = Netlet::run("ws-tester", &["--tcp", "127.0.0.1:0"]);
    let script = r#"
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1], ['v1', 'chat']);
const log = [];
ws.on('open', () => {
  console.log('protocol', ws.protocol);
  // A fragmented message with a ping between its fragments.
  ws.send('frag', { fin: false });
  ws.ping('between');
  ws.send('mented ', { fin: false });
  ws.send('✓', { fin: true });
  // The server fragments its answer, with a ping after the first fragment.
  ws.send('frag:4:abcdefghijklmnop');
  ws.send('ping:server-ping');
});
ws.on('pong', p => console.log('pong', p.toString()));
ws.on('ping', p => console.log('ping', p.toString()));
let n = 0;
ws.on('message', (m, binary) => {
  console.log('message', binary, m.toString());
  if (++n === 2) setTimeout(() => ws.close(1000), 200);
});
ws.on('close', code => console.log('close', code));
"#;
    let out = node_ws(script, &[&ws_url(netlet.tcp[0], "/t")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "protocol chat", "{out}");
    assert!(lines.contains(&"pong between"), "{out}");
    assert!(lines.contains(&"message false fragmented ✓"), "{out}");
    assert!(lines.contains(&"message false abcdefghijklmnop"), "{out}");
    assert!(lines.contains(&"ping mid"), "{out}");
    assert!(lines.contains(&"ping server-ping"), "{out}");
    assert_eq!(lines.last(), Some(&"close 1000"), "{out}");
    // The server saw the client's ping, and the pongs to its own pings.
    netlet.stderr.wait_for("ping between", WAIT);
    netlet.stderr.wait_for("pong server-ping", WAIT);
    netlet.stderr.wait_for("pong mid", WAIT);
    netlet
        .stderr
        .wait_for("open /t client=false protocol=Some(\"chat\")", WAIT);
}

#[test]
fn node_ws_close_codes_both_ways() {
    let netlet = Netlet::run("ws-tester", &["--tcp", "127.0.0.1:0"]);
    let script = r#"
const WebSocket = require('ws');
const url = process.argv[1];
function once(setup) {
  return new Promise(resolve => {
    const ws = new WebSocket(url);
    ws.on('open', () => setup(ws));
    ws.on('error', () => {});
    ws.on('close', (code, reason) => resolve(code + ' ' + reason.toString()));
  });
}
(async () => {
  console.log('client-closed', await once(ws => ws.close(4001, 'bye from node')));
  console.log('server-closed', await once(ws => ws.send('close:4002:bye from netlet')));
  console.log('going-away', await once(ws => ws.send('close:1001:restarting')));
  console.log('refused', await once(ws => { ws.send('close:1005:nope'); setTimeout(() => ws.close(1000, 'after'), 300); }));
  console.log('terminated', await once(ws => ws.send('terminate')));
})();
"#;
    let out = node_ws(script, &[&ws_url(netlet.tcp[0], "/")]);
    let lines: Vec<&str> = out.lines().collect();
    // The server echoes the client's code; Node reports what the server sent.
    assert_eq!(
        lines,
        [
            "client-closed 4001 ",
            "server-closed 4002 bye from netlet",
            "going-away 1001 restarting",
            "refused 1000 ",
            "terminated 1006 ",
        ],
        "{out}"
    );
    netlet
        .stderr
        .wait_for("close client=false 4001 bye from node", WAIT);
    // The server's own close: the client's echo of 4002 completes it.
    netlet.stderr.wait_for("close client=false 4002 ", WAIT);
    netlet
        .stderr
        .wait_for("close refused: close code 1005 may not be sent", WAIT);
    netlet.stderr.wait_for("close client=false 1006 ", WAIT);
}

// ---------------------------------------------------------------------------------
// Python's `websockets`
// ---------------------------------------------------------------------------------

#[test]
fn python_websockets_echo_fragments_pings_and_close_codes() {
    let echo = Netlet::run("ws-echo", &["--tcp", "127.0.0.1:0"]);
    let tester = Netlet::run("ws-tester", &["--tcp", "127.0.0.1:0"]);
    let script = r#"
import sys
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed

echo, tester = sys.argv[1], sys.argv[2]
with connect(echo, max_size=None) as ws:
    for n in [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]:
        base = bytes((i * 7 + n) % 256 for i in range(4096))
        data = (base * (n // 4096 + 1))[:n]
        ws.send(data)
        assert ws.recv() == data, ('binary', n)
        text = 'aé€😀' * (n // 10)
        text += 'x' * (n - len(text.encode()))
        assert len(text.encode()) == n
        ws.send(text)
        assert ws.recv() == text, ('text', n)
        print(n, 'ok')
    # A fragmented message: the iterable's items are its fragments.
    ws.send(['one ', 'two ', 'three'])
    print('fragmented', ws.recv())
    ws.send([b'\x01\x02', b'\x03'])
    print('fragmented binary', list(ws.recv()))
    pong = ws.ping(b'py-ping')
    print('pong', pong.wait(10))
    ws.close(4003, 'bye from python')
    print('closed', ws.close_code)

with connect(tester) as ws:
    ws.send('close:4004:python asked')
    try:
        ws.recv()
    except ConnectionClosed as e:
        print('server closed', e.rcvd.code, e.rcvd.reason)
"#;
    let out = python(
        script,
        &[&ws_url(echo.tcp[0], "/"), &ws_url(tester.tcp[0], "/")],
    );
    for n in [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20] {
        assert!(out.contains(&format!("{n} ok\n")), "{out}");
    }
    assert!(out.contains("fragmented one two three\n"), "{out}");
    assert!(out.contains("fragmented binary [1, 2, 3]\n"), "{out}");
    assert!(out.contains("pong True\n"), "{out}");
    assert!(out.contains("closed 4003\n"), "{out}");
    assert!(out.contains("server closed 4004 python asked\n"), "{out}");
}

// ---------------------------------------------------------------------------------
// RFC 6455 violations on raw sockets
// ---------------------------------------------------------------------------------

/// Opens a WebSocket on a raw socket; returns it and a reader holding what followed
/// the 101.
fn raw_open(addr: SocketAddr, path: &str) -> (TcpStream, FrameReader) {
    let mut s = connect(addr);
    s.write_all(&wst::handshake_request(path, &[])).unwrap();
    let head = read_until(&mut s, b"\r\n\r\n");
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(
        text.contains(&format!("Sec-WebSocket-Accept: {}", wst::ACCEPT)),
        "{text}"
    );
    (s, FrameReader::default())
}

/// Reads frames until the server closes the connection; returns them.
fn frames_until_eof(s: &mut TcpStream, reader: &mut FrameReader) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        while let Some(f) = reader.next_frame() {
            out.push(f);
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => reader.push(&buf[..n]),
        }
    }
}

const MASK: Option<[u8; 4]> = Some([9, 8, 7, 6]);

#[test]
fn every_rfc_violation_is_answered_with_its_close_code() {
    let netlet = Netlet::run(
        "ws-echo",
        &["--tcp", "127.0.0.1:0", "--", "--max-message-size", "64KiB"],
    );
    let addr = netlet.tcp[0];
    let mut huge = vec![0x82, 0xFF];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge.extend_from_slice(&[1, 2, 3, 4]);
    let mut new_inside = encode_frame(op::TEXT, false, b"a", MASK);
    new_inside.extend(encode_frame(op::TEXT, true, b"b", MASK));
    let mut utf8_across = encode_frame(op::TEXT, false, "ok €".as_bytes().split_at(4).0, MASK);
    utf8_across.extend(encode_frame(op::CONTINUATION, false, &[0x28], MASK));
    let mut too_long_fragments = encode_frame(op::BINARY, false, &[0; 40_000], MASK);
    too_long_fragments.extend(encode_frame(op::CONTINUATION, true, &[0; 40_000], MASK));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "RSV1 without an extension",
            encode_frame_rsv(op::TEXT, true, 0x40, b"x", MASK),
            1002,
        ),
        (
            "RSV2",
            encode_frame_rsv(op::TEXT, true, 0x20, b"x", MASK),
            1002,
        ),
        (
            "RSV3",
            encode_frame_rsv(op::TEXT, true, 0x10, b"x", MASK),
            1002,
        ),
        (
            "reserved data opcode 3",
            encode_frame(0x3, true, b"", MASK),
            1002,
        ),
        (
            "reserved control opcode B",
            encode_frame(0xB, true, b"", MASK),
            1002,
        ),
        (
            "an unmasked client frame",
            encode_frame(op::TEXT, true, b"hi", None),
            1002,
        ),
        (
            "a fragmented ping",
            encode_frame(op::PING, false, b"x", MASK),
            1002,
        ),
        (
            "a 126-byte ping",
            encode_frame(op::PING, true, &[0; 126], MASK),
            1002,
        ),
        (
            "a continuation without a message",
            encode_frame(op::CONTINUATION, true, b"x", MASK),
            1002,
        ),
        ("a new message inside a fragmented one", new_inside, 1002),
        ("a 64-bit length with the top bit set", huge, 1002),
        (
            "a 1-byte close payload",
            encode_frame(op::CLOSE, true, &[3], MASK),
            1002,
        ),
        (
            "close code 1005",
            encode_frame(op::CLOSE, true, &close_payload(1005, ""), MASK),
            1002,
        ),
        (
            "close code 1006",
            encode_frame(op::CLOSE, true, &close_payload(1006, ""), MASK),
            1002,
        ),
        (
            "close code 999",
            encode_frame(op::CLOSE, true, &close_payload(999, ""), MASK),
            1002,
        ),
        (
            "close code 5000",
            encode_frame(op::CLOSE, true, &close_payload(5000, ""), MASK),
            1002,
        ),
        (
            "text that is not UTF-8",
            encode_frame(op::TEXT, true, &[b'a', 0xFF], MASK),
            1007,
        ),
        ("an invalid byte across fragments", utf8_across, 1007),
        (
            "a close reason that is not UTF-8",
            encode_frame(op::CLOSE, true, &[0x03, 0xE8, 0xC0], MASK),
            1007,
        ),
        (
            "a message over the limit",
            encode_frame(op::BINARY, true, &[0; 65537], MASK),
            1009,
        ),
        (
            "fragments over the limit together",
            too_long_fragments,
            1009,
        ),
    ];
    for (name, bytes, code) in cases {
        let (mut s, mut reader) = raw_open(addr, "/");
        s.write_all(&bytes).unwrap();
        let frames = frames_until_eof(&mut s, &mut reader);
        let close = frames
            .last()
            .unwrap_or_else(|| panic!("{name}: no close frame"));
        assert_eq!(close.opcode, op::CLOSE, "{name}: {frames:?}");
        assert_eq!(
            close.close_code(),
            Some(code),
            "{name}: {}",
            close.close_reason()
        );
        assert!(!close.masked, "{name}");
    }
    // A valid close: echoed, then the server closes the connection.
    let (mut s, mut reader) = raw_open(addr, "/");
    s.write_all(&encode_frame(
        op::CLOSE,
        true,
        &close_payload(3000, "done"),
        MASK,
    ))
    .unwrap();
    let frames = frames_until_eof(&mut s, &mut reader);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].close_code(), Some(3000));
    assert!(netlet.stderr.all().iter().all(|l| !l.contains("trapped")));
}

#[test]
fn bad_handshakes_get_400_or_426() {
    let netlet = Netlet::run("ws-echo", &["--tcp", "127.0.0.1:0"]);
    let addr = netlet.tcp[0];
    let good = String::from_utf8(wst::handshake_request("/", &[])).unwrap();
    let cases = [
        (
            good.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            "426",
        ),
        (
            good.replace(&format!("Sec-WebSocket-Key: {}\r\n", wst::KEY), ""),
            "400",
        ),
        (good.replace(wst::KEY, "c2hvcnQ="), "400"),
        (good.replace("GET", "POST"), "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), "426"),
    ];
    for (req, status) in cases {
        let mut s = connect(addr);
        s.write_all(req.as_bytes()).unwrap();
        let (got, _) = read_to_end(&mut s);
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{req:?} -> {text}"
        );
        if status == "426" {
            assert!(text.contains("Sec-WebSocket-Version: 13\r\n"), "{text}");
        }
    }
}

// ---------------------------------------------------------------------------------
// The chat room
// ---------------------------------------------------------------------------------

#[test]
fn five_hundred_chat_clients_each_see_every_message_in_order() {
    let netlet = Netlet::run("ws-chat", &["--tcp", "127.0.0.1:0"]);
    let script = r#"
const WebSocket = require('ws');
const url = process.argv[1], N = +process.argv[2], SENDERS = 20, PER = 10;
const clients = [];
let opened = 0, done = 0;
const deadline = setTimeout(() => { console.log('timeout', opened, done); process.exit(1); }, 90000);
for (let i = 0; i < N; i++) {
  const ws = new WebSocket(url + '?name=c' + i);
  const c = { ws, i, seen: new Map(), count: 0, bad: 0, joined: false };
  clients.push(c);
  ws.on('error', e => { console.log('error', i, e.message); process.exit(1); });
  ws.on('message', data => {
    const text = data.toString();
    if (text.startsWith('* you are')) { c.joined = true; if (++opened === N) start(); return; }
    if (text.startsWith('* ')) return;
    const [from, body] = text.split(': ');
    const sender = +from.slice(1), seq = +body.slice(1);
    const last = c.seen.has(sender) ? c.seen.get(sender) : -1;
    if (seq !== last + 1) c.bad++;
    c.seen.set(sender, seq);
    c.count++;
    const expected = (i < SENDERS ? SENDERS - 1 : SENDERS) * PER;
    if (c.count === expected) { if (++done === N) finish(); }
  });
}
function start() {
  for (let s = 0; s < SENDERS; s++) for (let j = 0; j < PER; j++) clients[s].ws.send('m' + j);
}
function finish() {
  clearTimeout(deadline);
  const bad = clients.reduce((a, c) => a + c.bad, 0);
  const total = clients.reduce((a, c) => a + c.count, 0);
  console.log('clients', N, 'messages', total, 'out of order', bad);
  for (const c of clients) c.ws.close(1000);
}
"#;
    let out = node_ws(script, &[&ws_url(netlet.tcp[0], "/ws"), "500"]);
    // 20 senders × 10 messages: each sender sees 190, everyone else 200.
    let total = 20 * 190 + 480 * 200;
    assert_eq!(
        out.trim(),
        format!("clients 500 messages {total} out of order 0"),
        "{out}"
    );
}

#[test]
fn chromium_opens_the_chat_page_twice_and_a_message_crosses() {
    // Debian's chromium, driven by playwright-core (scripts/test installs both).
    let _ = tool("chromium");
    let netlet = Netlet::run("ws-chat", &["--tcp", "127.0.0.1:0"]);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ws-chat.png");
    let _ = std::fs::remove_file(&shot);
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let script = r#"
const { chromium } = require('playwright-core');
const [url, shot, profile] = process.argv.slice(1);
(async () => {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 460, height: 420 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const text = page => page.evaluate(() => document.body.innerText);
  const waitText = (page, s) => page.waitForFunction(s => document.body.innerText.includes(s), s, { timeout: 15000 });
  const alice = await context.newPage();
  await alice.goto(url + '#alice');
  await waitText(alice, '* you are alice');
  const bob = await context.newPage();
  await bob.goto(url + '#bob');
  await waitText(bob, '* you are bob');
  await waitText(alice, '* bob joined');
  await alice.fill('#text', 'hello bob, this is alice');
  await alice.press('#text', 'Enter');
  await waitText(bob, 'alice: hello bob, this is alice');
  await bob.fill('#text', 'hi alice, ça va ?');
  await bob.press('#text', 'Enter');
  await waitText(alice, 'bob: hi alice, ça va ?');
  console.log('ALICE ' + JSON.stringify(await text(alice)));
  console.log('BOB ' + JSON.stringify(await text(bob)));
  // The two pages side by side, for the README.
  const a = (await alice.screenshot()).toString('base64');
  const b = (await bob.screenshot()).toString('base64');
  const both = await context.newPage();
  await both.setViewportSize({ width: 960, height: 440 });
  await both.setContent(`<body style="margin:0;padding:10px;background:#9aa5b1;display:flex;gap:20px">
    <img src="data:image/png;base64,${a}"><img src="data:image/png;base64,${b}"></body>`);
  await both.screenshot({ path: shot });
  await context.close();
})().catch(e => { console.error(e); process.exit(1); });
"#;
    let url = format!("http://{}/", netlet.tcp[0]);
    let out = node_ws(
        script,
        &[&url, shot.to_str().unwrap(), profile.to_str().unwrap()],
    );
    let alice = out
        .lines()
        .find(|l| l.starts_with("ALICE "))
        .unwrap_or_default();
    let bob = out
        .lines()
        .find(|l| l.starts_with("BOB "))
        .unwrap_or_default();
    assert!(alice.contains("me: hello bob, this is alice"), "{out}");
    assert!(alice.contains("bob: hi alice, ça va ?"), "{out}");
    assert!(alice.contains("connected to ws://"), "{out}");
    assert!(bob.contains("alice: hello bob, this is alice"), "{out}");
    assert!(bob.contains("me: hi alice, ça va ?"), "{out}");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    let _ = std::fs::remove_dir_all(&profile);
}

// ---------------------------------------------------------------------------------
// The guest's client, on bare net, and the in-memory harness
// ---------------------------------------------------------------------------------

#[test]
fn the_guest_client_connects_under_allow_and_is_refused_without() {
    let echo = Netlet::run("ws-echo", &["--tcp", "127.0.0.1:0"]);
    let target = ws_url(echo.tcp[0], "/from-guest");
    let allow = echo.tcp[0].to_string();
    let client = Netlet::run(
        "ws-tester",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &allow,
            "--",
            "--connect",
            &target,
        ],
    );
    client
        .stderr
        .wait_for("open /from-guest client=true protocol=None", WAIT);
    client
        .stderr
        .wait_for("client got hello from the guest client", WAIT);
    client.stderr.wait_for("close client=true 1000 ", WAIT);

    let denied = Netlet::run(
        "ws-tester",
        &["--tcp", "127.0.0.1:0", "--", "--connect", &target],
    );
    denied.stderr.wait_for("client connect failed: ", WAIT);
    denied.stderr.wait_for("EACCES", WAIT);

    // A server that is not a WebSocket server: the handshake fails, then close 1006.
    let http = Netlet::run("http-hello", &["--tcp", "127.0.0.1:0"]);
    let allow = http.tcp[0].to_string();
    let refused = Netlet::run(
        "ws-tester",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &allow,
            "--",
            "--connect",
            &ws_url(http.tcp[0], "/"),
        ],
    );
    refused.stderr.wait_for(
        "error client=true handshake failed: the server answered 200",
        WAIT,
    );
    refused.stderr.wait_for("close client=true 1006 ", WAIT);
}

#[test]
fn a_bare_net_handler_does_the_handshake_itself() {
    let netlet = Netlet::run("ws-net", &["--tcp", "127.0.0.1:0"]);
    let out = node_ws(
        r#"
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1]);
ws.on('open', () => ws.send('over bare net'));
ws.on('message', m => { console.log(m.toString()); ws.close(4005, 'x'); });
ws.on('close', c => console.log('close', c));
"#,
        &[&ws_url(netlet.tcp[0], "/")],
    );
    assert_eq!(out, "over bare net\nclose 4005\n");
    netlet.stderr.wait_for("close 4005 x", WAIT);
    // Not a handshake: 400 and closed.
    let mut s = connect(netlet.tcp[0]);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (got, _) = read_to_end(&mut s);
    assert!(
        got.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn harness_echo_fragments_pings_and_the_close_handshake() -> Result<(), Box<dyn std::error::Error>>
{
    let h = Harness::load(guest("ws-tester"))?;
    let c = h.connect()?;
    let mut ws = WsClient::handshake_with(&c, "/h", &["x", "chat"])?;
    assert_eq!(ws.protocol(), Some("chat"));
    ws.send_text(&c, "hello")?;
    assert_eq!(ws.next(&c)?, Some(Frame::text("hello")));
    ws.send_binary(&c, &[0, 1, 2])?;
    assert_eq!(ws.next(&c)?, Some(Frame::binary(&[0, 1, 2])));
    // A fragmented message with a ping between: the pong comes at once, the message
    // when it is whole.
    ws.send_frame(&c, op::TEXT, false, b"frag")?;
    ws.ping(&c, b"p1")?;
    assert_eq!(ws.next(&c)?, Some(Frame::new(op::PONG, b"p1")));
    ws.send_frame(&c, op::CONTINUATION, true, b"ments")?;
    assert_eq!(ws.next(&c)?, Some(Frame::text("fragments")));
    // The server fragments: first frame not final, a ping, continuations.
    ws.send_text(&c, "frag:3:abcdef")?;
    let frames = ws.frames(&c)?;
    let kinds: Vec<(u8, bool, String)> = frames
        .iter()
        .map(|f| (f.opcode, f.fin, f.payload_text()))
        .collect();
    assert_eq!(
        kinds,
        [
            (op::TEXT, false, "ab".into()),
            (op::PING, true, "mid".into()),
            (op::CONTINUATION, false, "cd".into()),
            (op::CONTINUATION, true, "ef".into()),
        ]
    );
    // The close handshake: echoed, then the server ends the connection.
    ws.close(&c, 4001, "bye")?;
    let close = ws.next(&c)?.expect("a close frame");
    assert_eq!(close.close_code(), Some(4001));
    assert!(c.is_ended());
    c.end()?;
    assert!(c.is_closed());
    assert!(
        h.logs()
            .contains(&"close client=false 4001 bye".to_string()),
        "{:?}",
        h.logs()
    );
    Ok(())
}

#[test]
fn harness_a_peer_that_never_answers_our_close_is_cut_at_the_close_timeout()
-> Result<(), Box<dyn std::error::Error>> {
    let h = Harness::builder()
        .args(["--close-timeout", "2s"])
        .load(guest("ws-tester"))?;
    let c = h.connect()?;
    let mut ws = WsClient::handshake(&c, "/")?;
    ws.send_text(&c, "close:1000:please answer")?;
    assert_eq!(ws.next(&c)?.and_then(|f| f.close_code()), Some(1000));
    h.advance(Duration::from_millis(1900))?;
    assert!(!c.is_closed(), "closed before the timeout");
    h.advance(Duration::from_millis(200))?;
    assert!(c.is_closed(), "not destroyed at the close timeout");
    assert!(
        h.logs().contains(&"close client=false 1006 ".to_string()),
        "{:?}",
        h.logs()
    );
    Ok(())
}

#[test]
fn harness_a_client_that_does_not_read_is_not_read_either() -> Result<(), Box<dyn std::error::Error>>
{
    let h = Harness::load(guest("ws-echo"))?;
    let c = h.connect()?;
    let mut ws = WsClient::handshake(&c, "/")?;
    c.stop_reading(1024);
    let msg = vec![7u8; 60 * 1024];
    let mut sent = 0;
    while !c.is_paused() && sent < 100 {
        ws.send_binary(&c, &msg)?;
        sent += 1;
    }
    assert!(
        c.is_paused(),
        "the echo kept reading a client that does not read"
    );
    assert!(sent < 10, "paused only after {sent} messages");
    c.resume_reading()?;
    let mut got = 0;
    while let Some(f) = ws.next(&c)? {
        assert_eq!(f.payload, msg);
        got += 1;
    }
    assert_eq!(got, sent);
    assert!(!c.is_paused());
    Ok(())
}

#[test]
fn harness_hostile_clients_are_refused_before_the_guest_runs_out_of_memory()
-> Result<(), Box<dyn std::error::Error>> {
    // Each connection announces a 15 MiB message and sends a little of it: the
    // instance's budget for messages being assembled (32 MiB) admits two.
    let h = Harness::load(guest("ws-echo"))?;
    let mut codes = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..4 {
        let c = h.connect()?;
        let mut ws = WsClient::handshake(&c, "/")?;
        let mut frame = encode_frame(op::BINARY, true, &vec![1u8; 15 << 20], MASK);
        frame.truncate(14 + 1024);
        ws.send_raw(&c, &frame)?;
        codes.push(ws.next(&c)?.and_then(|f| f.close_code()));
        conns.push((c, ws));
    }
    assert_eq!(codes, [None, None, Some(1013), Some(1013)]);
    assert!(h.traps().is_empty(), "{:?}", h.traps());
    // A connection that goes gives its share back.
    conns[0].0.reset()?;
    let c = h.connect()?;
    let mut ws = WsClient::handshake(&c, "/")?;
    ws.send_binary(&c, &vec![2u8; 1 << 20])?;
    assert_eq!(ws.next(&c)?.map(|f| f.payload.len()), Some(1 << 20));
    Ok(())
}
