//! Turning the host strings a guest passes (`localhost`, `127.0.0.1`, `[::1]`,
//! `example.com`) into addresses: literals and `localhost` at once, other names through
//! the system resolver in a task, so a guest call never blocks on DNS.

use std::io;
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

/// Resolves `host` through the system resolver (in tokio's blocking pool).
pub async fn lookup(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address"),
        ));
    }
    Ok(addrs)
}

/// `ip:port`, with brackets around IPv6, as Node prints addresses in messages.
pub fn display_addr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("{}:{}", a.ip(), a.port()),
    }
}
