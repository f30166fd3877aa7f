//! What one handler runs with: its listeners, shards, arguments and socket settings.
//! Built by the CLI (`netlet run`) or by embedders.

use std::net::SocketAddr;

use crate::policy::AllowRule;

/// Node's default `highWaterMark` for a socket's write queue.
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024;

/// Past this many queued bytes a socket is destroyed with an error rather than growing.
pub const DEFAULT_MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;

/// Node's default listen backlog.
pub const BACKLOG: i32 = 511;

/// One handler's settings.
#[derive(Clone, Debug)]
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
    /// Node's `allowHalfOpen` for accepted sockets.
    pub allow_half_open: bool,
    /// Write queue size at which `write` starts returning false.
    pub high_water_mark: usize,
    /// Write queue size past which the socket is destroyed.
    pub max_write_buffer: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            tcp: Vec::new(),
            udp: Vec::new(),
            shards: 1,
            args: Vec::new(),
            allow: Vec::new(),
            allow_half_open: false,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            max_write_buffer: DEFAULT_MAX_WRITE_BUFFER,
        }
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
}
