//! Helpers for the integration tests: run the real `netlet` binary on port 0, read its
//! log, talk to it with real clients (Rust std sockets, `node -e` scripts).

#![allow(dead_code)]

pub mod child;
pub mod probe;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A generous bound for anything that should happen "at once" on a loaded CI machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// The path of a guest component built by the host's build script.
pub fn guest(name: &str) -> PathBuf {
    let file = format!("{}.wasm", name.replace('-', "_"));
    let path = Path::new(env!("NETLET_GUEST_DIR")).join(file);
    assert!(
        path.exists(),
        "guest {} not built at {}",
        name,
        path.display()
    );
    path
}

/// The `netlet` binary under test.
pub fn netlet_bin() -> &'static str {
    env!("CARGO_BIN_EXE_netlet")
}

/// A compile cache shared by the tests (not the user's).
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("netlet-cache")
}

/// The text of `GET /metrics` from a `--metrics` listener at `addr`.
pub fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// The value of the first metric line starting with `prefix`.
pub fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap() as u64
}

/// A fresh, empty folder for a test, under the target's tmp folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One test at a time, for tests that measure latency.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Raises this process's descriptor limit (`RLIMIT_NOFILE`) to `want`, or as far as the
/// hard limit lets it.
pub fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A process's resident memory, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Where `scripts/test` installed the npm and PyPI clients the tests use
/// (`<target>/test-clients`, or `$NETLET_TEST_CLIENTS`).
pub fn test_clients() -> PathBuf {
    if let Some(dir) = std::env::var_os("NETLET_TEST_CLIENTS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory holds tmp/")
        .join("test-clients")
}

fn not_installed(what: &str) -> ! {
    panic!(
        "{what} is not installed: run the tests with scripts/test, which installs what they use \
         (Debian packages, and npm/PyPI packages from tests/clients/ into {})",
        test_clients().display()
    )
}

/// A command the tests start (a Debian package's: `redis-server`, `curl`, ...); panics
/// with what to run when it is not on the `PATH`.
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let file = dir.join(name);
            file.is_file()
                && std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions())
                    & 0o111
                    != 0
        })
    });
    if !found {
        not_installed(&format!("`{name}`"));
    }
    Command::new(name)
}

/// The Node packages of `tests/clients/package.json` (`ws`, `playwright-core`), for
/// `NODE_PATH`.
pub fn node_modules() -> PathBuf {
    let modules = test_clients().join("node_modules");
    if !modules.join("ws").is_dir() || !modules.join("playwright-core").is_dir() {
        not_installed(&format!(
            "Node's `ws`/`playwright-core` ({})",
            modules.display()
        ));
    }
    modules
}

/// The Python with the packages of `tests/clients/requirements.txt` (`websockets`).
pub fn python() -> Command {
    let python = test_clients().join("venv").join("bin").join("python3");
    if !python.is_file() {
        not_installed(&format!("the tests' Python venv ({})", python.display()));
    }
    Command::new(python)
}

/// The lines read so far, and whether the stream has ended.
type Seen = Mutex<(Vec<String>, bool)>;

/// Lines a child wrote to one of its streams, with a way to wait for one.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Seen, Condvar)>);

impl Lines {
    pub fn spawn_reader(&self, stream: impl Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        let (lock, cvar) = &*lines.0;
                        lock.lock().unwrap().0.push(line);
                        cvar.notify_all();
                    }
                }
            }
            let (lock, cvar) = &*lines.0;
            lock.lock().unwrap().1 = true;
            cvar.notify_all();
        });
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().0.clone()
    }

    /// The whole text so far.
    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    /// Waits for a line containing `needle`; panics with the log after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        self.wait_until(timeout, |line| line.contains(needle))
            .unwrap_or_else(|| {
                panic!(
                    "no line containing {needle:?} within {timeout:?}; got:\n{}",
                    self.text()
                )
            })
    }

    /// Waits for a line matching `pred`.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.0;
        let mut guard = lock.lock().unwrap();
        loop {
            if let Some(line) = guard.0.iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if now >= deadline || guard.1 {
                return None;
            }
            guard = cvar.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Whether any line contains `needle` now.
    pub fn contains(&self, needle: &str) -> bool {
        self.all().iter().any(|l| l.contains(needle))
    }

    /// Index of the first line containing `needle`.
    pub fn position(&self, needle: &str) -> Option<usize> {
        self.all().iter().position(|l| l.contains(needle))
    }
}

/// A running `netlet` process. Killed when dropped.
pub struct Netlet {
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
    pub tcp: Vec<SocketAddr>,
    pub udp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
}

impl Netlet {
    /// Starts `netlet ARGS...` and waits until it printed a `listening` line for each
    /// `--tcp`/`--udp` in `args` (or exited).
    pub fn start(args: &[&str]) -> Netlet {
        Self::start_with(args, None)
    }

    /// Like [`Netlet::start`], with the process's descriptor limit (`RLIMIT_NOFILE`)
    /// set to `fd_limit` if given.
    pub fn start_with(args: &[&str], fd_limit: Option<u64>) -> Netlet {
        let expected = args
            .iter()
            .filter(|a| **a == "--tcp" || **a == "--udp" || **a == "--tls")
            .count();
        let mut netlet = Self::spawn_with(args, fd_limit);
        let deadline = Instant::now() + WAIT;
        loop {
            let lines: Vec<String> = netlet
                .stdout
                .all()
                .into_iter()
                .filter(|l| l.starts_with("netlet: listening "))
                .collect();
            if lines.len() >= expected {
                for l in lines {
                    let mut parts = l.split_whitespace().skip(2);
                    let proto = parts.next().unwrap();
                    let addr: SocketAddr = parts.next().unwrap().parse().unwrap();
                    match proto {
                        "tcp" => netlet.tcp.push(addr),
                        "tls" => netlet.tls.push(addr),
                        _ => netlet.udp.push(addr),
                    }
                }
                return netlet;
            }
            if Instant::now() >= deadline || !netlet.is_running() {
                panic!(
                    "netlet {args:?} did not start listening; stderr:\n{}",
                    netlet.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `netlet run GUEST ARGS...` with the test cache.
    pub fn run(guest_name: &str, args: &[&str]) -> Netlet {
        Self::run_with(guest_name, args, None)
    }

    /// Like [`Netlet::run`], with a descriptor limit as in [`Netlet::start_with`].
    pub fn run_with(guest_name: &str, args: &[&str], fd_limit: Option<u64>) -> Netlet {
        let path = guest(guest_name);
        let cache = cache_dir();
        let mut full: Vec<&str> = vec![
            "run",
            path.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        Self::start_with(&full, fd_limit)
    }

    /// Starts netlet without waiting for anything.
    pub fn spawn(args: &[&str]) -> Netlet {
        Self::spawn_with(args, None)
    }

    fn spawn_with(args: &[&str], fd_limit: Option<u64>) -> Netlet {
        let mut command = Command::new(netlet_bin());
        command
            .args(args)
            .env("NETLET_CACHE_DIR", cache_dir())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(limit) = fd_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe, and the closure allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("spawn netlet");
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.spawn_reader(child.stdout.take().unwrap());
        stderr.spawn_reader(child.stderr.take().unwrap());
        Netlet {
            child,
            stdout,
            stderr,
            tcp: Vec::new(),
            udp: Vec::new(),
            tls: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                let _ = self.stderr.wait_until(Duration::from_secs(2), |_| false);
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "netlet did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Netlet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects with read/write timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// Reads exactly `n` bytes.
pub fn read_exact(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream
        .read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    buf
}

/// Reads until `needle` has been seen; returns everything read.
pub fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !got.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "waiting for {:?}, got {:?}: {e}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&got)
            )
        });
        if n == 0 {
            panic!(
                "EOF while waiting for {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&got)
            );
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Reads one `\n`-terminated line.
pub fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => panic!("EOF after {:?}", String::from_utf8_lossy(&line)),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!(
                "reading a line after {:?}: {e}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Sends a command line and reads the reply line.
pub fn command(stream: &mut TcpStream, cmd: &str) -> String {
    stream.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    read_line(stream)
}

/// Reads until EOF (or error); returns what came and whether it ended cleanly.
pub fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

/// Runs `node -e SCRIPT ARGS...` and returns its stdout; panics on failure.
pub fn node(script: &str, args: &[&str]) -> String {
    let out = tool("node")
        .arg("-e")
        .arg(script)
        .args(args)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "node failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `node -e SCRIPT ARGS...` in the background, with its output readable.
pub struct NodeProcess {
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl NodeProcess {
    pub fn start(script: &str, args: &[&str]) -> NodeProcess {
        let mut child = tool("node")
            .arg("-e")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.spawn_reader(child.stdout.take().unwrap());
        stderr.spawn_reader(child.stderr.take().unwrap());
        NodeProcess {
            child,
            stdout,
            stderr,
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A duplicate of the socket that netlet (process `pid`) holds for the connection whose
/// peer is `peer` (our side's address), obtained with pidfd_getfd(2), so a test can read
/// the real socket options the host set.
pub fn netlet_socket_for_peer(pid: u32, peer: SocketAddr) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let inode = socket_inode_for_remote(pid, peer)
        .unwrap_or_else(|| panic!("netlet (pid {pid}) has no socket connected to {peer}"));
    let fd_dir = format!("/proc/{pid}/fd");
    let target = format!("socket:[{inode}]");
    let fd: i32 = std::fs::read_dir(&fd_dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == target))
        .and_then(|e| e.file_name().to_string_lossy().parse().ok())
        .expect("socket fd in /proc/PID/fd");
    // SAFETY: plain syscalls; the returned fds are checked and owned below.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) as i32;
        assert!(
            pidfd >= 0,
            "pidfd_open: {}",
            std::io::Error::last_os_error()
        );
        let dup = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as i32;
        let err = std::io::Error::last_os_error();
        libc::close(pidfd);
        assert!(dup >= 0, "pidfd_getfd: {err}");
        std::os::fd::OwnedFd::from_raw_fd(dup)
    }
}

fn socket_inode_for_remote(pid: u32, peer: SocketAddr) -> Option<u64> {
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok()?;
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let remote = cols.get(2)?;
            let (_, port_hex) = remote.split_once(':')?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            if port == peer.port() {
                return cols.get(9)?.parse().ok();
            }
        }
    }
    None
}

/// Reads an integer socket option.
pub fn getsockopt_int(fd: &std::os::fd::OwnedFd, level: i32, name: i32) -> i32 {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for getsockopt's output.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &mut value as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
    value
}
