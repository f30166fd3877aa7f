//! JavaScript handlers (`netlet build`, the JS SDK in `js/`).
//!
//! Differential tests: each program under `tests/js/` runs under `node` itself and, built
//! by `netlet build`, under `netlet run`; the same Node client (or peer) drives both, and
//! the client's transcript (bytes, events, close order, error codes) and the program's
//! own log must be identical. The programs are bundled into one component
//! (`tests/js/suite.js`) so a test run builds and compiles it once; built components are
//! kept under `target/` by the hash of their sources.
//!
//! Then what only netlet does: errors that end the instance (one log line with the
//! message and stack, a restart, the next connection served), build errors, `netlet
//! inspect`, memory under load, and the seeds' programs in `examples-js/`.

mod common;

use std::io::Write;
use std::net::{Shutdown, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::child::*;
use common::*;

/// Starting a component the first time compiles it (14 MB of engine): slow on a loaded
/// runner with the tests' unoptimised host.
const START: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file a JavaScript build depends on, for the build cache's key.
fn sdk_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["js/sdk", "js/toolchain", "wit"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        files.extend(entries);
    }
    files
}

static BUILDS: Mutex<()> = Mutex::new(());

/// `netlet build SOURCE`, once per content of the source (and what it requires from the
/// same folder) and of the SDK: later calls, and later test runs, reuse the component.
fn built(source: &Path) -> PathBuf {
    let mut key = Vec::new();
    let mut inputs: Vec<PathBuf> = sdk_sources();
    for entry in std::fs::read_dir(source.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
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
        .join("js-built")
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
        .env_remove("NETLET_JS_SDK")
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
    built(&repo().join("tests/js/suite.js"))
}

fn js_file(name: &str) -> PathBuf {
    repo().join("tests/js").join(name)
}

/// `node SCRIPT ARGS...`; `require('ws')` finds the tests' npm packages when
/// `scripts/test` installed them (the tests that use `ws` check they are there).
fn node_file(script: &Path, args: &[&str]) -> Proc {
    let mut p = Command::new("node");
    p.arg(script)
        .args(args)
        .env("NODE_PATH", test_clients().join("node_modules"));
    Proc::spawn_command(p, "node")
}

/// node, the programs in tests/js, and the suite built for netlet.
const REFERENCE: Reference = Reference {
    label: "node",
    dir: "tests/js",
    ext: "js",
    spawn: node_file,
    component: suite,
    start: START,
    client_timeout: Duration::from_secs(60),
};

fn differential(name: &str, netlet_args: &[&str]) {
    REFERENCE.differential(name, netlet_args);
}

fn differential_peer(name: &str, netlet_args: &[&str]) {
    REFERENCE.differential_peer(name, netlet_args);
}

const TCP: &[&str] = &["--tcp", "127.0.0.1:0"];

#[test]
fn echo_with_pipe() {
    differential("echo", TCP);
}

#[test]
fn greeting() {
    differential("greeting", TCP);
}

#[test]
fn half_open() {
    // createServer({ allowHalfOpen: true }) says it, not the operator.
    differential("halfopen", TCP);
}

#[test]
fn backpressure_with_a_slow_reader() {
    differential("backpressure", TCP);
}

#[test]
fn socket_timeouts() {
    differential("timeout", TCP);
}

#[test]
fn set_encoding_keeps_characters_whole() {
    differential("encoding", TCP);
}

#[test]
fn write_callbacks_finish_close_and_byte_counts() {
    differential("writecb", TCP);
}

#[test]
fn pause_and_resume() {
    differential("pause", TCP);
}

#[test]
fn an_es_module_with_node_imports_timers_and_socket_options() {
    differential("esm", TCP);
}

#[test]
fn pipe_in_its_forms_before_between_listened_unpiped_end_false_and_a_destination_gone() {
    // Under netlet the host moves a pipe's bytes (no data events); what the client sees
    // and what the handler logs must stay Node's.
    differential("pipes", TCP);
}

#[test]
fn net_connect_under_allow() {
    differential_peer("connect", &[]);
}

#[test]
fn http_keep_alive_chunked_bodies_and_node_s_client() {
    // Raw requests on a kept-alive connection (fixed length, chunked both ways with
    // trailers, HEAD, 204, Connection: close), Node's http client with a keep-alive
    // agent, HTTP/1.0, a missing Host, a malformed request: byte for byte.
    differential("http", TCP);
}

#[test]
fn websocket_fragments_close_codes_and_ping_pong_with_the_ws_package() {
    // The ws package's client: messages, fragments both ways, ping / pong, close codes
    // from each side, 1005 / 1007 / 1009 / 1002 / 1006, refused handshakes.
    node_modules();
    differential("wsecho", TCP);
}

#[test]
fn udp_from_several_peers() {
    // bind(0): a socket of the handler's own on a free port.
    differential("udp", &[]);
}

#[test]
fn dgram_send_forms() {
    differential_peer("dgramsend", &[]);
}

// ----- what only netlet does ----------------------------------------------------------

/// The line after `index` in netlet's stderr that is not the program's own.
fn next_host_line(lines: &[String], index: usize) -> Option<&String> {
    lines[index + 1..]
        .iter()
        .find(|l| l.starts_with("netlet: "))
}

#[test]
fn an_uncaught_exception_is_one_line_then_a_restart_and_the_next_connection_is_served() {
    let p = Proc::netlet(&suite(), &["--tcp", "127.0.0.1:0", "--", "errors"]);
    let port = ready_port(&wait_program_line(&p, Some("suite"), "ready ", START));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cases = [
        (
            "throw",
            "Uncaught Error: boom in data (at fail (errors.js:11:9) < <anonymous> (errors.js:18:",
        ),
        (
            "timer",
            "Uncaught Error: boom in timer (at fail (errors.js:11:9) < <anonymous> (errors.js:19:",
        ),
        ("string", "Uncaught 'a string, not an Error'"),
        (
            "error-event",
            "Uncaught Error: an error event nobody listens to (at <anonymous> (errors.js:21:",
        ),
    ];
    for (round, (cmd, expected)) in cases.iter().enumerate() {
        let mut c = connect(addr);
        assert_eq!(read_line(&mut c), "hello");
        c.write_all(cmd.as_bytes()).unwrap();
        // The trap closes the instance's connections.
        let _ = read_to_end(&mut c);
        let line = p.stderr.wait_for(&format!("[suite] {expected}"), WAIT);
        // The host's line about it follows (through the same log queue).
        let trapped = "trapped: the handler stopped after an uncaught exception";
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
        // One line: the next one of the program's is the new instance's `ready`, and the
        // host's says the instance stopped.
        assert!(
            all[at + 1..]
                .iter()
                .filter(|l| l.starts_with("[suite] "))
                .all(|l| l.starts_with("[suite] ready")),
            "more than one line for {cmd}:\n{}",
            all.join("\n")
        );
        let host = next_host_line(&all, at).expect("the host's line");
        assert!(
            host.contains("trapped: the handler stopped after an uncaught exception"),
            "{host}"
        );
        let uncaught = all.iter().filter(|l| l.contains("] Uncaught ")).count();
        assert_eq!(uncaught, round + 1, "{}", all.join("\n"));
        // netlet is up and serves the next connection.
        let mut next = connect(addr);
        assert_eq!(read_line(&mut next), "hello");
        next.write_all(b"still there").unwrap();
        assert_eq!(read_line(&mut next), "ok still there");
    }
}

#[test]
fn an_exception_at_start_is_an_init_failure_and_a_later_start_serves() {
    // The program throws at start half of the time (its own Math.random(): top-level code
    // runs per instance). A first start that fails stops netlet at once (the handler
    // cannot run); after one that succeeded, a failed start is restarted with backoff.
    const FAILED: &str =
        "init failed: Uncaught Error: boom at start (at <anonymous> (errors.js:7:9)";
    let mut launches = 0;
    let (p, addr) = loop {
        launches += 1;
        assert!(launches <= 20, "20 first starts failed");
        let mut p = Proc::netlet(&suite(), &["--tcp", "127.0.0.1:0", "--", "errors", "start"]);
        // Either it listens, or its first start failed and it exits.
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
            if !p.running() || Instant::now() > until {
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
        c.write_all(b"throw").unwrap();
        let _ = read_to_end(&mut c);
    }
    let log = p.stderr.all();
    let failed = log.iter().find(|l| l.contains("init failed")).unwrap();
    assert!(
        failed.starts_with("netlet: [suite] init failed: Uncaught Error: boom at start"),
        "{failed}"
    );
}

#[test]
fn inspect_says_javascript_and_its_node_modules() {
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
            "language: JavaScript (netlet JS SDK 0.1.0); Node modules it uses: buffer, dgram, events, http, net, timers, ws"
        ),
        "{text}"
    );
    assert!(text.contains("outbound TCP (net.connect)"), "{text}");
}

/// Writes `source` as `name` in a fresh folder under the test directory.
fn scratch(name: &str, source: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("js-scratch")
        .join(format!("{}-{}", std::process::id(), name.replace('.', "_")));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

fn build_error(source: &Path) -> String {
    let out = Command::new(netlet_bin())
        .arg("build")
        .arg(source)
        .args(["--cache-dir", cache_dir().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "built {}", source.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn build_errors_name_the_module_or_the_place() {
    let fs = scratch(
        "usesfs.js",
        "const fs = require('fs');\nfs.readFileSync('x');\n",
    );
    let err = build_error(&fs);
    assert!(
        err.contains("usesfs.js:1:")
            && err.contains("\"fs\" is a Node module netlet's JavaScript SDK does not provide"),
        "{err}"
    );
    assert!(
        err.contains("it provides net, dgram, events, buffer"),
        "{err}"
    );
    let bad = scratch(
        "syntax.js",
        "const net = require('net');\nnet.createServer(() => {\n",
    );
    let err = build_error(&bad);
    assert!(err.contains("syntax.js:3:"), "{err}");
    let not_js = scratch("handler.rb", "puts \"hi\"\n");
    let err = build_error(&not_js);
    assert!(
        err.contains("netlet build makes components from JavaScript"),
        "{err}"
    );
}

#[test]
fn a_typescript_package_folder_builds_from_its_main_and_serves() {
    // A folder with package.json whose `main` is TypeScript, importing a module of its
    // own with ES module syntax: esbuild strips the types, the entry is `main`.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("js-scratch")
        .join(format!("{}-typed", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{ "name": "typed-greeter", "private": true, "main": "src/server.ts" }"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("src/greet.ts"),
        "export interface Visitor { name: string; visits: number }\n\
         export function greet(v: Visitor): string {\n\
         \x20 return `hello ${v.name}, visit ${v.visits}\\n`;\n\
         }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/server.ts"),
        "import net from 'node:net';\n\
         import { greet, type Visitor } from './greet';\n\
         let visits: number = 0;\n\
         const server: net.Server = net.createServer((socket: net.Socket): void => {\n\
         \x20 const v: Visitor = { name: 'typescript', visits: ++visits };\n\
         \x20 socket.end(greet(v));\n\
         });\n\
         server.listen(7000, () => console.log('typed server bound'));\n",
    )
    .unwrap();
    let out = dir.join("typed.wasm");
    let build = Command::new(netlet_bin())
        .arg("build")
        .arg(&dir)
        .arg("-o")
        .arg(&out)
        .args(["--cache-dir", cache_dir().to_str().unwrap()])
        .env_remove("NETLET_JS_SDK")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let inspect = Command::new(netlet_bin())
        .arg("inspect")
        .arg(&out)
        .args(["--cache-dir", cache_dir().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("Node modules it uses: net"), "{text}");
    let p = Proc::netlet(&out, &["--tcp", "127.0.0.1:0=7000"]);
    let line = p.stdout.wait_for("netlet: listening tcp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    p.stderr.wait_for("typed server bound", WAIT);
    for visit in 1..=2 {
        let mut c = connect(addr);
        let (got, result) = read_to_end(&mut c);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            String::from_utf8_lossy(&got),
            format!("hello typescript, visit {visit}\n")
        );
    }
}

/// `tsc` over `files` with the SDK's declarations, `lib` as given: its output, and
/// whether it passed.
fn tsc(dir: &Path, files: &[&str], lib: &str) -> (bool, String) {
    let tsc = test_clients().join("node_modules/typescript/bin/tsc");
    assert!(
        tsc.exists(),
        "{} is missing: scripts/test installs it",
        tsc.display()
    );
    let types = repo().join("js/sdk/types/index.d.ts");
    let mut all = vec![types.to_str().unwrap().to_string()];
    all.extend(
        files
            .iter()
            .map(|f| dir.join(f).to_str().unwrap().to_string()),
    );
    let config = format!(
        r#"{{ "compilerOptions": {{ "strict": true, "noEmit": true, "target": "es2022",
             "module": "commonjs", "esModuleInterop": true, "types": [], "lib": {lib} }},
             "files": {all:?} }}"#
    );
    // The configuration goes beside the test's other scratch files, not into the
    // repository's folder.
    let path = scratch(&format!("tsconfig-{}.json", files.join("-")), &config);
    let out = Command::new("node")
        .arg(&tsc)
        .arg("-p")
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_typescript_declarations_check_a_handler_with_and_without_the_dom_library() {
    let dir = repo().join("tests/js/typed");
    for lib in [r#"["es2022"]"#, r#"["es2022", "dom"]"#] {
        let (ok, text) = tsc(&dir, &["handler.ts"], lib);
        assert!(ok, "lib {lib}:\n{text}");
    }
    // The declarations are not `any`: a wrong call is an error.
    let wrong = scratch(
        "wrong.ts",
        "import net from 'node:net';\n\
         net.createServer((s) => { s.write(42); s.setTimeout('soon'); });\n",
    );
    let (ok, text) = tsc(wrong.parent().unwrap(), &["wrong.ts"], r#"["es2022"]"#);
    assert!(!ok, "{text}");
    assert!(text.contains("wrong.ts(2,"), "{text}");
    assert!(
        text.contains("'number'") && text.contains("'string'"),
        "{text}"
    );
}

#[test]
fn build_without_node_says_what_to_install() {
    let source = js_file("suite.js");
    let empty = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-no-node");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(netlet_bin())
        .arg("build")
        .arg(&source)
        .args(["-o", empty.join("x.wasm").to_str().unwrap()])
        .args(["--cache-dir", cache_dir().to_str().unwrap()])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("needs Node.js") && err.contains("install Node.js 18 or later with npm"),
        "{err}"
    );
}

// ----- memory ------------------------------------------------------------------------

/// 64-byte ping-pong on 32 connections against one shared instance at the default
/// --max-memory (64 MiB): the engine's garbage collector keeps it within the limit.
/// (Before its GC limits were set, the linear memory reached 64 MiB within 60,000
/// round trips and the instance died in a GC: "[unhandlable oom] Failed to allocate new
/// chunk during GC".)
#[test]
fn a_shared_instance_lives_within_64_mib_under_ping_pong() {
    let echo = built(&repo().join("examples-js/echo.js"));
    let p = Proc::netlet(&echo, &["--tcp", "127.0.0.1:0=1337"]);
    let line = p.stdout.wait_for("netlet: listening tcp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let until = Instant::now() + Duration::from_secs(8);
    let threads: Vec<_> = (0..32)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                c.set_nodelay(true).unwrap();
                assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
                let msg = [b'a' + (i % 26) as u8; 64];
                let mut n = 0u64;
                while Instant::now() < until {
                    c.write_all(&msg).unwrap();
                    assert_eq!(read_exact(&mut c, 64), msg);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(
        !p.stderr.contains("trapped"),
        "after {total} round trips:\n{}",
        p.stderr.text()
    );
    assert!(total > 60_000, "only {total} round trips: too few to tell");
    // Still serving.
    let mut c = connect(addr);
    assert_eq!(read_exact(&mut c, 13), b"Echo server\r\n");
}

// ----- the seeds' programs (examples-js/) ----------------------------------------------

const GREETING: &str = "欢迎光临《深入浅出Node.js》示例：\n";

#[test]
fn example_hello_greets_answers_and_logs_end() {
    // It listens on 8124: the operator serves that port on a free one.
    let p = Proc::netlet(
        &built(&repo().join("examples-js/hello.js")),
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
fn example_echo_pipes_byte_exact() {
    let p = Proc::netlet(
        &built(&repo().join("examples-js/echo.js")),
        &["--tcp", "127.0.0.1:0=1337"],
    );
    let line = p.stdout.wait_for("netlet: listening tcp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let out = node(
        r#"
        const net = require('net');
        const c = net.connect(+process.argv[1], '127.0.0.1');
        const payload = Buffer.alloc(1 << 20, 7);
        let got = [];
        c.on('data', d => got.push(d));
        c.on('end', () => {
          const all = Buffer.concat(got);
          const body = all.subarray(13);
          console.log(JSON.stringify(all.subarray(0, 13).toString()), body.length, body.equals(payload));
        });
        c.end(payload);
        "#,
        &[&addr.port().to_string()],
    );
    assert_eq!(out.trim(), r#""Echo server\r\n" 1048576 true"#);
}

#[test]
fn example_udp_server_logs_each_datagram() {
    let p = Proc::netlet(
        &built(&repo().join("examples-js/udp-server.js")),
        &["--udp", "127.0.0.1:0=41234"],
    );
    let line = p.stdout.wait_for("netlet: listening udp ", START);
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    p.stderr.wait_for(
        &format!("[udp-server] server listening 127.0.0.1:{}", addr.port()),
        WAIT,
    );
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to("深入浅出Node.js".as_bytes(), addr).unwrap();
    let port = client.local_addr().unwrap().port();
    p.stderr.wait_for(
        &format!("[udp-server] server got: 深入浅出Node.js from 127.0.0.1:{port}"),
        WAIT,
    );
}

/// A copy of an example with the port it talks to replaced (tests never use fixed ports).
fn example_on_port(name: &str, port_in_source: u16, port: u16) -> PathBuf {
    let source = std::fs::read_to_string(repo().join("examples-js").join(name)).unwrap();
    assert!(source.contains(&port_in_source.to_string()));
    let copy = source.replace(&port_in_source.to_string(), &port.to_string());
    built(&scratch(name, &copy))
}

#[test]
fn example_tcp_client_talks_to_a_node_server_and_netlet_exits() {
    let server = NodeProcess::start(
        r#"
        const net = require('net');
        const srv = net.createServer(s => {
          s.on('data', d => { console.log('server got ' + JSON.stringify(d.toString())); s.write('hello from node'); });
          s.on('end', () => { console.log('server saw end'); srv.close(); });
        });
        srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
        "#,
        &[],
    );
    let port: u16 = server.stdout.wait_for("port ", WAIT)["port ".len()..]
        .parse()
        .unwrap();
    let client = example_on_port("tcp-client.js", 8124, port);
    // It connects to localhost: a rule naming the host allows it.
    let mut p = Proc::netlet(&client, &["--allow", &format!("localhost:{port}")]);
    let status = p.wait_exit(START);
    assert!(status.success(), "{status}; {}", p.output());
    server.stdout.wait_for(r#"server got "world!\r\n""#, WAIT);
    server.stdout.wait_for("server saw end", WAIT);
    let log = p.stderr.all();
    let at = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {}", log.join("\n")))
    };
    assert!(at("[tcp-client] client connected") < at("[tcp-client] hello from node"));
    assert!(at("[tcp-client] hello from node") < at("[tcp-client] client disconnected"));
}

#[test]
fn example_udp_client_sends_to_a_node_server_and_netlet_exits() {
    let server = NodeProcess::start(
        r#"
        const s = require('dgram').createSocket('udp4');
        s.on('message', (m, r) => { console.log('got ' + m.toString() + ' size ' + r.size); s.close(); });
        s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));
        "#,
        &[],
    );
    let port: u16 = server.stdout.wait_for("port ", WAIT)["port ".len()..]
        .parse()
        .unwrap();
    let client = example_on_port("udp-client.js", 41234, port);
    let mut p = Proc::netlet(&client, &["--allow", &format!("localhost:{port}")]);
    let status = p.wait_exit(START);
    assert!(status.success(), "{status}; {}", p.output());
    server.stdout.wait_for("got hello world size 11", WAIT);
}

#[test]
fn listening_on_a_port_not_given_is_eacces_naming_the_flag() {
    // examples-js/hello.js listens on 8124; the operator's listener is for port 0.
    let p = Proc::netlet(&built(&repo().join("examples-js/hello.js")), TCP);
    // Unhandled, the error event ends the instance's start.
    let line = p
        .stderr
        .wait_for("[hello] init failed: Uncaught Error: listen EACCES", START);
    assert!(
        line.contains("permission denied 0.0.0.0:8124 (netlet run --tcp 8124 gives the handler this port; --tcp ADDR=8124 serves it elsewhere)"),
        "{line}"
    );
    // The host's own line says it too.
    p.stderr.wait_for("denied listen on", WAIT);
}

/// `netlet test COMPONENT SCENARIO`: whether it passed, and its report.
fn netlet_test(component: &Path, scenario: &Path) -> (bool, String) {
    let out = Command::new(netlet_bin())
        .arg("test")
        .arg(component)
        .arg(scenario)
        .env("NETLET_CACHE_DIR", cache_dir())
        .output()
        .expect("run netlet test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn example_http_hello_passes_its_scenarios_and_curl() {
    let hello = built(&repo().join("examples-js/http-hello.js"));
    let (ok, report) = netlet_test(&hello, &repo().join("examples-js/tests/http-hello.toml"));
    assert!(ok && report.contains("4 passed, 0 failed"), "{report}");

    // curl, two requests on one kept-alive connection.
    let p = Proc::netlet(&hello, &["--tcp", "127.0.0.1:0=1337"]);
    let line = p.stdout.wait_for("netlet: listening tcp ", START);
    let addr = line.rsplit(' ').next().unwrap().to_string();
    let url = format!("http://{addr}/");
    let out = tool("curl")
        .args(["-sS", "-v", &url, &url])
        .output()
        .expect("run curl");
    let body = String::from_utf8_lossy(&out.stdout);
    let trace = String::from_utf8_lossy(&out.stderr);
    assert_eq!(body, "Hello World\nHello World\n", "{trace}");
    assert!(trace.contains("< Transfer-Encoding: chunked"), "{trace}");
    assert!(trace.contains("Re-using existing connection"), "{trace}");
}

#[test]
fn example_ws_chat_passes_the_rust_chat_s_scenarios() {
    // examples/ws-chat's own checks, with the port the JavaScript room listens on.
    let chat = built(&repo().join("examples-js/ws-chat.js"));
    let (ok, report) = netlet_test(&chat, &repo().join("examples-js/tests/ws-chat.toml"));
    assert!(ok && report.contains("2 passed, 0 failed"), "{report}");
}
