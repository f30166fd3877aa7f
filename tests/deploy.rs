//! Deploying handlers: precompiling (`netlet compile`), the compile cache, `netlet
//! inspect`, the manifest (`netlet up`), hot swap, and metrics.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("deploy")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs netlet to completion: (success, stdout, stderr).
fn netlet(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(netlet_bin())
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env("NETLET_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Talks to the echo example: its banner, then one echoed line.
fn assert_echoes(addr: std::net::SocketAddr) {
    let mut s = connect(addr);
    assert_eq!(read_exact(&mut s, 13), b"Echo server\r\n");
    s.write_all(b"ping\n").unwrap();
    assert_eq!(read_exact(&mut s, 5), b"ping\n");
}

#[test]
fn a_precompiled_component_runs() {
    let dir = temp_dir("precompiled");
    let out = dir.join("echo.cwasm");
    let echo = guest("echo");
    let (ok, stdout, stderr) = netlet(&[
        "compile",
        echo.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("echo.cwasm"), "{stdout}");
    assert!(stdout.contains("--allow-precompiled"), "{stdout}");
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\x7fELF"), "not machine code");
    let n = Netlet::start(&[
        "run",
        out.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--allow-precompiled",
    ]);
    assert_echoes(n.tcp[0]);
}

/// `netlet compile`s echo into `dir`.
fn compiled_echo(dir: &Path) -> PathBuf {
    let out = dir.join("echo.cwasm");
    let (ok, _, stderr) = netlet(&[
        "compile",
        guest("echo").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    out
}

#[test]
fn precompiled_code_is_refused_unless_allowed() {
    let dir = temp_dir("precompiled-refused");
    let out = compiled_echo(&dir);
    // Whatever its name: machine code is recognised by content, and refused.
    let renamed = dir.join("innocent.wasm");
    std::fs::copy(&out, &renamed).unwrap();
    for file in [&out, &renamed] {
        let (ok, stdout, stderr) = netlet(&["run", file.to_str().unwrap(), "--tcp", "127.0.0.1:0"]);
        assert!(!ok);
        assert!(!stdout.contains("listening"), "{stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.contains("precompiled machine code"), "{stderr}");
        assert!(stderr.contains("--allow-precompiled"), "{stderr}");
    }
    let (ok, _, stderr) = netlet(&["inspect", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("--allow-precompiled"), "{stderr}");
    let (ok, stdout, stderr) = netlet(&["inspect", out.to_str().unwrap(), "--allow-precompiled"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("netlet:net/handler@0.1.0"), "{stdout}");

    // A manifest: refused at the component's key, accepted with allow-precompiled.
    let text = format!(
        "[handler.e]\ncomponent = \"{}\"\ntcp = \"127.0.0.1:0\"\n",
        out.display()
    );
    assert_rejected(
        &dir,
        &text,
        2,
        "handler.e.component",
        "allow-precompiled = true",
    );
    let path = manifest(&dir, &format!("{text}allow-precompiled = true\n"));
    let up = Up::start(&path, &[], 1);
    assert_echoes(up.addr("tcp", "e"));
}

#[test]
fn a_precompiled_component_for_another_mode_is_refused_clearly() {
    let dir = temp_dir("other-mode");
    let out = dir.join("echo.cwasm");
    let echo = guest("echo");
    let (ok, _, stderr) = netlet(&[
        "compile",
        echo.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--isolation",
        "connection",
    ]);
    assert!(ok, "{stderr}");
    // Compiled for the pooling allocator, run without it.
    let (ok, _, stderr) = netlet(&[
        "run",
        out.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--allow-precompiled",
    ]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("echo.cwasm"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // And in the mode it was made for, it serves.
    let n = Netlet::start(&[
        "run",
        out.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--isolation",
        "connection",
        "--allow-precompiled",
    ]);
    assert_echoes(n.tcp[0]);
}

/// The cache's entries: (artifact, digest) paths.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn run_with_cache(dir: &Path) -> Netlet {
    let echo = guest("echo");
    Netlet::start(&[
        "run",
        echo.to_str().unwrap(),
        "--cache-dir",
        dir.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
    ])
}

#[test]
fn the_cache_is_filled_and_reused_and_a_bad_entry_is_ignored() {
    let dir = temp_dir("cache");
    let cache = dir.join("c");
    assert_echoes(run_with_cache(&cache).tcp[0]);
    let files = entries(&cache);
    assert_eq!(files.len(), 2, "{files:?}");
    let artifact = files
        .iter()
        .find(|p| p.extension().unwrap() == "cwasm")
        .unwrap();
    let good = std::fs::read(artifact).unwrap();
    let modified = std::fs::metadata(artifact).unwrap().modified().unwrap();

    // Reused: the entry is not rewritten.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_echoes(run_with_cache(&cache).tcp[0]);
    assert_eq!(
        std::fs::metadata(artifact).unwrap().modified().unwrap(),
        modified
    );

    // Corrupted (same length, flipped bytes in the code): ignored, recompiled, replaced.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(artifact, &bad).unwrap();
    assert_echoes(run_with_cache(&cache).tcp[0]);
    assert_eq!(
        std::fs::read(artifact).unwrap(),
        good,
        "the bad entry was not replaced"
    );

    // Another component's entry copied under this key (with its digest): ignored.
    let hello = guest("hello");
    let other = dir.join("other");
    Netlet::start(&[
        "run",
        hello.to_str().unwrap(),
        "--cache-dir",
        other.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
    ]);
    for f in entries(&other) {
        let target = files
            .iter()
            .find(|p| p.extension() == f.extension())
            .unwrap();
        std::fs::copy(&f, target).unwrap();
    }
    assert_echoes(run_with_cache(&cache).tcp[0]);
}

#[test]
fn a_cache_other_users_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("shared-cache");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let n = run_with_cache(&dir);
    assert_echoes(n.tcp[0]);
    // stderr is read apart from stdout, where the listening line came.
    n.stderr.wait_for("writable by other users", WAIT);
    assert!(entries(&dir).is_empty(), "it wrote into an unsafe cache");
}

#[test]
fn inspect_names_the_world_and_what_to_grant() {
    let echo = guest("echo");
    let (ok, out, err) = netlet(&["inspect", echo.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("netlet:net/handler@0.1.0"), "{out}");
    assert!(out.contains("[method]socket.write"), "{out}");
    assert!(out.contains("needs granted:\n  nothing"), "{out}");

    let client = guest("tcp-client");
    let (ok, out, err) = netlet(&["inspect", client.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("outbound TCP"), "{out}");
    assert!(out.contains("--allow"), "{out}");

    let hostile = guest("hostile");
    let (ok, out, err) = netlet(&["inspect", hostile.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("wasi:sockets"), "{out}");
    assert!(out.contains("--allow-dns"), "{out}");

    let wrong = guest("notahandler");
    let (ok, _, err) = netlet(&["inspect", wrong.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a netlet handler"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

// ---- netlet up: the manifest ----------------------------------------------------

/// A `netlet up` process and its listeners by handler name.
struct Up {
    netlet: Netlet,
}

impl Up {
    /// Starts `netlet up MANIFEST ARGS...` and waits for `listeners` listening lines.
    fn start(manifest: &Path, args: &[&str], listeners: usize) -> Up {
        let mut full = vec!["up", manifest.to_str().unwrap()];
        full.extend_from_slice(args);
        let mut netlet = Netlet::spawn(&full);
        let deadline = std::time::Instant::now() + WAIT;
        while Self::listening(&netlet).len() < listeners {
            if std::time::Instant::now() >= deadline || !netlet.is_running() {
                panic!("netlet up did not start; stderr:\n{}", netlet.stderr.text());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Up { netlet }
    }

    /// (proto, address, handler) for each listening line so far.
    fn listening(netlet: &Netlet) -> Vec<(String, std::net::SocketAddr, String)> {
        netlet
            .stdout
            .all()
            .iter()
            .filter_map(|l| l.strip_prefix("netlet: listening "))
            .map(|l| {
                let parts: Vec<&str> = l.split_whitespace().collect();
                (
                    parts[0].to_string(),
                    parts[1].parse().unwrap(),
                    parts[2].trim_matches(['(', ')']).to_string(),
                )
            })
            .collect()
    }

    /// The latest address `handler` listens on with `proto`.
    fn addr(&self, proto: &str, handler: &str) -> std::net::SocketAddr {
        Self::listening(&self.netlet)
            .into_iter()
            .rev()
            .find(|(p, _, h)| p == proto && h == handler)
            .unwrap_or_else(|| panic!("{handler} has no {proto} listener"))
            .1
    }

    /// Waits until `needle` has appeared in `count` stderr lines.
    fn wait_count(&self, needle: &str, count: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let n = self
                .netlet
                .stderr
                .all()
                .iter()
                .filter(|l| l.contains(needle))
                .count();
            if n >= count {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{needle:?} not seen {count} times; stderr:\n{}",
                self.netlet.stderr.text()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The example manifest, with its components from this build and port 0 everywhere.
fn example_manifest(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/netlet.toml"),
    )
    .unwrap();
    let guests = Path::new(env!("NETLET_GUEST_DIR"));
    let text = text
        .replace(
            "../target/guests/wasm32-wasip2/release/",
            &format!("{}/", guests.display()),
        )
        .replace(":8124", ":0")
        .replace(":1337", ":0")
        .replace(":41234", ":0")
        .replace(":8000", ":0");
    let path = dir.join("netlet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_manifest_checks_as_written() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/netlet.toml");
    let (ok, out, err) = netlet(&["up", manifest.to_str().unwrap(), "--check"]);
    assert!(ok, "{err}");
    assert!(out.contains("4 handler(s) OK"), "{out}");
}

#[test]
fn up_serves_the_seeds_servers_and_chat_at_once() {
    let dir = temp_dir("up-example");
    let up = Up::start(&example_manifest(&dir), &[], 4);

    let mut hello = connect(up.addr("tcp", "hello"));
    let banner = "欢迎光临《深入浅出Node.js》示例：\n";
    assert_eq!(read_exact(&mut hello, banner.len()), banner.as_bytes());

    assert_echoes(up.addr("tcp", "echo"));

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    udp.send_to(b"hi udp", up.addr("udp", "udp-echo")).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi udp");

    let chat = up.addr("tcp", "chat");
    let mut a = connect(chat);
    let mut b = connect(chat);
    // Both joined once the room has seen them: a line from a reaches b.
    std::thread::sleep(std::time::Duration::from_millis(100));
    a.write_all(b"hello room\n").unwrap();
    let line = read_line(&mut b);
    assert!(line.ends_with("hello room"), "{line:?}");
    // Guest output is tagged with the handler's name.
    up.netlet
        .stderr
        .wait_for("[udp-echo] server got: hi udp", WAIT);
}

/// Writes a manifest and returns its path.
fn manifest(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("netlet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `netlet up` on a bad manifest: it must fail with one located line and serve nothing.
fn assert_rejected(dir: &Path, text: &str, line: usize, key: &str, what: &str) {
    let path = manifest(dir, text);
    let (ok, out, err) = netlet(&["up", path.to_str().unwrap()]);
    assert!(!ok, "accepted:\n{text}");
    assert!(!out.contains("listening"), "it served something: {out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let located = format!("{}:{line}: {key}", path.display());
    assert!(err.contains(&located), "expected {located:?} in {err}");
    assert!(err.contains(what), "expected {what:?} in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_bad_manifest_is_refused_with_file_line_and_key() {
    let dir = temp_dir("bad-manifests");
    let echo = guest("echo");
    let echo = echo.display();
    let ok = format!("[handler.ok]\ncomponent = \"{echo}\"\ntcp = \"127.0.0.1:0\"\n");
    assert_rejected(
        &dir,
        &format!(
            "{ok}[handler.e]\ncomponent = \"{echo}\"\ntcp = \"127.0.0.1:0\"\nmax_memory = \"1MiB\"\n"
        ),
        7,
        "handler.e.max_memory",
        "unknown key (did you mean `max-memory`?)",
    );
    assert_rejected(
        &dir,
        &format!("{ok}[handler.e]\ncomponent = \"nowhere.wasm\"\ntcp = \"127.0.0.1:0\"\n"),
        5,
        "handler.e.component",
        "no such file",
    );
    assert_rejected(
        &dir,
        &format!("{ok}[handler.e]\ncomponent = \"{echo}\"\ntcp = \"127.0.0.1:99999\"\n"),
        6,
        "handler.e.tcp",
        "99999",
    );
    assert_rejected(
        &dir,
        &format!(
            "{ok}[handler.e]\ncomponent = \"{echo}\"\ntcp = \"127.0.0.1:0\"\nsha256 = \"{}\"\n",
            "0".repeat(64)
        ),
        7,
        "handler.e.sha256",
        "not the 0000",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_rejected(
        &dir,
        &format!(
            "[handler.a]\ncomponent = \"{echo}\"\ntcp = \"127.0.0.1:{port}\"\n\
             [handler.b]\ncomponent = \"{echo}\"\ntcp = [\"127.0.0.1:0\", \"0.0.0.0:{port}\"]\n"
        ),
        6,
        "handler.b.tcp",
        "handler.a already listens",
    );
    let wrong = guest("notahandler");
    assert_rejected(
        &dir,
        &format!(
            "{ok}[handler.e]\ncomponent = \"{}\"\ntcp = \"127.0.0.1:0\"\n",
            wrong.display()
        ),
        5,
        "handler.e.component",
        "not a netlet handler",
    );
    assert_rejected(
        &dir,
        &format!(
            "{ok}[handler.e]\ncomponent = \"{echo}\"\ntcp = \"127.0.0.1:0\"\nshards = \"many\"\n"
        ),
        7,
        "handler.e.shards",
        "invalid shard count",
    );
}

// ---- hot swap ---------------------------------------------------------------------

/// What a new connection is greeted with: which code serves it.
fn greeting(addr: std::net::SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, WAIT)?;
    s.set_read_timeout(Some(WAIT))?;
    let mut buf = [0u8; 13];
    s.read_exact(&mut buf)?;
    Ok(buf.to_vec())
}

const ECHO_BANNER: &[u8] = b"Echo server\r\n";
const HELLO_BANNER_START: &[u8] = "欢迎光临《深入浅出".as_bytes();

fn is_hello(banner: &[u8]) -> bool {
    HELLO_BANNER_START.starts_with(banner) || banner.starts_with(&HELLO_BANNER_START[..13])
}

/// Copies `from` over `to` the way a deploy would: write aside, then rename.
fn replace_file(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[test]
fn swap_under_load_keeps_connections_and_refuses_none() {
    let dir = temp_dir("swap-under-load");
    let component = dir.join("handler.wasm");
    std::fs::copy(guest("echo"), &component).unwrap();
    let path = manifest(
        &dir,
        "[handler.svc]\ncomponent = \"handler.wasm\"\ntcp = \"127.0.0.1:0\"\n",
    );
    let up = Up::start(&path, &["--watch"], 1);
    let addr = up.addr("tcp", "svc");

    // A long-lived client that keeps echoing, byte-exact, through both swaps.
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, echoed) = (stop.clone(), echoed.clone());
        std::thread::spawn(move || {
            let mut s = connect(addr);
            assert_eq!(read_exact(&mut s, 13), ECHO_BANNER);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let msg = random_bytes(1 + (i as usize * 37) % 3000, i);
                s.write_all(&msg).unwrap();
                assert_eq!(read_exact(&mut s, msg.len()), msg, "message {i}");
                echoed.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    // A stream of new connections throughout: none may be refused.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let connector = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match greeting(addr) {
                    Ok(banner) => seen.lock().unwrap().push(banner),
                    Err(e) => failures.push(e.to_string()),
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            failures
        })
    };
    let wait_echoes = |n: usize| {
        let target = echoed.load(Ordering::Relaxed) + n;
        let deadline = std::time::Instant::now() + WAIT;
        while echoed.load(Ordering::Relaxed) < target {
            assert!(
                std::time::Instant::now() < deadline,
                "the old connection stalled"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    wait_echoes(50);

    // Swap 1: by SIGHUP.
    std::fs::copy(guest("hello"), dir.join("hello.wasm")).unwrap();
    std::fs::write(
        &path,
        "[handler.svc]\ncomponent = \"hello.wasm\"\ntcp = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("svc: swapped in", 1);
    assert!(
        is_hello(&greeting(addr).unwrap()),
        "new connections must see the new code"
    );
    wait_echoes(50);

    // Swap 2: the file changes on disk (--watch).
    std::fs::write(
        &path,
        "[handler.svc]\ncomponent = \"handler.wasm\"\ntcp = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    replace_file(&guest("echo"), &component);
    up.wait_count("svc: swapped in", 2);
    assert_eq!(greeting(addr).unwrap(), ECHO_BANNER);
    wait_echoes(50);

    stop.store(true, Ordering::Relaxed);
    client.join().expect("the long-lived connection broke");
    let failures = connector.join().unwrap();
    assert!(
        failures.is_empty(),
        "connections failed during the swaps: {failures:?}"
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen.len() > 20,
        "too few connections to mean anything: {}",
        seen.len()
    );
    assert!(
        seen.iter().all(|b| b == ECHO_BANNER || is_hello(b)),
        "a connection saw neither version"
    );
    assert!(
        seen.iter().any(|b| is_hello(b)),
        "no connection saw the first swap's code"
    );
    assert!(!up.netlet.stderr.contains("panicked"));
}

#[test]
fn a_component_that_fails_to_load_is_not_swapped_in() {
    let dir = temp_dir("bad-swap");
    let component = dir.join("handler.wasm");
    std::fs::copy(guest("echo"), &component).unwrap();
    let path = manifest(
        &dir,
        "[handler.svc]\ncomponent = \"handler.wasm\"\ntcp = \"127.0.0.1:0\"\n",
    );
    let up = Up::start(&path, &[], 1);
    let addr = up.addr("tcp", "svc");

    std::fs::write(&component, b"not a component").unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("svc: not reloaded, the running code keeps serving", 1);
    assert_echoes(addr);

    // A component of the wrong world, and one whose hash is not the pinned one.
    std::fs::copy(guest("notahandler"), &component).unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("svc: not reloaded", 2);
    assert_echoes(addr);

    std::fs::copy(guest("hello"), &component).unwrap();
    std::fs::write(
        &path,
        format!(
            "[handler.svc]\ncomponent = \"handler.wasm\"\ntcp = \"127.0.0.1:0\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("svc: not reloaded", 3);
    assert!(up.netlet.stderr.contains("the manifest expects"));
    assert_echoes(addr);

    // A manifest that no longer parses changes nothing.
    std::fs::write(&path, "[handler.svc\n").unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("reload failed, nothing changed", 1);
    assert_echoes(addr);
}

#[test]
fn drain_timeout_closes_connections_left_on_the_old_code() {
    let dir = temp_dir("drain");
    let component = dir.join("handler.wasm");
    std::fs::copy(guest("echo"), &component).unwrap();
    let path = manifest(
        &dir,
        "[handler.svc]\ncomponent = \"handler.wasm\"\ntcp = \"127.0.0.1:0\"\ndrain-timeout = \"300ms\"\n",
    );
    let up = Up::start(&path, &[], 1);
    let addr = up.addr("tcp", "svc");
    let mut old = connect(addr);
    assert_eq!(read_exact(&mut old, 13), ECHO_BANNER);
    std::fs::copy(guest("hello"), &component).unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("svc: swapped in", 1);
    // Still served by the old code until the drain timeout...
    old.write_all(b"x").unwrap();
    assert_eq!(read_exact(&mut old, 1), b"x");
    // ...then closed.
    let (rest, _) = read_to_end(&mut old);
    assert!(rest.is_empty(), "{rest:?}");
    up.wait_count("--drain-timeout: closed 1 connection", 1);
    assert!(is_hello(&greeting(addr).unwrap()));
}

#[test]
fn a_changed_limit_is_swapped_in_and_a_changed_pool_restarts() {
    let dir = temp_dir("swap-or-restart");
    let component = dir.join("handler.wasm");
    std::fs::copy(guest("echo"), &component).unwrap();
    let base = "[handler.svc]\ncomponent = \"handler.wasm\"\ntcp = \"127.0.0.1:0\"\nisolation = \"connection\"\n";
    let path = manifest(&dir, base);
    let up = Up::start(&path, &[], 1);
    let addr = up.addr("tcp", "svc");

    // A limit that does not size the pool: swapped in, on the same listener.
    std::fs::write(&path, format!("{base}idle-timeout = \"10s\"\n")).unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("svc: swapped in", 1);
    assert_eq!(up.addr("tcp", "svc"), addr);
    assert_echoes(addr);

    // max-memory sizes a connection-isolation pool's slots: restarted.
    std::fs::write(
        &path,
        format!("{base}idle-timeout = \"10s\"\nmax-memory = \"32MiB\"\n"),
    )
    .unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("svc: max-memory changed: restarting it", 1);
    // The restarted handler bound its listener again (a new listening line).
    let deadline = std::time::Instant::now() + WAIT;
    while Up::listening(&up.netlet).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            up.netlet.stdout.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_echoes(up.addr("tcp", "svc"));
    let swaps = up
        .netlet
        .stderr
        .all()
        .iter()
        .filter(|l| l.contains("svc: swapped in"))
        .count();
    assert_eq!(swaps, 1, "{}", up.netlet.stderr.text());
}

#[test]
fn handlers_added_to_and_removed_from_the_manifest_start_and_stop() {
    let dir = temp_dir("add-remove");
    let echo = guest("echo");
    let hello = guest("hello");
    let one = format!(
        "[handler.a]\ncomponent = \"{}\"\ntcp = \"127.0.0.1:0\"\n",
        echo.display()
    );
    let path = manifest(&dir, &one);
    let up = Up::start(&path, &[], 1);
    let a = up.addr("tcp", "a");

    std::fs::write(
        &path,
        format!(
            "{one}[handler.b]\ncomponent = \"{}\"\ntcp = \"127.0.0.1:0\"\n",
            hello.display()
        ),
    )
    .unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.netlet.stdout.wait_for("(b)", WAIT);
    let b = up.addr("tcp", "b");
    assert!(is_hello(&greeting(b).unwrap()));
    assert_echoes(a);

    // Remove a: its listener closes; b keeps serving.
    std::fs::write(
        &path,
        format!(
            "[handler.b]\ncomponent = \"{}\"\ntcp = \"127.0.0.1:0\"\n",
            hello.display()
        ),
    )
    .unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("a: removed from the manifest", 1);
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(a).is_ok() {
        assert!(std::time::Instant::now() < deadline, "a still accepts");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(is_hello(&greeting(b).unwrap()));
}

// ---- metrics ----------------------------------------------------------------------

#[test]
fn metrics_count_connections_bytes_datagrams_calls_and_swaps() {
    let dir = temp_dir("metrics");
    let component = dir.join("echo.wasm");
    std::fs::copy(guest("echo"), &component).unwrap();
    let path = manifest(
        &dir,
        &format!(
            "[handler.echo]\ncomponent = \"echo.wasm\"\ntcp = \"127.0.0.1:0\"\n\
             [handler.udp]\ncomponent = \"{}\"\nudp = \"127.0.0.1:0\"\n",
            guest("udp-echo").display()
        ),
    );
    let up = Up::start(&path, &["--metrics", "127.0.0.1:0"], 2);
    let line = up.netlet.stdout.wait_for("metrics on http://", WAIT);
    let maddr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    let tcp = up.addr("tcp", "echo");
    for _ in 0..3 {
        assert_echoes(tcp);
    }
    let open = connect(tcp);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    for _ in 0..4 {
        udp.send_to(b"12345", up.addr("udp", "udp")).unwrap();
        let mut buf = [0u8; 16];
        udp.recv_from(&mut buf).unwrap();
    }
    let l = format!("handler=\"echo\",listener=\"tcp://{tcp}\"");
    let u = format!(
        "handler=\"udp\",listener=\"udp://{}\"",
        up.addr("udp", "udp")
    );
    // The open connection's accept may still be in flight: poll briefly.
    let deadline = std::time::Instant::now() + WAIT;
    let text = loop {
        let text = scrape(&maddr);
        // The counters are bumped just after the kernel took the bytes, and a closed
        // connection is counted when the host sees its end: a scrape can beat any of them
        // by a moment (active = 1 can also mean "3 accepted, the third not yet seen
        // closed"), so wait for every counter asserted exactly below.
        if metric(&text, &format!("netlet_connections_active{{{l}}}")) == 1
            && metric(&text, &format!("netlet_connections_total{{{l}}}")) == 4
            && metric(&text, &format!("netlet_bytes_sent_total{{{l}}}")) == 4 * 13 + 15
            && metric(&text, &format!("netlet_udp_datagrams_sent_total{{{u}}}")) == 4
        {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        metric(&text, &format!("netlet_connections_total{{{l}}}")),
        4
    );
    // 3 × "ping\n" in, 3 × (banner + "ping\n") + 1 banner out.
    assert_eq!(
        metric(&text, &format!("netlet_bytes_received_total{{{l}}}")),
        15
    );
    assert_eq!(
        metric(&text, &format!("netlet_bytes_sent_total{{{l}}}")),
        4 * 13 + 15
    );
    assert_eq!(
        metric(
            &text,
            &format!("netlet_udp_datagrams_received_total{{{u}}}")
        ),
        4
    );
    assert_eq!(
        metric(&text, &format!("netlet_udp_datagrams_sent_total{{{u}}}")),
        4
    );
    assert_eq!(
        metric(&text, &format!("netlet_bytes_received_total{{{u}}}")),
        20
    );
    assert!(metric(&text, "netlet_guest_calls_total{handler=\"echo\"}") >= 4);
    assert!(metric(&text, "netlet_events_delivered_total{handler=\"echo\"}") >= 10);
    let calls = metric(
        &text,
        "netlet_guest_call_duration_seconds_count{handler=\"echo\"}",
    );
    assert_eq!(
        calls,
        metric(&text, "netlet_guest_calls_total{handler=\"echo\"}")
    );
    assert_eq!(metric(&text, "netlet_swaps_total{handler=\"echo\"}"), 0);
    assert_eq!(
        metric(&text, "netlet_traps_total{handler=\"echo\",kind=\"fault\"}"),
        0
    );

    std::fs::copy(guest("hello"), &component).unwrap();
    up.netlet.signal(libc::SIGHUP);
    up.wait_count("echo: swapped in", 1);
    let text = scrape(&maddr);
    assert_eq!(metric(&text, "netlet_swaps_total{handler=\"echo\"}"), 1);
    // The same listener keeps its counts across the swap.
    assert_eq!(
        metric(&text, &format!("netlet_connections_total{{{l}}}")),
        4
    );
    drop(open);
}

// ---- logs ---------------------------------------------------------------------------

#[test]
fn json_logs_tag_guest_output_with_handler_and_connection() {
    let hello = guest("hello");
    let n = Netlet::start(&[
        "run",
        hello.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--isolation",
        "connection",
        "--log-format",
        "json",
    ]);
    for _ in 0..2 {
        let mut s = connect(n.tcp[0]);
        let banner = "欢迎光临《深入浅出Node.js》示例：\n";
        assert_eq!(read_exact(&mut s, banner.len()), banner.as_bytes());
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = read_to_end(&mut s);
    }
    // hello logs 连接断开 on `end`: once per connection, each tagged with its own.
    for id in [1, 2] {
        n.stderr
            .wait_until(WAIT, |l| {
                l.contains("\"message\":\"连接断开\"")
                    && l.contains(&format!("\"connection\":{id}"))
            })
            .unwrap_or_else(|| panic!("no line for connection {id}:\n{}", n.stderr.text()));
    }
    for line in n.stderr.all() {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not a JSON line: {line}"
        );
        assert!(line.contains("\"timestamp\":"), "{line}");
    }
    assert!(
        n.stderr
            .all()
            .iter()
            .all(|l| !l.contains("netlet::guest") || l.contains("\"handler\":\"hello\""))
    );
}

#[test]
fn text_logs_name_the_handler_and_connection() {
    let hello = guest("hello");
    let n = Netlet::start(&[
        "run",
        hello.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--isolation",
        "connection",
    ]);
    let mut s = connect(n.tcp[0]);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = read_to_end(&mut s);
    n.stderr.wait_for("[hello conn=1] 连接断开", WAIT);
}

#[test]
fn up_without_a_manifest_says_so() {
    let dir = temp_dir("no-manifest");
    let out = Command::new(netlet_bin())
        .arg("up")
        .current_dir(&dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("netlet.toml: cannot read: no such file"),
        "{err}"
    );
}
