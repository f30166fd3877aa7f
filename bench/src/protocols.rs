//! The protocol rows: two example handlers against the servers users would otherwise
//! run, in the same run, each started fresh on free loopback ports.
//!
//! - `kv` against `redis-server` (`--save '' --appendonly no`), both loaded by
//!   `redis-benchmark -t set,get -P 16 -c 50` (Redis's own load generator, which exits
//!   at the first error reply).
//! - `proxy` against HAProxy (`mode tcp`), both in front of the native tokio echo
//!   server, loaded with 64 KiB streaming and connection churn (the loads of `load`,
//!   every byte checked).
//!
//! Each side runs on one thread: netlet with one shard, redis-server as it comes (one
//! thread serving commands), HAProxy with `nbthread 1`.

use std::fmt::Write as _;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::load;
use crate::options::Options;
use crate::servers::{self, Kind};

/// A process started for a row; killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `addr` accepts a connection, or the process exits.
fn wait_listening(process: &mut Process, addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = process.0.try_wait()? {
            bail!("{what} exited ({status}) before listening on {addr}");
        }
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what} did not listen on {addr} within 30 s")
}

fn installed(program: &str, package: &str) -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    ensure!(
        found,
        "{program} is not installed (Debian package {package}); or run with --no-protocols"
    );
    Ok(())
}

/// `redis-server` on a free port, persisting nothing.
fn redis_server(dir: &Path) -> anyhow::Result<(Process, SocketAddr)> {
    installed("redis-server", "redis-server")?;
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server")?;
    let mut process = Process(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(&mut process, addr, "redis-server")?;
    Ok((process, addr))
}

/// `netlet run COMPONENT --tcp 127.0.0.1:0 ARGS...`; its address.
fn netlet(
    paths: &servers::Paths,
    component: &Path,
    args: &[&str],
) -> anyhow::Result<(Process, SocketAddr)> {
    let mut child = Command::new(&paths.netlet)
        .arg("run")
        .arg(component)
        .args(["--tcp", "127.0.0.1:0", "--cache-dir"])
        .arg(&paths.cache)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting netlet run {}", component.display()))?;
    let mut stdout = child.stdout.take().context("piped")?;
    let process = Process(child);
    // The first line is `netlet: listening tcp ADDR`.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        ensure!(
            stdout.read(&mut byte)? == 1,
            "netlet run {} exited before listening",
            component.display()
        );
        line.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&line);
    let addr = text
        .trim()
        .strip_prefix("netlet: listening tcp ")
        .with_context(|| format!("unexpected first line {text:?}"))?
        .parse()?;
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Ok((process, addr))
}

/// HAProxy in TCP mode on a free port in front of `upstream`, one thread.
fn haproxy(dir: &Path, upstream: SocketAddr) -> anyhow::Result<(Process, SocketAddr)> {
    installed("haproxy", "haproxy")?;
    let port = free_port()?;
    let config = dir.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n    nbthread 1\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend bench\n    bind 127.0.0.1:{port}\n    default_backend echo\n\
             backend echo\n    server echo {upstream}\n"
        ),
    )?;
    let log = dir.join("haproxy.log");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting haproxy")?;
    let mut process = Process(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(&mut process, addr, "haproxy").map_err(|e| {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        e.context(said.trim().to_string())
    })?;
    Ok((process, addr))
}

/// `redis-benchmark -t TEST -P 16 -c 50 -n N` against `addr`: requests per second.
fn redis_benchmark(addr: SocketAddr, test: &str, requests: u64) -> anyhow::Result<f64> {
    installed("redis-benchmark", "redis-tools")?;
    let mut child = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args([
            "-t",
            test,
            "-P",
            "16",
            "-c",
            "50",
            "-n",
            &requests.to_string(),
        ])
        .arg("--csv")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting redis-benchmark")?;
    // Bounded in time as well as in count.
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("redis-benchmark -t {test} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It exits non-zero at the first error reply.
    ensure!(
        out.status.success(),
        "redis-benchmark -t {test}: {}: {stdout} {stderr}",
        out.status
    );
    let name = test.to_ascii_uppercase();
    stdout
        .lines()
        .find_map(|line| {
            let mut fields = line.split(',').map(|f| f.trim_matches('"'));
            (fields.next() == Some(name.as_str()))
                .then(|| fields.next()?.parse().ok())
                .flatten()
        })
        .with_context(|| format!("no {name} figure in redis-benchmark's output: {stdout}"))
}

#[derive(Clone, Copy)]
enum Load {
    Redis(&'static str),
    Stream,
    Churn,
}

struct Row {
    name: &'static str,
    load: Load,
    unit: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        name: "Redis SET, redis-benchmark -P 16 -c 50",
        load: Load::Redis("set"),
        unit: "req/s",
    },
    Row {
        name: "Redis GET, redis-benchmark -P 16 -c 50",
        load: Load::Redis("get"),
        unit: "req/s",
    },
    Row {
        name: "proxy: TCP stream 64 KiB chunks × 4 conns",
        load: Load::Stream,
        unit: "MB/s",
    },
    Row {
        name: "proxy: TCP churn × 16 (connect, 32 B echo, close)",
        load: Load::Churn,
        unit: "conn/s",
    },
];

/// Which server a cell measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Netlet,
    Reference,
}

/// Whether any protocol row is selected by `--only`.
pub fn selected(opts: &Options) -> bool {
    ROWS.iter().any(|row| wanted(row, opts))
}

fn wanted(row: &Row, opts: &Options) -> bool {
    opts.only.as_deref().is_none_or(|o| row.name.contains(o))
}

fn kv_path(paths: &servers::Paths) -> PathBuf {
    paths.guests.join("kv.wasm")
}

fn proxy_path(paths: &servers::Paths) -> PathBuf {
    paths.guests.join("proxy.wasm")
}

fn measure(row: &Row, side: Side, opts: &Options, dir: &Path) -> anyhow::Result<f64> {
    let paths = &opts.paths;
    let rt = || crate::load::runtime(opts.load_threads);
    match row.load {
        Load::Redis(test) => {
            // About the same time per case as the other rows at Redis's speed here.
            let requests = (opts.duration.as_secs_f64() * 400_000.0) as u64;
            let (_server, addr) = match side {
                Side::Netlet => netlet(paths, &kv_path(paths), &[])?,
                Side::Reference => redis_server(dir)?,
            };
            redis_benchmark(addr, test, requests.max(10_000))
        }
        Load::Stream | Load::Churn => {
            let echo = servers::start(&Kind::Native { threads: 1 }, paths, false)?;
            let upstream = echo.tcp.context("no TCP address")?;
            let (_proxy, addr) = match side {
                Side::Netlet => {
                    let target = upstream.to_string();
                    netlet(
                        paths,
                        &proxy_path(paths),
                        &["--allow-half-open", "--allow", &target, "--", &target],
                    )?
                }
                Side::Reference => haproxy(dir, upstream)?,
            };
            let d = opts.duration;
            let outcome = if let Load::Stream = row.load {
                rt().block_on(load::stream(addr, 4, 65536, d))?.rate / 1e6
            } else {
                rt().block_on(load::churn(addr, 16, d))?.rate
            };
            Ok(outcome)
        }
    }
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "MB/s" => format!("{v:.0} {unit}"),
        _ => format!("{:.1}k {unit}", v / 1000.0),
    }
}

/// Runs the rows; appends the table to `out`. Returns the netlet cases that failed.
pub fn run(opts: &Options, out: &mut String) -> anyhow::Result<Vec<String>> {
    servers::exists(&kv_path(&opts.paths))?;
    servers::exists(&proxy_path(&opts.paths))?;
    let dir = std::env::temp_dir().join(format!("netlet-bench-protocols-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let title = "Protocols: kv against redis-server, proxy against HAProxy (one thread each)";
    eprintln!("== {title}");
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(
        out,
        "| load | netlet (kv / proxy, 1 shard) | redis-server / HAProxy (nbthread 1) | netlet/reference |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    let mut failures = Vec::new();
    for row in ROWS.iter().filter(|row| wanted(row, opts)) {
        let mut cells = Vec::new();
        for side in [Side::Netlet, Side::Reference] {
            let who = if side == Side::Netlet {
                "netlet"
            } else {
                "reference"
            };
            eprintln!("   {} / {who}", row.name);
            let cell = match measure(row, side, opts, &dir) {
                Ok(v) => {
                    eprintln!("      {}", fmt_value(v, row.unit));
                    Some(v)
                }
                Err(e) => {
                    eprintln!("      failed: {e:#}");
                    if side == Side::Netlet {
                        failures.push(format!("{} / netlet: {e:#}", row.name));
                    }
                    None
                }
            };
            cells.push(cell);
        }
        let show = |c: Option<f64>| c.map_or("failed".to_string(), |v| fmt_value(v, row.unit));
        let ratio = match (cells[0], cells[1]) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {ratio} |",
            row.name,
            row.unit,
            show(cells[0]),
            show(cells[1])
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(failures)
}
