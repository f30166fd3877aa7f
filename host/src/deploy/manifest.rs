//! The manifest (`netlet.toml`): several handlers, each with its component, listeners,
//! limits, isolation and permissions. Every `netlet run` flag is a key of the same name
//! (`max-memory = "32MiB"`, `allow = ["127.0.0.1:9000"]`), with the same default.
//!
//! Everything is checked before anything binds, and each problem is reported as
//! `FILE:LINE: handler.NAME.KEY: what is wrong`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::{self, HandlerConfig, Isolation, TrapPolicy};
use crate::policy::AllowRule;

/// A problem in a manifest, located.
#[derive(Debug, Clone)]
pub struct ManifestError {
    pub file: String,
    pub line: usize,
    /// `handler.NAME.KEY`, or what the problem is about.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            // The file as a whole (it cannot be read).
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.key, self.message
            )
        }
    }
}

impl std::error::Error for ManifestError {}

/// One handler, as the manifest declares it.
#[derive(Clone, Debug)]
pub struct HandlerSpec {
    pub name: String,
    /// The component's path (relative paths are relative to the manifest's folder).
    pub component: PathBuf,
    /// The SHA-256 the component must have.
    pub sha256: Option<String>,
    pub config: HandlerConfig,
    /// Where each key was, for errors found later (loading the component).
    lines: BTreeMap<String, usize>,
    file: String,
}

impl HandlerSpec {
    /// An error about this handler's `key`, located at that key (or the handler's table).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ManifestError {
        let line = self
            .lines
            .get(key)
            .or_else(|| self.lines.get(""))
            .copied()
            .unwrap_or(1);
        ManifestError {
            file: self.file.clone(),
            line,
            key: if key.is_empty() {
                format!("handler.{}", self.name)
            } else {
                format!("handler.{}.{key}", self.name)
            },
            message: message.into(),
        }
    }
}

impl HandlerSpec {
    /// One handler from `netlet run`'s flags.
    pub fn single(component: PathBuf, config: HandlerConfig) -> Self {
        let name = component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "guest".into());
        HandlerSpec {
            file: component.display().to_string(),
            name,
            component,
            sha256: None,
            config,
            lines: BTreeMap::new(),
        }
    }

    /// Same component path and settings (the component's bytes are compared apart).
    pub fn same_settings(&self, other: &HandlerSpec) -> bool {
        self.component == other.component
            && self.sha256 == other.sha256
            && self.config == other.config
    }

    /// Whether going from `self` to `other` needs the handler restarted (new
    /// listeners, shards, isolation, or a connection-isolation pool of another size)
    /// rather than a hot swap.
    pub fn needs_restart(&self, other: &HandlerSpec) -> bool {
        let (a, b) = (&self.config, &other.config);
        a.tcp != b.tcp
            || a.udp != b.udp
            || a.shards != b.shards
            || a.isolation != b.isolation
            || (a.isolation == Isolation::Connection
                && (a.max_memory != b.max_memory || a.max_connections != b.max_connections))
    }
}

/// A parsed and checked manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub path: PathBuf,
    pub handlers: Vec<HandlerSpec>,
}

/// The keys a handler table may have.
pub const KEYS: &[&str] = &[
    "component",
    "sha256",
    "tcp",
    "udp",
    "shards",
    "args",
    "allow",
    "allow-dns",
    "allow-half-open",
    "isolation",
    "on-trap",
    "max-memory",
    "event-timeout",
    "max-connections",
    "idle-timeout",
    "high-water-mark",
    "max-write-buffer",
    "grace",
    "drain-timeout",
];

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    fn err(&self, offset: usize, key: &str, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.to_string(),
            line: self.line(offset),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Reads and checks the manifest at `path`: syntax, keys, values, that each component
/// file exists, that no two listeners collide. (Components are loaded, and their
/// sha256 and world checked, by the caller.)
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
        file: file.clone(),
        line: 0,
        key: "manifest".into(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound => {
                "cannot read: no such file (netlet up reads ./netlet.toml unless given a manifest; see examples/netlet.toml)".to_string()
            }
            _ => format!("cannot read: {e}"),
        },
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&file, &text, base)
}

/// Parses manifest `text` (named `file` in errors); relative component paths are
/// resolved against `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<Manifest, ManifestError> {
    let ctx = Ctx { file, text };
    let doc = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ctx.err(offset, "syntax", e.message().trim().to_string())
    })?;
    let doc = doc.into_inner();
    let mut handlers = Vec::new();
    for (key, value) in doc.iter() {
        if key.get_ref() != "handler" {
            return Err(ctx.err(
                key.span().start,
                key.get_ref(),
                "unknown key: a manifest has [handler.NAME] tables only",
            ));
        }
        let DeValue::Table(table) = value.get_ref() else {
            return Err(ctx.err(
                value.span().start,
                "handler",
                "expected tables: [handler.NAME]",
            ));
        };
        for (name, entry) in table.iter() {
            let DeValue::Table(entry_table) = entry.get_ref() else {
                return Err(ctx.err(
                    entry.span().start,
                    &format!("handler.{}", name.get_ref()),
                    "expected a table: [handler.NAME] with component = \"...\"",
                ));
            };
            handlers.push(handler(&ctx, name, entry_table, entry.span().start, base)?);
        }
    }
    if handlers.is_empty() {
        return Err(ctx.err(
            0,
            "handler",
            "no handlers: declare at least one [handler.NAME] with component = \"...\" and a tcp or udp listener",
        ));
    }
    check_collisions(&handlers)?;
    Ok(Manifest {
        path: PathBuf::from(file),
        handlers,
    })
}

fn handler(
    ctx: &Ctx<'_>,
    name: &Spanned<std::borrow::Cow<'_, str>>,
    table: &DeTable<'_>,
    table_offset: usize,
    base: &Path,
) -> Result<HandlerSpec, ManifestError> {
    let hname = name.get_ref().to_string();
    let mut lines = BTreeMap::new();
    lines.insert(String::new(), ctx.line(name.span().start.min(table_offset)));
    let mut config = HandlerConfig::default();
    let mut component = None;
    let mut sha256 = None;
    for (key, value) in table.iter() {
        let k = key.get_ref().as_ref();
        let full = format!("handler.{hname}.{k}");
        let at = value.span().start;
        lines.insert(k.to_string(), ctx.line(at));
        let bad = |message: String| ctx.err(at, &full, message);
        match k {
            "component" => {
                let p = string(value).map_err(bad)?;
                let p = base.join(p);
                if !p.is_file() {
                    return Err(ctx.err(at, &full, format!("{}: no such file", p.display())));
                }
                component = Some(p);
            }
            "sha256" => {
                let s = string(value).map_err(bad)?.to_ascii_lowercase();
                if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(format!("{s:?} is not a SHA-256 (64 hex digits)")));
                }
                sha256 = Some(s);
            }
            "tcp" | "udp" => {
                let addrs = strings(value)
                    .map_err(bad)?
                    .iter()
                    .map(|a| config::parse_listen_addr(a))
                    .collect::<Result<Vec<SocketAddr>, _>>()
                    .map_err(bad)?;
                if k == "tcp" {
                    config.tcp = addrs;
                } else {
                    config.udp = addrs;
                }
            }
            "shards" => {
                config.shards = match value.get_ref() {
                    DeValue::Integer(_) => {
                        let n = integer(value).map_err(bad)?;
                        config::parse_shards(&n.to_string()).map_err(bad)?
                    }
                    _ => config::parse_shards(string(value).map_err(bad)?).map_err(bad)?,
                }
            }
            "args" => config.args = strings(value).map_err(bad)?,
            "allow" => {
                config.allow = strings(value)
                    .map_err(bad)?
                    .iter()
                    .map(|r| r.parse::<AllowRule>().map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()
                    .map_err(bad)?
            }
            "allow-dns" => config.allow_dns = boolean(value).map_err(bad)?,
            "allow-half-open" => config.allow_half_open = boolean(value).map_err(bad)?,
            "isolation" => {
                config.isolation = match string(value).map_err(bad)? {
                    "shared" => Isolation::Shared,
                    "connection" => Isolation::Connection,
                    other => {
                        return Err(bad(format!(
                            "{other:?}: expected \"shared\" or \"connection\""
                        )));
                    }
                }
            }
            "on-trap" => {
                config.on_trap = match string(value).map_err(bad)? {
                    "restart" => TrapPolicy::Restart,
                    "close" => TrapPolicy::Close,
                    other => {
                        return Err(bad(format!("{other:?}: expected \"restart\" or \"close\"")));
                    }
                }
            }
            "max-memory" => config.max_memory = size(value).map_err(bad)?.max(1 << 16),
            "high-water-mark" => config.high_water_mark = size(value).map_err(bad)?.max(1),
            "max-write-buffer" => config.max_write_buffer = size(value).map_err(bad)?.max(1),
            "event-timeout" => {
                config.event_timeout = duration(value).map_err(bad)?.max(crate::engine::EPOCH_TICK)
            }
            "idle-timeout" => {
                config.idle_timeout = Some(duration(value).map_err(bad)?).filter(|d| !d.is_zero())
            }
            "grace" => config.grace = duration(value).map_err(bad)?,
            "drain-timeout" => config.drain_timeout = duration(value).map_err(bad)?,
            "max-connections" => {
                config.max_connections = Some(
                    usize::try_from(integer(value).map_err(bad)?)
                        .map_err(|_| bad("must not be negative".into()))?,
                )
            }
            other => {
                let hint = KEYS
                    .iter()
                    .find(|known| {
                        known.replace('-', "_") == other || known.replace('-', "") == other
                    })
                    .map(|known| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                return Err(ctx.err(
                    key.span().start,
                    &full,
                    format!(
                        "unknown key{hint}; a handler's keys are: {}",
                        KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    let spec_file = ctx.file.to_string();
    let Some(component) = component else {
        return Err(ManifestError {
            file: spec_file,
            line: lines[""],
            key: format!("handler.{hname}.component"),
            message: "missing: the component's path (component = \"echo.wasm\")".into(),
        });
    };
    if config.tcp.is_empty() && config.udp.is_empty() {
        return Err(ManifestError {
            file: spec_file,
            line: lines[""],
            key: format!("handler.{hname}"),
            message: "no listeners: give it tcp = [\"HOST:PORT\"] and/or udp = [\"HOST:PORT\"]"
                .into(),
        });
    }
    Ok(HandlerSpec {
        name: hname,
        component,
        sha256,
        config,
        lines,
        file: spec_file,
    })
}

/// Two listeners of the same protocol that cannot both bind (port 0 never collides).
fn check_collisions(handlers: &[HandlerSpec]) -> Result<(), ManifestError> {
    let mut seen: Vec<(&str, SocketAddr, &HandlerSpec)> = Vec::new();
    for h in handlers {
        for (proto, addrs) in [("tcp", &h.config.tcp), ("udp", &h.config.udp)] {
            for addr in addrs {
                if addr.port() == 0 {
                    continue;
                }
                let clash = seen.iter().find(|(p, other, _)| {
                    *p == proto
                        && other.port() == addr.port()
                        && other.is_ipv4() == addr.is_ipv4()
                        && (other.ip() == addr.ip()
                            || other.ip().is_unspecified()
                            || addr.ip().is_unspecified())
                });
                if let Some((_, other, owner)) = clash {
                    let whose = if owner.name == h.name {
                        "this handler already listens there".to_string()
                    } else {
                        format!("handler.{} already listens on {proto} {other}", owner.name)
                    };
                    return Err(h.error(proto, format!("{proto} {addr}: {whose}")));
                }
                seen.push((proto, *addr, h));
            }
        }
    }
    Ok(())
}

fn string<'a>(value: &'a Spanned<DeValue<'_>>) -> Result<&'a str, String> {
    value
        .get_ref()
        .as_str()
        .ok_or_else(|| format!("expected a string, found {}", value.get_ref().type_str()))
}

/// A string or an array of strings.
fn strings(value: &Spanned<DeValue<'_>>) -> Result<Vec<String>, String> {
    match value.get_ref() {
        DeValue::String(s) => Ok(vec![s.to_string()]),
        DeValue::Array(items) => items
            .iter()
            .map(|item| string(item).map(str::to_string))
            .collect(),
        other => Err(format!(
            "expected a string or an array of strings, found {}",
            other.type_str()
        )),
    }
}

fn boolean(value: &Spanned<DeValue<'_>>) -> Result<bool, String> {
    value.get_ref().as_bool().ok_or_else(|| {
        format!(
            "expected true or false, found {}",
            value.get_ref().type_str()
        )
    })
}

fn integer(value: &Spanned<DeValue<'_>>) -> Result<i64, String> {
    let DeValue::Integer(n) = value.get_ref() else {
        return Err(format!(
            "expected an integer, found {}",
            value.get_ref().type_str()
        ));
    };
    let digits: String = n.as_str().chars().filter(|c| *c != '_').collect();
    let digits = digits
        .trim_start_matches('+')
        .trim_start_matches("0x")
        .trim_start_matches("0o")
        .trim_start_matches("0b");
    i64::from_str_radix(digits, n.radix()).map_err(|_| format!("{} is out of range", n.as_str()))
}

/// A size: a number of bytes, or a string such as "64MiB".
fn size(value: &Spanned<DeValue<'_>>) -> Result<usize, String> {
    match value.get_ref() {
        DeValue::Integer(_) => {
            usize::try_from(integer(value)?).map_err(|_| "must not be negative".to_string())
        }
        DeValue::String(s) => config::parse_size(s),
        other => Err(format!(
            "expected a size (65536 or \"64KiB\"), found {}",
            other.type_str()
        )),
    }
}

/// A duration: seconds, or a string such as "500ms".
fn duration(value: &Spanned<DeValue<'_>>) -> Result<Duration, String> {
    match value.get_ref() {
        DeValue::Integer(_) => u64::try_from(integer(value)?)
            .map(Duration::from_secs)
            .map_err(|_| "must not be negative".to_string()),
        DeValue::Float(f) => config::parse_duration(f.as_str()),
        DeValue::String(s) => config::parse_duration(s),
        other => Err(format!(
            "expected a duration (5 or \"500ms\"), found {}",
            other.type_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> ManifestError {
        let dir = std::env::temp_dir();
        std::fs::write(dir.join("netlet-manifest-test.wasm"), b"").unwrap();
        parse("m.toml", text, &dir).unwrap_err()
    }

    const C: &str = "component = \"netlet-manifest-test.wasm\"\n";

    #[test]
    fn errors_name_the_line_and_key() {
        let e = parse_err(&format!(
            "[handler.a]\n{C}tcp = \"127.0.0.1:1\"\nmax_memory = 5\n"
        ));
        assert_eq!((e.line, e.key.as_str()), (4, "handler.a.max_memory"));
        assert!(e.message.contains("did you mean `max-memory`"), "{e}");

        let e = parse_err(&format!("[handler.a]\n{C}tcp = \"nope\"\n"));
        assert_eq!((e.line, e.key.as_str()), (3, "handler.a.tcp"));

        let e = parse_err(&format!(
            "[handler.a]\n{C}tcp = \"127.0.0.1:7000\"\n[handler.b]\n{C}tcp = [\"0.0.0.0:7000\"]\n"
        ));
        assert_eq!(e.key, "handler.b.tcp");
        assert_eq!(e.line, 6);
        assert!(e.message.contains("handler.a already listens"), "{e}");

        let e = parse_err("[handler.a]\ncomponent = \"missing.wasm\"\ntcp = \"127.0.0.1:0\"\n");
        assert_eq!((e.line, e.key.as_str()), (2, "handler.a.component"));
        assert!(e.message.contains("no such file"), "{e}");

        let e = parse_err("[handler.a]\ntcp = \"127.0.0.1:0\"\n");
        assert!(e.message.contains("missing"), "{e}");

        let e = parse_err("[handler.a\n");
        assert_eq!(e.key, "syntax");

        let e = parse_err(&format!(
            "[handler.a]\n{C}tcp = \"127.0.0.1:0\"\nsha256 = \"abc\"\n"
        ));
        assert_eq!((e.line, e.key.as_str()), (4, "handler.a.sha256"));
    }

    #[test]
    fn values_parse_like_the_flags() {
        let dir = std::env::temp_dir();
        std::fs::write(dir.join("netlet-manifest-test.wasm"), b"").unwrap();
        let m = parse(
            "m.toml",
            &format!(
                "[handler.a]\n{C}tcp = [\"127.0.0.1:0\", \"[::1]:0\"]\nudp = \"127.0.0.1:0\"\n\
                 shards = 2\nmax-memory = \"32MiB\"\nevent-timeout = \"250ms\"\ngrace = 2\n\
                 isolation = \"connection\"\non-trap = \"close\"\nallow = [\"127.0.0.1:*\"]\n\
                 allow-dns = true\nmax-connections = 10\nargs = [\"x\", \"y\"]\n"
            ),
            &dir,
        )
        .unwrap();
        let c = &m.handlers[0].config;
        assert_eq!(c.tcp.len(), 2);
        assert_eq!(c.udp.len(), 1);
        assert_eq!(c.shards, 2);
        assert_eq!(c.max_memory, 32 << 20);
        assert_eq!(c.event_timeout, Duration::from_millis(250));
        assert_eq!(c.grace, Duration::from_secs(2));
        assert_eq!(c.isolation, Isolation::Connection);
        assert_eq!(c.on_trap, TrapPolicy::Close);
        assert!(c.allow_dns);
        assert_eq!(c.max_connections, Some(10));
        assert_eq!(c.args, ["x", "y"]);
        // Defaults are the flags' defaults.
        assert_eq!(c.high_water_mark, config::DEFAULT_HIGH_WATER_MARK);
        assert_eq!(c.drain_timeout, config::DEFAULT_DRAIN_TIMEOUT);
    }
}
