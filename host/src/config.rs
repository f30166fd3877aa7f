//! What one handler runs with ([`HandlerConfig`]): its listeners, shards, arguments,
//! permissions and limits, their defaults, and the one validation every way of setting
//! them goes through.
//!
//! The settings are defined once, in the [`settings`] table: `netlet run`'s flags
//! ([`flags`]), a manifest's `[handler.NAME]` tables and a scenario file's `[handler]`
//! table ([`document`]) are all read through it, and it says which changes a running
//! handler can take by a hot swap and which need a restart.

pub mod document;
pub mod flags;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::policy::AllowRule;

/// Node's default `highWaterMark` for a socket's write queue.
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024;

/// Past this many queued bytes a socket is destroyed with an error rather than growing.
pub const DEFAULT_MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;

/// Node's default listen backlog.
pub const BACKLOG: i32 = 511;

/// Default `--max-memory`: each instance's linear memory cap.
pub const DEFAULT_MAX_MEMORY: usize = 64 * 1024 * 1024;

/// The smallest `--max-memory`: one WebAssembly page.
pub const MIN_MEMORY: usize = 1 << 16;

/// Default `--max-host-memory`: host memory one instance's queues (socket write queues,
/// UDP send queues) may hold.
pub const DEFAULT_MAX_HOST_MEMORY: usize = 128 << 20;

/// Default `--max-blocking`: how long one event may spend blocked in WASI calls. A Node
/// handler cannot block at all, and while one instance blocks its shard serves nobody.
pub const DEFAULT_MAX_BLOCKING: Duration = Duration::from_millis(10);

/// Default `--event-timeout`: the CPU time one guest call may take.
pub const DEFAULT_EVENT_TIMEOUT: Duration = Duration::from_secs(1);

/// How finely an event's deadline is measured: the engine's epoch advances this often
/// (`engine::EPOCH_TICK`), so it is also the shortest `--event-timeout`, and the longest
/// a preemptive call (`--isolation connection`) runs before its shard serves others.
pub const EVENT_TIMEOUT_RESOLUTION: Duration = Duration::from_millis(5);

/// Default `--grace`: how long open connections may finish after SIGINT/SIGTERM.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Default `--drain-delay`: none; listeners close as soon as SIGTERM comes.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::ZERO;

/// Default `--drain-timeout`: how long connections may stay on replaced code.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Default `--tls-handshake-timeout`: how long a TLS handshake may take (Node's default
/// is 120 s; a client that connects and stays silent holds a handshake slot that long).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most shards a handler may have.
pub const MAX_SHARDS: usize = 1024;

/// Connections a connection-isolation pool is sized for when `--max-connections` does
/// not say.
pub const DEFAULT_POOL_CONNECTIONS: usize = 10_000;

/// Sockets (TCP clients and UDP sockets) one instance may create.
pub const MAX_GUEST_SOCKETS: usize = 1024;

/// Sockets one guest call may open (netlet's and `wasi:sockets` together): each costs
/// the host a registration with its event loop, released only after the call, so a
/// guest opening and closing sockets in a loop must not pile them up.
pub const MAX_SOCKETS_PER_EVENT: u32 = 1024;

/// Pending guest timers per instance; asking for more traps the guest.
pub const MAX_TIMERS: usize = 10_000;

/// Outbound connects and name lookups one instance may have running at once.
pub const MAX_IN_FLIGHT: u32 = 256;

/// How instances map to connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// One instance per shard serves every connection (one Node process).
    #[default]
    Shared,
    /// A fresh instance per connection: a crash or state never crosses connections.
    Connection,
}

/// What a trap does to the handler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrapPolicy {
    /// Start a fresh instance (with backoff when it keeps trapping).
    #[default]
    Restart,
    /// Close the handler's listeners and let it stop.
    Close,
}

/// One handler's settings. [`settings::SETTINGS`] documents each field as the user
/// writes it (`--max-memory`, `max-memory = "32MiB"`).
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerConfig {
    /// TCP addresses to listen on (port 0: any free port).
    pub tcp: Vec<ListenAddr>,
    /// UDP addresses to bind.
    pub udp: Vec<ListenAddr>,
    /// TLS addresses to listen on: TCP with a TLS handshake the host runs.
    pub tls: Vec<ListenAddr>,
    /// Certificate chains (PEM) of the TLS listeners, paired with `tls_key` in order; the
    /// first pair is the default when no SNI matches.
    pub tls_cert: Vec<PathBuf>,
    /// Private keys (PEM: PKCS#8, PKCS#1 or SEC1), one per `tls_cert`.
    pub tls_key: Vec<PathBuf>,
    /// ALPN protocols the TLS listeners accept, in order of preference.
    pub tls_alpn: Vec<String>,
    /// CA certificates (PEM) client certificates must chain to: set, the TLS listeners
    /// require a client certificate (mTLS).
    pub tls_client_ca: Option<PathBuf>,
    /// How long a TLS handshake may take (listeners and the guest's TLS connects).
    pub tls_handshake_timeout: Duration,
    /// CA certificates (PEM) the guest's TLS connections verify servers against, in
    /// place of the platform's roots.
    pub tls_ca: Option<PathBuf>,
    /// Worker threads, each with its own instance (1: Node's model, one instance sees
    /// every connection).
    pub shards: usize,
    /// Arguments passed to the guest's `init`.
    pub args: Vec<String>,
    /// Outbound destinations the guest may reach.
    pub allow: Vec<AllowRule>,
    /// Whether the guest may resolve host names that no `allow` rule names.
    pub allow_dns: bool,
    /// Node's `allowHalfOpen` for accepted sockets.
    pub allow_half_open: bool,
    /// Whether the component may be precompiled machine code (a `.cwasm`), which is
    /// trusted as a native binary would be.
    pub allow_precompiled: bool,
    /// Write queue size at which `write` starts returning false.
    pub high_water_mark: usize,
    /// Write queue size past which the socket is destroyed.
    pub max_write_buffer: usize,
    /// Linear memory cap per instance.
    pub max_memory: usize,
    /// Host memory one instance's queues may hold.
    pub max_host_memory: usize,
    /// Time one event may spend blocked in WASI calls.
    pub max_blocking: Duration,
    /// CPU time one guest call may take before it is interrupted.
    pub event_timeout: Duration,
    /// Node's `server.maxConnections`: accepted connections beyond it are dropped.
    pub max_connections: Option<usize>,
    /// Connections idle this long are destroyed.
    pub idle_timeout: Option<Duration>,
    pub isolation: Isolation,
    pub on_trap: TrapPolicy,
    /// How long open connections may finish after a stop is requested.
    pub grace: Duration,
    /// After SIGTERM, how long the listeners keep accepting (readiness already off)
    /// before they close and `grace` begins.
    pub drain_delay: Duration,
    /// Bind the listeners with `SO_REUSEPORT`, so another process can bind the same
    /// ports (and take them over while this one drains).
    pub reuse_port: bool,
    /// After a hot swap, how long connections may stay on the old code before they are
    /// closed.
    pub drain_timeout: Duration,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            tcp: Vec::new(),
            udp: Vec::new(),
            tls: Vec::new(),
            tls_cert: Vec::new(),
            tls_key: Vec::new(),
            tls_alpn: Vec::new(),
            tls_client_ca: None,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            tls_ca: None,
            shards: 1,
            args: Vec::new(),
            allow: Vec::new(),
            allow_dns: false,
            allow_half_open: false,
            allow_precompiled: false,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            max_write_buffer: DEFAULT_MAX_WRITE_BUFFER,
            max_memory: DEFAULT_MAX_MEMORY,
            max_host_memory: DEFAULT_MAX_HOST_MEMORY,
            max_blocking: DEFAULT_MAX_BLOCKING,
            event_timeout: DEFAULT_EVENT_TIMEOUT,
            max_connections: None,
            idle_timeout: None,
            isolation: Isolation::Shared,
            on_trap: TrapPolicy::Restart,
            grace: DEFAULT_GRACE,
            drain_delay: DEFAULT_DRAIN_DELAY,
            reuse_port: false,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl HandlerConfig {
    /// The one check every configuration passes before it runs, however it was made
    /// (flags, manifest, scenario file, harness builder): `Err` for what cannot run (a
    /// shard count out of range); limits the host cannot enforce as written are brought
    /// to the nearest it can (memory below one page, a zero write queue, a deadline
    /// shorter than the epoch tick), and an idle timeout of zero means none.
    pub fn validate(mut self) -> Result<Self, String> {
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return Err(format!(
                "invalid shard count {}: expected 1..{MAX_SHARDS} or `auto`",
                self.shards
            ));
        }
        self.check_tls()?;
        self.max_memory = self.max_memory.max(MIN_MEMORY);
        self.high_water_mark = self.high_water_mark.max(1);
        self.max_write_buffer = self.max_write_buffer.max(1);
        self.event_timeout = self.event_timeout.max(EVENT_TIMEOUT_RESOLUTION);
        self.idle_timeout = self.idle_timeout.filter(|d| !d.is_zero());
        self.tls_handshake_timeout = self.tls_handshake_timeout.max(Duration::from_millis(1));
        Ok(self)
    }

    /// The TLS settings agree: listeners have certificates, each certificate its key,
    /// ALPN names are 1..=255 bytes.
    fn check_tls(&self) -> Result<(), String> {
        if self.tls_cert.len() != self.tls_key.len() {
            return Err(format!(
                "invalid TLS settings: {} --tls-cert but {} --tls-key: give them in pairs (a certificate, then its key)",
                self.tls_cert.len(),
                self.tls_key.len()
            ));
        }
        if !self.tls.is_empty() && self.tls_cert.is_empty() {
            return Err(
                "invalid TLS settings: a --tls listener needs a certificate: give --tls-cert FILE --tls-key FILE"
                    .to_string(),
            );
        }
        if self.tls.is_empty() && !self.tls_cert.is_empty() {
            return Err("--tls-cert is for TLS listeners: give --tls ADDR as well".to_string());
        }
        if let Some(bad) = self.tls_alpn.iter().find(|p| p.is_empty() || p.len() > 255) {
            return Err(format!(
                "invalid --tls-alpn {bad:?}: a protocol name is 1 to 255 bytes"
            ));
        }
        Ok(())
    }

    /// Whether `new` differs from `self` only in settings a reload applies to the TLS
    /// listeners and clients alone (certificates, keys, ALPN, CAs, the handshake
    /// timeout): the handler's instances stay as they are.
    pub fn only_tls_differs(&self, new: &HandlerConfig) -> bool {
        settings::SETTINGS
            .iter()
            .filter(|s| s.on_change != settings::OnChange::Tls)
            .all(|s| s.same(self, new))
    }

    /// Instances a connection-isolation pool holds for this handler: one per connection
    /// it may have open, plus each shard's primary and one being replaced.
    pub fn pool_size(&self) -> u32 {
        let connections = self.max_connections.unwrap_or(DEFAULT_POOL_CONNECTIONS);
        u32::try_from(connections.saturating_add(2 * self.shards.max(1))).unwrap_or(u32::MAX)
    }

    /// The settings whose change from `self` to `new` a running handler cannot take by
    /// a hot swap: it must be restarted (see [`settings::OnChange`]). Empty: swap.
    pub fn restart_needed_for(&self, new: &HandlerConfig) -> Vec<&'static str> {
        let pooled =
            self.isolation == Isolation::Connection || new.isolation == Isolation::Connection;
        settings::SETTINGS
            .iter()
            .filter(|s| match s.on_change {
                settings::OnChange::Swap | settings::OnChange::Tls => false,
                settings::OnChange::Restart => true,
                settings::OnChange::RestartIfPooled => pooled,
            })
            .filter(|s| !s.same(self, new))
            .map(|s| s.name)
            .collect()
    }

    /// Whether going from `self` to `new` needs a restart rather than a hot swap.
    pub fn needs_restart(&self, new: &HandlerConfig) -> bool {
        !self.restart_needed_for(new).is_empty()
    }
}

/// Parses `--shards`: a count, or `auto` (one per core).
pub fn parse_shards(s: &str) -> Result<usize, String> {
    if s == "auto" {
        return Ok(std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_SHARDS)));
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_SHARDS).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid shard count {s:?}: expected 1..{MAX_SHARDS} or `auto`"
        )),
    }
}

/// Parses a byte size: `65536`, `64KiB`, `64MiB`, `1GiB` (also `K`/`M`/`G`, `KB`/`MB`/`GB`,
/// all powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 65536, 64KiB, 64MiB, 1GiB"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size unit in {s:?}: use KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a duration: `1500ms`, `2s`, `5m`, `1h`, or bare seconds (`2`, `0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("invalid duration {s:?}: expected e.g. 500ms, 2s, 5m");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A byte size as [`parse_size`] reads it, in the largest unit that divides it (`64MiB`).
pub fn format_size(bytes: usize) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// A duration as [`parse_duration`] reads it (`1s`, `500ms`, `5m`); exact.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 {
        if secs != 0 && secs.is_multiple_of(3600) {
            format!("{}h", secs / 3600)
        } else if secs != 0 && secs.is_multiple_of(60) {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        }
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}", d.as_secs_f64())
    }
}

/// A listener the operator configures (`--tcp`, `--tls`, `--udp`): where it is bound,
/// and the port the handler's code knows it by. Code that names its port, as Node's
/// `server.listen(8124)` does, gets the listener whose `port` it names: `--tcp
/// 127.0.0.1:9000=8124` serves such code on 9000; without `=PORT`, the address's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr {
    pub addr: SocketAddr,
    /// The port the code names (`listen(port)`, `bind(port)`).
    pub code_port: u16,
}

impl ListenAddr {
    pub fn new(addr: SocketAddr) -> Self {
        ListenAddr {
            addr,
            code_port: addr.port(),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr::new(addr)
    }
}

impl std::ops::Deref for ListenAddr {
    type Target = SocketAddr;
    fn deref(&self) -> &SocketAddr {
        &self.addr
    }
}

impl PartialEq<SocketAddr> for ListenAddr {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.addr == *other && self.code_port == other.port()
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;
    /// `ADDR` or `ADDR=PORT` (see [`parse_listen_addr`] for ADDR).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.rsplit_once('=') {
            None => parse_listen_addr(s).map(ListenAddr::new),
            Some((addr, port)) => {
                let addr = parse_listen_addr(addr)?;
                let code_port = port.parse::<u16>().map_err(|_| {
                    format!(
                        "invalid address {s:?}: after `=` comes the port the handler's code \
                         listens on, 0 to 65535 (e.g. 127.0.0.1:0=8124)"
                    )
                })?;
                Ok(ListenAddr { addr, code_port })
            }
        }
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.code_port != self.addr.port() {
            write!(f, "={}", self.code_port)?;
        }
        Ok(())
    }
}

/// Parses a listen address as `netlet run --tcp/--udp` accept it: `HOST:PORT`,
/// `[V6]:PORT`, `localhost:PORT`, or a bare `PORT` (every interface, as Node's
/// `server.listen(port)`: `[::]` accepting IPv4 too).
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let bad = || {
        format!(
            "invalid address {s:?}: expected HOST:PORT, [IPV6]:PORT or PORT (e.g. 127.0.0.1:8124)"
        )
    };
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match s.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => {
            let port = port.parse::<u16>().map_err(|_| bad())?;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_with_the_codes_port() {
        let l: ListenAddr = "127.0.0.1:0=8124".parse().unwrap();
        assert_eq!(l.addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(l.code_port, 8124);
        assert_eq!(l.to_string(), "127.0.0.1:0=8124");
        let l: ListenAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(l.code_port, 9000);
        assert_eq!(l.to_string(), "[::1]:9000");
        let e = "127.0.0.1:0=x".parse::<ListenAddr>().unwrap_err();
        assert!(e.contains("after `=` comes the port"), "{e}");
        assert!("nowhere=80".parse::<ListenAddr>().is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_addr("127.0.0.1:8124").unwrap(),
            "127.0.0.1:8124".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("[::1]:0").unwrap(),
            "[::1]:0".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("localhost:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("8124").unwrap(),
            "[::]:8124".parse().unwrap()
        );
        for bad in ["", "host:1", "1.2.3.4", "1.2.3.4:70000", "[::1]"] {
            assert!(parse_listen_addr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn formatted_values_read_back_the_same() {
        for n in [0, 1, 1000, 1024, 65536, 64 << 20, (1 << 30) + 1, 3 << 30] {
            assert_eq!(
                parse_size(&format_size(n)).unwrap(),
                n,
                "{}",
                format_size(n)
            );
        }
        assert_eq!(format_size(DEFAULT_MAX_MEMORY), "64MiB");
        assert_eq!(format_size(DEFAULT_HIGH_WATER_MARK), "64KiB");
        for d in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_secs(30),
            Duration::from_secs(300),
            Duration::from_secs(7200),
            Duration::from_micros(250),
        ] {
            assert_eq!(
                parse_duration(&format_duration(d)).unwrap(),
                d,
                "{}",
                format_duration(d)
            );
        }
        assert_eq!(format_duration(DEFAULT_DRAIN_TIMEOUT), "30s");
        assert_eq!(format_duration(DEFAULT_EVENT_TIMEOUT), "1s");
    }

    #[test]
    fn validation_brings_limits_within_what_the_host_enforces() {
        let c = HandlerConfig {
            max_memory: 1,
            high_water_mark: 0,
            max_write_buffer: 0,
            event_timeout: Duration::ZERO,
            idle_timeout: Some(Duration::ZERO),
            ..HandlerConfig::default()
        }
        .validate()
        .unwrap();
        assert_eq!(c.max_memory, MIN_MEMORY);
        assert_eq!((c.high_water_mark, c.max_write_buffer), (1, 1));
        assert_eq!(c.event_timeout, EVENT_TIMEOUT_RESOLUTION);
        assert_eq!(c.idle_timeout, None);
        let defaults = HandlerConfig::default();
        assert_eq!(defaults.clone().validate().unwrap(), defaults);
        for shards in [0, MAX_SHARDS + 1] {
            let e = HandlerConfig {
                shards,
                ..HandlerConfig::default()
            }
            .validate()
            .unwrap_err();
            assert!(e.contains("invalid shard count"), "{e}");
        }
    }

    #[test]
    fn listeners_shards_and_isolation_restart_limits_swap() {
        let old = HandlerConfig::default();
        let swap = |new: HandlerConfig| old.restart_needed_for(&new);
        assert!(swap(old.clone()).is_empty());
        for new in [
            HandlerConfig {
                max_memory: 1 << 20,
                ..old.clone()
            },
            HandlerConfig {
                max_connections: Some(5),
                ..old.clone()
            },
            HandlerConfig {
                args: vec!["x".into()],
                ..old.clone()
            },
            HandlerConfig {
                allow_dns: true,
                ..old.clone()
            },
            HandlerConfig {
                event_timeout: Duration::from_secs(2),
                ..old.clone()
            },
            HandlerConfig {
                drain_timeout: Duration::from_secs(2),
                ..old.clone()
            },
            HandlerConfig {
                allow_precompiled: true,
                ..old.clone()
            },
        ] {
            assert!(swap(new.clone()).is_empty(), "{new:?}");
        }
        let port = |p: u16| vec![ListenAddr::new(SocketAddr::from(([127, 0, 0, 1], p)))];
        assert_eq!(
            swap(HandlerConfig {
                tcp: port(1),
                ..old.clone()
            }),
            ["tcp"]
        );
        assert_eq!(
            swap(HandlerConfig {
                udp: port(1),
                ..old.clone()
            }),
            ["udp"]
        );
        assert_eq!(
            swap(HandlerConfig {
                shards: 2,
                ..old.clone()
            }),
            ["shards"]
        );
        assert_eq!(
            swap(HandlerConfig {
                isolation: Isolation::Connection,
                ..old.clone()
            }),
            ["isolation"]
        );
    }

    #[test]
    fn tls_files_and_options_change_without_touching_the_code() {
        let old = HandlerConfig {
            tls: vec!["127.0.0.1:0".parse().unwrap()],
            tls_cert: vec!["a.pem".into()],
            tls_key: vec!["a.key".into()],
            ..HandlerConfig::default()
        };
        let rotated = HandlerConfig {
            tls_cert: vec!["b.pem".into()],
            tls_key: vec!["b.key".into()],
            tls_alpn: vec!["h2".into()],
            tls_handshake_timeout: Duration::from_secs(1),
            tls_client_ca: Some("ca.pem".into()),
            tls_ca: Some("roots.pem".into()),
            ..old.clone()
        };
        assert!(!old.needs_restart(&rotated));
        assert!(old.only_tls_differs(&rotated));
        let more = HandlerConfig {
            args: vec!["x".into()],
            ..rotated.clone()
        };
        assert!(!old.only_tls_differs(&more));
        let moved = HandlerConfig {
            tls: vec!["127.0.0.1:1".parse().unwrap()],
            ..old.clone()
        };
        assert_eq!(old.restart_needed_for(&moved), ["tls"]);
    }

    #[test]
    fn tls_settings_must_agree() {
        let base = HandlerConfig {
            tls: vec!["127.0.0.1:0".parse().unwrap()],
            ..HandlerConfig::default()
        };
        let e = base.clone().validate().unwrap_err();
        assert!(e.contains("--tls-cert"), "{e}");
        let e = HandlerConfig {
            tls_cert: vec!["a".into()],
            ..base.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("in pairs"), "{e}");
        let e = HandlerConfig {
            tls_cert: vec!["a".into()],
            tls_key: vec!["b".into()],
            ..HandlerConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("--tls ADDR"), "{e}");
        let ok = HandlerConfig {
            tls_cert: vec!["a".into()],
            tls_key: vec!["b".into()],
            tls_handshake_timeout: Duration::ZERO,
            ..base
        }
        .validate()
        .unwrap();
        assert_eq!(ok.tls_handshake_timeout, Duration::from_millis(1));
    }

    #[test]
    fn a_changed_pool_restarts_a_connection_isolated_handler() {
        let old = HandlerConfig {
            isolation: Isolation::Connection,
            ..HandlerConfig::default()
        };
        // Whatever sizes the pool (see `pool_size`) or its slots needs a new engine.
        for new in [
            HandlerConfig {
                max_memory: 1 << 20,
                ..old.clone()
            },
            HandlerConfig {
                max_connections: Some(5),
                ..old.clone()
            },
            HandlerConfig {
                shards: 2,
                ..old.clone()
            },
        ] {
            assert!(
                new.pool_size() != old.pool_size() || new.max_memory != old.max_memory,
                "{new:?}"
            );
            assert!(old.needs_restart(&new), "{new:?}");
        }
        let same_pool = HandlerConfig {
            idle_timeout: Some(Duration::from_secs(1)),
            ..old.clone()
        };
        assert_eq!(same_pool.pool_size(), old.pool_size());
        assert!(!old.needs_restart(&same_pool));
    }

    #[test]
    fn the_pool_has_room_for_every_connection_and_each_shards_primaries() {
        let c = HandlerConfig {
            max_connections: Some(100),
            shards: 3,
            ..HandlerConfig::default()
        };
        assert_eq!(c.pool_size(), 106);
        assert_eq!(HandlerConfig::default().pool_size(), 10_002);
        let huge = HandlerConfig {
            max_connections: Some(usize::MAX),
            ..HandlerConfig::default()
        };
        assert_eq!(huge.pool_size(), u32::MAX);
    }
}
