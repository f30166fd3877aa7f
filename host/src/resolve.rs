//! Turning the host strings a guest passes (`localhost`, `127.0.0.1`, `[::1]`,
//! `example.com`) into addresses: literals and `localhost` at once; other names are
//! looked up by the shard's [`Network`](crate::transport::Network), so a guest call
//! never blocks on DNS. And the one way endpoints are written in messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Addresses a host string stands for without asking DNS: an IP literal (brackets
/// allowed) or `localhost` (IPv4 first, as Node's `verbatim` lookup on Linux). `None`
/// when the name needs resolving.
pub fn resolve_now(host: &str) -> Option<Vec<IpAddr>> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
        return Some(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    None
}

/// Whether `host` could be a DNS name at all (so garbage fails fast as an invalid
/// argument instead of reaching the resolver).
pub fn is_plausible_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `ip:port`, with brackets around an IPv6 address (`[::1]:9`): the one way netlet
/// writes an endpoint, in messages and logs alike, so what a log line suggests can be
/// pasted into `--allow` as it is.
pub fn display_addr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// `host:port` for a destination as a guest wrote it (a name or a literal), bracketing
/// an IPv6 literal as [`display_addr`] does.
pub fn display_target(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
