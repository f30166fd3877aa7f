//! The table of a handler's settings, each defined once: its name (the flag `--NAME` of
//! `netlet run`, the key of a manifest's `[handler.NAME]` table and of a scenario file's
//! `[handler]` table), its help, how its values are written and parsed, and what a
//! running handler needs when it changes (a hot swap, or a restart).
//!
//! Defaults are [`HandlerConfig::default`]'s, and the help shows them from there; what a
//! value may not be is decided by [`HandlerConfig::validate`]. Adding a setting is one
//! field of `HandlerConfig` and one entry of [`SETTINGS`].

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use super::{HandlerConfig, Isolation, TrapPolicy};
use crate::policy::AllowRule;

/// A value as written: a flag's text, or a TOML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Text(&'a str),
    Integer(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Value<'a>>),
    /// What else a TOML file can hold (a table, a date), by its name, for the error.
    Other(&'static str),
}

impl Value<'_> {
    /// What kind of value it is, in TOML's words ("string", "integer", ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::List(_) => "array",
            Value::Other(name) => name,
        }
    }

    /// The value as a string.
    pub fn text(&self) -> Result<&str, String> {
        match self {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected a string, found {}", other.type_name())),
        }
    }

    /// A string, or a list of strings.
    pub fn texts(&self) -> Result<Vec<&str>, String> {
        match self {
            Value::Text(s) => Ok(vec![s]),
            Value::List(items) => items.iter().map(Value::text).collect(),
            other => Err(format!(
                "expected a string or an array of strings, found {}",
                other.type_name()
            )),
        }
    }
}

/// How a setting is given on `netlet run`'s command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// `--NAME`, on or off.
    Switch,
    /// `--NAME VALUE`, once.
    One,
    /// `--NAME VALUE`, repeatable; a list in a file.
    Many,
    /// Everything after `--`.
    Trailing,
}

/// What a running handler needs when a setting changes (on SIGHUP or `--watch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChange {
    /// The new code is swapped in with the new value; listeners and open connections
    /// stay.
    Swap,
    /// The handler is restarted: its listeners, shards or instance model change.
    Restart,
    /// Applied to the TLS listeners and the guest's TLS connects alone: new handshakes
    /// use the new value; the handler's instances and open connections are untouched.
    Tls,
    /// Restarted when either side runs in connection isolation: the value sizes the
    /// pool of instances, which belongs to the engine (see
    /// [`HandlerConfig::pool_size`]); swapped otherwise.
    RestartIfPooled,
}

/// One setting.
pub struct Setting {
    /// The flag's, the manifest key's and the scenario key's name.
    pub name: &'static str,
    /// One paragraph: what it does, and its default where that is not a value.
    pub help: &'static str,
    pub arity: Arity,
    /// What a value looks like (`SIZE`), for help.
    pub value_name: &'static str,
    /// The values it accepts, when they are a fixed list.
    pub choices: &'static [&'static str],
    pub on_change: OnChange,
    set: fn(&mut HandlerConfig, &Value<'_>) -> Result<(), String>,
    show: fn(&HandlerConfig) -> Option<String>,
    same: fn(&HandlerConfig, &HandlerConfig) -> bool,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting").field("name", &self.name).finish()
    }
}

impl Setting {
    /// Parses `value` into `config`'s field; `Err` says what is wrong with it.
    pub fn set(&self, config: &mut HandlerConfig, value: &Value<'_>) -> Result<(), String> {
        (self.set)(config, value)
    }

    /// `config`'s value, written as the user would write it; `None` when it is unset
    /// (no listener, no limit, off).
    pub fn show(&self, config: &HandlerConfig) -> Option<String> {
        (self.show)(config)
    }

    /// Whether `a` and `b` have the same value.
    pub fn same(&self, a: &HandlerConfig, b: &HandlerConfig) -> bool {
        (self.same)(a, b)
    }

    /// The default, written as the user would write it (`64MiB`), when it is a value.
    pub fn default_text(&self) -> Option<String> {
        self.show(&HandlerConfig::default())
    }
}

/// How one kind of value is written, parsed and shown.
trait Format {
    type Of: PartialEq;
    const ARITY: Arity = Arity::One;
    const VALUE_NAME: &'static str;
    const CHOICES: &'static [&'static str] = &[];
    fn parse(value: &Value<'_>) -> Result<Self::Of, String>;
    fn show(value: &Self::Of) -> Option<String>;
}

/// Listen addresses: `HOST:PORT`, `[IPV6]:PORT`, `PORT`, each perhaps with `=PORT`, the
/// port the handler's code names.
struct Addrs;

impl Format for Addrs {
    type Of = Vec<super::ListenAddr>;
    const ARITY: Arity = Arity::Many;
    const VALUE_NAME: &'static str = "ADDR";
    fn parse(value: &Value<'_>) -> Result<Self::Of, String> {
        value.texts()?.into_iter().map(str::parse).collect()
    }
    fn show(value: &Self::Of) -> Option<String> {
        join(value)
    }
}

/// File paths.
struct Paths;

impl Format for Paths {
    type Of = Vec<PathBuf>;
    const ARITY: Arity = Arity::Many;
    const VALUE_NAME: &'static str = "FILE";
    fn parse(value: &Value<'_>) -> Result<Self::Of, String> {
        value.texts()?.into_iter().map(path).collect()
    }
    fn show(value: &Self::Of) -> Option<String> {
        (!value.is_empty()).then(|| {
            value
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// One file path.
struct OnePath;

impl Format for OnePath {
    type Of = Option<PathBuf>;
    const VALUE_NAME: &'static str = "FILE";
    fn parse(value: &Value<'_>) -> Result<Self::Of, String> {
        path(value.text()?).map(Some)
    }
    fn show(value: &Self::Of) -> Option<String> {
        value.as_ref().map(|p| p.display().to_string())
    }
}

fn path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("expected a file path, found an empty string".to_string());
    }
    Ok(PathBuf::from(text))
}

/// Names (ALPN protocols).
struct Names;

impl Format for Names {
    type Of = Vec<String>;
    const ARITY: Arity = Arity::Many;
    const VALUE_NAME: &'static str = "PROTO";
    fn parse(value: &Value<'_>) -> Result<Self::Of, String> {
        Ok(value.texts()?.into_iter().map(str::to_string).collect())
    }
    fn show(value: &Self::Of) -> Option<String> {
        join(value)
    }
}

/// A shard count or `auto`.
struct Shards;

impl Format for Shards {
    type Of = usize;
    const VALUE_NAME: &'static str = "N|auto";
    fn parse(value: &Value<'_>) -> Result<usize, String> {
        match value {
            Value::Integer(n) => super::parse_shards(&n.to_string()),
            Value::Text(s) => super::parse_shards(s),
            other => Err(format!(
                "expected a number or \"auto\", found {}",
                other.type_name()
            )),
        }
    }
    fn show(value: &usize) -> Option<String> {
        Some(value.to_string())
    }
}

/// Free-form arguments.
struct Words;

impl Format for Words {
    type Of = Vec<String>;
    const ARITY: Arity = Arity::Trailing;
    const VALUE_NAME: &'static str = "ARGS";
    fn parse(value: &Value<'_>) -> Result<Self::Of, String> {
        Ok(value.texts()?.into_iter().map(str::to_string).collect())
    }
    fn show(value: &Self::Of) -> Option<String> {
        (!value.is_empty()).then(|| value.join(" "))
    }
}

/// `--allow` rules.
struct Rules;

impl Format for Rules {
    type Of = Vec<AllowRule>;
    const ARITY: Arity = Arity::Many;
    const VALUE_NAME: &'static str = "HOST:PORT";
    fn parse(value: &Value<'_>) -> Result<Self::Of, String> {
        value
            .texts()?
            .into_iter()
            .map(|r| r.parse::<AllowRule>().map_err(|e| e.to_string()))
            .collect()
    }
    fn show(value: &Self::Of) -> Option<String> {
        join(value)
    }
}

/// On or off.
struct Switch;

impl Format for Switch {
    type Of = bool;
    const ARITY: Arity = Arity::Switch;
    const VALUE_NAME: &'static str = "";
    fn parse(value: &Value<'_>) -> Result<bool, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            other => Err(format!(
                "expected true or false, found {}",
                other.type_name()
            )),
        }
    }
    fn show(value: &bool) -> Option<String> {
        value.then(|| "true".to_string())
    }
}

/// An enum whose values are written as names.
trait Choices: Copy + PartialEq + 'static {
    /// The names, in help's words (`shared|connection`).
    const VALUE_NAME: &'static str;
    const NAMES: &'static [&'static str];
    const ALL: &'static [Self];
}

impl Choices for Isolation {
    const VALUE_NAME: &'static str = "shared|connection";
    const NAMES: &'static [&'static str] = &["shared", "connection"];
    const ALL: &'static [Self] = &[Isolation::Shared, Isolation::Connection];
}

impl Choices for TrapPolicy {
    const VALUE_NAME: &'static str = "restart|close";
    const NAMES: &'static [&'static str] = &["restart", "close"];
    const ALL: &'static [Self] = &[TrapPolicy::Restart, TrapPolicy::Close];
}

struct Choice<T>(PhantomData<T>);

impl<T: Choices> Format for Choice<T> {
    type Of = T;
    const CHOICES: &'static [&'static str] = T::NAMES;
    const VALUE_NAME: &'static str = T::VALUE_NAME;
    fn parse(value: &Value<'_>) -> Result<T, String> {
        let text = value.text()?;
        T::NAMES
            .iter()
            .position(|name| *name == text)
            .map(|i| T::ALL[i])
            .ok_or_else(|| {
                let names: Vec<String> = T::NAMES.iter().map(|n| format!("\"{n}\"")).collect();
                format!("{text:?}: expected {}", names.join(" or "))
            })
    }
    fn show(value: &T) -> Option<String> {
        T::ALL
            .iter()
            .position(|v| v == value)
            .map(|i| T::NAMES[i].to_string())
    }
}

/// A byte size: a number, or a string such as `"64KiB"`.
struct Size;

impl Format for Size {
    type Of = usize;
    const VALUE_NAME: &'static str = "SIZE";
    fn parse(value: &Value<'_>) -> Result<usize, String> {
        match value {
            Value::Integer(n) => {
                usize::try_from(*n).map_err(|_| "must not be negative".to_string())
            }
            Value::Text(s) => super::parse_size(s),
            other => Err(format!(
                "expected a size (65536 or \"64KiB\"), found {}",
                other.type_name()
            )),
        }
    }
    fn show(value: &usize) -> Option<String> {
        Some(super::format_size(*value))
    }
}

/// A duration: seconds, or a string such as `"500ms"`.
struct Time;

impl Format for Time {
    type Of = Duration;
    const VALUE_NAME: &'static str = "DURATION";
    fn parse(value: &Value<'_>) -> Result<Duration, String> {
        match value {
            Value::Integer(n) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| "must not be negative".to_string()),
            Value::Float(f) => super::parse_duration(&f.to_string()),
            Value::Text(s) => super::parse_duration(s),
            other => Err(format!(
                "expected a duration (5 or \"500ms\"), found {}",
                other.type_name()
            )),
        }
    }
    fn show(value: &Duration) -> Option<String> {
        Some(super::format_duration(*value))
    }
}

/// A whole number.
struct Count;

impl Format for Count {
    type Of = usize;
    const VALUE_NAME: &'static str = "N";
    fn parse(value: &Value<'_>) -> Result<usize, String> {
        match value {
            Value::Integer(n) => {
                usize::try_from(*n).map_err(|_| "must not be negative".to_string())
            }
            Value::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("invalid number {s:?}: expected a whole number")),
            other => Err(format!("expected an integer, found {}", other.type_name())),
        }
    }
    fn show(value: &usize) -> Option<String> {
        Some(value.to_string())
    }
}

/// A value that may be absent (no limit).
struct Maybe<F>(PhantomData<F>);

impl<F: Format> Format for Maybe<F> {
    type Of = Option<F::Of>;
    const ARITY: Arity = F::ARITY;
    const VALUE_NAME: &'static str = F::VALUE_NAME;
    fn parse(value: &Value<'_>) -> Result<Self::Of, String> {
        F::parse(value).map(Some)
    }
    fn show(value: &Self::Of) -> Option<String> {
        value.as_ref().and_then(F::show)
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> Option<String> {
    (!items.is_empty()).then(|| {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// One [`Setting`] for `HandlerConfig::$field`, read and shown as `$format`.
macro_rules! setting {
    ($name:literal, $field:ident: $format:ty, $on_change:ident, $help:literal) => {
        Setting {
            name: $name,
            help: $help,
            arity: <$format as Format>::ARITY,
            value_name: <$format as Format>::VALUE_NAME,
            choices: <$format as Format>::CHOICES,
            on_change: OnChange::$on_change,
            set: |config, value| {
                config.$field = <$format as Format>::parse(value)?;
                Ok(())
            },
            show: |config| <$format as Format>::show(&config.$field),
            same: |a, b| a.$field == b.$field,
        }
    };
}

/// Every setting of a handler, in the order `netlet run --help` lists them.
pub static SETTINGS: &[Setting] = &[
    setting!("tcp", tcp: Addrs, Restart,
        "Listen for TCP connections on ADDR (HOST:PORT, [IPV6]:PORT, or PORT for every \
         interface); port 0 picks a free port. Code that names its port (Node's \
         `server.listen(8124)`) gets the listener of that port; ADDR=PORT binds ADDR for \
         code that names PORT (`127.0.0.1:0=8124`). Repeatable."),
    setting!("udp", udp: Addrs, Restart,
        "Bind a UDP socket on ADDR and hand it to the handler (as --tcp, ADDR=PORT is the \
         socket the code's `bind(PORT)` gets). Repeatable."),
    setting!("tls", tls: Addrs, Restart,
        "Listen for TLS connections on ADDR (as --tcp): the host runs the handshake and the \
         handler sees the plaintext, once the handshake is done. Needs --tls-cert and \
         --tls-key. Repeatable."),
    setting!("tls-cert", tls_cert: Paths, Tls,
        "A certificate chain (PEM, the leaf first) for the TLS listeners; repeatable, \
         paired in order with --tls-key. The client's SNI chooses among them by their \
         names (wildcards as usual); the first is the default. A reload re-reads it."),
    setting!("tls-key", tls_key: Paths, Tls,
        "The private key (PEM: PKCS#8, PKCS#1 or SEC1) of the --tls-cert in the same \
         position. It stays in the host: a handler never sees it."),
    setting!("tls-alpn", tls_alpn: Names, Tls,
        "An ALPN protocol the TLS listeners accept (`http/1.1`, `h2`), in order of \
         preference; repeatable. A client offering only others is refused (RFC 7301)."),
    setting!("tls-client-ca", tls_client_ca: OnePath, Tls,
        "Require client certificates (mTLS) that chain to a CA in FILE (PEM); the handler \
         sees the verified certificate's subject and names."),
    setting!("tls-handshake-timeout", tls_handshake_timeout: Time, Tls,
        "How long a TLS handshake may take, on the TLS listeners and the handler's TLS \
         connects; a client that stays silent is cut then."),
    setting!("tls-ca", tls_ca: OnePath, Tls,
        "CA certificates (PEM) the handler's TLS connections verify servers against, in \
         place of the platform's roots."),
    setting!("shards", shards: Shards, Restart,
        "Worker threads, each with its own instance: a number, or `auto` (one per core). \
         With more than one, a handler's state is per shard (a chat room would split)."),
    setting!("allow", allow: Rules, Swap,
        "Let the handler reach HOST:PORT (outbound TCP connect, UDP send, wasi:sockets), or \
         bind it when PORT is a chosen one (UDP bind, wasi:sockets bind and listen). HOST: \
         an IP, a CIDR (10.0.0.0/8), a name, or `*`; PORT: a number, a range (1000-2000) or \
         `*`. Repeatable; nothing is allowed by default."),
    setting!("allow-dns", allow_dns: Switch, Swap,
        "Let the handler resolve host names that no --allow rule names (net.connect, UDP \
         send, wasi:sockets ip-name-lookup). Off: a name must be allowed by name."),
    setting!("allow-half-open", allow_half_open: Switch, Swap,
        "Node's `allowHalfOpen: true` for accepted sockets: after the peer's `end`, our side \
         stays open until the handler ends it."),
    setting!("allow-precompiled", allow_precompiled: Switch, Swap,
        "Let the component be precompiled machine code (a .cwasm from `netlet compile`). It \
         runs as native code without WebAssembly's checks, so it is trusted as a native \
         binary would be: allow only files you compiled yourself. Off: such a file is \
         refused."),
    setting!("isolation", isolation: Choice<Isolation>, Restart,
        "`shared`: one instance per shard serves every connection (as one Node process). \
         `connection`: a fresh instance per connection, so a crash or state never crosses \
         connections."),
    setting!("on-trap", on_trap: Choice<TrapPolicy>, Swap,
        "On a trap, `restart` a fresh instance (with backoff if it keeps trapping) or \
         `close` the handler's listeners and stop."),
    setting!("max-memory", max_memory: Size, RestartIfPooled,
        "Linear memory cap per instance; growing past it fails inside the guest (its \
         allocation fails and it traps), never in the host."),
    setting!("max-host-memory", max_host_memory: Size, Swap,
        "Host memory one instance's queues may hold (its sockets' write queues, its UDP send \
         queues); a write past it destroys that socket with an error. All guests together \
         may hold at most half the machine's memory."),
    setting!("max-blocking", max_blocking: Time, Swap,
        "Time one event may spend blocked in WASI calls (`sleep`, a blocking read on a \
         wasi:sockets stream); past it the guest traps. Its shard serves nobody while it \
         blocks."),
    setting!("event-timeout", event_timeout: Time, Swap,
        "CPU time one event may take; a guest still running (a loop, a blocking call) is \
         stopped, and the connections it held are closed."),
    setting!("max-connections", max_connections: Maybe<Count>, RestartIfPooled,
        "Node's `server.maxConnections`: connections past it are closed at once and counted \
         as dropped (Node's `drop` event). Default: no limit."),
    setting!("idle-timeout", idle_timeout: Maybe<Time>, Swap,
        "Destroy a connection with no traffic for this long (default: never, as Node)."),
    setting!("high-water-mark", high_water_mark: Size, Swap,
        "A socket's write queue size at which `write` returns false (Node's highWaterMark)."),
    setting!("max-write-buffer", max_write_buffer: Size, Swap,
        "A socket whose write queue would exceed this is destroyed with an error."),
    setting!("grace", grace: Time, Swap,
        "After SIGINT/SIGTERM, how long open connections may finish before they are closed."),
    setting!("drain-delay", drain_delay: Time, Swap,
        "After SIGTERM, how long the listeners keep accepting before they close and \
         --grace begins; /readyz answers 503 from the signal on. Set it to the time a load \
         balancer (a Kubernetes Service's endpoints) takes to stop sending connections. \
         SIGINT skips it."),
    setting!("reuse-port", reuse_port: Switch, Restart,
        "Bind the TCP and UDP listeners with SO_REUSEPORT, so another netlet process (a new \
         version, new flags) can bind the same ports and take over while this one drains. \
         Both must run as the same user."),
    setting!("drain-timeout", drain_timeout: Time, Swap,
        "After a code swap (SIGHUP, --watch), how long connections may stay on the old code \
         before they are closed."),
    setting!("args", args: Words, Swap, "Arguments for the handler's `init`."),
];

/// The setting named `name`.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The known key a misspelt one most likely meant: `max_memory` or `maxmemory` for
/// `max-memory`.
pub fn suggest<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = squash(key);
    known.into_iter().find(|k| squash(k) == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_one_setting() {
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a setting is defined twice");
        // Each setting changes its own field, and only it.
        let defaults = HandlerConfig::default();
        let samples: &[(&str, Value<'_>)] = &[
            ("tcp", Value::Text("127.0.0.1:1")),
            ("udp", Value::Text("127.0.0.1:1")),
            ("tls", Value::Text("127.0.0.1:2")),
            ("tls-cert", Value::Text("c.pem")),
            ("tls-key", Value::Text("k.pem")),
            ("tls-alpn", Value::Text("h2")),
            ("tls-client-ca", Value::Text("ca.pem")),
            ("tls-handshake-timeout", Value::Text("3s")),
            ("tls-ca", Value::Text("roots.pem")),
            ("shards", Value::Integer(2)),
            ("allow", Value::Text("*:1")),
            ("allow-dns", Value::Bool(true)),
            ("allow-half-open", Value::Bool(true)),
            ("allow-precompiled", Value::Bool(true)),
            ("isolation", Value::Text("connection")),
            ("on-trap", Value::Text("close")),
            ("max-memory", Value::Text("1MiB")),
            ("max-host-memory", Value::Text("2MiB")),
            ("max-blocking", Value::Text("20ms")),
            ("event-timeout", Value::Text("2s")),
            ("max-connections", Value::Integer(3)),
            ("idle-timeout", Value::Text("4s")),
            ("high-water-mark", Value::Integer(5)),
            ("max-write-buffer", Value::Integer(6)),
            ("grace", Value::Integer(7)),
            ("drain-delay", Value::Text("3s")),
            ("reuse-port", Value::Bool(true)),
            ("drain-timeout", Value::Integer(8)),
            ("args", Value::Text("x")),
        ];
        assert_eq!(samples.len(), SETTINGS.len());
        for (name, value) in samples {
            let setting = find(name).unwrap();
            let mut c = defaults.clone();
            setting.set(&mut c, value).unwrap();
            assert_ne!(c, defaults, "{name} changed nothing");
            for other in SETTINGS {
                assert_eq!(
                    other.same(&c, &defaults),
                    other.name != *name,
                    "setting {name} and comparing {}",
                    other.name
                );
            }
        }
    }

    #[test]
    fn shown_values_parse_back() {
        let c = HandlerConfig {
            tcp: vec!["127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap()],
            max_connections: Some(9),
            idle_timeout: Some(Duration::from_millis(1500)),
            isolation: Isolation::Connection,
            allow_dns: true,
            args: vec!["a".into()],
            tls: vec!["127.0.0.1:3".parse().unwrap()],
            tls_cert: vec!["a.pem".into(), "b.pem".into()],
            tls_key: vec!["ak.pem".into(), "bk.pem".into()],
            tls_alpn: vec!["h2".into(), "http/1.1".into()],
            tls_client_ca: Some("ca.pem".into()),
            tls_ca: Some("roots.pem".into()),
            ..HandlerConfig::default()
        };
        for setting in SETTINGS {
            let Some(text) = setting.show(&c) else {
                continue;
            };
            let mut back = HandlerConfig::default();
            let value = match setting.arity {
                Arity::Switch => Value::Bool(true),
                Arity::Many | Arity::Trailing => {
                    Value::List(text.split(", ").map(Value::Text).collect())
                }
                Arity::One => Value::Text(&text),
            };
            setting.set(&mut back, &value).unwrap();
            assert!(setting.same(&back, &c), "{}: {text}", setting.name);
        }
    }

    #[test]
    fn wrong_values_say_what_was_expected() {
        let mut c = HandlerConfig::default();
        let err =
            |name: &str, v: Value<'_>| find(name).unwrap().set(&mut c.clone(), &v).unwrap_err();
        assert_eq!(
            err("tcp", Value::Integer(1)),
            "expected a string or an array of strings, found integer"
        );
        assert!(err("tcp", Value::Text("127.0.0.1:99999")).contains("99999"));
        assert_eq!(
            err("isolation", Value::Text("none")),
            "\"none\": expected \"shared\" or \"connection\""
        );
        assert_eq!(
            err("on-trap", Value::Bool(true)),
            "expected a string, found boolean"
        );
        assert!(err("shards", Value::Text("many")).contains("invalid shard count"));
        assert_eq!(
            err("max-memory", Value::Integer(-1)),
            "must not be negative"
        );
        assert_eq!(
            err("allow-dns", Value::Text("yes")),
            "expected true or false, found string"
        );
        assert!(err("grace", Value::Text("soon")).contains("invalid duration"));
        assert_eq!(
            err("max-connections", Value::Float(1.5)),
            "expected an integer, found float"
        );
        find("grace")
            .unwrap()
            .set(&mut c, &Value::Float(0.25))
            .unwrap();
        assert_eq!(c.grace, Duration::from_millis(250));
    }

    #[test]
    fn choices_are_named_as_help_shows_them() {
        for setting in SETTINGS.iter().filter(|s| !s.choices.is_empty()) {
            assert_eq!(
                setting.value_name,
                setting.choices.join("|"),
                "{}",
                setting.name
            );
            let default = setting.default_text().unwrap();
            assert!(
                setting.choices.contains(&default.as_str()),
                "{}",
                setting.name
            );
        }
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        for setting in SETTINGS {
            let flag = match setting.arity {
                Arity::Trailing => "`-- ARGS...`".to_string(),
                Arity::Switch => format!("| `--{}` |", setting.name),
                _ => format!("| `--{} ", setting.name),
            };
            assert!(
                readme.contains(&flag),
                "README's options table lacks {flag}"
            );
            let key = format!("`{}`", setting.name);
            assert!(readme.contains(&key), "README's manifest keys lack {key}");
        }
    }

    #[test]
    fn suggestions_forgive_underscores_and_missing_dashes() {
        let names = SETTINGS.iter().map(|s| s.name);
        assert_eq!(suggest("max_memory", names.clone()), Some("max-memory"));
        assert_eq!(suggest("maxmemory", names.clone()), Some("max-memory"));
        assert_eq!(suggest("Allow_DNS", names.clone()), Some("allow-dns"));
        assert_eq!(suggest("memory", names), None);
    }
}
