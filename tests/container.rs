//! The container image and the Kubernetes manifests, on this machine with podman: the
//! image is built `FROM scratch` by `deploy/container/build` (nothing is pulled), runs
//! the demo by default, and `podman kube play deploy/kubernetes/netlet.yaml` runs the
//! Deployment with its ConfigMap, its `oci://` components and its probes.
//!
//! podman gets its own storage (vfs, under target/) and settings (runc, cgroupfs,
//! descriptor and process limits within this machine's) through `CONTAINERS_STORAGE_CONF`
//! and `CONTAINERS_CONF`, so the tests touch no other podman state. Clients reach the
//! containers on their own loopback (`nsenter` into their network namespace): no host
//! port is published to, and no address outside loopback is used.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// A podman with this test's storage and settings.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn new() -> Podman {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("podman");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                dir.join("graph").display(),
                dir.join("run").display()
            ),
        )
        .unwrap();
        // The limits a container gets must not exceed what this process may give.
        let limit = |resource| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills the struct it is given.
            unsafe { libc::getrlimit(resource, &mut lim) };
            lim.rlim_cur.min(4096)
        };
        let (nofile, nproc) = (limit(libc::RLIMIT_NOFILE), limit(libc::RLIMIT_NPROC));
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
                 [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
            ),
        )
        .unwrap();
        Podman { dir }
    }

    /// `program` with this podman's settings, stopped if it takes over two minutes (a
    /// stuck container engine fails the test, it does not hang CI).
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args(["120", program]);
        c.env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"));
        c
    }

    /// `podman ARGS`, which must succeed; its stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command("podman")
            .args(args)
            .output()
            .expect("podman runs")
    }

    /// The pid of a container's first process (its network namespace is the pod's).
    fn pid(&self, container: &str) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            let pid = self.run(&["inspect", container, "--format", "{{.State.Pid}}"]);
            if let Ok(pid) = pid.trim().parse::<u32>()
                && pid != 0
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "{container} has no process");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs `program ARGS` in the network namespace of `pid`: its output, or why it failed.
fn inside(pid: u32, program: &[&str]) -> Result<String, String> {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--"])
        .args(program)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Polls `url` (inside `pid`'s namespace, with curl) until it answers `status`.
fn wait_http(pid: u32, url: &str, status: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = inside(
            pid,
            &[
                "curl",
                "-s",
                "-m",
                "2",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                url,
            ],
        );
        if let Ok(text) = &got
            && text.trim_end().ends_with(status)
        {
            return text.rsplit_once('\n').map_or("", |(b, _)| b).to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{url} never answered {status}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first `n` bytes a TCP server on `port` sends, read inside `pid`'s namespace.
fn banner(pid: u32, port: u16, n: usize) -> String {
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port}; head -c {n} <&3");
    let deadline = Instant::now() + WAIT;
    loop {
        match inside(pid, &["timeout", "5", "bash", "-c", &script]) {
            Ok(text) if text.len() >= n => return text,
            other => assert!(Instant::now() < deadline, "port {port}: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `text` in one datagram to `port` inside `pid`'s network namespace (with
/// Python's socket module) and returns what came back, retrying until the handler is up.
fn udp_echo(pid: u32, port: u16, text: &str) -> String {
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.settimeout(1)\n\
         s.sendto({text:?}.encode(), ('127.0.0.1', {port}))\n\
         print(s.recvfrom(65536)[0].decode(), end='')\n"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        match inside(pid, &["python3", "-c", &script]) {
            Ok(got) if !got.is_empty() => return got,
            other => assert!(Instant::now() < deadline, "udp port {port}: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Builds the image from the netlet under test with the repository's build script.
fn build_image(podman: &Podman, image: &str) -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let context = podman.dir.join("context");
    let out = podman
        .command(root.join("deploy/container/build").to_str().unwrap())
        .args([netlet_bin(), image])
        .env("CONTEXT", &context)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("Trying to pull"),
        "something was pulled:\n{text}"
    );
    let size: u64 = podman
        .run(&["image", "inspect", "--format", "{{.Size}}", image])
        .trim()
        .parse()
        .unwrap();
    size
}

/// Removes a container or pod, whatever state it is in, when dropped.
struct Cleanup<'a>(&'a Podman, Vec<&'static str>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.output(&self.1);
    }
}

#[test]
fn the_image_runs_the_demo_and_kube_play_runs_the_manifests() {
    let podman = Podman::new();
    let image = "localhost/netlet:test";
    let size = build_image(&podman, image);
    eprintln!(
        "image {image}: {:.1} MiB (from the test's debug binary, its debug information stripped)",
        size as f64 / 1048576.0
    );

    // The default command: the demo, on every interface of the container.
    let _ = podman.output(&["rm", "-f", "netlet-demo"]);
    let _demo = Cleanup(&podman, vec!["rm", "-f", "netlet-demo"]);
    podman.run(&["run", "-d", "--name", "netlet-demo", image]);
    let pid = podman.pid("netlet-demo");
    assert_eq!(banner(pid, 1337, 13), "Echo server\r\n");
    let hello = inside(pid, &["curl", "-s", "-m", "5", "http://127.0.0.1:8080/"]).unwrap();
    assert_eq!(hello, "Hello World\n");
    podman.run(&["rm", "-f", "netlet-demo"]);

    // The Kubernetes manifests. What this machine lacks is changed, nothing else: one
    // replica (podman publishes each container port on the host, so two would collide;
    // the ports are moved to free ones for the same reason), and the components come
    // from a registry the test started, whose cache the pod is given: the pod cannot
    // reach the host's loopback, so it starts from the cache as with its registry down.
    let dir = podman.dir.join("kube");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("registry")).unwrap();
    let (registry, _registry) = start_registry(&dir.join("registry"));
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    for (name, guest_name) in [("echo", "echo"), ("udp-echo", "udp-echo")] {
        let reference = format!("oci://{registry}/netlet/{name}:1.0");
        for (verb, file) in [("push", guest(guest_name)), ("pull", dir.join("x.wasm"))] {
            let mut args = vec![verb.to_string()];
            if verb == "push" {
                args.extend([file.display().to_string(), reference.clone()]);
            } else {
                args.extend([reference.clone(), "-o".into(), file.display().to_string()]);
            }
            args.extend([
                "--insecure-registry".into(),
                registry.clone(),
                "--cache-dir".into(),
                cache.join("cache").display().to_string(),
            ]);
            let out = Command::new(netlet_bin()).args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (echo_port, udp_port, metrics_port) = (free(), free(), free());
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/netlet.yaml"),
    )
    .unwrap();
    let changes: &[(&str, String)] = &[
        ("registry.example.com", registry.clone()),
        (
            "\"--metrics\", \"0.0.0.0:9100\"",
            format!(
                "\"--metrics\", \"0.0.0.0:{metrics_port}\", \"--insecure-registry\", \"{registry}\""
            ),
        ),
        ("replicas: 2", "replicas: 1".into()),
        ("image: localhost/netlet:latest", format!("image: {image}")),
        ("0.0.0.0:1337", format!("0.0.0.0:{echo_port}")),
        ("containerPort: 1337", format!("containerPort: {echo_port}")),
        ("0.0.0.0:41234", format!("0.0.0.0:{udp_port}")),
        ("containerPort: 41234", format!("containerPort: {udp_port}")),
        (
            "containerPort: 9100",
            format!("containerPort: {metrics_port}"),
        ),
        (
            "        - name: cache\n          emptyDir: {}",
            format!(
                "        - name: cache\n          hostPath:\n            path: {}\n            type: Directory",
                cache.display()
            ),
        ),
    ];
    let mut played = yaml.clone();
    for (from, to) in changes {
        assert!(played.contains(from), "the manifest no longer has {from:?}");
        played = played.replace(from, to);
    }
    let file = dir.join("netlet.yaml");
    std::fs::write(&file, played).unwrap();
    let file_arg = file.to_str().unwrap().to_string();
    let _ = podman.output(&["kube", "down", &file_arg]);
    let _kube = Cleanup(&podman, vec!["pod", "rm", "-f", "-t", "0", "netlet-pod-0"]);
    let out = podman.run(&["kube", "play", &file_arg]);
    assert!(out.contains("Pod:"), "{out}");
    let container = "netlet-pod-0-netlet";
    let pid = podman.pid(container);
    let ready = wait_http(
        pid,
        &format!("http://127.0.0.1:{metrics_port}/readyz"),
        "200",
    );
    assert_eq!(ready, "ready: 2 handler(s) serving\n");
    let alive = wait_http(
        pid,
        &format!("http://127.0.0.1:{metrics_port}/healthz"),
        "200",
    );
    assert_eq!(alive, "alive: 2 handler(s) answering\n");
    assert_eq!(banner(pid, echo_port, 13), "Echo server\r\n");
    assert_eq!(
        udp_echo(pid, udp_port, "through the pod"),
        "through the pod"
    );
    let logs = podman.run(&["logs", container]);
    let logs = logs + &String::from_utf8_lossy(&podman.output(&["logs", container]).stderr);
    assert!(logs.contains("using the cached sha256:"), "{logs}");

    // SIGTERM (what Kubernetes sends): not ready at once, still accepting for the
    // manifest's drain-delay.
    podman.run(&["kill", "--signal", "TERM", container]);
    let draining = wait_http(
        pid,
        &format!("http://127.0.0.1:{metrics_port}/readyz"),
        "503",
    );
    assert!(draining.starts_with("not ready: draining"), "{draining}");
    assert_eq!(banner(pid, echo_port, 13), "Echo server\r\n");
}

/// A process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts docker-registry on a free loopback port storing in `dir`: HOST:PORT, and the
/// process (stopped when dropped).
fn start_registry(dir: &Path) -> (String, Killed) {
    std::fs::write(
        dir.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:0\n  secret: netlet-test\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker-registry (Debian's package) runs");
    let lines = Lines::default();
    lines.spawn_reader(child.stderr.take().unwrap());
    let child = Killed(child);
    let line = lines.wait_for("listening on ", WAIT);
    let at = line.find("listening on ").unwrap() + "listening on ".len();
    let host = line[at..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .next()
        .unwrap()
        .to_string();
    (host, child)
}
