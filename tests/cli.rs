//! The command line as a user meets it: bad components rejected with one clear line,
//! signals, outbound permissions, guest output.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

/// Runs `netlet run FILE --tcp 127.0.0.1:0` and returns (exit success, stderr).
fn run_file(file: &std::path::Path) -> (bool, String) {
    let mut netlet = Netlet::spawn(&["run", file.to_str().unwrap(), "--tcp", "127.0.0.1:0"]);
    let status = netlet.wait_exit(WAIT);
    (status.success(), netlet.stderr.text())
}

fn assert_one_clear_line(stderr: &str, file: &std::path::Path, what: &str) {
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "expected one line:\n{stderr}"
    );
    assert!(
        stderr.contains(&file.display().to_string()),
        "the file is not named:\n{stderr}"
    );
    assert!(stderr.contains(what), "expected {what:?} in:\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

#[test]
fn a_file_that_is_not_wasm_is_rejected() {
    let file = temp_file("garbage.wasm", b"this is not webassembly at all");
    let (ok, err) = run_file(&file);
    assert!(!ok);
    assert_one_clear_line(&err, &file, "not a WebAssembly file");
}

#[test]
fn a_corrupt_component_is_rejected() {
    let mut bytes = std::fs::read(guest("echo")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let file = temp_file("truncated.wasm", &bytes);
    let (ok, err) = run_file(&file);
    assert!(!ok);
    assert_one_clear_line(&err, &file, "not a valid WebAssembly component");
}

#[test]
fn a_core_module_is_rejected() {
    let file = temp_file("core.wasm", b"\0asm\x01\0\0\0");
    let (ok, err) = run_file(&file);
    assert!(!ok);
    assert_one_clear_line(&err, &file, "a core WebAssembly module, not a component");
}

#[test]
fn a_component_of_the_wrong_world_is_rejected() {
    let file = guest("notahandler");
    let (ok, err) = run_file(&file);
    assert!(!ok);
    assert_one_clear_line(&err, &file, "not a netlet handler");
    assert!(
        err.contains("wasi:cli/run"),
        "the exports should be listed: {err}"
    );
}

#[test]
fn a_missing_file_is_reported() {
    let file = std::path::Path::new("/nonexistent/handler.wasm");
    let (ok, err) = run_file(file);
    assert!(!ok);
    assert_one_clear_line(&err, file, "cannot read");
}

/// A connection-isolation pool the kernel could not map (every pooled instance costs
/// memory mappings, and past `vm.max_map_count` even the allocator fails and the process
/// aborts) is refused at start with one line saying what to change.
#[test]
fn a_pool_past_the_kernels_mapping_limit_is_refused_with_what_to_change() {
    let max: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .expect("Linux")
        .trim()
        .parse()
        .unwrap();
    let too_many = (max / 4 + 1_000).to_string();
    let mut netlet = Netlet::spawn(&[
        "run",
        guest("echo").to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--isolation",
        "connection",
        "--max-connections",
        &too_many,
    ]);
    let status = netlet.wait_exit(WAIT);
    let stderr = netlet.stderr.text();
    assert!(!status.success(), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("vm.max_map_count") && stderr.contains("lower --max-connections"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        vec!["run", "x.wasm", "--tcp", "nope"],
        vec!["run", "x.wasm", "--allow", "1.2.3.4"],
        vec!["run", "x.wasm", "--shards", "0"],
    ] {
        let mut netlet = Netlet::spawn(&args);
        let status = netlet.wait_exit(WAIT);
        assert_eq!(status.code(), Some(2), "{args:?}");
        assert!(
            netlet.stderr.contains("invalid"),
            "{args:?}: {}",
            netlet.stderr.text()
        );
    }
}

#[test]
fn sigterm_and_sigint_stop_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut netlet = Netlet::run("echo", &["--tcp", "127.0.0.1:0"]);
        let addr = netlet.tcp[0];
        let mut open = connect(addr);
        assert_eq!(read_exact(&mut open, 13), b"Echo server\r\n");
        let start = Instant::now();
        netlet.signal(sig);
        let status = netlet.wait_exit(WAIT);
        assert!(status.success(), "signal {sig}: {status}");
        assert!(start.elapsed() < Duration::from_secs(10));
        // The open connection was closed and the port is free again.
        let (_, _) = read_to_end(&mut open);
        std::net::TcpListener::bind(addr).expect("the port was released");
    }
}

#[test]
fn guest_output_is_prefixed_with_the_component_name() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    c.write_all(b"log hello from the guest\n").unwrap();
    netlet
        .stderr
        .wait_for("[scripted] hello from the guest", WAIT);
}

#[test]
fn outbound_connect_needs_permission() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(
        command(&mut c, &format!("connect 127.0.0.1 {port}")),
        "connect failed EACCES"
    );
    netlet
        .stderr
        .wait_for(&format!("denied connect to 127.0.0.1:{port}"), WAIT);
    drop(netlet);

    let netlet = Netlet::run(
        "scripted",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(
        command(&mut c, &format!("connect 127.0.0.1 {port}")),
        "connecting"
    );
    let (mut peer, _) = target.accept().unwrap();
    assert_eq!(read_line(&mut c), "client connect");
    c.write_all(b"csend over the wire\n").unwrap();
    assert_eq!(read_line(&mut peer), "over the wire");
    peer.write_all(b"answer\n").unwrap();
    assert_eq!(read_line(&mut c), "client data answer");
    drop(peer);
    assert_eq!(read_line(&mut c), "client end");
    assert_eq!(read_line(&mut c), "client close false");
}

#[test]
fn a_refused_connect_gives_error_then_close() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let netlet = Netlet::run(
        "scripted",
        &["--tcp", "127.0.0.1:0", "--allow", "127.0.0.1:*"],
    );
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(
        command(&mut c, &format!("connect 127.0.0.1 {port}")),
        "connecting"
    );
    assert_eq!(read_line(&mut c), "client error ECONNREFUSED");
    assert_eq!(read_line(&mut c), "client close true");
    netlet
        .stderr
        .wait_for(&format!("connect ECONNREFUSED 127.0.0.1:{port}"), WAIT);
}

#[test]
fn a_name_rule_allows_localhost() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let netlet = Netlet::run(
        "scripted",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &format!("localhost:{port}"),
        ],
    );
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(
        command(&mut c, &format!("connect localhost {port}")),
        "connecting"
    );
    let _peer = target.accept().unwrap();
    assert_eq!(read_line(&mut c), "client connect");
}

#[test]
fn a_guest_panic_closes_its_connections_and_a_new_instance_serves() {
    let netlet = Netlet::run("scripted", &["--tcp", "127.0.0.1:0"]);
    let mut bystander = connect(netlet.tcp[0]);
    assert_eq!(command(&mut bystander, "echo before"), "before");
    let mut c = connect(netlet.tcp[0]);
    c.write_all(b"panic\n").unwrap();
    let (_, _) = read_to_end(&mut c);
    netlet.stderr.wait_for("trapped", WAIT);
    netlet
        .stderr
        .wait_for("scripted guest asked to panic", WAIT);
    // The listener survives: a new instance answers.
    let mut d = connect(netlet.tcp[0]);
    assert_eq!(command(&mut d, "echo after"), "after");
}

#[test]
fn run_errors_name_the_file_and_the_problem_only() {
    // `netlet run` has no manifest: no FILE:LINE: handler.NAME.KEY prefix.
    let file = temp_file("bad.wasm", b"garbage");
    let (ok, err) = run_file(&file);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        format!(
            "netlet: {}: not a WebAssembly file (it does not start with the \\0asm magic number)",
            file.display()
        )
    );
    // A port in use names the address and the problem.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let echo = guest("echo");
    let mut netlet = Netlet::spawn(&["run", echo.to_str().unwrap(), "--tcp", &addr]);
    assert!(!netlet.wait_exit(WAIT).success());
    assert_eq!(
        netlet.stderr.text().trim(),
        format!("netlet: cannot listen on tcp {addr}: address already in use")
    );
}

#[test]
fn a_server_given_no_listener_says_what_is_missing() {
    let echo = guest("echo");
    let mut netlet = Netlet::spawn(&["run", echo.to_str().unwrap()]);
    let status = netlet.wait_exit(WAIT);
    assert!(
        !status.success(),
        "it exited {status} having served nothing"
    );
    let err = netlet.stderr.text();
    assert_one_clear_line(&err, &echo, "nothing to serve");
    assert!(
        err.contains("--tcp ADDR") && err.contains("--udp ADDR"),
        "{err}"
    );
}

#[test]
fn a_client_given_no_listener_runs_and_exits_cleanly() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = server.local_addr().unwrap().to_string();
    let mut netlet = Netlet::spawn(&[
        "run",
        guest("tcp-client").to_str().unwrap(),
        "--allow",
        &target,
        "--",
        &target,
    ]);
    let (mut peer, _) = server.accept().unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(read_exact(&mut peer, 8), b"world!\r\n");
    peer.write_all(b"hello from the server").unwrap();
    drop(peer);
    let status = netlet.wait_exit(WAIT);
    assert!(status.success(), "{status}: {}", netlet.stderr.text());
    assert!(!netlet.stderr.contains("nothing to serve"));
}
