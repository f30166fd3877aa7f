//! The outbound permission policy: which addresses a guest may reach.
//!
//! One allow-list (`--allow HOST:PORT`, repeatable) governs every outbound path: TCP
//! `net.connect`, UDP `send`/`connect`, and raw `wasi:sockets`. Nothing is allowed by
//! default. A UDP socket may always answer a peer that has sent it a datagram, as a TCP
//! server may always write to a connection it accepted.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One `--allow` entry: a host pattern and a port pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    host: HostPattern,
    ports: PortPattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// An address and a prefix length (a plain address has the full length).
    Net(IpAddr, u8),
    /// A host name, matched by name (case-insensitive) before resolution, and by the
    /// addresses it resolved to when the rule was parsed.
    Name(String, Vec<IpAddr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

/// Why an `--allow` entry did not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid --allow {input:?}: {reason} (expected HOST:PORT, e.g. 127.0.0.1:8080, localhost:*, 10.0.0.0/8:1000-2000, [::1]:53)"
)]
pub struct AllowRuleError {
    input: String,
    reason: String,
}

impl FromStr for AllowRule {
    type Err = AllowRuleError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| AllowRuleError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (host, port) = input
            .rsplit_once(':')
            .ok_or_else(|| fail("missing :PORT"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ports = match port {
            "*" => PortPattern::Any,
            _ => {
                let (lo, hi) = port.split_once('-').unwrap_or((port, port));
                let lo: u16 = lo.parse().map_err(|_| fail("bad port"))?;
                let hi: u16 = hi.parse().map_err(|_| fail("bad port"))?;
                if lo > hi {
                    return Err(fail("empty port range"));
                }
                PortPattern::Range(lo, hi)
            }
        };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some((addr, len)) = host.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| fail("bad CIDR address"))?;
            let len: u8 = len.parse().map_err(|_| fail("bad CIDR prefix length"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if len > max {
                return Err(fail("CIDR prefix length too long"));
            }
            HostPattern::Net(addr, len)
        } else if let Ok(addr) = host.parse::<IpAddr>() {
            HostPattern::Net(addr, if addr.is_ipv4() { 32 } else { 128 })
        } else if !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            let name = host.to_ascii_lowercase();
            let addrs = resolve_now(&name);
            HostPattern::Name(name, addrs)
        } else {
            return Err(fail("bad host"));
        };
        Ok(AllowRule { host, ports })
    }
}

/// Resolves a rule's host name once, when the rule is parsed. `localhost` never touches DNS.
fn resolve_now(name: &str) -> Vec<IpAddr> {
    if name == "localhost" {
        return vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ];
    }
    use std::net::ToSocketAddrs;
    (name, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

fn in_net(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (canonical(addr), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are their IPv4 address, so a rule
/// cannot be side-stepped by spelling an address differently.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    }
}

impl AllowRule {
    fn port_ok(&self, port: u16) -> bool {
        match self.ports {
            PortPattern::Any => true,
            PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
        }
    }

    fn allows_addr(&self, addr: SocketAddr) -> bool {
        self.port_ok(addr.port())
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Net(net, len) => in_net(addr.ip(), *net, *len),
                HostPattern::Name(_, addrs) => {
                    addrs.iter().any(|a| canonical(*a) == canonical(addr.ip()))
                }
            }
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Net(addr @ IpAddr::V4(_), 32) => write!(f, "{addr}")?,
            HostPattern::Net(addr @ IpAddr::V6(_), 128) => write!(f, "[{addr}]")?,
            HostPattern::Net(addr @ IpAddr::V4(_), len) => write!(f, "{addr}/{len}")?,
            HostPattern::Net(addr, len) => write!(f, "[{addr}/{len}]")?,
            HostPattern::Name(name, _) => f.write_str(name)?,
        }
        match self.ports {
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Range(lo, hi) if lo == hi => write!(f, ":{lo}"),
            PortPattern::Range(lo, hi) => write!(f, ":{lo}-{hi}"),
        }
    }
}

/// What a guest wants to do with an address: the policy answers by use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// An outbound TCP connection (`net.connect`, `wasi:sockets` connect).
    Connect,
    /// A UDP datagram sent to an address.
    Send,
    /// A UDP socket's `connect` (fixing its peer).
    UdpConnect,
    /// A local address to bind: an ephemeral port (0) is what every client socket gets;
    /// a chosen one is a listener the operator did not configure, so it needs a rule.
    Bind,
    /// The same for a UDP socket.
    UdpBind,
    /// `wasi:sockets` listen: a listener of the guest's own.
    Listen,
    /// Resolving a host name (a DNS query is itself reaching out: it can carry data).
    Lookup,
    /// What arrives on a socket the policy already let the guest have.
    Receive,
}

impl Use {
    /// How log lines name it: `denied {what} to {target}`.
    pub fn what(self) -> &'static str {
        match self {
            Use::Connect => "connect",
            Use::Send => "UDP send",
            Use::UdpConnect => "UDP connect",
            Use::Bind => "bind",
            Use::UdpBind => "UDP bind",
            Use::Listen => "listen",
            Use::Lookup => "name lookup",
            Use::Receive => "receive",
        }
    }
}

/// The allow-list as a whole, and whether names no rule names may be resolved
/// (`--allow-dns`): every outbound path asks [`Policy::permits`] or
/// [`Policy::permits_name`].
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Vec<AllowRule>,
    allow_dns: bool,
}

impl Policy {
    /// A policy allowing exactly what `rules` allow, resolving names only when a rule
    /// names them or `allow_dns` is on.
    pub fn new(rules: Vec<AllowRule>, allow_dns: bool) -> Self {
        Self { rules, allow_dns }
    }

    /// Whether the guest may use `addr` for `what`.
    pub fn permits(&self, what: Use, addr: SocketAddr) -> bool {
        match what {
            Use::Receive => true,
            Use::Bind | Use::UdpBind => addr.port() == 0 || self.allows(addr),
            Use::Connect | Use::Send | Use::UdpConnect | Use::Listen | Use::Lookup => {
                self.allows(addr)
            }
        }
    }

    /// Whether the guest may use the host name `host` (as it wrote it) with `port` for
    /// `what`: a rule names it (then whatever it resolves to is allowed), or, for a
    /// lookup, `--allow-dns` is on and some rule could match what it resolves to.
    pub fn permits_name(&self, what: Use, host: &str, port: u16) -> bool {
        self.allows_name(host, port)
            || (what == Use::Lookup && self.allow_dns && self.any_for_port(port))
    }

    /// Whether any rule allows reaching `addr`.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        self.rules.iter().any(|rule| rule.allows_addr(addr))
    }

    /// Whether a rule names `host` (a host name, as the guest wrote it) with `port`:
    /// then whatever the name resolves to is allowed.
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        self.rules.iter().any(|rule| {
            rule.port_ok(port)
                && match &rule.host {
                    HostPattern::Any => true,
                    HostPattern::Name(name, _) => name.eq_ignore_ascii_case(host),
                    HostPattern::Net(..) => false,
                }
        })
    }

    /// Whether some rule could allow a destination on `port` (used to refuse at once a
    /// name no rule could match after resolution).
    pub fn any_for_port(&self, port: u16) -> bool {
        self.rules.iter().any(|rule| rule.port_ok(port))
    }

    /// True when nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The one log line for a refusal: `denied connect to 10.0.0.1:80 (not allowed; run
/// with --allow 10.0.0.1:80 to permit it)`. `target` is written by
/// [`crate::resolve::display_addr`] or [`crate::resolve::display_target`].
pub fn denial(what: Use, target: &str) -> String {
    format!(
        "denied {} to {target} (not allowed; run with --allow {target} to permit it)",
        what.what()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> AllowRule {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_and_matches() {
        let p = Policy::new(
            vec![
                rule("127.0.0.1:8124"),
                rule("10.0.0.0/8:1000-2000"),
                rule("[::1]:*"),
                rule("localhost:41234"),
            ],
            false,
        );
        assert!(p.allows("127.0.0.1:8124".parse().unwrap()));
        assert!(!p.allows("127.0.0.1:8125".parse().unwrap()));
        assert!(!p.allows("127.0.0.2:8124".parse().unwrap()));
        assert!(p.allows("10.200.3.4:1500".parse().unwrap()));
        assert!(!p.allows("11.0.0.1:1500".parse().unwrap()));
        assert!(p.allows("[::1]:9".parse().unwrap()));
        assert!(p.allows("[::ffff:127.0.0.1]:8124".parse().unwrap()));
        assert!(p.allows("127.0.0.1:41234".parse().unwrap()));
        assert!(p.allows_name("LOCALHOST", 41234));
        assert!(!p.allows_name("localhost", 41235));
        assert!(!Policy::default().allows("127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "8080",
            "host",
            "1.2.3.4:",
            "1.2.3.4:x",
            "1.2.3.4:9-1",
            "1.2.3.4/33:1",
            "a b:1",
        ] {
            assert!(bad.parse::<AllowRule>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(rule("[::1]:53").to_string(), "[::1]:53");
        assert_eq!(rule("*:*").to_string(), "*:*");
    }
}
