//! What one handler runs with: its listeners, shards, arguments and socket settings.
//! Built by the CLI (`netlet run`) or by embedders.

use std::net::SocketAddr;
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

/// Default `--event-timeout`: the CPU time one guest call may take.
pub const DEFAULT_EVENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Default `--grace`: how long open connections may finish after SIGINT/SIGTERM.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Default `--drain-timeout`: how long connections may stay on replaced code.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Sockets (TCP clients and UDP sockets) one instance may create.
pub const MAX_GUEST_SOCKETS: usize = 1024;

/// Pending guest timers per instance; asking for more traps the guest.
pub const MAX_TIMERS: usize = 10_000;

/// Outbound connects and name lookups one instance may have running at once.
pub const MAX_IN_FLIGHT: u32 = 256;

/// How instances map to connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// One instance per shard serves every connection (one Node process).
    #[default]
    Shared,
    /// A fresh instance per connection: a crash or state never crosses connections.
    Connection,
}

/// What a trap does to the handler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TrapPolicy {
    /// Start a fresh instance (with backoff when it keeps trapping).
    #[default]
    Restart,
    /// Close the handler's listeners and let it stop.
    Close,
}

/// One handler's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerConfig {
    /// TCP addresses to listen on (port 0: any free port).
    pub tcp: Vec<SocketAddr>,
    /// UDP addresses to bind.
    pub udp: Vec<SocketAddr>,
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
    /// Write queue size at which `write` starts returning false.
    pub high_water_mark: usize,
    /// Write queue size past which the socket is destroyed.
    pub max_write_buffer: usize,
    /// Linear memory cap per instance.
    pub max_memory: usize,
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
    /// After a hot swap, how long connections may stay on the old code before they are
    /// closed.
    pub drain_timeout: Duration,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            tcp: Vec::new(),
            udp: Vec::new(),
            shards: 1,
            args: Vec::new(),
            allow: Vec::new(),
            allow_dns: false,
            allow_half_open: false,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            max_write_buffer: DEFAULT_MAX_WRITE_BUFFER,
            max_memory: DEFAULT_MAX_MEMORY,
            event_timeout: DEFAULT_EVENT_TIMEOUT,
            max_connections: None,
            idle_timeout: None,
            isolation: Isolation::Shared,
            on_trap: TrapPolicy::Restart,
            grace: DEFAULT_GRACE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Parses `--shards`: a count, or `auto` (one per core).
pub fn parse_shards(s: &str) -> Result<usize, String> {
    if s == "auto" {
        return Ok(std::thread::available_parallelism().map_or(1, |n| n.get()));
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid shard count {s:?}: expected 1..1024 or `auto`"
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
}
