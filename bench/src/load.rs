//! The loads: each runs for a bounded time against one server address, checks every
//! byte it gets back, and fails loudly on a mismatch.
//!
//! A load must never be what it measures: each connection's bytes come from a
//! precomputed pattern and are checked with a slice comparison (memcmp speed), and the
//! connections run as tasks on a multi-thread runtime ([`runtime`], `--load-threads`).
//! The comparison prints the load's own ceiling (the same load against a native server
//! on every core) beside the servers it measures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Throughput and latency of one run.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Operations per second (messages, connections, or bytes for streaming).
    pub rate: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// UDP: datagrams that got no answer.
    pub lost: Option<u64>,
}

/// How many bytes a pattern repeats after: not a power of two, so chunk boundaries fall
/// at different places in it.
const PATTERN: usize = (1 << 20) - 3;

/// Connection `conn`'s bytes: `PATTERN` pseudo-random bytes, repeated, with room for a
/// 64 KiB slice at any offset (byte `i` of the stream is `at(i)[0]`).
#[derive(Clone)]
pub struct Pattern(Arc<Vec<u8>>);

impl Pattern {
    pub fn new(conn: u64) -> Self {
        let mut x = conn.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1;
        let mut bytes: Vec<u8> = (0..PATTERN)
            .map(|_| {
                // xorshift64*
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect();
        let head = bytes[..64 * 1024].to_vec();
        bytes.extend_from_slice(&head);
        Pattern(Arc::new(bytes))
    }

    /// The `n` bytes (at most 64 KiB) from offset `from` of the stream.
    pub fn at(&self, from: u64, n: usize) -> &[u8] {
        let start = (from % PATTERN as u64) as usize;
        &self.0[start..start + n]
    }
}

/// The runtime loads run on: `threads` workers.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[idx] as f64)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs `n` copies of a task on the runtime's workers and collects their results.
async fn run_all<T: Send + 'static, F>(
    n: usize,
    make: impl Fn(usize) -> F,
) -> anyhow::Result<Vec<T>>
where
    F: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.context("a load task panicked")??);
    }
    Ok(out)
}

/// Each task's count and latencies, merged: the total and the sorted latencies.
fn merge(results: Vec<(u64, Vec<u32>)>) -> (u64, Vec<u32>) {
    let total = results.iter().map(|r| r.0).sum();
    let mut lat: Vec<u32> = results.into_iter().flat_map(|r| r.1).collect();
    lat.sort_unstable();
    (total, lat)
}

/// `conns` connections each send a `size`-byte message and wait for its echo, again
/// and again, for `duration`. Rate: round trips per second.
pub async fn ping_pong(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let results = run_all(conns, |c| async move {
        let pattern = Pattern::new(c as u64);
        let mut s = connect(addr).await?;
        let mut back = vec![0; size];
        let mut latencies = Vec::new();
        let mut sent = 0u64;
        let mut n = 0u64;
        while Instant::now() < deadline {
            let msg = pattern.at(sent, size);
            let t = Instant::now();
            s.write_all(msg).await?;
            s.read_exact(&mut back).await.context("reading an echo")?;
            latencies.push(t.elapsed().as_micros() as u32);
            ensure!(
                back == msg,
                "ping-pong: connection {c} got different bytes back"
            );
            sent += size as u64;
            n += 1;
        }
        Ok((n, latencies))
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let (total, lat) = merge(results);
    Ok(Outcome {
        rate: total as f64 / secs,
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
        lost: None,
    })
}

/// `conns` connections each write `chunk`-byte chunks as fast as the server echoes them
/// (full duplex: a writer and a reader per connection), for `duration`. Every byte read
/// is checked. Rate: echoed bytes per second.
pub async fn stream(
    addr: SocketAddr,
    conns: usize,
    chunk: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let totals = run_all(conns, |c| async move {
        let pattern = Pattern::new(c as u64);
        let s = connect(addr).await?;
        let (mut r, mut w) = s.into_split();
        let writer = {
            let pattern = pattern.clone();
            tokio::spawn(async move {
                let mut at = 0u64;
                while Instant::now() < deadline {
                    w.write_all(pattern.at(at, chunk)).await?;
                    at += chunk as u64;
                }
                w.shutdown().await?;
                anyhow::Ok(at)
            })
        };
        let mut buf = vec![0; 64 * 1024];
        let mut at = 0u64;
        loop {
            let n = r.read(&mut buf).await.context("reading the stream")?;
            if n == 0 {
                break;
            }
            ensure!(
                buf[..n] == *pattern.at(at, n),
                "stream: connection {c} byte mismatch near offset {at}"
            );
            at += n as u64;
        }
        let written = writer.await.context("writer panicked")??;
        ensure!(
            at == written,
            "stream: connection {c} wrote {written} bytes but {at} came back"
        );
        Ok(at)
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Outcome {
        rate: totals.iter().sum::<u64>() as f64 / secs,
        ..Outcome::default()
    })
}

/// `concurrency` loops of: connect, send 32 bytes, read their echo, close. Rate:
/// connections per second.
pub async fn churn(
    addr: SocketAddr,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let results = run_all(concurrency, |c| async move {
        let pattern = Pattern::new(c as u64);
        let mut latencies = Vec::new();
        let mut n = 0u64;
        let mut back = [0u8; 32];
        while Instant::now() < deadline {
            let t = Instant::now();
            let mut s = connect(addr).await?;
            let msg = pattern.at(n * 32, 32);
            s.write_all(msg).await?;
            s.read_exact(&mut back)
                .await
                .context("reading a churn echo")?;
            ensure!(back == msg, "churn: connection got different bytes back");
            drop(s);
            latencies.push(t.elapsed().as_micros() as u32);
            n += 1;
        }
        Ok((n, latencies))
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let (total, lat) = merge(results);
    Ok(Outcome {
        rate: total as f64 / secs,
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
        lost: None,
    })
}

/// `sockets` UDP sockets each send a `size`-byte datagram and wait (up to 100 ms) for
/// its echo, for `duration`. Rate: answered datagrams per second; unanswered ones are
/// counted as lost.
pub async fn udp_ping_pong(
    addr: SocketAddr,
    sockets: usize,
    size: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let results = run_all(sockets, |c| async move {
        let pattern = Pattern::new(c as u64);
        let s = UdpSocket::bind("127.0.0.1:0").await?;
        s.connect(addr).await?;
        let mut back = vec![0; size + 1];
        let mut latencies = Vec::new();
        let (mut ok, mut lost, mut seq) = (0u64, 0u64, 0u64);
        while Instant::now() < deadline {
            seq += 1;
            let msg = pattern.at(seq * size as u64, size);
            let t = Instant::now();
            s.send(msg).await?;
            loop {
                match tokio::time::timeout(Duration::from_millis(100), s.recv(&mut back)).await {
                    Err(_) => {
                        lost += 1;
                        break;
                    }
                    Ok(r) => {
                        let n = r?;
                        if back[..n] == *msg {
                            latencies.push(t.elapsed().as_micros() as u32);
                            ok += 1;
                            break;
                        }
                        // A late echo of an earlier (counted as lost) datagram: skip it.
                        ensure!(
                            n == size,
                            "udp: a datagram of {n} bytes came back for {size}"
                        );
                    }
                }
            }
        }
        Ok((ok, lost, latencies))
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let lost = results.iter().map(|r| r.1).sum();
    let (total, lat) = merge(results.into_iter().map(|r| (r.0, r.2)).collect());
    Ok(Outcome {
        rate: total as f64 / secs,
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
        lost: Some(lost),
    })
}

/// Opens `n` connections and keeps them idle; returns them (to be measured, then
/// dropped). A few are checked to still echo. Gives up after `limit`.
pub async fn open_idle(
    addr: SocketAddr,
    n: usize,
    limit: Duration,
) -> anyhow::Result<Vec<TcpStream>> {
    let deadline = Instant::now() + limit;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        let s = tokio::time::timeout(left, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                anyhow::anyhow!("only {i} of {n} connections were accepted within {limit:?}")
            })?
            .with_context(|| format!("idle connection {i} of {n}"))?;
        conns.push(s);
    }
    for (i, s) in conns.iter_mut().enumerate().step_by((n / 8).max(1)) {
        let msg = [i as u8; 16];
        s.write_all(&msg).await?;
        let mut back = [0u8; 16];
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, s.read_exact(&mut back))
            .await
            .map_err(|_| anyhow::anyhow!("an idle connection did not echo within {limit:?}"))?
            .context("an idle connection stopped echoing")?;
        if back != msg {
            bail!("idle: connection {i} got different bytes back");
        }
    }
    Ok(conns)
}

/// Waits until `addr` answers a TCP echo; the time it took.
pub async fn time_to_echo(
    addr: SocketAddr,
    since: Instant,
    limit: Duration,
) -> anyhow::Result<Duration> {
    loop {
        if since.elapsed() > limit {
            bail!("{addr} did not answer within {limit:?}");
        }
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            s.write_all(b"ping").await?;
            let mut back = [0u8; 4];
            if s.read_exact(&mut back).await.is_ok() && &back == b"ping" {
                return Ok(since.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
