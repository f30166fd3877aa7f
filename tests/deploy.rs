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
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\x7fELF"), "not machine code");
    let n = Netlet::start(&["run", out.to_str().unwrap(), "--tcp", "127.0.0.1:0"]);
    assert_echoes(n.tcp[0]);
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
    let (ok, _, stderr) = netlet(&["run", out.to_str().unwrap(), "--tcp", "127.0.0.1:0"]);
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
    assert!(
        n.stderr.contains("writable by other users"),
        "{}",
        n.stderr.text()
    );
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
