//! `netlet-bench`: netlet's load generator and its comparison with native tokio, Node.js
//! and a wstd guest on `wasi:sockets`.
//!
//! ```text
//! bench/run                      # build in release, run the whole comparison
//! netlet-bench compare --smoke   # one second per case, to prove it works
//! netlet-bench load ping-pong --addr 127.0.0.1:1337 --conns 32 --size 64
//! ```
//!
//! # Layout
//!
//! - `load`: the loads (ping-pong, stream, churn, UDP, idle, cold start), each checking
//!   every byte it gets back.
//! - `servers`: starting each server under test as a process on free ports.
//! - `native`: the reference servers (tokio echo; Node's echo script).
//! - `wstd`: the wasmtime runner for the wstd guest.
//! - `http`: the HTTP table (wrk against hyper, Node and netlet) and its servers.
//! - `ws`: the WebSocket table (an echo ping-pong against tokio-tungstenite, Node's
//!   `ws` and netlet's `ws-echo`), its load and its reference server.
//! - `protocols`: the `kv` and `proxy` rows, against redis-server and HAProxy.
//! - `compare`: the tables.

mod compare;
mod http;
mod load;
mod native;
mod node;
mod options;
mod protocols;
mod servers;
mod tls;
mod ws;
mod wstd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "netlet-bench",
    about = "netlet's benchmark: loads and the comparison with native tokio, Node and wstd"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every load against every server and print the table (markdown).
    Compare {
        /// One second per case and 200 idle connections: proves it works, measures little.
        #[arg(long)]
        smoke: bool,
        /// Seconds per case.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Idle connections to open.
        #[arg(long, default_value_t = 10_000)]
        idle: usize,
        /// Only the rows whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Leave out the wstd column.
        #[arg(long)]
        no_wstd: bool,
        /// Leave out the protocol rows (kv against redis-server, proxy against
        /// HAProxy), which need redis-tools, redis-server and haproxy installed.
        #[arg(long)]
        no_protocols: bool,
        /// The netlet binary (default: next to this one).
        #[arg(long)]
        netlet: Option<PathBuf>,
        /// Worker threads of the load generator.
        #[arg(long, default_value_t = 1)]
        load_threads: usize,
        /// Also write the table to this file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Run one load against a server that is already running.
    Load {
        #[arg(value_parser = ["ping-pong", "stream", "churn", "udp"])]
        mode: String,
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value_t = 32)]
        conns: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Worker threads of the load generator.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// The native tokio echo server (TCP and UDP).
    ServeNative {
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value = "127.0.0.1:0")]
        tcp: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:0")]
        udp: SocketAddr,
    },
    /// A hyper 1.x HTTP server on one thread (`Hello World`, 1 MiB at `/1mib`).
    ServeHyper {
        #[arg(long, default_value = "127.0.0.1:0")]
        tcp: SocketAddr,
    },
    /// Canned HTTP responses without parsing: what wrk can reach at most.
    ServeCanned {
        #[arg(long, default_value = "127.0.0.1:0")]
        tcp: SocketAddr,
        /// Body bytes per response.
        #[arg(long, default_value_t = 12)]
        body: usize,
    },
    /// Run the native TLS echo (tokio-rustls) until killed.
    ServeNativeTls {
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
    /// A tokio-tungstenite WebSocket echo server on one thread.
    ServeWs {
        #[arg(long, default_value = "127.0.0.1:0")]
        tcp: SocketAddr,
    },
    /// Run the wstd echo component under wasmtime.
    ServeWstd {
        component: PathBuf,
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Compare {
            smoke,
            seconds,
            idle,
            only,
            no_wstd,
            no_protocols,
            netlet,
            load_threads,
            output,
        } => {
            servers::raise_fd_limit();
            let bench = std::env::current_exe()?;
            let netlet = netlet
                .or_else(|| servers::sibling("netlet"))
                .context("no netlet binary next to netlet-bench: build it (cargo build --release) or pass --netlet")?;
            let guests = PathBuf::from(env!("BENCH_GUEST_DIR"));
            let cache = std::env::temp_dir().join("netlet-bench-cache");
            let opts = options::Options {
                paths: servers::Paths {
                    bench,
                    netlet,
                    guests,
                    tls: tls::make_certificate(&cache)?,
                    cache,
                },
                duration: Duration::from_secs_f64(if smoke { 1.0 } else { seconds }),
                idle: if smoke { 200 } else { idle },
                only,
                no_wstd,
                no_protocols,
                load_threads,
            };
            let table = compare::compare(&opts)?;
            println!("{table}");
            if let Some(path) = output {
                std::fs::write(&path, &table)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Load {
            mode,
            addr,
            conns,
            size,
            seconds,
            threads,
        } => {
            let d = Duration::from_secs_f64(seconds);
            let rt = load::runtime(threads);
            let outcome = rt.block_on(async {
                match mode.as_str() {
                    "ping-pong" => load::ping_pong(addr, conns, size, d).await,
                    "stream" => load::stream(addr, conns, size, d).await,
                    "churn" => load::churn(addr, conns, d).await,
                    _ => load::udp_ping_pong(addr, conns, size, d).await,
                }
            })?;
            println!("{outcome:?}");
            Ok(())
        }
        Command::ServeNative { threads, tcp, udp } => native::serve(threads, tcp, udp),
        Command::ServeHyper { tcp } => http::serve_hyper(tcp),
        Command::ServeCanned { tcp, body } => http::serve_canned(tcp, body),
        Command::ServeNativeTls {
            threads,
            addr,
            cert,
            key,
        } => tls::serve_native(threads, addr, &cert, &key),
        Command::ServeWs { tcp } => ws::serve_tungstenite(tcp),
        Command::ServeWstd {
            component,
            addr,
            cache_dir,
        } => wstd::serve(&component, &addr, cache_dir.as_deref()),
    }
}
