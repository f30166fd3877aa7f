//! What a guest may make the host pay for, and what its neighbours pay: each test runs
//! one hostile behaviour (the `hostile` guest's commands) against a real `netlet`
//! process while a probe measures a healthy connection's round trips, and asserts that
//! the host's memory grows by no more than the configured budget plus a constant, that
//! the healthy connection's p99 stays under [`P99_BOUND`], and that the process stays up.
//!
//! The tests run one at a time (they measure latency), each printing its figures
//! (`cargo test --test costs -- --nocapture` shows them).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::probe::{P99_BOUND, Probe};
use common::*;

/// Host memory that is not the budget under test: code, stacks, the log queue,
/// allocator slack.
const RSS_CONSTANT_KIB: u64 = 40 * 1024;

/// One test at a time: they measure latency.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Measures the probe over `window` while the fault goes on; prints the figures and
/// asserts the p99 bound.
fn watch(probe: &Probe, what: &str, window: Duration) -> (Duration, Duration) {
    probe.watch(what, window)
}

/// The probe's figures since `from`, asserting the p99 bound.
fn report(probe: &Probe, what: &str, from: Instant) -> (Duration, Duration) {
    probe.report(what, from)
}

/// Sends a hostile command on a fresh connection and returns the reply line.
fn command(addr: SocketAddr, cmd: &str) -> (TcpStream, String) {
    let mut c = connect(addr);
    c.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let line = read_line(&mut c);
    (c, line)
}

fn assert_rss(netlet: &Netlet, before: u64, budget_kib: u64, what: &str) -> u64 {
    let after = rss_kib(netlet.pid());
    println!(
        "{what}: RSS {before} KiB -> {after} KiB (budget {budget_kib} KiB + {RSS_CONSTANT_KIB} KiB)"
    );
    assert!(
        after <= before + budget_kib + RSS_CONSTANT_KIB,
        "{what}: RSS grew from {before} KiB to {after} KiB"
    );
    after
}

#[test]
fn write_queues_to_a_peer_that_never_reads_stay_within_max_host_memory() {
    let _serial = serial();
    // A peer that accepts and never reads.
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = sink.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for s in sink.incoming().flatten() {
                held.lock().unwrap().push(s);
            }
        });
    }
    let allow = format!("127.0.0.1:{sink_port}");
    let mut netlet = Netlet::run(
        "hostile",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--allow",
            &allow,
            "--max-host-memory",
            "32MiB",
        ],
    );
    let probe = Probe::start(netlet.tcp[0]);
    probe.warm();
    let before = rss_kib(netlet.pid());
    let (_c, reply) = command(netlet.tcp[0], &format!("!queue 48 15 {sink_port}"));
    assert_eq!(reply, "queue opened 48");
    netlet.stderr.wait_for("(--max-host-memory)", WAIT);
    watch(
        &probe,
        "48 connections × 15 MiB to a non-reader",
        Duration::from_secs(2),
    );
    assert_rss(&netlet, before, 32 * 1024, "write queues");
    assert!(netlet.is_running());
    probe.finish();
}

#[test]
fn cleared_timers_leave_nothing_behind() {
    let _serial = serial();
    // Five events of 200,000 each (the event timeout is raised: the test's host is a
    // debug build).
    let mut netlet = Netlet::run(
        "hostile",
        &["--tcp", "127.0.0.1:0", "--event-timeout", "20s"],
    );
    let probe = Probe::start(netlet.tcp[0]);
    probe.warm();
    let before = rss_kib(netlet.pid());
    let mut c = connect(netlet.tcp[0]);
    let from = Instant::now();
    for _ in 0..5 {
        c.write_all(b"!timer-churn 200000\n").unwrap();
        assert_eq!(read_line(&mut c), "churned 200000");
    }
    println!("a million timers set and cleared in {:?}", from.elapsed());
    // The healthy connection shares the instance (shared isolation): it waits for the
    // events as in Node; after them it is served at once.
    watch(&probe, "after the timer churn", Duration::from_secs(1));
    let _ = from;
    assert_rss(&netlet, before, 0, "timers set and cleared");
    assert!(netlet.is_running());
    probe.finish();
}

#[test]
fn a_denial_retried_in_a_loop_is_logged_a_few_times_and_summarised() {
    let _serial = serial();
    let netlet = Netlet::run(
        "hostile",
        &["--tcp", "127.0.0.1:0", "--event-timeout", "10s"],
    );
    let started = Instant::now();
    let (_c, reply) = command(netlet.tcp[0], "!deny 300000");
    assert_eq!(reply, "denied 300000");
    // A later line from the same instance brings the summary of what was held back.
    std::thread::sleep(Duration::from_millis(1100));
    let (_c, _) = command(netlet.tcp[0], "!deny 1");
    netlet.stderr.wait_for("similar line(s) suppressed", WAIT);
    let took = started.elapsed();
    let log = netlet.stderr.all();
    let denials = log.iter().filter(|l| l.contains("denied connect")).count();
    println!(
        "300,001 denied connects: {denials} log lines ({} in all)",
        log.len()
    );
    // Host lines: bursts of 20, then 10 a second, over however long this took (the
    // tests' unoptimised host takes most of a second over the 300,000 denials).
    let allowed = 20 + (took.as_secs_f64() * 10.0).ceil() as usize;
    assert!(
        (1..=allowed).contains(&denials),
        "{denials} denial lines in {took:?}"
    );
    assert!(log.len() < 100, "{} log lines", log.len());
}

#[test]
fn an_unread_stderr_never_stalls_the_shard() {
    let _serial = serial();
    // stderr is a pipe nobody reads until the end.
    let mut child = Command::new(netlet_bin())
        .args(["run"])
        .arg(guest("hostile"))
        .args(["--tcp", "127.0.0.1:0", "--cache-dir"])
        .arg(cache_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Lines::default();
    stdout.spawn_reader(child.stdout.take().unwrap());
    let line = stdout.wait_for("netlet: listening tcp ", WAIT);
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let probe = Probe::start(addr);
    probe.warm();
    let mut c = connect(addr);
    let from = Instant::now();
    for _ in 0..3 {
        c.write_all(b"!print 20000\n").unwrap();
        assert_eq!(read_line(&mut c), "printed 20000");
        std::thread::sleep(Duration::from_secs(2));
    }
    report(&probe, "3 × 20,000 lines into a pipe nobody reads", from);
    assert!(child.try_wait().unwrap().is_none(), "netlet exited");
    probe.finish();
    // Now read it: the lines that fitted, then what was held back, said.
    let stderr = Lines::default();
    stderr.spawn_reader(child.stderr.take().unwrap());
    stderr.wait_for("line 0 of a guest that prints too much", WAIT);
    let said = stderr.wait_until(WAIT, |l| l.contains("suppressed") || l.contains("dropped"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(said.is_some(), "nothing said lines were held back");
}

#[test]
fn a_million_calls_of_each_socket_method_leave_no_work_behind() {
    let _serial = serial();
    let netlet = Netlet::run(
        "hostile",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--isolation",
            "connection",
            "--event-timeout",
            "5s",
        ],
    );
    let mut probe = connect(netlet.tcp[0]);
    probe.set_nodelay(true).unwrap();
    let ping = *b"healthy-probe-ping-0123456789abc";
    let mut round_trip = || {
        let started = Instant::now();
        probe.write_all(&ping).unwrap();
        assert_eq!(read_exact(&mut probe, 32), ping);
        started.elapsed()
    };
    round_trip();
    for method in [
        "pause-resume",
        "nodelay",
        "keepalive",
        "timeout",
        "write0",
        "address",
        "state",
        "buffer",
        "timer",
        "udp-create",
        "close-server",
    ] {
        let started = Instant::now();
        let mut c = connect(netlet.tcp[0]);
        c.write_all(format!("!hammer {method} 1000000\n").as_bytes())
            .unwrap();
        // The reply, or the connection closed (the event ran out of time).
        let mut byte = [0u8; 1];
        while let Ok(1) = c.read(&mut byte) {
            if byte[0] == b'\n' {
                break;
            }
        }
        let took = started.elapsed();
        let after = (0..5).map(|_| round_trip()).max().unwrap();
        println!(
            "1,000,000 × {method}: the event took {took:?}; then the healthy connection's slowest of 5 round trips: {after:?}"
        );
        // Left-over work would cost seconds (the pause/resume bug stalled 7.4 s); the
        // bound only leaves room for a loaded CI runner's scheduling.
        assert!(
            after <= P99_BOUND,
            "{method}: the shard took {after:?} to answer once the event was over"
        );
        drop(c);
    }
}

#[test]
fn a_connection_instance_cannot_close_the_shared_listener() {
    let _serial = serial();
    let mut netlet = Netlet::run(
        "hostile",
        &["--tcp", "127.0.0.1:0", "--isolation", "connection"],
    );
    let (c, reply) = command(netlet.tcp[0], "!close-server");
    assert!(
        reply.starts_with("close-server ") && reply != "close-server ok",
        "{reply}"
    );
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    // Still listening for everyone, and still running after the last connection ended.
    let (_c, reply) = command(netlet.tcp[0], "!count");
    assert_eq!(reply, "count 1");
    assert!(netlet.is_running());
    // In shared isolation the handler's one instance may close it, as Node's code may.
    let mut shared = Netlet::run("hostile", &["--tcp", "127.0.0.1:0"]);
    let (_c, reply) = command(shared.tcp[0], "!close-server");
    assert_eq!(reply, "close-server ok");
    drop(_c);
    shared.wait_exit(WAIT);
}

#[test]
fn instances_whose_connection_is_gone_never_refuse_a_new_connection() {
    let _serial = serial();
    // A pool of 50 + 2 instances; 60 connections each leave a one-hour timer behind.
    let netlet = Netlet::run(
        "hostile",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--isolation",
            "connection",
            "--max-connections",
            "50",
        ],
    );
    for _ in 0..60 {
        let (c, reply) = command(netlet.tcp[0], "!timers 1");
        assert_eq!(reply, "timers 1");
        drop(c);
    }
    for i in 0..20 {
        let mut c = connect(netlet.tcp[0]);
        c.write_all(b"hello\n").unwrap();
        assert_eq!(read_line(&mut c), "hello", "connection {i} was not served");
    }
    assert!(
        !netlet.stderr.contains("cannot start an instance"),
        "{}",
        netlet.stderr.text()
    );

    // Without --max-connections: 2,000 such connections cost no lasting memory.
    let netlet = Netlet::run(
        "hostile",
        &["--tcp", "127.0.0.1:0", "--isolation", "connection"],
    );
    let probe = Probe::start(netlet.tcp[0]);
    probe.warm();
    let before = rss_kib(netlet.pid());
    let started = Instant::now();
    let addr = netlet.tcp[0];
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let (c, reply) = command(addr, "!timers 1");
                    assert_eq!(reply, "timers 1");
                    drop(c);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    println!("2,000 connections leaving a timer: {:?}", started.elapsed());
    // Their instances go within a second of their connection.
    std::thread::sleep(Duration::from_millis(1500));
    watch(
        &probe,
        "after 2,000 connections left timers",
        Duration::from_secs(1),
    );
    assert_rss(&netlet, before, 0, "2,000 lingering instances");
    probe.finish();
}

#[test]
fn a_guest_that_sleeps_on_every_tick_delays_nobody_else() {
    let _serial = serial();
    // Connection isolation: the neighbour is another connection of the same handler.
    let mut netlet = Netlet::run(
        "hostile",
        &["--tcp", "127.0.0.1:0", "--isolation", "connection"],
    );
    let probe = Probe::start(netlet.tcp[0]);
    probe.warm();
    let (_c, reply) = command(netlet.tcp[0], "!tick-sleep 950");
    assert_eq!(reply, "ticking");
    watch(
        &probe,
        "a neighbour sleeping 950 ms every 1 ms tick (connection isolation)",
        Duration::from_secs(2),
    );
    netlet
        .stderr
        .wait_for("blocked in WASI calls for more than 10ms", WAIT);
    assert!(netlet.is_running());
    probe.finish();
}

#[test]
fn a_guest_that_computes_just_under_its_limit_again_and_again_delays_nobody_else() {
    let _serial = serial();
    // Connection isolation: the neighbour's calls are preempted at every epoch tick, so
    // the healthy connection waits at most a tick for it.
    let mut netlet = Netlet::run(
        "hostile",
        &["--tcp", "127.0.0.1:0", "--isolation", "connection"],
    );
    let probe = Probe::start(netlet.tcp[0]);
    probe.warm();
    let (_c, reply) = command(netlet.tcp[0], "!tick-spin 900");
    assert_eq!(reply, "ticking");
    watch(
        &probe,
        "a neighbour computing 900 ms every 1 ms tick (connection isolation)",
        Duration::from_secs(3),
    );
    assert!(netlet.is_running());
    assert!(
        !netlet.stderr.contains("trapped"),
        "it stayed under its limit, so it kept running: {}",
        netlet.stderr.text()
    );
    probe.finish();
}

#[test]
fn a_guest_that_sleeps_on_every_tick_never_delays_another_handler() {
    let _serial = serial();
    // Shared isolation: the handler's own connections wait as they would in Node; another
    // handler in the same process does not.
    let dir = std::env::temp_dir().join(format!("netlet-costs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("netlet.toml");
    std::fs::write(
        &manifest,
        format!(
            "[handler.hostile]\ncomponent = {:?}\ntcp = \"127.0.0.1:0\"\n\
             [handler.neighbour]\ncomponent = {:?}\ntcp = \"127.0.0.1:0\"\n",
            guest("hostile"),
            guest("hostile"),
        ),
    )
    .unwrap();
    let mut netlet = Netlet::start(&[
        "up",
        manifest.to_str().unwrap(),
        "--cache-dir",
        cache_dir().to_str().unwrap(),
    ]);
    let addr = |name: &str| -> SocketAddr {
        let line = netlet.stdout.wait_for(&format!("({name})"), WAIT);
        line.split_whitespace().nth(3).unwrap().parse().unwrap()
    };
    let (hostile, neighbour) = (addr("hostile"), addr("neighbour"));
    let probe = Probe::start(neighbour);
    probe.warm();
    let (_c, reply) = command(hostile, "!tick-spin 900");
    assert_eq!(reply, "ticking");
    watch(
        &probe,
        "another handler spinning 900 ms every 1 ms tick (shared)",
        Duration::from_secs(2),
    );
    assert!(netlet.is_running());
    probe.finish();
}

#[test]
fn zero_delay_timers_that_set_themselves_again_delay_nobody_else() {
    let _serial = serial();
    let netlet = Netlet::run(
        "hostile",
        &["--tcp", "127.0.0.1:0", "--isolation", "connection"],
    );
    let probe = Probe::start(netlet.tcp[0]);
    probe.warm();
    let attackers: Vec<TcpStream> = (0..8)
        .map(|_| {
            let (c, reply) = command(netlet.tcp[0], "!zero-timers 10000");
            assert_eq!(reply, "zero-timers 10000");
            c
        })
        .collect();
    watch(
        &probe,
        "8 neighbours × 10,000 self-rearming 0 ms timers",
        Duration::from_secs(2),
    );
    drop(attackers);
    std::thread::sleep(Duration::from_millis(1500));
    let (p50, _) = watch(&probe, "after they disconnected", Duration::from_secs(1));
    assert!(p50 <= Duration::from_millis(2), "p50 stayed at {p50:?}");
    probe.finish();
}

#[test]
fn printing_200000_lines_in_one_event_delays_nobody_else() {
    let _serial = serial();
    // 200,000 prints take the tests' unoptimised host most of a second (a release
    // build far less): the event timeout is raised so a loaded runner does not stop the
    // printer, which is not what this test is about.
    let netlet = Netlet::run(
        "hostile",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--isolation",
            "connection",
            "--event-timeout",
            "10s",
        ],
    );
    let probe = Probe::start(netlet.tcp[0]);
    probe.warm();
    let from = Instant::now();
    let (_c, reply) = command(netlet.tcp[0], "!print 200000");
    assert!(reply == "printed 200000", "{reply}");
    std::thread::sleep(Duration::from_millis(500));
    report(&probe, "a neighbour printing 200,000 lines", from);
    netlet
        .stderr
        .wait_for("line(s) of guest output suppressed", WAIT);
    probe.finish();
}

/// Busy loops pinned to one CPU, stopped when dropped (and after 30 s in any case).
struct Hogs(Vec<std::process::Child>);

impl Hogs {
    fn on_cpu0(n: usize) -> Hogs {
        Hogs(
            (0..n)
                .map(|_| {
                    // taskset execs bash, so the child is the loop itself (killing it
                    // leaves nothing behind); bash's SECONDS ends it after 30 s anyway.
                    tool("taskset")
                        .args([
                            "-c",
                            "0",
                            "bash",
                            "-c",
                            "while (( SECONDS < 30 )); do :; done",
                        ])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("taskset (util-linux)")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for hog in &mut self.0 {
            let _ = hog.kill();
            let _ = hog.wait();
        }
    }
}

/// Sends `!work N` and returns how long the reply took, or `None` if the connection was
/// closed instead (the call was stopped).
fn work(addr: SocketAddr, n: u64) -> Option<Duration> {
    let started = Instant::now();
    let mut c = connect(addr);
    c.write_all(format!("!work {n}\n").as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = c.read(&mut byte) {
        if byte[0] == b'\n' {
            let line = String::from_utf8_lossy(&line).to_string();
            assert_eq!(line, format!("worked {n}"));
            return Some(started.elapsed());
        }
        line.push(byte[0]);
    }
    None
}

#[test]
fn the_event_timeout_charges_cpu_time_not_time_spent_waiting_for_a_core() {
    let _serial = serial();
    // A shared instance's calls run to the end; a per-connection instance's yield at
    // every tick and are charged across their stretches.
    charged_cpu_time(&[]);
    charged_cpu_time(&["--isolation", "connection"]);
}

fn charged_cpu_time(args: &[&str]) {
    let mut all = vec!["--tcp", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut netlet = Netlet::run("hostile", &all);
    // The whole process on CPU 0, where eight busy loops will take most of the time.
    let pinned = tool("taskset")
        .args(["-a", "-c", "-p", "0", &netlet.pid().to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("taskset (util-linux)");
    assert!(pinned.success());
    let addr = netlet.tcp[0];
    // Work that takes about 600 ms of CPU alone, well under the 1 s --event-timeout.
    let unit = (0..3)
        .map(|_| work(addr, 20).expect("20 units stopped on an idle CPU"))
        .min()
        .unwrap();
    let units = (20.0 * 0.6 / unit.as_secs_f64()).clamp(20.0, 100_000.0) as u64;
    let alone = work(addr, units).expect("the work alone was stopped");
    let hogs = Hogs::on_cpu0(8);
    std::thread::sleep(Duration::from_millis(100));
    let shared = work(addr, units);
    drop(hogs);
    println!(
        "{args:?}: {units}M rounds: {alone:?} alone on CPU 0; beside 8 busy loops: {shared:?}"
    );
    let shared = shared.unwrap_or_else(|| {
        panic!(
            "{args:?}: stopped while waiting for the CPU, after {alone:?} of work alone:\n{}",
            netlet.stderr.text()
        )
    });
    // The loops did slow it past the limit in wall time, so the test tells.
    assert!(
        shared > Duration::from_secs(1),
        "{args:?}: the busy loops did not slow the call ({shared:?}): nothing to tell"
    );
    // A call that computes without end is still stopped.
    let mut c = connect(addr);
    c.write_all(b"!loop\n").unwrap();
    let (rest, _) = read_to_end(&mut c);
    assert!(rest.is_empty(), "{rest:?}");
    netlet.stderr.wait_for("exceeded its CPU time", WAIT);
    assert!(netlet.is_running());
}
