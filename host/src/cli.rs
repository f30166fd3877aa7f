//! The `netlet` command line: `netlet run COMPONENT.wasm ...`, `netlet up [netlet.toml]`,
//! `build`, `compile`, `inspect`, `test`, and with no command the seeds' demo.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::flags::{CompileFlags, RunFlags};
use crate::config::parse_listen_addr;
use crate::deploy::manifest::HandlerSpec;
use crate::engine::{EngineOptions, Loader, Pooling, Precompiled, default_cache_dir};
use crate::handler::Handler;
use crate::log::LogSink;
use crate::{demo, deploy};

/// Run sandboxed TCP/UDP handlers written as WebAssembly components, with the events
/// and socket methods of Node.js's `net` and `dgram` modules.
///
/// With no command, serves the seeds' demo: the greeting server on 127.0.0.1:8124, the
/// echo server on 127.0.0.1:1337 (and over TLS on 127.0.0.1:1443), the UDP echo server
/// on 127.0.0.1:41234, the HTTP server on 127.0.0.1:8080 and the WebSocket chat room on
/// 127.0.0.1:8081.
#[derive(Parser, Debug)]
#[command(name = "netlet", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Log lines as readable text, or as one JSON object per line (fields: timestamp,
    /// level, target, message, handler, shard, connection).
    #[arg(long, global = true, value_enum, default_value_t = crate::log::LogFormat::Text)]
    log_format: crate::log::LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a handler component on the given listeners.
    ///
    /// SIGHUP (or a change of the file, with --watch) reloads the component and swaps
    /// it in without closing the listeners: new connections get the new code, open ones
    /// stay on the old code until they close (or --drain-timeout).
    Run(RunArgs),
    /// Run the handlers a manifest declares (default: ./netlet.toml).
    ///
    /// Each [handler.NAME] table has a component and its listeners; every `netlet run`
    /// flag is a key of the same name (max-memory = "32MiB", allow = ["127.0.0.1:9000"]),
    /// plus sha256 (the component's expected hash). Everything is checked before
    /// anything binds. SIGHUP (or a change, with --watch) reloads it: changed components
    /// are swapped in without closing their listeners, added handlers start, removed
    /// ones stop.
    Up(UpArgs),
    /// Serve the seeds' demo (the default).
    Demo(DemoArgs),
    /// Build a handler component from JavaScript (a file `server.js`, also .mjs, .cjs,
    /// .ts, or a folder with package.json) or Python (`server.py`, or a folder with
    /// __main__.py).
    ///
    /// A JavaScript program uses Node's modules (`require('net')`, `import net from
    /// 'node:net'`): net, dgram, events, buffer, timers, console, util, process,
    /// string_decoder, from netlet's JavaScript SDK. Needs Node.js and npm: the pinned
    /// toolchain (componentize-js, esbuild) is installed into the cache directory the
    /// first time. A Python program is an asyncio program (`asyncio.run(main())`,
    /// `loop.create_server`, protocols). Needs python3 (3.10+, with venv): the pinned
    /// toolchain (componentize-py) is installed into the cache directory the first time.
    Build(BuildArgs),
    /// Precompile a component to machine code for this machine (`X.cwasm`), so `netlet
    /// run X.cwasm --allow-precompiled` starts without compiling. A `.cwasm` is machine
    /// code, run without WebAssembly's checks: netlet loads one only when told to
    /// (--allow-precompiled, or allow-precompiled = true in a manifest), and you should
    /// allow only those you made.
    Compile(CompileArgs),
    /// Show which netlet world a component targets, its exports and imports, and what
    /// it would need granted (outbound destinations, name lookups).
    Inspect(InspectArgs),
    /// Push a component to an OCI registry as a wasm component artifact (config
    /// application/vnd.wasm.config.v0+json, one application/wasm layer, as wkg writes).
    Push(PushArgs),
    /// Pull a component from an OCI registry into the cache and a file.
    Pull(PullArgs),
    /// Run scenario files (TOML) against a component in the in-memory harness.
    ///
    /// Each scenario runs in a fresh harness: an in-memory network and a virtual clock,
    /// with the engine and limits of `netlet run`. Prints one line per scenario and
    /// `N passed, N failed`; exits non-zero if any failed. The steps are listed in the
    /// book's testing chapter (docs/src/testing.md).
    Test(TestArgs),
}

#[derive(clap::Args, Debug, Default)]
struct CacheArgs {
    /// Directory for compiled components (default: $NETLET_CACHE_DIR, else
    /// $XDG_CACHE_HOME/netlet, else ~/.cache/netlet).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile components every time instead of caching them.
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            cache_dir: if self.no_cache {
                None
            } else {
                self.cache_dir.clone().or_else(default_cache_dir)
            },
            pooling: None,
        }
    }
}

/// How registries are reached, for `oci://` components.
#[derive(clap::Args, Debug, Default)]
struct RegistryArgs {
    /// Reach this registry (HOST or HOST:PORT) over plain HTTP instead of HTTPS;
    /// repeatable.
    #[arg(long, value_name = "HOST")]
    insecure_registry: Vec<String>,
    /// Trust the CA certificates in FILE (PEM) for registries, besides the platform's;
    /// repeatable.
    #[arg(long, value_name = "FILE")]
    registry_ca: Vec<PathBuf>,
    /// The user name for registries (HTTP basic auth); without it, credentials come from
    /// the Docker config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json).
    #[arg(long, value_name = "USER")]
    registry_user: Option<String>,
    /// A file holding the password for --registry-user (a Kubernetes secret mounted as a
    /// file; a password on the command line would show in `ps`).
    #[arg(long, value_name = "FILE", requires = "registry_user")]
    registry_password_file: Option<PathBuf>,
}

impl RegistryArgs {
    /// Makes these the process's registry settings, with pulled components cached in
    /// `cache` (a subfolder `oci/`).
    fn configure(&self, cache: Option<PathBuf>) -> anyhow::Result<()> {
        let password = match &self.registry_password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => None,
        };
        crate::oci::configure(crate::oci::Settings {
            insecure: self.insecure_registry.clone(),
            ca: self.registry_ca.clone(),
            username: self.registry_user.clone(),
            password,
            docker_config: None,
            cache,
        });
        Ok(())
    }
}

#[derive(clap::Args, Debug)]
struct PushArgs {
    /// The component to push.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
    /// Where: oci://HOST[:PORT]/REPOSITORY:TAG.
    #[arg(value_name = "REFERENCE")]
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args, Debug)]
struct PullArgs {
    /// What: oci://HOST[:PORT]/REPOSITORY:TAG or ...@sha256:DIGEST.
    #[arg(value_name = "REFERENCE")]
    reference: String,
    /// Where to write it (default: the repository's last part, .wasm).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args, Debug)]
struct DeployArgs {
    /// Reload when a component (or the manifest) changes on disk, as on SIGHUP.
    #[arg(long)]
    watch: bool,

    /// Serve Prometheus metrics on http://ADDR/metrics (port 0 picks one; the address
    /// is printed).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    metrics: Option<SocketAddr>,
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    /// The manifest.
    #[arg(value_name = "MANIFEST", default_value = "netlet.toml")]
    manifest: PathBuf,

    /// Check the manifest and load every component, print what would run, and exit.
    #[arg(long)]
    check: bool,

    #[command(flatten)]
    deploy: DeployArgs,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args, Debug)]
struct CompileArgs {
    /// The component to compile.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
    /// Where to write it (default: next to the component, with `.cwasm`).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The `--isolation` and `--max-memory` it will run with: in connection isolation
    /// the engine lays memory out differently, and a `.cwasm` only runs in the mode
    /// (and, there, with the memory cap) it was made for.
    #[command(flatten)]
    settings: CompileFlags,
}

#[derive(clap::Args, Debug)]
struct BuildArgs {
    /// The handler's source: a .js/.mjs/.cjs/.ts file, or a folder with package.json; a
    /// .py file, or a folder with __main__.py.
    #[arg(value_name = "FILE.js|FILE.py|DIR")]
    input: PathBuf,
    /// Where to write the component (default: beside the input, with `.wasm`).
    #[arg(short, long, value_name = "OUT.wasm")]
    output: Option<PathBuf>,
    /// Directory for the toolchain and compiled components (default: $NETLET_CACHE_DIR,
    /// else $XDG_CACHE_HOME/netlet, else ~/.cache/netlet).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// The component to inspect.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
    /// Let the component be precompiled machine code (a .cwasm), as `netlet run
    /// --allow-precompiled` does.
    #[arg(long)]
    allow_precompiled: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args, Debug)]
struct TestArgs {
    /// The handler to test.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
    /// Scenario files.
    #[arg(value_name = "SCENARIO.toml", required = true)]
    scenarios: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Where the greeting server (hello) listens.
    #[arg(long, value_name = "ADDR", default_value = demo::HELLO.addr, value_parser = parse_listen_addr)]
    hello: SocketAddr,
    /// Where the echo server (echo) listens.
    #[arg(long, value_name = "ADDR", default_value = demo::ECHO.addr, value_parser = parse_listen_addr)]
    echo: SocketAddr,
    /// Where the echo server (echo) listens for TLS (a self-signed certificate is made at
    /// start).
    #[arg(long, value_name = "ADDR", default_value = demo::ECHO_TLS_ADDR, value_parser = parse_listen_addr)]
    echo_tls: SocketAddr,
    /// Where the UDP echo server (udp_echo) is bound.
    #[arg(long, value_name = "ADDR", default_value = demo::UDP_ECHO.addr, value_parser = parse_listen_addr)]
    udp_echo: SocketAddr,
    /// Where the HTTP server (http_hello) listens.
    #[arg(long, value_name = "ADDR", default_value = demo::HTTP_HELLO.addr, value_parser = parse_listen_addr)]
    http_hello: SocketAddr,
    /// Where the WebSocket chat room (ws_chat) listens.
    #[arg(long, value_name = "ADDR", default_value = demo::WS_CHAT.addr, value_parser = parse_listen_addr)]
    ws_chat: SocketAddr,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The handler: a WebAssembly component built with the netlet-guest SDK, as a file
    /// or as oci://HOST[:PORT]/REPOSITORY:TAG (or @sha256:DIGEST) in a registry.
    #[arg(value_name = "COMPONENT")]
    component: String,

    /// The handler's settings (listeners, permissions, limits) and `-- ARGS`.
    #[command(flatten)]
    settings: RunFlags,

    #[command(flatten)]
    deploy: DeployArgs,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    cache: CacheArgs,
}

/// Parses the command line and runs it.
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    crate::log::init(cli.log_format);
    match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Up(args)) => up(args),
        Some(Command::Demo(args)) => run_demo(args),
        Some(Command::Test(test)) => run_tests(test),
        Some(Command::Compile(args)) => compile(args),
        Some(Command::Build(args)) => build(args),
        Some(Command::Inspect(args)) => inspect(args),
        Some(Command::Push(args)) => push(args),
        Some(Command::Pull(args)) => pull(args),
        None => {
            // The demo's own defaults, as `netlet demo` with no flags parses them.
            let args = <DemoArgs as clap::FromArgMatches>::from_arg_matches(
                &<DemoArgs as clap::Args>::augment_args(clap::Command::new("demo"))
                    .get_matches_from(["demo"]),
            )?;
            run_demo(args)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    args.registry
        .configure(args.cache.engine_options().cache_dir)?;
    let spec = HandlerSpec::single(&args.component, args.settings.0).map_err(anyhow::Error::msg)?;
    deploy::run(
        deploy::Options {
            source: deploy::Source::Handlers(vec![spec]),
            cache_dir: args.cache.engine_options().cache_dir,
            watch: args.deploy.watch,
            metrics: args.deploy.metrics,
            check: false,
            announce: None,
        },
        LogSink::Stderr,
    )
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    args.registry
        .configure(args.cache.engine_options().cache_dir)?;
    deploy::run(
        deploy::Options {
            source: deploy::Source::Manifest(args.manifest),
            cache_dir: args.cache.engine_options().cache_dir,
            watch: args.deploy.watch,
            metrics: args.deploy.metrics,
            check: args.check,
            announce: None,
        },
        LogSink::Stderr,
    )
}

fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let cache_dir = args.cache.engine_options().cache_dir;
    args.registry.configure(cache_dir.clone())?;
    let reference = crate::oci::OciRef::parse(&args.reference).map_err(anyhow::Error::msg)?;
    // Only netlet handlers go up: the same checks as `netlet run`, before the upload.
    let loader = Loader::new(&EngineOptions {
        cache_dir,
        pooling: None,
    })?;
    Handler::from_file(&loader, &args.component, Precompiled::Refuse)?;
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("{}: cannot read", args.component.display()))?;
    let size = bytes.len();
    let pushed = crate::oci::push(&reference, bytes)?;
    println!(
        "netlet: pushed {} to {reference} ({size} bytes; manifest {}, layer {})",
        args.component.display(),
        pushed.manifest,
        pushed.layer
    );
    println!(
        "netlet: pin it with component = \"{}\" or sha256 = \"{}\"",
        reference.pinned(&pushed.manifest),
        pushed.layer.trim_start_matches("sha256:")
    );
    Ok(ExitCode::SUCCESS)
}

fn pull(args: PullArgs) -> anyhow::Result<ExitCode> {
    args.registry
        .configure(args.cache.engine_options().cache_dir)?;
    let reference = crate::oci::OciRef::parse(&args.reference).map_err(anyhow::Error::msg)?;
    let pulled = crate::oci::fetch(&reference)?;
    if let Some(why) = &pulled.offline {
        crate::log::deploy(None, &format!("{reference}: {why}; using the cached copy"));
    }
    let output = args
        .output
        .unwrap_or_else(|| crate::oci::default_output(&reference));
    // Written aside and renamed: the file is whole or absent.
    let tmp = output.with_extension("wasm.part");
    std::fs::write(&tmp, &pulled.bytes)
        .and_then(|()| std::fs::rename(&tmp, &output))
        .with_context(|| format!("{}: cannot write", output.display()))?;
    println!(
        "netlet: pulled {reference} -> {} ({} bytes; manifest {}, layer {})",
        output.display(),
        pulled.bytes.len(),
        pulled.manifest,
        pulled.layer
    );
    Ok(ExitCode::SUCCESS)
}

fn compile(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let loader = Loader::new(&EngineOptions {
        cache_dir: None,
        pooling: Pooling::for_config(&args.settings.0),
    })?;
    // Loading first checks that it is a netlet handler this host can run (and not
    // machine code already).
    Handler::from_file(&loader, &args.component, Precompiled::Refuse)?;
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("{}: cannot read", args.component.display()))?;
    let compiled = loader
        .engine
        .precompile_component(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", args.component.display()))?;
    let output = args
        .output
        .unwrap_or_else(|| args.component.with_extension("cwasm"));
    std::fs::write(&output, &compiled)
        .with_context(|| format!("{}: cannot write", output.display()))?;
    println!(
        "netlet: compiled {} -> {} ({} bytes); run it with --allow-precompiled \
         (allow-precompiled = true in a manifest)",
        args.component.display(),
        output.display(),
        compiled.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let cache_dir = args.cache_dir.or_else(default_cache_dir).ok_or_else(|| {
        anyhow::anyhow!(
            "no cache directory for the toolchain: pass --cache-dir DIR (HOME is not set)"
        )
    })?;
    let built = crate::build::build(&crate::build::Options {
        input: args.input.clone(),
        output: args.output,
        cache_dir,
        quiet: false,
    })?;
    println!(
        "netlet: built {} from {} ({:.1} MB, {:.1} s): {}",
        built.output.display(),
        args.input.display(),
        built.bytes as f64 / 1e6,
        built.elapsed.as_secs_f64(),
        built.summary
    );
    Ok(ExitCode::SUCCESS)
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let loader = Loader::new(&args.cache.engine_options())?;
    let handler = Handler::from_file(
        &loader,
        &args.component,
        Precompiled::allowed(args.allow_precompiled),
    )?;
    let bytes = std::fs::read(&args.component).unwrap_or_default();
    print!(
        "{}",
        crate::inspect::inspect(&handler, &args.component.display().to_string(), &bytes)
    );
    Ok(ExitCode::SUCCESS)
}

fn run_tests(args: TestArgs) -> anyhow::Result<ExitCode> {
    if !args.component.exists() {
        anyhow::bail!("{}: cannot read: no such file", args.component.display());
    }
    let outcomes = crate::testing::scenario::run(&args.component, &args.scenarios);
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed) = (0, 0);
    for outcome in &outcomes {
        match &outcome.failure {
            None => {
                passed += 1;
                let _ = writeln!(out, "ok   {}: {}", outcome.file.display(), outcome.name);
            }
            Some(why) => {
                failed += 1;
                let _ = writeln!(out, "FAIL {}: {}", outcome.file.display(), outcome.name);
                for line in why.lines() {
                    let _ = writeln!(out, "     {line}");
                }
            }
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The demo: its built-in handlers, run by the same supervisor as `netlet up`.
fn run_demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    println!("{}", demo::INTRO);
    let _ = std::io::stdout().flush();
    let certificate = demo::make_certificate().map_err(|e| {
        anyhow::anyhow!(
            "cannot make the demo's TLS certificate in {}: {e}",
            demo::certificate_dir().display()
        )
    })?;
    let handlers = demo::handlers(
        args.hello,
        args.echo,
        args.echo_tls,
        certificate,
        args.udp_echo,
        args.http_hello,
        args.ws_chat,
    );
    deploy::run(
        deploy::Options {
            source: deploy::Source::Handlers(handlers),
            cache_dir: args.cache.engine_options().cache_dir,
            watch: false,
            metrics: None,
            check: false,
            announce: Some(demo::announce),
        },
        LogSink::Stderr,
    )
}
