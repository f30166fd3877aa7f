//! Child processes for the differential tests (tests/js.rs, tests/py.rs): the same
//! program under its reference runtime and under `netlet run`, their output read line
//! by line, and the comparison of what each showed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Lines, WAIT, cache_dir, netlet_bin};

/// A child process with its output readable line by line. Killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Proc {
    pub fn spawn(program: &str, args: &[&str]) -> Proc {
        let mut command = Command::new(program);
        command.args(args);
        Proc::spawn_command(command, program)
    }

    /// Starts `command` (named `program` in messages) with the tests' compile cache.
    pub fn spawn_command(mut command: Command, program: &str) -> Proc {
        let mut child = command
            .env("NETLET_CACHE_DIR", cache_dir())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.spawn_reader(child.stdout.take().unwrap());
        stderr.spawn_reader(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    /// `netlet run COMPONENT ARGS...` with the tests' cache.
    pub fn netlet(component: &Path, args: &[&str]) -> Proc {
        let cache = cache_dir();
        let mut all = vec![
            "run",
            component.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        Proc::spawn(netlet_bin(), &all)
    }

    /// Both streams, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The readers may not have read the last lines yet: wait for both
                // streams' end (a predicate that never holds returns at the end).
                let _ = self.stdout.wait_until(Duration::from_secs(5), |_| false);
                let _ = self.stderr.wait_until(Duration::from_secs(5), |_| false);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}; {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Proc {
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines a program printed: under the reference runtime (node, CPython) its stdout and stderr; under netlet its
/// guest lines (`[name] ...`, the prefix removed), in the order they came.
pub fn program_lines(p: &Proc, netlet_name: Option<&str>) -> Vec<String> {
    match netlet_name {
        None => {
            let mut lines = p.stdout.all();
            lines.extend(p.stderr.all());
            lines
        }
        Some(name) => {
            let prefix = format!("[{name}] ");
            p.stderr
                .all()
                .into_iter()
                .chain(p.stdout.all())
                .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
                .collect()
        }
    }
}

/// Where a program's own line containing `needle` is, waiting for it.
pub fn wait_program_line(
    p: &Proc,
    netlet_name: Option<&str>,
    needle: &str,
    timeout: Duration,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(line) = program_lines(p, netlet_name)
            .into_iter()
            .find(|l| l.starts_with(needle))
        {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no program line {needle:?} within {timeout:?}; {}",
            p.output()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `ready 41234 ...` -> 41234.
pub fn ready_port(line: &str) -> u16 {
    line.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// A program's log with its ports (which differ between the runs) replaced: whole
/// numbers only, so a byte count that contains a port's digits stays.
pub fn normalized(lines: Vec<String>, ports: &[u16]) -> Vec<String> {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    lines
        .into_iter()
        .map(|line| {
            let mut out = String::new();
            let mut digits = String::new();
            for c in line.chars().chain(std::iter::once('\0')) {
                if c.is_ascii_digit() {
                    digits.push(c);
                    continue;
                }
                if !digits.is_empty() {
                    out.push_str(if ports.contains(&digits) {
                        "PORT"
                    } else {
                        &digits
                    });
                    digits.clear();
                }
                if c != '\0' {
                    out.push(c);
                }
            }
            out
        })
        .collect()
}

/// What one run showed: the client's transcript and the program's log.
pub struct Run {
    pub client: Vec<String>,
    pub program: Vec<String>,
}

/// Asserts that the reference runtime (`reference`: "node", "CPython") and netlet showed
/// the same to the client and logged the same.
pub fn assert_same(name: &str, reference: &str, theirs: Run, netlet: Run) {
    assert_eq!(
        theirs.client, netlet.client,
        "{name}: the client's transcript differs (left: {reference}, right: netlet)"
    );
    assert_eq!(
        theirs.program, netlet.program,
        "{name}: the program's log differs (left: {reference}, right: netlet)"
    );
}

/// A reference runtime (node, CPython) and where its test programs are: the same
/// program runs under it and, built, under `netlet run`, driven by the same client.
pub struct Reference {
    /// How failure messages name it.
    pub label: &'static str,
    /// The programs' folder, from the repository's root (`tests/js`).
    pub dir: &'static str,
    /// The programs' extension (`js`).
    pub ext: &'static str,
    /// Runs a program file under the reference runtime.
    pub spawn: fn(&Path, &[&str]) -> Proc,
    /// The test suite built for netlet (`NAME` picks the program inside it).
    pub component: fn() -> PathBuf,
    /// How long the first start may take (compiling the component).
    pub start: Duration,
    /// How long a client script may take.
    pub client_timeout: Duration,
}

impl Reference {
    fn file(&self, name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(self.dir)
            .join(name)
    }

    /// Runs the client script against `port`; its stdout, asserting it succeeded.
    fn run_client(&self, client: &Path, port: u16) -> Vec<String> {
        let mut c = (self.spawn)(client, &[&port.to_string()]);
        let status = c.wait_exit(self.client_timeout);
        assert!(
            status.success(),
            "client {} failed: {}",
            client.display(),
            c.output()
        );
        c.stdout.all()
    }

    /// Server mode: the program prints `ready PORT`, `NAME.client.EXT PORT` drives it,
    /// the program prints `done` at its end.
    fn server_run(&self, name: &str, netlet_args: Option<&[&str]>) -> Run {
        let suite = self.file(&format!("suite.{}", self.ext));
        let p = match netlet_args {
            None => (self.spawn)(&suite, &[name]),
            Some(args) => {
                let mut all = args.to_vec();
                all.extend_from_slice(&["--", name]);
                Proc::netlet(&(self.component)(), &all)
            }
        };
        let tag = netlet_args.map(|_| "suite");
        let port = ready_port(&wait_program_line(&p, tag, "ready ", self.start));
        let client = self.run_client(&self.file(&format!("{name}.client.{}", self.ext)), port);
        wait_program_line(&p, tag, "done", WAIT);
        // Lines through netlet's log queue may trail the 'done' line by a little.
        std::thread::sleep(Duration::from_millis(100));
        Run {
            client,
            program: normalized(program_lines(&p, tag), &[port]),
        }
    }

    /// Peer mode: `NAME.peer.EXT` (a server or UDP socket) prints `ready PORT`; the
    /// program gets PORT as its argument (netlet: with `--allow` for it and the port
    /// after it) and prints `done` at its end; so does the peer.
    fn peer_run(&self, name: &str, netlet_args: Option<&[&str]>) -> Run {
        let peer = (self.spawn)(&self.file(&format!("{name}.peer.{}", self.ext)), &[]);
        let port = ready_port(&wait_program_line(&peer, None, "ready ", WAIT));
        let port_s = port.to_string();
        let allow = format!("127.0.0.1:{port}");
        let allow_next = format!("127.0.0.1:{}", port + 1);
        let suite = self.file(&format!("suite.{}", self.ext));
        let p = match netlet_args {
            None => (self.spawn)(&suite, &[name, &port_s]),
            Some(args) => {
                let mut all = args.to_vec();
                all.extend_from_slice(&[
                    "--allow",
                    &allow,
                    "--allow",
                    &allow_next,
                    "--",
                    name,
                    &port_s,
                ]);
                Proc::netlet(&(self.component)(), &all)
            }
        };
        let tag = netlet_args.map(|_| "suite");
        wait_program_line(&p, tag, "done", self.start);
        wait_program_line(&peer, None, "done", WAIT);
        std::thread::sleep(Duration::from_millis(100));
        Run {
            client: normalized(peer.stdout.all(), &[port]),
            program: normalized(program_lines(&p, tag), &[port, port + 1]),
        }
    }

    /// Program `name` under the reference and under netlet (`netlet_args`), driven by
    /// `name.client.EXT`: the same transcript and log.
    pub fn differential(&self, name: &str, netlet_args: &[&str]) {
        let theirs = self.server_run(name, None);
        let netlet = self.server_run(name, Some(netlet_args));
        assert_same(name, self.label, theirs, netlet);
    }

    /// The same in peer mode (the program is the client of `name.peer.EXT`).
    pub fn differential_peer(&self, name: &str, netlet_args: &[&str]) {
        let theirs = self.peer_run(name, None);
        let netlet = self.peer_run(name, Some(netlet_args));
        assert_same(name, self.label, theirs, netlet);
    }
}
