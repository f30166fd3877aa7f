//! Deploying handlers: `netlet up` (a manifest of handlers), `netlet run` (one) and the
//! demo (the seeds' servers, built in), kept running by one supervisor that reloads on
//! SIGHUP or, with `--watch`, when the manifest or a component changes, and stops them
//! on SIGINT/SIGTERM.
//!
//! A reload loads and checks the new components off the supervisor's thread, then, per
//! handler: swaps its code in (same listeners: the listeners stay bound and open
//! connections stay on the old code, see `shard`), restarts it (its listeners, shards or
//! isolation changed), starts it (new) or stops it (gone). A handler whose new component
//! fails to load, or whose new instance fails `init`, keeps its old code.

pub mod manifest;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use crate::cache::CompileCache;
use crate::config::HandlerConfig;
use crate::engine::{EngineOptions, Loader, Pooling, Precompiled};
use crate::handler::Handler;
use crate::log::LogSink;
use crate::metrics::{Phase, Registry};
use crate::serve::{Bound, Service};
use manifest::{HandlerSpec, Manifest, ManifestError};

/// Where the handlers come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `netlet up FILE`.
    Manifest(PathBuf),
    /// Handlers declared by the caller: `netlet run COMPONENT ...`'s one, from flags, or
    /// the demo's built-in ones (a reload re-reads their files).
    Handlers(Vec<HandlerSpec>),
}

/// A handler that has started, and where it listens.
#[derive(Clone, Copy, Debug)]
pub struct Started<'a> {
    pub name: &'a str,
    pub tcp: &'a [SocketAddr],
    pub udp: &'a [SocketAddr],
    pub tls: &'a [SocketAddr],
}

/// How `netlet up` / `netlet run` run.
#[derive(Clone, Debug)]
pub struct Options {
    pub source: Source,
    /// Where compiled components are cached (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Reload when the manifest or a component file changes.
    pub watch: bool,
    /// Serve Prometheus metrics on this address.
    pub metrics: Option<SocketAddr>,
    /// Check everything, print what would run, and exit.
    pub check: bool,
    /// What to print once every handler has started (after their listening lines).
    pub announce: Option<fn(&[Started<'_>]) -> String>,
}

/// A connection-isolation engine's pool, or `None` for shared isolation.
type PoolKey = Option<Pooling>;

/// Engines by pooling settings: handlers that can share one do. Held weakly: an engine
/// goes (and its instance pool with it) once no handler uses it, so a handler restarted
/// with new pool settings does not leave the old pool behind.
#[derive(Clone)]
struct Loaders {
    cache_dir: Option<PathBuf>,
    made: Arc<Mutex<Vec<MadeEngine>>>,
}

/// An engine [`Loaders`] made: its pool settings, the engine (weakly), its cache.
type MadeEngine = (PoolKey, wasmtime::EngineWeak, Option<CompileCache>);

impl Loaders {
    fn for_config(&self, config: &HandlerConfig) -> anyhow::Result<Loader> {
        let pooling = Pooling::for_config(config);
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.retain(|(_, engine, _)| engine.upgrade().is_some());
        for (key, engine, cache) in made.iter() {
            if *key == pooling
                && let Some(engine) = engine.upgrade()
            {
                return Ok(Loader {
                    engine,
                    cache: cache.clone(),
                });
            }
        }
        let loader = Loader::new(&EngineOptions {
            cache_dir: self.cache_dir.clone(),
            pooling,
        })?;
        made.push((pooling, loader.engine.weak(), loader.cache.clone()));
        Ok(loader)
    }
}

/// A handler checked and ready to start or swap in.
struct Loaded {
    spec: HandlerSpec,
    handler: Arc<Handler>,
}

/// Reads the source's handlers (the manifest, or the one handler).
fn specs(source: &Source) -> Result<Vec<HandlerSpec>, ManifestError> {
    match source {
        Source::Manifest(path) => manifest::load(path).map(|m: Manifest| m.handlers),
        Source::Handlers(specs) => Ok(specs.clone()),
    }
}

/// Loads and checks one handler's component: valid, a netlet handler, the expected
/// sha256.
fn load_one(loaders: &Loaders, spec: HandlerSpec) -> Result<Loaded, String> {
    // Certificates and keys first: a bad one is named before anything compiles.
    crate::transport::tls::Tls::load(&spec.config)
        .map_err(|e| spec.error(e.setting, e.to_string()))?;
    let loader = loaders
        .for_config(&spec.config)
        .map_err(|e| format!("{e:#}"))?;
    let precompiled = Precompiled::allowed(spec.config.allow_precompiled);
    let mut handler = Handler::load(&loader, &spec.component, precompiled)
        .map_err(|e| spec.error("component", e.to_string()))?;
    if let Some(expected) = &spec.sha256
        && *expected != handler.sha256
    {
        return Err(spec.error(
            "sha256",
            format!(
                "{} has sha256 {}, not the {expected} the manifest expects",
                spec.component, handler.sha256
            ),
        ));
    }
    handler.name = spec.name.as_str().into();
    Ok(Loaded {
        spec,
        handler: Arc::new(handler),
    })
}

/// One handler as it runs.
struct Running {
    spec: HandlerSpec,
    sha256: String,
    /// Its TLS files' digest when they were last loaded.
    tls_files: String,
    service: Service,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `netlet: listening tcp ADDR`, one line per listener, labelled with the handler's
/// name when it comes from a manifest.
fn print_listening(spec: &HandlerSpec, tcp: &[SocketAddr], tls: &[SocketAddr], udp: &[SocketAddr]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let suffix = if spec.from_manifest() {
        format!(" ({})", spec.name)
    } else {
        String::new()
    };
    for addr in tcp {
        let _ = writeln!(out, "netlet: listening tcp {addr}{suffix}");
    }
    for addr in tls {
        let _ = writeln!(out, "netlet: listening tls {addr}{suffix}");
    }
    for addr in udp {
        let _ = writeln!(out, "netlet: listening udp {addr}{suffix}");
    }
    let _ = out.flush();
}

/// Binds, with a few retries while a restarted handler's old listeners close.
fn bind_retrying(config: &HandlerConfig, retry_for: Duration) -> Result<Bound, String> {
    let deadline = Instant::now() + retry_for;
    loop {
        match Service::bind(config.clone()) {
            Ok(bound) => return Ok(bound),
            Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// What a reload decided.
enum Change {
    /// Only TLS settings or files changed: new certificates for new handshakes, the
    /// handler's code and instances untouched.
    Tls(HandlerSpec, String),
    Swap(Loaded),
    /// With the settings whose change needs the restart.
    Restart(Loaded, Vec<&'static str>),
    Add(Loaded),
    Remove(String),
}

/// Works out what changed, loading new or changed components (off the supervisor's
/// thread: compiling takes time). Problems are logged; an unchanged or failing handler
/// produces no change.
fn plan(
    source: &Source,
    loaders: &Loaders,
    running: &BTreeMap<String, (HandlerSpec, String, String)>,
) -> Vec<Change> {
    let specs = match specs(source) {
        Ok(specs) => specs,
        Err(e) => {
            crate::log::deploy(None, &format!("reload failed, nothing changed: {e}"));
            return Vec::new();
        }
    };
    let mut changes = Vec::new();
    for name in running.keys() {
        if !specs.iter().any(|s| &s.name == name) {
            changes.push(Change::Remove(name.clone()));
        }
    }
    for spec in specs {
        let current = running.get(&spec.name);
        if let Some((old, sha, tls_files)) = current {
            let same_file = spec
                .component
                .read()
                .map(|b| crate::cache::sha256_hex(&b) == *sha)
                .unwrap_or(false);
            let same_tls = crate::transport::tls::files::fingerprint(&spec.config) == *tls_files;
            if same_file && old.same_settings(&spec) && same_tls {
                continue;
            }
            if same_file
                && old.component == spec.component
                && old.sha256 == spec.sha256
                && old.config.only_tls_differs(&spec.config)
            {
                // Certificates rotated (or other TLS settings changed): checked here, applied
                // to the listeners without touching the code.
                match crate::transport::tls::Tls::load(&spec.config) {
                    Ok(_) => {
                        let files = crate::transport::tls::files::fingerprint(&spec.config);
                        changes.push(Change::Tls(spec, files));
                    }
                    Err(e) => crate::log::deploy(
                        Some(&spec.name),
                        &format!(
                            "TLS not reloaded, the current certificates keep serving: {}",
                            spec.error(e.setting, e.to_string())
                        ),
                    ),
                }
                continue;
            }
        }
        let name = spec.name.clone();
        match load_one(loaders, spec) {
            Err(e) => crate::log::deploy(
                Some(&name),
                &format!("not reloaded, the running code keeps serving: {e}"),
            ),
            Ok(loaded) => changes.push(match current {
                None => Change::Add(loaded),
                Some((old, _, _)) => {
                    let changed = old.config.restart_needed_for(&loaded.spec.config);
                    if changed.is_empty() {
                        Change::Swap(loaded)
                    } else {
                        Change::Restart(loaded, changed)
                    }
                }
            }),
        }
    }
    changes
}

/// Runs the handlers until SIGINT/SIGTERM (or until every handler has stopped).
pub fn run(options: Options, sink: LogSink) -> anyhow::Result<ExitCode> {
    let loaders = Loaders {
        cache_dir: options.cache_dir.clone(),
        made: Arc::default(),
    };
    let specs = specs(&options.source).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut loaded = Vec::new();
    for spec in specs {
        loaded.push(load_one(&loaders, spec).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    if options.check {
        for l in &loaded {
            println!(
                "netlet: {}: {} (sha256 {}), tcp {:?}, udp {:?}",
                l.spec.name,
                l.spec.component,
                l.handler.sha256,
                l.spec.config.tcp,
                l.spec.config.udp
            );
        }
        println!("netlet: {} handler(s) OK", loaded.len());
        return Ok(ExitCode::SUCCESS);
    }
    // The probes answer from the start: `/healthz` while components compile, `/readyz`
    // (503, starting) until every handler has started.
    let registry: Arc<Registry> = Arc::default();
    if let Some(addr) = options.metrics {
        let bound = crate::metrics::serve(addr, registry.clone())
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        println!("netlet: metrics on http://{bound}/metrics");
    }
    // Signals are caught from before the first "listening" line: a SIGINT sent on
    // seeing it must stop netlet gracefully, not kill it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let _enter = rt.enter();
        Signals {
            int: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot catch SIGHUP")?,
        }
    };
    // Everything binds before anything serves: a port in use stops the lot.
    let mut bound = Vec::new();
    for l in loaded {
        let b = Service::bind(l.spec.config.clone()).map_err(|e| match e {
            crate::serve::ServeError::Tls(e) => {
                anyhow::anyhow!(l.spec.error(e.setting, e.to_string()))
            }
            e => anyhow::anyhow!(l.spec.problem(e)),
        })?;
        bound.push((l, b));
    }
    let mut handlers: BTreeMap<String, Running> = BTreeMap::new();
    for (l, b) in bound {
        let (tcp, tls, udp) = (b.tcp().to_vec(), b.tls().to_vec(), b.udp().to_vec());
        let service = b
            .start(l.handler.clone(), sink.clone())
            .map_err(|e| anyhow::anyhow!(l.spec.problem(e)))?;
        print_listening(&l.spec, &tcp, &tls, &udp);
        registry.insert(&l.spec.name, service.stats.clone(), service.probe());
        handlers.insert(
            l.spec.name.clone(),
            Running {
                sha256: l.handler.sha256.clone(),
                tls_files: crate::transport::tls::files::fingerprint(&l.spec.config),
                spec: l.spec,
                service,
            },
        );
    }
    if let Some(announce) = options.announce {
        let started: Vec<Started<'_>> = handlers
            .values()
            .map(|r| Started {
                name: &r.spec.name,
                tcp: &r.service.tcp,
                udp: &r.service.udp,
                tls: &r.service.tls,
            })
            .collect();
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", announce(&started));
        let _ = out.flush();
    }
    registry.set_phase(Phase::Serving);
    supervise(options, loaders, handlers, registry, sink, rt, signals)
}

/// The signals the supervisor acts on, caught from the start.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// What the supervisor watches for `--watch`: the manifest's and components' mtimes.
fn watched(
    source: &Source,
    handlers: &BTreeMap<String, Running>,
) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut files: Vec<PathBuf> = handlers
        .values()
        .filter_map(|r| r.spec.component.path().map(Path::to_path_buf))
        .collect();
    // Certificates and keys too: a rotated certificate is reloaded.
    files.extend(
        handlers
            .values()
            .flat_map(|r| crate::transport::tls::files::paths(&r.spec.config)),
    );
    if let Source::Manifest(path) = source {
        files.push(path.clone());
    }
    files
        .into_iter()
        .map(|p| {
            let m = modified(&p);
            (p, m)
        })
        .collect()
}

fn supervise(
    options: Options,
    loaders: Loaders,
    mut handlers: BTreeMap<String, Running>,
    registry: Arc<Registry>,
    sink: LogSink,
    rt: tokio::runtime::Runtime,
    signals: Signals,
) -> anyhow::Result<ExitCode> {
    // Handlers being stopped (removed, or replaced by a restart): they drain.
    let mut stopping: Vec<Service> = Vec::new();
    let mut failed = false;
    let outcome = rt.block_on(async {
        let Signals {
            mut int,
            mut term,
            mut hup,
        } = signals;
        let mut shutting_down = false;
        // While draining: when each handler's listeners close (`None`: closed).
        let mut close_at: BTreeMap<String, Option<Instant>> = BTreeMap::new();
        let mut reload_wanted = false;
        let mut reload: Option<mpsc::Receiver<Vec<Change>>> = None;
        let mut files = watched(&options.source, &handlers);
        let mut last_watch = Instant::now();
        // `--watch` and `oci://` tags: when the registry was last asked, and its answer
        // (whether a tag moved) while a check runs.
        let mut last_tags = Instant::now();
        let mut tags: Option<mpsc::Receiver<bool>> = None;
        let mut settling = false;
        loop {
            // SIGTERM (what orchestrators send) keeps the listeners for --drain-delay;
            // SIGINT (Ctrl-C) closes them at once.
            let sigterm = tokio::select! {
                _ = int.recv() => false,
                _ = term.recv() => true,
                _ = hup.recv() => {
                    crate::log::deploy(None, "SIGHUP: reloading");
                    reload_wanted = true;
                    continue;
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    stopping.retain(|s| !s.is_finished());
                    if handlers.values().all(|r| r.service.is_finished()) && stopping.is_empty() && reload.is_none() {
                        return Ok::<bool, std::io::Error>(shutting_down);
                    }
                    if shutting_down {
                        close_due(&mut close_at, &handlers);
                        continue;
                    }
                    if options.watch && last_watch.elapsed() >= Duration::from_millis(250) {
                        last_watch = Instant::now();
                        // A change is acted on once the files stop changing (a
                        // copy in progress is not loaded half-written).
                        let now = watched(&options.source, &handlers);
                        if now != files {
                            files = now;
                            settling = true;
                        } else if settling {
                            settling = false;
                            crate::log::deploy(None, "a watched file changed: reloading");
                            reload_wanted = true;
                        }
                    }
                    if options.watch && reload.is_none() {
                        if let Some(rx) = &tags {
                            match rx.try_recv() {
                                Ok(moved) => {
                                    tags = None;
                                    if moved {
                                        crate::log::deploy(None, "an oci:// tag points to a new version: reloading");
                                        reload_wanted = true;
                                    }
                                }
                                Err(mpsc::TryRecvError::Empty) => {}
                                Err(mpsc::TryRecvError::Disconnected) => tags = None,
                            }
                        } else if last_tags.elapsed() >= OCI_WATCH_INTERVAL {
                            last_tags = Instant::now();
                            tags = check_tags(&handlers);
                        }
                    }
                    if let Some(rx) = &reload {
                        match rx.try_recv() {
                            Ok(changes) => {
                                reload = None;
                                apply(changes, &mut handlers, &mut stopping, &registry, &sink);
                                files = watched(&options.source, &handlers);
                            }
                            Err(mpsc::TryRecvError::Empty) => {}
                            Err(mpsc::TryRecvError::Disconnected) => reload = None,
                        }
                    }
                    if reload_wanted && reload.is_none() {
                        reload_wanted = false;
                        let (tx, rx) = mpsc::channel();
                        let source = options.source.clone();
                        let loaders = loaders.clone();
                        let current: BTreeMap<String, (HandlerSpec, String, String)> = handlers
                            .iter()
                            .map(|(n, r)| {
                                (n.clone(), (r.spec.clone(), r.sha256.clone(), r.tls_files.clone()))
                            })
                            .collect();
                        std::thread::spawn(move || {
                            let _ = tx.send(plan(&source, &loaders, &current));
                        });
                        reload = Some(rx);
                    }
                    continue;
                }
            };
            if shutting_down {
                crate::log::deploy(None, "stopping now");
                crate::log::flush(Duration::from_secs(1));
                std::process::exit(0);
            }
            shutting_down = true;
            registry.set_phase(Phase::Draining);
            let now = Instant::now();
            let mut longest = Duration::ZERO;
            for (name, r) in &handlers {
                let delay = if sigterm { r.spec.config.drain_delay } else { Duration::ZERO };
                longest = longest.max(delay);
                close_at.insert(name.clone(), Some(now + delay));
            }
            let when = if longest.is_zero() {
                "now".to_string()
            } else {
                format!("after --drain-delay ({})", crate::config::format_duration(longest))
            };
            crate::log::deploy(None, &format!(
                "stopping: /readyz answers 503; the listeners close {when}, then open \
                 connections have their grace period; a second signal stops at once"
            ));
            close_due(&mut close_at, &handlers);
            for s in &stopping {
                s.stop();
            }
        }
    });
    let stopped = outcome?;
    let mut served_nothing = None;
    for (name, r) in handlers {
        let stats = r.service.stats.clone();
        match r.service.wait() {
            Err(msg) => {
                crate::log::deploy(Some(&name), &msg);
                failed = true;
            }
            // No listener, and not one event in its life: `init` started nothing (no
            // socket, timer or connect), so nothing could ever have been served.
            Ok(())
                if !stopped
                    && r.spec.config.tcp.is_empty()
                    && r.spec.config.tls.is_empty()
                    && r.spec.config.udp.is_empty()
                    && stats.guest_calls.load(std::sync::atomic::Ordering::Relaxed) == 0 =>
            {
                served_nothing.get_or_insert(r.spec);
            }
            Ok(()) => {}
        }
    }
    for s in stopping {
        let _ = s.wait();
    }
    if let Some(spec) = served_nothing {
        anyhow::bail!(spec.problem(format_args!(
            "{}: nothing to serve: no --tcp or --udp listener was given, and the handler's \
             init started no socket, timer or connection; give it --tcp ADDR and/or --udp ADDR",
            spec.component
        )));
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// How often `--watch` asks registries where the `oci://` tags being run point.
const OCI_WATCH_INTERVAL: Duration = Duration::from_secs(3);

/// Asks, off the supervisor's thread, whether any running `oci://` tag now names other
/// code than what runs; `None` when no handler runs a tag. A registry that cannot be
/// reached changes nothing.
fn check_tags(handlers: &BTreeMap<String, Running>) -> Option<mpsc::Receiver<bool>> {
    let tags: Vec<(crate::oci::OciRef, String)> = handlers
        .values()
        .filter_map(|r| match &r.spec.component {
            crate::engine::ComponentSource::Oci(reference) if reference.is_tag() => {
                Some((reference.clone(), format!("sha256:{}", r.sha256)))
            }
            _ => None,
        })
        .collect();
    if tags.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let moved = tags.iter().any(|(reference, running)| {
            crate::oci::resolve(reference).is_ok_and(|now| now != *running)
        });
        let _ = tx.send(moved);
    });
    Some(rx)
}

/// While draining: closes the listeners of each handler whose `--drain-delay` has passed.
fn close_due(
    close_at: &mut BTreeMap<String, Option<Instant>>,
    handlers: &BTreeMap<String, Running>,
) {
    let now = Instant::now();
    for (name, at) in close_at.iter_mut() {
        if at.is_some_and(|at| at <= now) {
            *at = None;
            if let Some(r) = handlers.get(name) {
                r.service.stop();
            }
        }
    }
}

fn apply(
    changes: Vec<Change>,
    handlers: &mut BTreeMap<String, Running>,
    stopping: &mut Vec<Service>,
    registry: &Registry,
    sink: &LogSink,
) {
    let register = |name: &str, service: Option<&Service>| match service {
        Some(s) => registry.insert(name, s.stats.clone(), s.probe()),
        None => registry.remove(name),
    };
    if changes.is_empty() {
        crate::log::deploy(None, "reload: nothing changed");
    }
    for change in changes {
        match change {
            Change::Remove(name) => {
                if let Some(r) = handlers.remove(&name) {
                    crate::log::deploy(
                        Some(&name),
                        "removed from the manifest: closing its listeners",
                    );
                    r.service.stop();
                    stopping.push(r.service);
                    register(&name, None);
                }
            }
            Change::Tls(spec, files) => {
                let name = spec.name.clone();
                let Some(r) = handlers.get_mut(&name) else {
                    continue;
                };
                match r.service.update_tls(&spec.config) {
                    Ok(()) => {
                        crate::log::deploy(
                            Some(&name),
                            "reloaded its TLS certificates and settings: new handshakes use them, \
                             open connections keep theirs",
                        );
                        r.spec = spec;
                        r.tls_files = files;
                    }
                    Err(e) => crate::log::deploy(
                        Some(&name),
                        &format!(
                            "TLS not reloaded, the current certificates keep serving: {}",
                            spec.error(e.setting, e.to_string())
                        ),
                    ),
                }
            }
            Change::Swap(l) => {
                let name = l.spec.name.clone();
                let Some(r) = handlers.get_mut(&name) else {
                    continue;
                };
                match r.service.swap(l.handler.clone(), l.spec.config.clone()) {
                    Ok(()) => {
                        crate::log::deploy(
                            Some(&name),
                            &format!(
                                "swapped in {} (sha256 {})",
                                l.spec.component, l.handler.sha256
                            ),
                        );
                        r.sha256 = l.handler.sha256.clone();
                        r.tls_files = crate::transport::tls::files::fingerprint(&l.spec.config);
                        r.spec = l.spec;
                    }
                    Err(e) => crate::log::deploy(
                        Some(&name),
                        &format!("not swapped in, the running code keeps serving: {e}"),
                    ),
                }
            }
            Change::Restart(l, changed) => {
                if let Some(old) = handlers.remove(&l.spec.name) {
                    crate::log::deploy(
                        Some(&l.spec.name),
                        &format!(
                            "{} changed: restarting it (open connections get their grace period)",
                            changed.join(", ")
                        ),
                    );
                    old.service.stop();
                    stopping.push(old.service);
                }
                start(l, handlers, &register, sink);
            }
            Change::Add(l) => start(l, handlers, &register, sink),
        }
    }
}

/// Binds and starts a handler that is new, or whose old self is stopping.
fn start(
    l: Loaded,
    handlers: &mut BTreeMap<String, Running>,
    register: &dyn Fn(&str, Option<&Service>),
    sink: &LogSink,
) {
    let name = l.spec.name.clone();
    let started = bind_retrying(&l.spec.config, Duration::from_secs(5)).and_then(|b| {
        let (tcp, tls, udp) = (b.tcp().to_vec(), b.tls().to_vec(), b.udp().to_vec());
        b.start(l.handler.clone(), sink.clone())
            .map(|s| (s, tcp, tls, udp))
            .map_err(|e| e.to_string())
    });
    match started {
        Ok((service, tcp, tls, udp)) => {
            print_listening(&l.spec, &tcp, &tls, &udp);
            register(&name, Some(&service));
            handlers.insert(
                name,
                Running {
                    sha256: l.handler.sha256.clone(),
                    tls_files: crate::transport::tls::files::fingerprint(&l.spec.config),
                    spec: l.spec,
                    service,
                },
            );
        }
        Err(e) => crate::log::deploy(Some(&name), &format!("cannot start: {e}")),
    }
}
