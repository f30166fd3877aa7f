//! Starting each server under test as its own process on free ports, and reading back
//! the addresses it bound.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A server process; killed when dropped.
pub struct Server {
    child: Child,
    pub tcp: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
    /// Its TLS echo, when started for a TLS case.
    pub tls: Option<SocketAddr>,
    /// From spawn to its address lines.
    pub started_in: Duration,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which server, and how it runs.
#[derive(Clone, Debug)]
pub enum Kind {
    /// The native tokio echo, on this many threads.
    Native { threads: usize },
    /// Node.js `net`/`dgram` echo.
    Node,
    /// netlet running the bench-echo handler (with `pipe`: its TCP echo piped by the
    /// host, `Socket::pipe`).
    Netlet {
        isolation: &'static str,
        shards: String,
        cache: bool,
        pipe: bool,
    },
    /// The wstd `wasi:sockets` echo under wasmtime.
    Wstd,
    /// wrk's ceiling: canned HTTP responses with this many body bytes.
    HttpCanned { body: usize },
    /// hyper 1.x on one thread.
    HttpHyper,
    /// Node's `http` server.
    HttpNode,
    /// netlet running an HTTP guest (`http_hello.wasm`, `bench_http.wasm`).
    HttpNetlet { guest: &'static str },
    /// tokio-tungstenite's WebSocket echo on one thread.
    WsTungstenite,
    /// Node's `ws` echo server.
    WsNode,
    /// netlet running the `ws-echo` example.
    WsNetlet,
}

/// Where the binaries and components are.
#[derive(Clone)]
pub struct Paths {
    pub bench: PathBuf,
    pub netlet: PathBuf,
    pub guests: PathBuf,
    pub cache: PathBuf,
    /// The run's TLS certificate and key (made at start).
    pub tls: (PathBuf, PathBuf),
}

impl Paths {
    pub fn bench_echo(&self) -> PathBuf {
        self.guests.join("bench_echo.wasm")
    }

    pub fn wstd_echo(&self) -> PathBuf {
        self.guests.join("wstd_echo.wasm")
    }
}

/// Starts a server; waits for the address lines it prints (`prefix ADDR`). With `tls`,
/// its TLS echo instead (netlet: a `--tls` listener beside the others).
pub fn start(kind: &Kind, paths: &Paths, tls: bool) -> anyhow::Result<Server> {
    let mut cmd;
    let (cert, key) = (&paths.tls.0, &paths.tls.1);
    let mut tls_prefix = None;
    let (tcp_prefix, udp_prefix): (&str, Option<&str>) = match kind {
        Kind::Native { threads } if tls => {
            cmd = Command::new(&paths.bench);
            cmd.args(["serve-native-tls", "--threads", &threads.to_string()])
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key);
            ("tls ", None)
        }
        Kind::Node if tls => {
            cmd = Command::new("node");
            cmd.args(["-e", crate::tls::NODE_TLS_ECHO])
                .arg(cert)
                .arg(key);
            ("tls ", None)
        }
        Kind::Native { threads } => {
            cmd = Command::new(&paths.bench);
            cmd.args(["serve-native", "--threads", &threads.to_string()]);
            ("tcp ", Some("udp "))
        }
        Kind::Node => {
            cmd = Command::new("node");
            cmd.args(["-e", crate::native::NODE_ECHO]);
            ("tcp ", Some("udp "))
        }
        Kind::Netlet {
            isolation,
            shards,
            cache,
            pipe,
        } => {
            cmd = Command::new(&paths.netlet);
            cmd.arg("run")
                .arg(paths.bench_echo())
                .args(["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
                .args(["--isolation", isolation, "--shards", shards]);
            if tls {
                cmd.args(["--tls", "127.0.0.1:0", "--tls-cert"])
                    .arg(cert)
                    .arg("--tls-key")
                    .arg(key);
                tls_prefix = Some("netlet: listening tls ");
            }
            if *cache {
                cmd.arg("--cache-dir").arg(&paths.cache);
            } else {
                cmd.arg("--no-cache");
            }
            if *pipe {
                cmd.args(["--", "pipe"]);
            }
            ("netlet: listening tcp ", Some("netlet: listening udp "))
        }
        Kind::HttpCanned { body } => {
            cmd = Command::new(&paths.bench);
            cmd.args(["serve-canned", "--body", &body.to_string()]);
            ("tcp ", None)
        }
        Kind::HttpHyper => {
            cmd = Command::new(&paths.bench);
            cmd.arg("serve-hyper");
            ("tcp ", None)
        }
        Kind::HttpNode => {
            cmd = Command::new("node");
            cmd.args(["-e", crate::node::NODE_HTTP]);
            ("tcp ", None)
        }
        Kind::HttpNetlet { guest } => {
            cmd = Command::new(&paths.netlet);
            cmd.arg("run")
                .arg(paths.guests.join(guest))
                .args(["--tcp", "127.0.0.1:0"])
                .arg("--cache-dir")
                .arg(&paths.cache);
            ("netlet: listening tcp ", None)
        }
        Kind::WsTungstenite => {
            cmd = Command::new(&paths.bench);
            cmd.arg("serve-ws");
            ("tcp ", None)
        }
        Kind::WsNode => {
            cmd = Command::new("node");
            cmd.args(["-e", crate::node::NODE_WS])
                .env("NODE_PATH", crate::node::node_modules()?);
            ("tcp ", None)
        }
        Kind::WsNetlet => {
            cmd = Command::new(&paths.netlet);
            cmd.arg("run")
                .arg(paths.guests.join("ws_echo.wasm"))
                .args(["--tcp", "127.0.0.1:0"])
                .arg("--cache-dir")
                .arg(&paths.cache);
            ("netlet: listening tcp ", None)
        }
        Kind::Wstd => {
            cmd = Command::new(&paths.bench);
            cmd.arg("serve-wstd")
                .arg(paths.wstd_echo())
                .arg("--cache-dir")
                .arg(&paths.cache);
            ("listening ", None)
        }
    };
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {kind:?}"))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Server {
        child,
        tcp: None,
        udp: None,
        tls: None,
        started_in: Duration::ZERO,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.tcp.is_none()
        || (udp_prefix.is_some() && server.udp.is_none())
        || (tls_prefix.is_some() && server.tls.is_none())
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(_) => bail!("{kind:?} did not print its addresses"),
        };
        if let Some(addr) = line.strip_prefix(tcp_prefix) {
            server.tcp = Some(
                addr.trim()
                    .parse()
                    .with_context(|| format!("address in {line:?}"))?,
            );
        } else if let Some(addr) = tls_prefix.and_then(|p| line.strip_prefix(p)) {
            server.tls = Some(
                addr.trim()
                    .parse()
                    .with_context(|| format!("address in {line:?}"))?,
            );
        } else if let Some(addr) = udp_prefix.and_then(|p| line.strip_prefix(p)) {
            server.udp = Some(
                addr.trim()
                    .parse()
                    .with_context(|| format!("address in {line:?}"))?,
            );
        }
    }
    server.started_in = started.elapsed();
    if tls && tls_prefix.is_none() {
        // A reference server's TLS echo is its only listener.
        server.tls = server.tcp;
    }
    Ok(server)
}

/// The `netlet` binary next to this one (same profile), if built.
pub fn sibling(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join(name);
    path.exists().then_some(path)
}

/// Raises the open-file limit as far as allowed (10,000 idle connections need it; the
/// servers inherit it).
pub fn raise_fd_limit() {
    // SAFETY: plain get/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

pub fn exists(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("{} not found", path.display());
    }
    Ok(())
}
