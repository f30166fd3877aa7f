//! How setting values are written and read: sizes (`64MiB`), durations (`500ms`),
//! shard counts (`auto`), listen addresses (`127.0.0.1:8124`, `[::1]:0=8124`).

use std::net::SocketAddr;
use std::time::Duration;

use super::MAX_SHARDS;

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
    use super::super::limits::*;
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
}
