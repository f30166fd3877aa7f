//! What one handler runs with ([`HandlerConfig`]): its listeners, shards, arguments,
//! permissions and limits, their defaults, and the one validation every way of setting
//! them goes through. The fixed limits and defaults are in [`limits`], how values are
//! written and read in [`values`].
//!
//! The settings are defined once, in the [`settings`] table: `netlet run`'s flags
//! ([`flags`]), a manifest's `[handler.NAME]` tables and a scenario file's `[handler]`
//! table ([`document`]) are all read through it, and it says which changes a running
//! handler can take by a hot swap and which need a restart.

pub mod document;
pub mod flags;
pub mod limits;
pub mod settings;
pub mod values;

pub use limits::*;
pub use values::*;

use std::path::PathBuf;
use std::time::Duration;

use crate::policy::AllowRule;

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

/// What the TLS layer reads of a handler's settings (`transport::tls`): its listeners'
/// certificates, ALPN protocols and client CA, and the roots its guests' TLS connects
/// trust.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsSettings {
    /// It has TLS listeners (`--tls`): only then is a server side set up.
    pub listeners: bool,
    /// Certificate chains and their keys, paired in order; the first is the default.
    pub certs: Vec<(PathBuf, PathBuf)>,
    pub alpn: Vec<String>,
    pub client_ca: Option<PathBuf>,
    pub handshake_timeout: Duration,
    pub ca: Option<PathBuf>,
}

impl TlsSettings {
    /// Every file they name.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.certs
            .iter()
            .flat_map(|(cert, key)| [cert, key])
            .chain(&self.client_ca)
            .chain(&self.ca)
    }
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
    /// Its TLS settings, as the TLS layer reads them.
    pub fn tls_settings(&self) -> TlsSettings {
        TlsSettings {
            listeners: !self.tls.is_empty(),
            certs: self
                .tls_cert
                .iter()
                .cloned()
                .zip(self.tls_key.iter().cloned())
                .collect(),
            alpn: self.tls_alpn.clone(),
            client_ca: self.tls_client_ca.clone(),
            handshake_timeout: self.tls_handshake_timeout,
            ca: self.tls_ca.clone(),
        }
    }

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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

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
