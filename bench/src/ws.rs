//! The WebSocket comparison: an echo ping-pong over N connections against netlet
//! running `ws-echo`, a native tokio-tungstenite echo server on one thread
//! (`netlet-bench serve-ws`) and Node's `ws` package. Two things show whether the load
//! generator (one thread, in this process) is the limit: the same load against the
//! plain native TCP echo server, which does no WebSocket work at all (it sends each
//! masked frame back as it came), and the generator's own CPU use during each run.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::compare::Options;
use crate::servers::{self, Kind};

/// A tokio-tungstenite echo server on a one-thread runtime: every text or binary
/// message back as it came (pings are answered by tungstenite). Prints `tcp ADDR`.
pub fn serve_tungstenite(addr: SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("tcp {}", listener.local_addr()?);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// Node's `ws` echo server.
pub const NODE_WS: &str = r#"
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 << 20 });
wss.on('connection', ws => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on('listening', () => console.log('tcp 127.0.0.1:' + wss.address().port));
"#;

/// Where `scripts/test` installs the Node clients (`tests/clients/package-lock.json`):
/// `<target>/test-clients/node_modules`, or under `$NETLET_TEST_CLIENTS`.
pub fn node_modules() -> anyhow::Result<PathBuf> {
    let clients = match std::env::var_os("NETLET_TEST_CLIENTS") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
            .join("test-clients"),
    };
    let modules = clients.join("node_modules");
    ensure!(
        modules.join("ws").is_dir(),
        "Node's ws is not installed in {}: run scripts/test once (it installs the clients)",
        modules.display()
    );
    Ok(modules)
}

/// This process's CPU time so far (user and system).
fn own_cpu() -> Duration {
    // SAFETY: getrusage fills a local struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64)
}

/// One run's figures.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub rate: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// The load generator's CPU over the run's wall time (1.0: one core).
    pub load_cpu: Option<f64>,
    pub note: Option<String>,
}

/// Reads one frame; returns its (unmasked) payload.
async fn read_frame(s: &mut TcpStream, payload: &mut Vec<u8>) -> anyhow::Result<u8> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.context("reading a frame")?;
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mask = if h[1] & 0x80 != 0 {
        let mut k = [0u8; 4];
        s.read_exact(&mut k).await?;
        Some(k)
    } else {
        None
    };
    payload.resize(len as usize, 0);
    s.read_exact(payload).await?;
    if let Some(k) = mask {
        xor_mask(payload, k);
    }
    Ok(h[0])
}

/// XORs `data` with a masking key, eight bytes at a time.
fn xor_mask(data: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// A masked binary frame of `payload` into `out`.
fn masked_frame(out: &mut Vec<u8>, payload: &[u8], key: [u8; 4]) {
    out.clear();
    out.push(0x82);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    xor_mask(&mut out[start..], key);
}

/// `conns` WebSocket connections each send a `size`-byte binary message and wait for
/// its echo, again and again, for `duration`; every echo is checked. `raw`: the server
/// is a plain TCP echo (no handshake; frames come back masked).
pub async fn ping_pong(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    duration: Duration,
    raw: bool,
) -> anyhow::Result<Cell> {
    let latencies = Rc::new(RefCell::new(Vec::<u32>::new()));
    let local = tokio::task::LocalSet::new();
    let cpu0 = own_cpu();
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let latencies = latencies.clone();
            local.spawn_local(async move {
                let mut s = TcpStream::connect(addr).await.context("connect")?;
                s.set_nodelay(true)?;
                if !raw {
                    s.write_all(
                        b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                    )
                    .await?;
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        s.read_exact(&mut b).await.context("reading the 101")?;
                        head.push(b[0]);
                        ensure!(head.len() < 4096, "no end of the handshake answer");
                    }
                    ensure!(
                        head.starts_with(b"HTTP/1.1 101"),
                        "handshake refused: {}",
                        String::from_utf8_lossy(&head)
                    );
                }
                // A pattern per connection; the first 8 bytes (or fewer) carry the
                // message's number, so each echo is told from the one before.
                let mut msg: Vec<u8> = (0..size).map(|i| (i * 31 + c) as u8).collect();
                let mut frame = Vec::with_capacity(size + 14);
                let mut back = Vec::with_capacity(size);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let tag = n.to_le_bytes();
                    let k = size.min(8);
                    msg[..k].copy_from_slice(&tag[..k]);
                    let key = ((n as u32).wrapping_mul(2_654_435_761) ^ c as u32).to_ne_bytes();
                    masked_frame(&mut frame, &msg, key);
                    let t = Instant::now();
                    s.write_all(&frame).await?;
                    let first = read_frame(&mut s, &mut back).await?;
                    latencies.borrow_mut().push(t.elapsed().as_micros() as u32);
                    ensure!(first == 0x82, "expected a final binary frame, got {first:#x}");
                    ensure!(back == msg, "connection {c} got different bytes back");
                    n += 1;
                }
                Ok::<u64, anyhow::Error>(n)
            })
        })
        .collect();
    local.await;
    let mut total = 0;
    for h in handles {
        total += h.await.context("a load task panicked")??;
    }
    let wall = start.elapsed();
    let cpu = own_cpu() - cpu0;
    let mut lat = latencies.take();
    lat.sort_unstable();
    Ok(Cell {
        rate: Some(total as f64 / wall.as_secs_f64()),
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
        load_cpu: Some(cpu.as_secs_f64() / wall.as_secs_f64()),
        note: None,
    })
}

struct Row {
    name: &'static str,
    size: usize,
    conns: usize,
}

const ROWS: &[Row] = &[
    Row {
        name: "WebSocket echo 64 B × 32 conns",
        size: 64,
        conns: 32,
    },
    Row {
        name: "WebSocket echo 16 KiB × 32 conns",
        size: 16 * 1024,
        conns: 32,
    },
];

fn fmt_cell(cell: &Cell) -> String {
    if let Some(note) = &cell.note {
        return note.clone();
    }
    let Some(rate) = cell.rate else {
        return "failed".into();
    };
    let mut s = format!("{:.1}k msg/s", rate / 1000.0);
    if let (Some(p50), Some(p99)) = (cell.p50_us, cell.p99_us) {
        let _ = write!(s, ", p50/p99 {p50:.0}/{p99:.0} µs");
    }
    s
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

/// Runs the WebSocket table; returns its markdown and the netlet cases that failed.
pub fn table(opts: &Options) -> anyhow::Result<(String, Vec<String>)> {
    let rows: Vec<&Row> = ROWS
        .iter()
        .filter(|r| opts.only.as_deref().is_none_or(|o| r.name.contains(o)))
        .collect();
    let mut out = String::new();
    let mut failures = Vec::new();
    if rows.is_empty() {
        return Ok((out, failures));
    }
    eprintln!("== WebSocket");
    let _ = writeln!(
        out,
        "\n### WebSocket: echo ping-pong against one-thread servers\n"
    );
    let _ = writeln!(
        out,
        "| load | ceiling: native TCP echo, no WebSocket work | tokio-tungstenite (1 thread) | Node ws | netlet ws-echo | netlet/tungstenite | netlet/Node | p99 netlet/tungstenite | load generator's CPU: ceiling / tungstenite / Node / netlet |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(9));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for row in rows {
        let kinds = [
            Kind::Native { threads: 1 },
            Kind::WsTungstenite,
            Kind::WsNode,
            Kind::WsNetlet,
        ];
        let mut cells = Vec::new();
        for kind in &kinds {
            eprintln!("   {} / {kind:?}", row.name);
            let raw = matches!(kind, Kind::Native { .. });
            let result = servers::start(kind, &opts.paths, false).and_then(|server| {
                let addr = server.tcp.context("no TCP address")?;
                rt.block_on(ping_pong(addr, row.conns, row.size, opts.duration, raw))
            });
            let cell = result.unwrap_or_else(|e| {
                eprintln!("      failed: {e:#}");
                if matches!(kind, Kind::WsNetlet) {
                    failures.push(format!("{} / netlet: {e:#}", row.name));
                }
                Cell {
                    note: Some(format!("failed: {e}")),
                    ..Cell::default()
                }
            });
            eprintln!("      {}", fmt_cell(&cell));
            cells.push(cell);
        }
        let [ceiling, tung, node, netlet] = [&cells[0], &cells[1], &cells[2], &cells[3]];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            fmt_cell(ceiling),
            fmt_cell(tung),
            fmt_cell(node),
            fmt_cell(netlet),
            ratio(netlet.rate, tung.rate),
            ratio(netlet.rate, node.rate),
            ratio(netlet.p99_us, tung.p99_us),
            cells
                .iter()
                .map(|c| c
                    .load_cpu
                    .map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0)))
                .collect::<Vec<_>>()
                .join(" / "),
        );
    }
    Ok((out, failures))
}
