//! The `netlet` command line: `netlet run COMPONENT.wasm ...`, `netlet up [netlet.toml]`,
//! `compile`, `inspect`, `test`, and with no command the seeds' demo.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{HandlerConfig, Isolation, TrapPolicy, parse_listen_addr};
use crate::deploy::manifest::HandlerSpec;
use crate::engine::{EngineOptions, Handler, Loader, Pooling, default_cache_dir};
use crate::log::LogSink;
use crate::policy::AllowRule;
use crate::serve::Service;
use crate::{config, demo, deploy};

/// Run sandboxed TCP/UDP handlers written as WebAssembly components, with the events
/// and socket methods of Node.js's `net` and `dgram` modules.
///
/// With no command, serves the seeds' demo: the greeting server on 127.0.0.1:8124, the
/// echo server on 127.0.0.1:1337, the UDP echo server on 127.0.0.1:41234 and the HTTP
/// server on 127.0.0.1:8080.
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
    /// Precompile a component to machine code for this machine (`X.cwasm`), so `netlet
    /// run X.cwasm` starts without compiling. A `.cwasm` is machine code: run only those
    /// you made (or trust as you would a native binary).
    Compile(CompileArgs),
    /// Show which netlet world a component targets, its exports and imports, and what
    /// it would need granted (outbound destinations, name lookups).
    Inspect(InspectArgs),
    /// Run scenario files (TOML) against a component in the in-memory harness.
    ///
    /// Each scenario runs in a fresh harness: an in-memory network and a virtual clock,
    /// with the engine and limits of `netlet run`. Prints one line per scenario and
    /// `N passed, N failed`; exits non-zero if any failed. The step reference is in the
    /// README ("Testing your component").
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
    /// Compile for `netlet run --isolation connection` (its engine lays memory out
    /// differently; a `.cwasm` only runs in the mode it was made for).
    #[arg(long, value_enum, default_value_t = Isolation::Shared)]
    isolation: Isolation,
    /// The `--max-memory` it will run with, when compiling for connection isolation.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = config::parse_size)]
    max_memory: usize,
}

#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// The component to inspect.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
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
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8124")]
    hello: String,
    /// Where the echo server (echo) listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1337")]
    echo: String,
    /// Where the UDP echo server (udp_echo) is bound.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:41234")]
    udp_echo: String,
    /// Where the HTTP server (http_hello) listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http_hello: String,
    #[command(flatten)]
    cache: CacheArgs,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            hello: "127.0.0.1:8124".into(),
            echo: "127.0.0.1:1337".into(),
            udp_echo: "127.0.0.1:41234".into(),
            http_hello: "127.0.0.1:8080".into(),
            cache: CacheArgs::default(),
        }
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The handler: a WebAssembly component built with the netlet-guest SDK.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,

    /// Listen for TCP connections on ADDR (HOST:PORT, [IPV6]:PORT, or PORT for every
    /// interface); port 0 picks a free port. Repeatable.
    #[arg(long = "tcp", value_name = "ADDR", value_parser = parse_listen_addr)]
    tcp: Vec<SocketAddr>,

    /// Bind a UDP socket on ADDR and hand it to the handler. Repeatable.
    #[arg(long = "udp", value_name = "ADDR", value_parser = parse_listen_addr)]
    udp: Vec<SocketAddr>,

    /// Worker threads, each with its own instance: a number, or `auto` (one per core).
    /// With more than one, a handler's state is per shard (a chat room would split).
    #[arg(long, value_name = "N|auto", default_value = "1", value_parser = config::parse_shards)]
    shards: usize,

    /// Let the handler reach HOST:PORT (outbound TCP connect, UDP send, wasi:sockets), or bind
    /// it when PORT is a chosen one (UDP bind, wasi:sockets bind and listen).
    /// HOST: an IP, a CIDR (10.0.0.0/8), a name, or `*`; PORT: a number, a range
    /// (1000-2000) or `*`. Repeatable; nothing is allowed by default.
    #[arg(long = "allow", value_name = "HOST:PORT")]
    allow: Vec<AllowRule>,

    /// Let the handler resolve host names that no --allow rule names (net.connect,
    /// UDP send, wasi:sockets ip-name-lookup). Off: a name must be allowed by name.
    #[arg(long)]
    allow_dns: bool,

    /// Node's `allowHalfOpen: true` for accepted sockets: after the peer's `end`, our
    /// side stays open until the handler ends it.
    #[arg(long)]
    allow_half_open: bool,

    /// `shared`: one instance per shard serves every connection (as one Node process).
    /// `connection`: a fresh instance per connection, so a crash or state never crosses
    /// connections.
    #[arg(long, value_enum, default_value_t = Isolation::Shared)]
    isolation: Isolation,

    /// On a trap, `restart` a fresh instance (with backoff if it keeps trapping) or
    /// `close` the handler's listeners and stop.
    #[arg(long, value_enum, default_value_t = TrapPolicy::Restart)]
    on_trap: TrapPolicy,

    /// Linear memory cap per instance; growing past it fails inside the guest (its
    /// allocation fails and it traps), never in the host.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = config::parse_size)]
    max_memory: usize,

    /// CPU time one event may take; a guest still running (a loop, a blocking call) is
    /// stopped, and the connections it held are closed.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = config::parse_duration)]
    event_timeout: Duration,

    /// Node's `server.maxConnections`: connections past it are closed at once and
    /// counted as dropped (Node's `drop` event). Default: no limit.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,

    /// Destroy a connection with no traffic for this long (default: never, as Node).
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    idle_timeout: Option<Duration>,

    /// A socket's write queue size at which `write` returns false (Node's highWaterMark).
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = config::parse_size)]
    high_water_mark: usize,

    /// A socket whose write queue would exceed this is destroyed with an error.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = config::parse_size)]
    max_write_buffer: usize,

    /// After SIGINT/SIGTERM, how long open connections may finish before they are closed.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = config::parse_duration)]
    grace: Duration,

    /// After a code swap (SIGHUP, --watch), how long connections may stay on the old
    /// code before they are closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = config::parse_duration)]
    drain_timeout: Duration,

    #[command(flatten)]
    deploy: DeployArgs,

    #[command(flatten)]
    cache: CacheArgs,

    /// Arguments for the handler's `init`.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// Parses the command line and runs it.
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    crate::log::init(cli.log_format);
    match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Up(args)) => up(args),
        Some(Command::Demo(demo)) => run_demo(demo),
        Some(Command::Test(test)) => run_tests(test),
        Some(Command::Compile(args)) => compile(args),
        Some(Command::Inspect(args)) => inspect(args),
        None => run_demo(DemoArgs::default()),
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = HandlerConfig {
        tcp: args.tcp,
        udp: args.udp,
        shards: args.shards,
        args: args.args,
        allow: args.allow,
        allow_dns: args.allow_dns,
        allow_half_open: args.allow_half_open,
        high_water_mark: args.high_water_mark.max(1),
        max_write_buffer: args.max_write_buffer.max(1),
        max_memory: args.max_memory.max(1 << 16),
        event_timeout: args.event_timeout.max(crate::engine::EPOCH_TICK),
        max_connections: args.max_connections,
        idle_timeout: args.idle_timeout.filter(|d| !d.is_zero()),
        isolation: args.isolation,
        on_trap: args.on_trap,
        grace: args.grace,
        drain_timeout: args.drain_timeout,
    };
    deploy::run(
        deploy::Options {
            source: deploy::Source::Single(Box::new(HandlerSpec::single(args.component, config))),
            cache_dir: args.cache.engine_options().cache_dir,
            watch: args.deploy.watch,
            metrics: args.deploy.metrics,
            check: false,
        },
        LogSink::Stderr,
    )
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    deploy::run(
        deploy::Options {
            source: deploy::Source::Manifest(args.manifest),
            cache_dir: args.cache.engine_options().cache_dir,
            watch: args.deploy.watch,
            metrics: args.deploy.metrics,
            check: args.check,
        },
        LogSink::Stderr,
    )
}

fn compile(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let pooling = (args.isolation == Isolation::Connection).then(|| Pooling {
        instances: deploy::pool_size(&HandlerConfig {
            max_memory: args.max_memory,
            ..HandlerConfig::default()
        }),
        max_memory: args.max_memory,
    });
    let loader = Loader::new(&EngineOptions {
        cache_dir: None,
        pooling,
    })?;
    // Loading first checks that it is a netlet handler this host can run.
    Handler::from_file(&loader, &args.component)?;
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
        "netlet: compiled {} -> {} ({} bytes)",
        args.component.display(),
        output.display(),
        compiled.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let loader = Loader::new(&args.cache.engine_options())?;
    let handler = Handler::from_file(&loader, &args.component)?;
    print!(
        "{}",
        crate::inspect::inspect(&handler, &args.component.display().to_string())
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

/// Instances the pooling allocator holds: one per connection, plus each shard's primary.
fn print_listening(service: &Service) {
    let mut out = std::io::stdout().lock();
    for addr in &service.tcp {
        let _ = writeln!(out, "netlet: listening tcp {addr}");
    }
    for addr in &service.udp {
        let _ = writeln!(out, "netlet: listening udp {addr}");
    }
    let _ = out.flush();
}

fn run_demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let loader = Loader::new(&args.cache.engine_options())?;
    let start = |example: &demo::Example,
                 tcp: Option<&str>,
                 udp: Option<&str>|
     -> anyhow::Result<Service> {
        let handler = Handler::from_bytes(
            &loader,
            example.name,
            &format!("{}.wasm (embedded)", example.name),
            example.wasm,
        )?;
        let config = HandlerConfig {
            tcp: tcp
                .iter()
                .map(|a| parse_listen_addr(a))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
            udp: udp
                .iter()
                .map(|a| parse_listen_addr(a))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
            ..HandlerConfig::default()
        };
        Service::start(Arc::new(handler), config, LogSink::Stderr)
            .with_context(|| format!("the demo's {} server", example.name))
    };
    println!(
        "netlet demo: the seeds' examples, each a WebAssembly component embedded in this binary"
    );
    let hello = start(&demo::HELLO, Some(&args.hello), None)?;
    let echo = start(&demo::ECHO, Some(&args.echo), None)?;
    let udp = start(&demo::UDP_ECHO, None, Some(&args.udp_echo))?;
    let http = start(&demo::HTTP_HELLO, Some(&args.http_hello), None)?;
    for service in [&hello, &echo, &udp, &http] {
        print_listening(service);
    }
    println!(
        "{}",
        demo::instructions(
            &hello.tcp[0].to_string(),
            &echo.tcp[0].to_string(),
            &udp.udp[0].to_string(),
            &http.tcp[0].to_string()
        )
    );
    let _ = std::io::stdout().flush();
    supervise(vec![hello, echo, udp, http])
}

/// Waits until every service has finished by itself, or SIGINT/SIGTERM asks them to
/// stop: listeners close at once, open connections get `--grace` to finish. A second
/// signal exits at once. Exit status 0 unless a guest failed.
fn supervise(services: Vec<Service>) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut stopping = false;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    if services.iter().all(Service::is_finished) {
                        return Ok::<(), std::io::Error>(());
                    }
                    continue;
                }
            }
            if stopping {
                eprintln!("netlet: stopping now");
                std::process::exit(0);
            }
            stopping = true;
            eprintln!("netlet: stopping (open connections have their grace period; a second signal stops at once)");
            for service in &services {
                service.stop();
            }
        }
    })?;
    let mut failed = false;
    for service in services {
        if let Err(msg) = service.wait() {
            eprintln!("netlet: {msg}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
