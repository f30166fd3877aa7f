//! Components from OCI registries, against a real registry the tests start: Debian's
//! `docker-registry` (the CNCF distribution registry), over plain HTTP and over TLS with
//! a test CA (made here by rcgen), with and without htpasswd basic auth. `netlet push`,
//! `netlet pull`, `oci://` components in `netlet run` and manifests, the cache that
//! keeps a restart working while the registry is down, pins, reloads that re-resolve a
//! tag, and bad input: each one clear line, and no partial file used or kept.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

const REGISTRY: &str = "/usr/bin/docker-registry";
const USER: &str = "netlet";
const PASSWORD: &str = "s3cret-pw";

/// A fresh folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("oci")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running registry, stopped when dropped.
struct Registry {
    child: Option<Child>,
    dir: PathBuf,
    host: String,
    tls: bool,
    auth: bool,
    config: PathBuf,
}

impl Registry {
    /// Starts a registry storing under `dir`, on a port of its choosing, with TLS (a
    /// certificate for 127.0.0.1 from a test CA, `dir/ca.pem`) and basic auth as asked.
    fn start(dir: &Path, tls: bool, auth: bool) -> Registry {
        assert!(
            Path::new(REGISTRY).exists(),
            "{REGISTRY} is missing: install Debian's docker-registry (.ci/run does)"
        );
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:0\n  secret: netlet-test\n",
            dir.join("data").display()
        );
        if tls {
            let (cert, key) = test_certificate(dir);
            config += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        if auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd (Debian's apache2-utils) makes the bcrypt password file");
            assert!(out.status.success());
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            config += &format!(
                "auth:\n  htpasswd:\n    realm: netlet-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        let path = dir.join("config.yml");
        std::fs::write(&path, config).unwrap();
        let mut registry = Registry {
            child: None,
            dir: dir.to_path_buf(),
            host: String::new(),
            tls,
            auth,
            config: path,
        };
        registry.run(None);
        registry
    }

    /// Starts the registry process (again, on `addr` if given).
    fn run(&mut self, addr: Option<&str>) {
        if let Some(addr) = addr {
            let text = std::fs::read_to_string(&self.config)
                .unwrap()
                .replace("addr: 127.0.0.1:0", &format!("addr: {addr}"));
            std::fs::write(&self.config, text).unwrap();
        }
        let mut child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Lines::default();
        lines.spawn_reader(child.stderr.take().unwrap());
        // Held before waiting, so a registry that never says where it listens is still
        // stopped with the test.
        self.child = Some(child);
        let line = lines.wait_for("listening on ", WAIT);
        let at = line.find("listening on ").unwrap() + "listening on ".len();
        self.host = line[at..]
            .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .next()
            .unwrap()
            .to_string();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `oci://HOST:PORT/PATH`.
    fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.host)
    }

    /// The flags that reach it (plain HTTP or the test CA, and the credentials).
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.tls {
            flags.extend(["--registry-ca".to_string(), s(&self.dir.join("ca.pem"))]);
        } else {
            flags.extend(["--insecure-registry".to_string(), self.host.clone()]);
        }
        if self.auth {
            let file = self.dir.join("password");
            std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
            flags.extend([
                "--registry-user".to_string(),
                USER.to_string(),
                "--registry-password-file".to_string(),
                s(&file),
            ]);
        }
        flags
    }

    /// The file the registry keeps blob `digest` in.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a certificate for 127.0.0.1 it signs, in `dir`: (cert, key).
fn test_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "netlet registry test CA");
    params.distinguished_name = dn;
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let ca = rcgen::Issuer::new(params, ca_key);
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let (c, k) = (dir.join("registry.pem"), dir.join("registry.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Runs `netlet ARGS` to its end: (success, stdout, stderr).
fn netlet(args: &[String]) -> (bool, String, String) {
    let out = Command::new(netlet_bin())
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env("DOCKER_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(parts: &[&str], more: &[String]) -> Vec<String> {
    parts
        .iter()
        .map(|p| p.to_string())
        .chain(more.iter().cloned())
        .collect()
}

/// `netlet push FILE REF` with `flags`; returns (manifest digest, layer digest).
fn push(file: &Path, reference: &str, flags: &[String], cache: &Path) -> (String, String) {
    let (ok, out, err) = netlet(&args(
        &["push", &s(file), reference, "--cache-dir", &s(cache)],
        flags,
    ));
    assert!(ok, "push {reference}: {err}");
    let digest = |label: &str| {
        let at = out.find(label).unwrap_or_else(|| panic!("{out}")) + label.len();
        out[at..].split([',', ')']).next().unwrap().to_string()
    };
    (digest("manifest "), digest("layer "))
}

/// One stderr line of a failed command: the error, alone.
fn one_line(err: &str) -> &str {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    lines[0]
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `netlet run REF --tcp 127.0.0.1:0 FLAGS`, started and listening.
fn run(reference: &str, flags: &[String], cache: &Path) -> Netlet {
    let mut all = vec![
        "run".to_string(),
        reference.to_string(),
        "--tcp".into(),
        "127.0.0.1:0".into(),
        "--cache-dir".into(),
        s(cache),
    ];
    all.extend(flags.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    Netlet::start(&refs)
}

fn banner(addr: SocketAddr) -> Vec<u8> {
    let mut s = connect(addr);
    let mut buf = vec![0u8; 13];
    s.read_exact(&mut buf).unwrap();
    buf
}

const ECHO_BANNER: &[u8] = b"Echo server\r\n";

#[test]
fn push_and_pull_over_http_and_tls_with_and_without_auth() {
    let echo = guest("echo");
    let bytes = std::fs::read(&echo).unwrap();
    for (tls, auth) in [(false, false), (false, true), (true, false), (true, true)] {
        let dir = temp_dir(&format!("roundtrip-{tls}-{auth}"));
        let registry = Registry::start(&dir, tls, auth);
        let reference = registry.reference("netlet/echo:v1");
        let flags = registry.flags();
        let cache = dir.join("cache");
        let (manifest, layer) = push(&echo, &reference, &flags, &cache);
        assert_eq!(
            layer,
            format!("sha256:{}", sha256_hex(&bytes)),
            "the layer is the component"
        );
        let out = dir.join("pulled.wasm");
        let (ok, stdout, err) = netlet(&args(
            &[
                "pull",
                &reference,
                "-o",
                &s(&out),
                "--cache-dir",
                &s(&dir.join("cache2")),
            ],
            &flags,
        ));
        assert!(ok, "tls {tls} auth {auth}: {err}");
        assert!(
            stdout.contains(&manifest) && stdout.contains(&layer),
            "{stdout}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
        // A pinned digest pulls the same.
        let pinned = format!("{}@{manifest}", reference.rsplit_once(':').unwrap().0);
        let (ok, _, err) = netlet(&args(
            &[
                "pull",
                &pinned,
                "-o",
                &s(&out),
                "--cache-dir",
                &s(&dir.join("cache3")),
            ],
            &flags,
        ));
        assert!(ok, "{pinned}: {err}");
        if auth {
            // The credentials from a Docker config file instead of the flags.
            use base64::Engine as _;
            let docker = dir.join("docker");
            std::fs::create_dir_all(&docker).unwrap();
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
            std::fs::write(
                docker.join("config.json"),
                format!(
                    r#"{{"auths": {{"{}": {{"auth": "{token}"}}}}}}"#,
                    registry.host
                ),
            )
            .unwrap();
            let out = Command::new(netlet_bin())
                .args(args(
                    &[
                        "pull",
                        &reference,
                        "-o",
                        &s(&dir.join("d.wasm")),
                        "--no-cache",
                    ],
                    &flags[..2],
                ))
                .env("DOCKER_CONFIG", &docker)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(std::fs::read(dir.join("d.wasm")).unwrap(), bytes);
            // Without credentials: one line saying so.
            let no_auth: Vec<String> = flags.iter().take(2).cloned().collect();
            let (ok, _, err) = netlet(&args(
                &[
                    "pull",
                    &reference,
                    "-o",
                    &s(&dir.join("x.wasm")),
                    "--no-cache",
                ],
                &no_auth,
            ));
            assert!(!ok);
            let line = one_line(&err);
            assert!(
                line.contains("refused the credentials") || line.contains("401"),
                "{line}"
            );
        }
        if tls {
            // Without the CA: the certificate is not trusted, in one line.
            let (ok, _, err) = netlet(&args(
                &[
                    "pull",
                    &reference,
                    "-o",
                    &s(&dir.join("x.wasm")),
                    "--no-cache",
                ],
                &flags[2..],
            ));
            assert!(!ok);
            let line = one_line(&err);
            assert!(
                line.starts_with(&format!("netlet: {reference}: ")),
                "{line}"
            );
            assert!(line.to_lowercase().contains("certificate"), "{line}");
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    netlet::cache::sha256_hex(bytes)
}

#[test]
fn a_component_from_a_registry_runs_and_restarts_from_the_cache_while_the_registry_is_down() {
    let dir = temp_dir("run");
    let mut registry = Registry::start(&dir, false, false);
    let reference = registry.reference("netlet/echo:v1");
    let flags = registry.flags();
    let cache = dir.join("cache");
    let (manifest, layer) = push(&guest("echo"), &reference, &flags, &dir.join("push-cache"));
    let n = run(&reference, &flags, &cache);
    assert_eq!(banner(n.tcp[0]), ECHO_BANNER);
    drop(n);
    // The cache keeps what the tag resolved to and the layer, by digest.
    let hex = layer.trim_start_matches("sha256:");
    assert!(cache.join("oci/blobs/sha256").join(hex).is_file());

    registry.stop();
    let n = run(&reference, &flags, &cache);
    assert_eq!(banner(n.tcp[0]), ECHO_BANNER);
    let line = n.stderr.wait_for("using the cached", WAIT);
    assert!(
        line.contains("cannot reach the registry") && line.contains(&manifest),
        "{line}"
    );
    drop(n);
    // A digest needs no registry once cached.
    let pinned = format!("{}@{manifest}", reference.rsplit_once(':').unwrap().0);
    let n = run(&pinned, &flags, &cache);
    assert_eq!(banner(n.tcp[0]), ECHO_BANNER);
    drop(n);
    // Nothing cached and no registry: one line, no start.
    let (ok, _, err) = netlet(&args(
        &[
            "run",
            &reference,
            "--tcp",
            "127.0.0.1:0",
            "--cache-dir",
            &s(&dir.join("empty")),
        ],
        &flags,
    ));
    assert!(!ok);
    let line = one_line(&err);
    assert!(
        line.starts_with(&format!("netlet: {reference}: cannot reach the registry"))
            && line.ends_with("no cached copy to use instead"),
        "{line}"
    );
}

#[test]
fn a_manifest_takes_oci_components_and_their_sha256_pins() {
    let dir = temp_dir("manifest");
    let registry = Registry::start(&dir, true, true);
    let flags = registry.flags();
    let reference = registry.reference("netlet/echo:stable");
    let (_, layer) = push(&guest("echo"), &reference, &flags, &dir.join("push-cache"));
    let hex = layer.trim_start_matches("sha256:");
    let manifest = dir.join("netlet.toml");
    std::fs::write(
        &manifest,
        format!(
            "[handler.echo]\ncomponent = \"{reference}\"\nsha256 = \"{hex}\"\ntcp = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let mut all = vec![
        "up".to_string(),
        s(&manifest),
        "--cache-dir".into(),
        s(&dir.join("cache")),
    ];
    all.extend(flags.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let n = Netlet::start(&refs);
    let line = n.stdout.wait_for("(echo)", WAIT);
    let addr: SocketAddr = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(banner(addr), ECHO_BANNER);
    drop(n);
    // A pin the registry's component does not match stops the start, located.
    std::fs::write(
        &manifest,
        format!(
            "[handler.echo]\ncomponent = \"{reference}\"\nsha256 = \"{}\"\ntcp = \"127.0.0.1:0\"\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let (ok, _, err) = netlet(&all);
    assert!(!ok);
    let line = one_line(&err);
    assert!(
        line.contains("netlet.toml:3: handler.echo.sha256: ")
            && line.contains(&format!("{reference} has sha256 {hex}")),
        "{line}"
    );
    // A reference that is not one is named with its line.
    std::fs::write(
        &manifest,
        "[handler.echo]\ncomponent = \"oci://nohost\"\ntcp = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let (ok, _, err) = netlet(&all);
    assert!(!ok);
    let line = one_line(&err);
    assert!(
        line.contains("netlet.toml:2: handler.echo.component: oci://nohost: "),
        "{line}"
    );
}

/// Pushes an ordinary container image (an OCI image config, a tar layer) to `reference`
/// on a plain-HTTP registry, with the registry client netlet uses.
fn push_container_image(host: &str, repository: &str) {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let reference: oci_client::Reference = format!("{host}/{repository}").parse().unwrap();
    let layer = ImageLayer::oci_v1(vec![0u8; 1024], None);
    let config = Config::oci_v1(
        b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec(),
        None,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(client.push(
        &reference,
        &[layer],
        config,
        &oci_client::secrets::RegistryAuth::Anonymous,
        None,
    ))
    .unwrap();
}

/// A proxy in front of `upstream` that cuts each connection once it has passed `limit`
/// bytes from the registry: a registry that stops in the middle of a download.
fn cutting_proxy(upstream: String, limit: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    return;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let mut passed = 0;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let n = n.min(limit - passed);
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    passed += n;
                    if passed >= limit {
                        break;
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
                let _ = s_read.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn bad_input_is_one_clear_line_and_leaves_no_partial_file() {
    let dir = temp_dir("bad");
    let registry = Registry::start(&dir, false, false);
    let flags = registry.flags();
    let echo = guest("echo");
    let (_, layer) = push(
        &echo,
        &registry.reference("netlet/echo:v1"),
        &flags,
        &dir.join("push-cache"),
    );
    let cache = dir.join("cache");
    let out = dir.join("out.wasm");
    let pull = |reference: &str, flags: &[String]| {
        let (ok, _, err) = netlet(&args(
            &["pull", reference, "-o", &s(&out), "--cache-dir", &s(&cache)],
            flags,
        ));
        assert!(!ok, "{reference} pulled");
        one_line(&err).to_string()
    };
    let nothing_kept = |what: &str| {
        assert!(!out.exists(), "{what}: {} was written", out.display());
        let kept: Vec<PathBuf> = files(&cache.join("oci/blobs"));
        assert!(kept.is_empty(), "{what}: the cache kept {kept:?}");
    };

    // An unknown tag.
    let reference = registry.reference("netlet/echo:nope");
    let line = pull(&reference, &flags);
    assert_eq!(
        line,
        format!("netlet: {reference}: the registry has no such tag or digest (manifest unknown)")
    );
    nothing_kept("unknown tag");

    // Not a wasm component: an ordinary container image.
    push_container_image(&registry.host, "netlet/image:v1");
    let reference = registry.reference("netlet/image:v1");
    let line = pull(&reference, &flags);
    assert!(
        line.starts_with(&format!("netlet: {reference}: not a wasm component artifact: its config is application/vnd.oci.image.config.v1+json")),
        "{line}"
    );
    nothing_kept("container image");
    // And `netlet run` says the same, and does not start.
    let (ok, _, err) = netlet(&args(
        &[
            "run",
            &reference,
            "--tcp",
            "127.0.0.1:0",
            "--cache-dir",
            &s(&cache),
        ],
        &flags,
    ));
    assert!(!ok);
    assert!(
        one_line(&err).contains("not a wasm component artifact"),
        "{err}"
    );

    // A registry that stops in the middle of the layer: a proxy cuts it.
    let size = std::fs::metadata(&echo).unwrap().len() as usize;
    let proxy = cutting_proxy(registry.host.clone(), 8 * 1024 + size / 2);
    let reference = format!("oci://{proxy}/netlet/echo:v1");
    let line = pull(
        &reference,
        &["--insecure-registry".to_string(), proxy.to_string()],
    );
    assert!(
        line.starts_with(&format!(
            "netlet: {reference}: the download of layer {layer} stopped after "
        )),
        "{line}"
    );
    nothing_kept("cut download");

    // A layer whose bytes do not match its digest: the registry's copy is damaged.
    let blob = registry.blob_file(&layer);
    let mut damaged = std::fs::read(&blob).unwrap();
    damaged[size / 2] ^= 0xff;
    std::fs::write(&blob, &damaged).unwrap();
    let reference = registry.reference("netlet/echo:v1");
    let line = pull(&reference, &flags);
    assert!(
        line.starts_with(&format!(
            "netlet: {reference}: layer {layer} does not match its digest"
        )),
        "{line}"
    );
    nothing_kept("damaged layer");
}

#[test]
fn sighup_swaps_in_a_newly_pushed_version_of_a_tag_without_dropping_a_connection() {
    let dir = temp_dir("sighup");
    let registry = Registry::start(&dir, false, false);
    let flags = registry.flags();
    let reference = registry.reference("netlet/service:live");
    let push_cache = dir.join("push-cache");
    push(&guest("echo"), &reference, &flags, &push_cache);
    let n = run(&reference, &flags, &dir.join("cache"));
    let addr = n.tcp[0];
    let mut open = connect(addr);
    assert_eq!(read_exact(&mut open, 13), ECHO_BANNER);
    // A new version goes up under the same tag; SIGHUP picks it up.
    push(&guest("hello"), &reference, &flags, &push_cache);
    n.signal(libc::SIGHUP);
    n.stderr.wait_for("swapped in", WAIT);
    let mut new = connect(addr);
    let mut greeting = vec![0u8; 8];
    new.read_exact(&mut greeting).unwrap();
    assert_ne!(
        greeting,
        ECHO_BANNER[..8],
        "new connections still get the old code"
    );
    // The connection opened before keeps its code.
    open.write_all(b"still\n").unwrap();
    assert_eq!(read_exact(&mut open, 6), b"still\n");
}

#[test]
fn watch_polls_a_tag_and_swaps_in_what_was_pushed() {
    let dir = temp_dir("watch");
    let registry = Registry::start(&dir, false, false);
    let flags = registry.flags();
    let reference = registry.reference("netlet/service:live");
    let push_cache = dir.join("push-cache");
    push(&guest("echo"), &reference, &flags, &push_cache);
    let mut with_watch = flags.clone();
    with_watch.push("--watch".into());
    let n = run(&reference, &with_watch, &dir.join("cache"));
    assert_eq!(banner(n.tcp[0]), ECHO_BANNER);
    push(&guest("hello"), &reference, &flags, &push_cache);
    let pushed = Instant::now();
    n.stderr.wait_for("swapped in", WAIT);
    eprintln!(
        "--watch swapped the pushed tag in after {:?}",
        pushed.elapsed()
    );
    assert_ne!(banner(n.tcp[0]), ECHO_BANNER);
    let _ = Duration::ZERO;
}
