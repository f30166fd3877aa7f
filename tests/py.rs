//! Python handlers (`netlet build server.py`, the Python SDK in `py/netlet/`).
//!
//! Differential tests: each program under `tests/py/` runs under CPython itself
//! (`python3 suite.py NAME`) and, built by `netlet build`, under `netlet run`; the same
//! Python client (or peer) drives both, and the client's transcript (bytes, EOFs, close
//! order) and the program's own log must be identical. The programs are one component
//! (`tests/py/suite.py` imports every scenario) so a test run builds and compiles it
//! once; built components are kept under `target/` by the hash of their sources.
//!
//! Then what only netlet does: exceptions that end the instance (one log line with the
//! traceback, a restart, the next connection served), build errors, `netlet inspect`,
//! and the seeds' programs in `examples-py/`.
//!
//! Needs `python3` (3.10 or later, with venv) and the PyPI registry the first time:
//! `netlet build` installs componentize-py into the tests' cache directory.

mod common;

use std::io::Write;
use std::net::{Shutdown, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::child::*;
use common::*;

/// Starting a component the first time compiles it (22 MB with CPython): slow on a
/// loaded runner with the tests' unoptimised host.
const START: Duration = Duration::from_secs(400);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file a Python build depends on, for the build cache's key.
fn sdk_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["py/netlet", "py/toolchain", "wit"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        files.extend(entries);
    }
    // netlet build rewrites componentize-py's output (py_free.rs): a component built by
    // an older host is not the one under test.
    files.push(repo().join("host/src/build/py_free.rs"));
    files
}

static BUILDS: Mutex<()> = Mutex::new(());

/// `netlet build SOURCE`, once per content of the source (and the `.py` files beside
/// it) and of the SDK: later calls, and later test runs, reuse the component.
fn built(source: &Path) -> PathBuf {
    let mut key = Vec::new();
    let mut inputs: Vec<PathBuf> = sdk_sources();
    for entry in std::fs::read_dir(source.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            inputs.push(path);
        }
    }
    inputs.sort();
    for path in &inputs {
        key.extend_from_slice(path.to_string_lossy().as_bytes());
        key.extend_from_slice(&std::fs::read(path).unwrap());
    }
    let hash = &netlet::cache::sha256_hex(&key)[..16];
    let stem = source.file_stem().unwrap().to_str().unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("py-built")
        .join(hash);
    let out = dir.join(format!("{stem}.wasm"));
    let _guard = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let result = Command::new(netlet_bin())
        .arg("build")
        .arg(source)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(cache_dir())
        .env_remove("NETLET_PY_SDK")
        .output()
        .expect("run netlet build");
    assert!(
        result.status.success(),
        "netlet build {} failed:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

fn suite() -> PathBuf {
    built(&repo().join("tests/py/suite.py"))
}

fn py_file(name: &str) -> PathBuf {
    repo().join("tests/py").join(name)
}

/// `python3 SCRIPT ARGS...`, unbuffered so that its lines arrive as it prints them.
fn python_file(script: &Path, args: &[&str]) -> Proc {
    let mut p = Command::new("python3");
    p.arg(script).args(args).env("PYTHONUNBUFFERED", "1");
    Proc::spawn_command(p, "python3")
}

/// CPython, the programs in tests/py, and the suite built for netlet.
const REFERENCE: Reference = Reference {
    label: "CPython",
    dir: "tests/py",
    ext: "py",
    spawn: python_file,
    component: suite,
    start: START,
    client_timeout: Duration::from_secs(120),
};

fn differential(name: &str, netlet_args: &[&str]) {
    REFERENCE.differential(name, netlet_args);
}

fn differential_peer(name: &str, netlet_args: &[&str]) {
    REFERENCE.differential_peer(name, netlet_args);
}

const TCP: &[&str] = &["--tcp", "127.0.0.1:0"];

#[test]
fn echo_bytes_eof_and_close() {
    differential("echo", TCP);
}

#[test]
fn close_order_write_eof_and_abort() {
    differential("close", TCP);
}

#[test]
fn flow_control_with_a_slow_reader() {
    differential("flow", TCP);
}

#[test]
fn timers_sleep_and_timeouts() {
    differential("timers", TCP);
}

#[test]
fn streams_on_top_of_the_protocols() {
    differential("streams", TCP);
}

#[test]
fn transport_writelines_pause_reading_buffer_limits_and_extra_info() {
    differential("transport", TCP);
}

#[test]
fn udp_from_several_peers() {
    differential("udp", &["--udp", "127.0.0.1:0"]);
}

#[test]
fn create_connection_under_allow() {
    differential_peer("connect", &[]);
}

// ----- what only netlet does ----------------------------------------------------------

#[test]
fn an_uncaught_exception_is_one_line_then_a_restart_and_the_next_connection_is_served() {
    let p = Proc::netlet(&suite(), &["--tcp", "127.0.0.1:0", "--", "errors"]);
    let port = ready_port(&wait_program_line(&p, Some("suite"), "ready ", START));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cases = [
        (
            "data",
            "Traceback (most recent call last): t_errors.py:21 in data_received > \
             t_errors.py:9 in fail: ValueError: boom in data",
        ),
        (
            "timer",
            "Traceback (most recent call last): t_errors.py:9 in fail: ValueError: boom in timer",
        ),
    ];
    let trapped = "trapped: the handler stopped after an uncaught exception";
    for (round, (cmd, expected)) in cases.iter().enumerate() {
        let mut c = connect(addr);
        assert_eq!(read_line(&mut c), "hello");
        c.write_all(cmd.as_bytes()).unwrap();
        // The trap closes the instance's connections.
        let _ = read_to_end(&mut c);
        let line = p.stderr.wait_for(&format!("[suite] {expected}"), WAIT);
        let until = Instant::now() + WAIT;
        while p
            .stderr
            .all()
            .iter()
            .filter(|l| l.contains(trapped))
            .count()
            <= round
        {
            assert!(Instant::now() < until, "no trap line:\n{}", p.stderr.text());
            std::thread::sleep(Duration::from_millis(10));
        }
        let all = p.stderr.all();
        let at = all.iter().position(|l| *l == line).unwrap();
        // One line: the program's next one is the new instance's `ready`, and the host's
        // says the instance stopped.
        assert!(
            all[at + 1..]
                .iter()
                .filter(|l| l.starts_with("[suite] "))
                .all(|l| l.starts_with("[suite] ready")),
            "more than one line for {cmd}:\n{}",
            all.join("\n")
        );
        let host = all[at + 1..]
            .iter()
            .find(|l| l.starts_with("netlet: "))
            .expect("the host's line");
        assert!(host.contains(trapped), "{host}");
        // netlet is up and serves the next connection.
        let mut next = connect(addr);
        assert_eq!(read_line(&mut next), "hello");
        next.write_all(b"still there").unwrap();
        assert_eq!(read_line(&mut next), "ok still there");
    }
}

#[test]
fn an_exception_at_start_is_an_init_failure_and_a_later_start_serves() {
    // The program raises at start half of the time (its own random(): the program runs
    // per instance). A first start that fails stops netlet at once (the handler cannot
    // run); after one that succeeded, a failed start is restarted with backoff.
    const FAILED: &str = "init failed: Traceback (most recent call last): suite.py:32 in \
                          <module> > t_errors.py:35 in main > t_errors.py:9 in fail: \
                          ValueError: boom in start";
    let mut launches = 0;
    let (p, addr) = loop {
        launches += 1;
        assert!(launches <= 20, "20 first starts failed");
        let mut p = Proc::netlet(&suite(), &["--tcp", "127.0.0.1:0", "--", "errors", "start"]);
        let until = Instant::now() + START;
        let started = loop {
            if let Some(l) = p
                .stdout
                .all()
                .into_iter()
                .find(|l| l.starts_with("netlet: listening tcp "))
            {
                break Some(l);
            }
            if p.child.try_wait().unwrap().is_some() || Instant::now() > until {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        match started {
            Some(line) => {
                let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
                break (p, addr);
            }
            None => {
                let status = p.wait_exit(WAIT);
                assert!(!status.success());
                let err = p.stderr.all();
                assert_eq!(err.len(), 1, "{}", p.output());
                assert!(
                    err[0].starts_with(&format!("netlet: [suite] {FAILED}")),
                    "{}",
                    err[0]
                );
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no failed start followed by a served connection:\n{}",
            p.output()
        );
        let mut c = connect(addr);
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        assert_eq!(read_line(&mut c), "hello", "{}", p.output());
        if p.stderr.contains(FAILED) {
            break;
        }
        // Served at once: crash it for another start.
        c.write_all(b"data").unwrap();
        let _ = read_to_end(&mut c);
    }
}

#[test]
fn inspect_says_python_and_keeps_cpython_sockets_out_of_the_grants() {
    let out = Command::new(netlet_bin())
        .arg("inspect")
        .arg(suite())
        .args(["--cache-dir", cache_dir().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "language: Python handler (asyncio, netlet Python SDK 0.1.0); what its code uses: \
             tcp-server, tcp-connect, udp"
        ),
        "{text}"
    );
    assert!(text.contains("outbound TCP (net.connect)"), "{text}");
    // The grants are listed after the imports, and CPython's socket imports after them.
    let after_imports = text.split_once("needs granted:").map_or("", |(_, g)| g);
    let (grants, linked) = after_imports
        .split_once("linked but never called")
        .unwrap_or((after_imports, ""));
    assert!(grants.contains("outbound TCP"), "{text}");
    assert!(!grants.contains("wasi:sockets"), "{text}");
    assert!(linked.contains("wasi:sockets"), "{text}");
}

/// Writes `source` as `name` in a fresh folder under the test directory.
fn scratch(name: &str, source: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("py-scratch")
        .join(format!("{}-{}", std::process::id(), name.replace('.', "_")));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

#[test]
fn build_errors_name_the_place() {
    let bad = scratch("syntax.py", "import asyncio\ndef f(:\n    pass\n");
    let out = Command::new(netlet_bin())
        .arg("build")
        .arg(&bad)
        .args(["--cache-dir", cache_dir().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("syntax.py\", line 2") && err.contains("SyntaxError"),
        "{err}"
    );
}

#[test]
fn build_without_python_says_what_to_install() {
    let empty = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-no-python");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(netlet_bin())
        .arg("build")
        .arg(py_file("suite.py"))
        .args(["-o", empty.join("x.wasm").to_str().unwrap()])
        .args(["--cache-dir", cache_dir().to_str().unwrap()])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("needs Python") && err.contains("install Python 3.10 or later"),
        "{err}"
    );
}

// ----- the seeds' programs (examples-py/) ----------------------------------------------

const GREETING: &str = "欢迎光临《深入浅出Node.js》示例：\n";

#[test]
fn example_hello_greets_answers_and_logs_end() {
    // It listens on 8124; the operator's listener for 8124 (bound on port 0) is the one
    // it gets.
    let p = Proc::netlet(
        &built(&repo().join("examples-py/hello.py")),
        &["--tcp", "127.0.0.1:0=8124"],
    );
    let line = p.stdout.wait_for("netlet: listening tcp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    p.stderr.wait_for("[hello] server bound", WAIT);
    let mut c = connect(addr);
    assert_eq!(read_exact(&mut c, GREETING.len()), GREETING.as_bytes());
    c.write_all(b"one").unwrap();
    assert_eq!(read_exact(&mut c, "你好".len()), "你好".as_bytes());
    c.write_all(b"two").unwrap();
    assert_eq!(read_exact(&mut c, "你好".len()), "你好".as_bytes());
    c.shutdown(Shutdown::Write).unwrap();
    p.stderr.wait_for("[hello] 连接断开", WAIT);
    let (rest, result) = read_to_end(&mut c);
    assert!(result.is_ok() && rest.is_empty(), "{rest:?} {result:?}");
}

#[test]
fn example_echo_is_byte_exact() {
    let p = Proc::netlet(
        &built(&repo().join("examples-py/echo.py")),
        &["--tcp", "127.0.0.1:0=1337"],
    );
    let line = p.stdout.wait_for("netlet: listening tcp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let mut c = connect(addr);
    let payload = random_bytes(1 << 20, 7);
    let writer = {
        let mut c = c.try_clone().unwrap();
        let payload = payload.clone();
        std::thread::spawn(move || {
            c.write_all(&payload).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        })
    };
    let (all, result) = read_to_end(&mut c);
    writer.join().unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(&all[..13], b"Echo server\r\n");
    assert!(all[13..] == payload[..], "{} bytes back", all.len() - 13);
}

/// What a handler writes is freed once the host has it: 128 MiB through the echo at the
/// default 64 MiB of linear memory (componentize-py 0.25.1 alone keeps every written
/// byte, and this instance would trap after some tens of MiB and close the connection).
#[test]
fn writing_128_mib_fits_in_64_mib_of_memory() {
    let p = Proc::netlet(
        &built(&repo().join("examples-py/echo.py")),
        &["--tcp", "127.0.0.1:0=1337", "--max-memory", "64MiB"],
    );
    let line = p.stdout.wait_for("netlet: listening tcp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let mut c = connect(addr);
    const TOTAL: usize = 128 << 20;
    let chunk = random_bytes(1 << 16, 11);
    let writer = {
        let mut c = c.try_clone().unwrap();
        let chunk = chunk.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            for _ in 0..TOTAL / chunk.len() {
                c.write_all(&chunk)?;
            }
            c.shutdown(Shutdown::Write)
        })
    };
    // Read as it comes (the echo is paced by this reader), checking every byte.
    let mut banner = [0u8; 13];
    std::io::Read::read_exact(&mut c, &mut banner).unwrap();
    assert_eq!(&banner, b"Echo server\r\n");
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match std::io::Read::read(&mut c, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => panic!("reading after {got} bytes: {e}\n{}", p.output()),
        };
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, chunk[(got + i) % chunk.len()], "byte {}", got + i);
        }
        got += n;
    }
    let written = writer.join().unwrap();
    assert!(
        written.is_ok() && got == TOTAL && !p.output().contains("trapped"),
        "writing: {written:?}; read {got} of {TOTAL} bytes\n{}",
        p.output()
    );
}

#[test]
fn example_udp_server_logs_each_datagram() {
    let p = Proc::netlet(
        &built(&repo().join("examples-py/udp-server.py")),
        &["--udp", "127.0.0.1:0=41234"],
    );
    let line = p.stdout.wait_for("netlet: listening udp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    p.stderr.wait_for(
        &format!("[udp-server] server listening 127.0.0.1:{}", addr.port()),
        START,
    );
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to("深入浅出Node.js".as_bytes(), addr).unwrap();
    let port = client.local_addr().unwrap().port();
    p.stderr.wait_for(
        &format!("[udp-server] server got: 深入浅出Node.js from 127.0.0.1:{port}"),
        WAIT,
    );
}
