//! Running one handler: bind its listeners, start its shards, report when they are up,
//! stop them on request.
//!
//! Listeners are bound here, before any shard starts, so a port in use is reported at
//! once with the address. With several shards each binds the same port with
//! `SO_REUSEPORT` and the kernel spreads connections (and UDP flows) over them.
//!
//! This is also where the transport is chosen: a `--tls` listener is a TCP listener
//! wrapped in [`TlsListenerSource`], its certificates read here first (a bad file stops
//! the start with one line naming it), and kept in a [`TlsCell`] that a reload replaces.

use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use crate::clock::Clock;
use crate::config::HandlerConfig;
use crate::handler::Handler;
use crate::log::LogSink;
use crate::policy::Policy;
use crate::shard::{self, Control, HostDatagram, HostListener, ShardExit, ShardSpec, Swap};
use crate::stats::HandlerStats;
use crate::transport::tls::listener::HandshakeReport;
use crate::transport::tls::{Tls, TlsCell, TlsError, TlsListenerSource};

/// Why a handler could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {proto} {addr}: {reason}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    #[error("{0}")]
    Tls(TlsError),
    #[error("{0}")]
    Start(String),
}

fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address already in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "address not available on this host".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Says once per process when `--reuse-port` cannot keep a closing listener's queued
/// connections (see [`crate::transport::migrate`]).
fn note_migration(migration: crate::transport::migrate::Migration) {
    static SAID: std::sync::Once = std::sync::Once::new();
    if let crate::transport::migrate::Migration::Off(why) = migration {
        SAID.call_once(|| {
            crate::log::deploy(
                None,
                &format!(
                    "--reuse-port: the kernel will not move connections queued on a listener \
                     of this process when it closes ({why}); one arriving just as it closes \
                     may be reset: set net.ipv4.tcp_migrate_req=1 (Linux 5.14+) to keep them"
                ),
            )
        });
    }
}

/// A handler's listeners, bound but not yet served (so several handlers can all bind
/// before any starts: a port in use fails the lot before anything is served).
pub struct Bound {
    config: HandlerConfig,
    tcp_addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    udp_addrs: Vec<SocketAddr>,
    per_shard_tcp: Vec<Vec<HostListener>>,
    /// The `--tls` listeners' TCP sockets, made TLS listeners once the shards start.
    per_shard_tls: Vec<Vec<HostListener>>,
    per_shard_udp: Vec<Vec<HostDatagram>>,
    tls: Arc<Tls>,
}

impl Bound {
    /// The bound TCP addresses (with the real ports).
    pub fn tcp(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The bound UDP addresses.
    pub fn udp(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TLS addresses.
    pub fn tls(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }
}

/// A running handler.
pub struct Service {
    /// The bound TCP addresses, in `--tcp` order (with the real ports).
    pub tcp: Vec<SocketAddr>,
    /// The bound UDP addresses, in `--udp` order.
    pub udp: Vec<SocketAddr>,
    /// The bound TLS addresses, in `--tls` order.
    pub tls: Vec<SocketAddr>,
    /// The handler's counters.
    pub stats: Arc<HandlerStats>,
    /// What it runs with now (changed by [`Service::swap`]).
    pub config: Arc<HandlerConfig>,
    controls: Vec<Arc<Control>>,
    threads: Vec<JoinHandle<ShardExit>>,
    /// The certificates its TLS listeners use and the roots its TLS connects trust.
    tls_cell: Arc<TlsCell>,
}

impl Service {
    /// Binds and starts `handler` with `config`. Returns once every shard's guest has
    /// run `init`.
    pub fn start(
        handler: Arc<Handler>,
        config: HandlerConfig,
        sink: LogSink,
    ) -> Result<Self, ServeError> {
        Self::bind(config)?.start(handler, sink)
    }

    /// Binds `config`'s listeners (nothing is served until [`Bound::start`]).
    pub fn bind(config: HandlerConfig) -> Result<Bound, ServeError> {
        let tls = Tls::load(&config).map_err(ServeError::Tls)?;
        let shards = config.shards.max(1);
        // Shards share a port through SO_REUSEPORT; `--reuse-port` lets another process
        // share it too.
        let reuse = shards > 1 || config.reuse_port;
        let mut per_shard_tcp: Vec<Vec<HostListener>> = (0..shards).map(|_| Vec::new()).collect();
        let mut per_shard_udp: Vec<Vec<HostDatagram>> = (0..shards).map(|_| Vec::new()).collect();
        let mut per_shard_tls: Vec<Vec<HostListener>> = (0..shards).map(|_| Vec::new()).collect();
        let mut tcp_addrs = Vec::new();
        let mut tls_addrs = Vec::new();
        let mut udp_addrs = Vec::new();

        // Server ids: the `--tcp` listeners from 1, then the `--tls` ones.
        let listeners = config
            .tcp
            .iter()
            .map(|a| ("tcp", a))
            .chain(config.tls.iter().map(|a| ("tls", a)));
        for (index, (proto, requested)) in listeners.enumerate() {
            let (per_shard, addrs) = if proto == "tcp" {
                (&mut per_shard_tcp, &mut tcp_addrs)
            } else {
                (&mut per_shard_tls, &mut tls_addrs)
            };
            let mut addr = requested.addr;
            for (shard, listeners) in per_shard.iter_mut().enumerate() {
                let listener =
                    crate::transport::tcp::bind(addr, reuse).map_err(|e| ServeError::Bind {
                        proto,
                        addr,
                        reason: bind_reason(&e),
                    })?;
                if shard == 0 && config.reuse_port {
                    // One listener of the group enables migration for all of them.
                    note_migration(crate::transport::migrate::enable(&listener));
                }
                if shard == 0 {
                    // Port 0 picked a port: the other shards bind that one.
                    addr = listener
                        .local_addr()
                        .map_err(|e| ServeError::Start(e.to_string()))?;
                    addrs.push(addr);
                }
                listeners.push(HostListener {
                    id: index as u32 + 1,
                    code_port: requested.code_port,
                    source: Box::new(listener),
                });
            }
        }
        for requested in &config.udp {
            let mut addr = requested.addr;
            for (shard, sockets) in per_shard_udp.iter_mut().enumerate() {
                let socket =
                    crate::transport::udp::bind(addr, reuse).map_err(|e| ServeError::Bind {
                        proto: "udp",
                        addr,
                        reason: bind_reason(&e),
                    })?;
                if shard == 0 {
                    addr = socket
                        .local_addr()
                        .map_err(|e| ServeError::Start(e.to_string()))?;
                    udp_addrs.push(addr);
                }
                sockets.push(HostDatagram {
                    code_port: requested.code_port,
                    source: Box::new(socket),
                });
            }
        }

        Ok(Bound {
            config,
            tcp_addrs,
            tls_addrs,
            udp_addrs,
            per_shard_tcp,
            per_shard_tls,
            per_shard_udp,
            tls,
        })
    }

    /// Hot swap: every shard starts `handler` with `config` for new connections, while
    /// open connections stay on the code they started with (see `shard`). `config` must
    /// not change what needs a restart ([`HandlerConfig::restart_needed_for`]: the
    /// listeners, shards, isolation, a connection-isolation pool). Returns when every
    /// shard answered; `Err` names what failed (a shard whose new instance failed keeps
    /// the old code).
    pub fn swap(&self, handler: Arc<Handler>, config: HandlerConfig) -> Result<(), String> {
        let changed = self.config.restart_needed_for(&config);
        if !changed.is_empty() {
            return Err(format!(
                "{} changed: the handler must be restarted",
                changed.join(", ")
            ));
        }
        // Certificates are read first: a bad one refuses the whole swap.
        let tls = Tls::load(&config).map_err(|e| e.to_string())?;
        let config = Arc::new(config);
        let policy = Arc::new(Policy::new(config.allow.clone(), config.allow_dns));
        let (done, results) = mpsc::channel();
        for control in &self.controls {
            control.swap(Swap {
                handler: handler.clone(),
                config: config.clone(),
                policy: policy.clone(),
                done: done.clone(),
            });
        }
        drop(done);
        let mut errors = Vec::new();
        for _ in &self.controls {
            // `init` is bounded by the event timeout; the margin covers a busy shard.
            match results
                .recv_timeout(config.event_timeout * 2 + std::time::Duration::from_secs(30))
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push("a shard did not answer".to_string()),
            }
        }
        if errors.is_empty() {
            self.tls_cell.set(tls);
            Ok(())
        } else {
            errors.dedup();
            Err(errors.join("; "))
        }
    }

    /// A reload that changed only TLS settings or files: re-reads the certificates, keys
    /// and CAs of `config`; new handshakes use them, open connections and the handler's
    /// instances are untouched. `Err` (a file that does not load) changes nothing.
    pub fn update_tls(&self, config: &HandlerConfig) -> Result<(), TlsError> {
        let tls = Tls::load(config)?;
        self.tls_cell.set(tls);
        Ok(())
    }

    /// Asks every shard to stop: listeners close at once, open connections get the grace
    /// period (`HandlerConfig::grace`) to finish, then the rest is closed.
    pub fn stop(&self) {
        for control in &self.controls {
            control.shutdown();
        }
    }

    /// What `/healthz` asks whether the handler's shards still answer.
    pub fn probe(&self) -> Probe {
        Probe {
            controls: self.controls.clone(),
        }
    }

    /// True once every shard has ended (nothing left to do, or stopped).
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Waits for every shard to end. `Err` carries the first failure.
    pub fn wait(self) -> Result<(), String> {
        let mut result = Ok(());
        for thread in self.threads {
            match thread.join() {
                Ok(ShardExit::Done) => {}
                Ok(ShardExit::Failed(msg)) => {
                    if result.is_ok() {
                        result = Err(msg);
                    }
                }
                Err(_) => {
                    if result.is_ok() {
                        result = Err("a shard thread panicked".into());
                    }
                }
            }
        }
        result
    }
}

/// Asks a running handler's shards whether their loops still turn (for `/healthz`).
#[derive(Clone)]
pub struct Probe {
    controls: Vec<Arc<Control>>,
}

impl Probe {
    /// Whether any shard's thread has ended (the handler stopped, or is stopping).
    pub fn stopped(&self) -> bool {
        self.controls.iter().any(|c| c.exited())
    }

    /// `Ok` when every shard's loop answered within `within`; `Err` says which did not.
    /// A shard in a guest call answers when the call ends (`--event-timeout` bounds it).
    pub fn check(&self, within: std::time::Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + within;
        let pings: Vec<u64> = self.controls.iter().map(|c| c.ping()).collect();
        loop {
            let mut waiting = None;
            for (index, (control, seq)) in self.controls.iter().zip(&pings).enumerate() {
                if control.exited() {
                    return Err(format!("shard {index} has stopped"));
                }
                if !control.answered(*seq) {
                    waiting.get_or_insert(index);
                }
            }
            let Some(index) = waiting else {
                return Ok(());
            };
            if std::time::Instant::now() >= deadline {
                return Err(format!("shard {index} did not answer within {within:?}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

impl Bound {
    /// Starts `handler` on these listeners. Returns once every shard's guest has run
    /// `init`.
    pub fn start(self, handler: Arc<Handler>, sink: LogSink) -> Result<Service, ServeError> {
        let Bound {
            config,
            tcp_addrs,
            tls_addrs,
            udp_addrs,
            per_shard_tcp,
            per_shard_tls,
            per_shard_udp,
            tls,
        } = self;
        let shards = config.shards.max(1);
        let config = Arc::new(config);
        let policy = Arc::new(Policy::new(config.allow.clone(), config.allow_dns));
        let stats = Arc::new(HandlerStats::listening(&tcp_addrs, &tls_addrs, &udp_addrs));
        let tls_cell = TlsCell::new(tls);
        // One report per TLS listener, shared by its shards (one log budget for them).
        let reports: Vec<Arc<HandshakeReport>> = tls_addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                Arc::new(HandshakeReport {
                    stats: stats.clone(),
                    server: (tcp_addrs.len() + i + 1) as u32,
                    addr: *addr,
                    log: crate::log::InstanceLog::new(
                        crate::log::LogTag::new(&handler.name),
                        sink.clone(),
                    ),
                })
            })
            .collect();
        let (started_tx, started_rx) = mpsc::channel();
        let mut controls = Vec::new();
        let mut threads = Vec::new();
        let shard_sources = per_shard_tcp
            .into_iter()
            .zip(per_shard_tls)
            .zip(per_shard_udp);
        for (index, ((mut tcp, tls), udp)) in shard_sources.enumerate() {
            for (listener, report) in tls.into_iter().zip(&reports) {
                tcp.push(HostListener {
                    source: Box::new(TlsListenerSource {
                        tcp: listener.source,
                        cell: tls_cell.clone(),
                        report: report.clone(),
                    }),
                    ..listener
                });
            }
            let control = Arc::new(Control::default());
            let log_tag = crate::log::LogTag {
                handler: handler.name.clone(),
                shard: (shards > 1).then_some(index),
                connection: None,
            };
            let spec = ShardSpec {
                index,
                handler: handler.clone(),
                config: config.clone(),
                policy: policy.clone(),
                stats: stats.clone(),
                log_tag,
                sink: sink.clone(),
                control: control.clone(),
                tcp,
                udp,
                tls: tls_cell.clone(),
                clock: Clock::Real,
                network: None,
                observer: None,
            };
            let thread = shard::spawn(spec, started_tx.clone())
                .map_err(|e| ServeError::Start(format!("cannot start a shard thread: {e}")))?;
            controls.push(control);
            threads.push(thread);
        }
        drop(started_tx);
        let service = Service {
            tcp: tcp_addrs,
            udp: udp_addrs,
            tls: tls_addrs,
            stats,
            config,
            controls,
            threads,
            tls_cell,
        };
        for _ in 0..shards {
            match started_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(msg)) => {
                    service.stop();
                    let _ = service.wait();
                    return Err(ServeError::Start(msg));
                }
                Err(_) => {
                    service.stop();
                    let _ = service.wait();
                    return Err(ServeError::Start("a shard stopped before starting".into()));
                }
            }
        }
        Ok(service)
    }
}
