//! The manifest (`netlet.toml`): several handlers, each with its component, listeners,
//! limits, isolation and permissions. Every `netlet run` flag is a key of the same name
//! (`max-memory = "32MiB"`, `allow = ["127.0.0.1:9000"]`), with the same default: both
//! are read through the one settings table (`config::settings`).
//!
//! Everything is checked before anything binds, and each problem is reported as
//! `FILE:LINE: handler.NAME.KEY: what is wrong`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::config::HandlerConfig;
use crate::config::document::Document;
use crate::engine::ComponentSource;

pub use crate::config::document::LocatedError as ManifestError;

/// Where a handler's declaration came from: what its errors name.
#[derive(Clone, Debug, PartialEq)]
enum Origin {
    /// A manifest: errors name its file, the line and the key.
    Manifest {
        file: String,
        /// The line of each key ("": the handler's table).
        lines: BTreeMap<String, usize>,
    },
    /// `netlet run`'s flags: errors name the component file and the problem only.
    Flags,
    /// Built into netlet (the demo): errors name the handler.
    Builtin,
}

/// One handler, as the manifest (or `netlet run`, or the demo) declares it.
#[derive(Clone, Debug)]
pub struct HandlerSpec {
    pub name: String,
    /// The component (a manifest's relative paths are resolved against its folder).
    pub component: ComponentSource,
    /// The SHA-256 the component must have.
    pub sha256: Option<String>,
    pub config: HandlerConfig,
    origin: Origin,
}

impl HandlerSpec {
    /// One handler from `netlet run`'s flags: COMPONENT is a file or an `oci://`
    /// reference.
    pub fn single(component: &str, config: HandlerConfig) -> Result<Self, String> {
        let component = if crate::oci::is_reference(component) {
            ComponentSource::Oci(crate::oci::OciRef::parse(component)?)
        } else {
            ComponentSource::File(PathBuf::from(component))
        };
        Ok(HandlerSpec {
            name: component.name(),
            component,
            sha256: None,
            config,
            origin: Origin::Flags,
        })
    }

    /// A handler built into netlet.
    pub fn builtin(component: ComponentSource, config: HandlerConfig) -> Self {
        HandlerSpec {
            name: component.name(),
            component,
            sha256: None,
            config,
            origin: Origin::Builtin,
        }
    }

    /// Whether it comes from a manifest (its listeners are then labelled with its name).
    pub fn from_manifest(&self) -> bool {
        matches!(self.origin, Origin::Manifest { .. })
    }

    /// A problem with this handler's `key` (`component`, `sha256`, `tcp`...), as the user
    /// should see it: located in the manifest (`FILE:LINE: handler.NAME.KEY: ...`); from
    /// `netlet run`, `message` alone (it names the file itself); built in, after the
    /// handler's name.
    pub fn error(&self, key: &str, message: impl Into<String>) -> String {
        match &self.origin {
            Origin::Manifest { .. } => self.locate(key, message).to_string(),
            Origin::Flags => message.into(),
            Origin::Builtin => format!("{}: {}", self.name, message.into()),
        }
    }

    /// A problem with the handler as a whole (its listeners cannot bind, it does not
    /// start): after its name, unless it is `netlet run`'s only handler.
    pub fn problem(&self, message: impl std::fmt::Display) -> String {
        match self.origin {
            Origin::Flags => message.to_string(),
            _ => format!("{}: {message}", self.name),
        }
    }

    /// `message` located at `key` (or the handler's table) in the manifest.
    fn locate(&self, key: &str, message: impl Into<String>) -> ManifestError {
        let (file, line) = match &self.origin {
            Origin::Manifest { file, lines } => (
                file.clone(),
                lines
                    .get(key)
                    .or_else(|| lines.get(""))
                    .copied()
                    .unwrap_or(1),
            ),
            _ => (self.component.to_string(), 0),
        };
        ManifestError {
            file,
            line,
            key: if key.is_empty() {
                format!("handler.{}", self.name)
            } else {
                format!("handler.{}.{key}", self.name)
            },
            message: message.into(),
        }
    }

    /// Same component, hash and settings (the component's bytes are compared apart).
    pub fn same_settings(&self, other: &HandlerSpec) -> bool {
        self.component == other.component
            && self.sha256 == other.sha256
            && self.config == other.config
    }
}

/// A parsed and checked manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub path: PathBuf,
    pub handlers: Vec<HandlerSpec>,
}

/// The keys a handler table has besides the settings.
const OWN_KEYS: &[&str] = &["component", "sha256"];

/// The keys a handler table may have.
pub fn keys() -> Vec<&'static str> {
    OWN_KEYS
        .iter()
        .copied()
        .chain(crate::config::settings::SETTINGS.iter().map(|s| s.name))
        .collect()
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
    let doc = Document { file, text };
    let table = doc.parse()?;
    let mut handlers = Vec::new();
    for (key, value) in table.iter() {
        if key.get_ref() != "handler" {
            return Err(doc.error(
                key.span().start,
                key.get_ref(),
                "unknown key: a manifest has [handler.NAME] tables only",
            ));
        }
        let DeValue::Table(table) = value.get_ref() else {
            return Err(doc.error(
                value.span().start,
                "handler",
                "expected tables: [handler.NAME]",
            ));
        };
        for (name, entry) in table.iter() {
            let DeValue::Table(entry_table) = entry.get_ref() else {
                return Err(doc.error(
                    entry.span().start,
                    &format!("handler.{}", name.get_ref()),
                    "expected a table: [handler.NAME] with component = \"...\"",
                ));
            };
            let at = name.span().start.min(entry.span().start);
            handlers.push(handler(&doc, name.get_ref(), entry_table, at, base)?);
        }
    }
    if handlers.is_empty() {
        return Err(doc.error(
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
    doc: &Document<'_>,
    name: &str,
    table: &DeTable<'_>,
    at: usize,
    base: &Path,
) -> Result<HandlerSpec, ManifestError> {
    let prefix = format!("handler.{name}");
    let mut config = HandlerConfig::default();
    let mut component = None;
    let mut sha256 = None;
    let mut lines = doc.read_settings(&prefix, table, &mut config, OWN_KEYS, |key, value| {
        match key {
            "component" => {
                let text = value.text()?;
                if crate::oci::is_reference(text) {
                    component = Some(ComponentSource::Oci(crate::oci::OciRef::parse(text)?));
                    return Ok(());
                }
                let p = base.join(text);
                if !p.is_file() {
                    return Err(format!("{}: no such file", p.display()));
                }
                component = Some(ComponentSource::File(p));
            }
            _ => {
                let s = value.text()?.to_ascii_lowercase();
                if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("{s:?} is not a SHA-256 (64 hex digits)"));
                }
                sha256 = Some(s);
            }
        }
        Ok(())
    })?;
    let line = doc.line(at);
    lines.insert(String::new(), line);
    let located = |key: &str, message: &str| ManifestError {
        file: doc.file.to_string(),
        line,
        key: key.to_string(),
        message: message.to_string(),
    };
    // TLS files, like the component, are relative to the manifest's folder.
    for path in config
        .tls_cert
        .iter_mut()
        .chain(config.tls_key.iter_mut())
        .chain(config.tls_client_ca.iter_mut())
        .chain(config.tls_ca.iter_mut())
    {
        *path = base.join(&*path);
    }
    let config = config.validate().map_err(|e| located(&prefix, &e))?;
    let Some(component) = component else {
        return Err(located(
            &format!("{prefix}.component"),
            "missing: the component's path or reference (component = \"echo.wasm\" or \"oci://HOST/REPO:TAG\")",
        ));
    };
    if config.tcp.is_empty() && config.udp.is_empty() && config.tls.is_empty() {
        return Err(located(
            &prefix,
            "no listeners: give it tcp = [\"HOST:PORT\"], tls = [\"HOST:PORT\"] and/or udp = [\"HOST:PORT\"]",
        ));
    }
    Ok(HandlerSpec {
        name: name.to_string(),
        component,
        sha256,
        config,
        origin: Origin::Manifest {
            file: doc.file.to_string(),
            lines,
        },
    })
}

/// Two listeners of the same protocol that cannot both bind (port 0 never collides).
fn check_collisions(handlers: &[HandlerSpec]) -> Result<(), ManifestError> {
    let mut seen: Vec<(&str, SocketAddr, &HandlerSpec)> = Vec::new();
    for h in handlers {
        for (key, addrs) in [
            ("tcp", &h.config.tcp),
            ("tls", &h.config.tls),
            ("udp", &h.config.udp),
        ] {
            // A TLS listener is a TCP port.
            let proto = if key == "udp" { "udp" } else { "tcp" };
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
                    return Err(h.locate(key, format!("{key} {addr}: {whose}")));
                }
                seen.push((proto, addr.addr, h));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{self, Isolation, TrapPolicy};

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
        assert!(!c.allow_precompiled);
    }

    #[test]
    fn the_keys_are_the_settings_and_the_component() {
        let dir = std::env::temp_dir();
        std::fs::write(dir.join("netlet-manifest-test.wasm"), b"").unwrap();
        let m = parse(
            "m.toml",
            &format!("[handler.a]\n{C}tcp = \"127.0.0.1:0\"\nallow-precompiled = true\n"),
            &dir,
        )
        .unwrap();
        assert!(m.handlers[0].config.allow_precompiled);
        let e = parse_err(&format!(
            "[handler.a]\n{C}tcp = \"127.0.0.1:0\"\nprecompiled = true\n"
        ));
        assert!(
            e.message
                .ends_with(&format!("a handler's keys are: {}", keys().join(", "))),
            "{e}"
        );
        assert!(keys().contains(&"allow-precompiled") && keys()[..2] == ["component", "sha256"]);
    }

    #[test]
    fn errors_of_run_and_of_a_manifest_differ_in_what_they_locate() {
        let dir = std::env::temp_dir();
        std::fs::write(dir.join("netlet-manifest-test.wasm"), b"").unwrap();
        let m = parse(
            "m.toml",
            &format!("\n[handler.a]\n{C}tcp = \"127.0.0.1:0\"\n"),
            &dir,
        )
        .unwrap();
        let from_manifest = &m.handlers[0];
        assert_eq!(
            from_manifest.error("component", "x.wasm: broken"),
            "m.toml:3: handler.a.component: x.wasm: broken"
        );
        assert_eq!(from_manifest.problem("cannot listen"), "a: cannot listen");
        let from_flags = HandlerSpec::single("/tmp/x.wasm", HandlerConfig::default()).unwrap();
        assert_eq!(from_flags.name, "x");
        assert_eq!(
            from_flags.error("component", "/tmp/x.wasm: broken"),
            "/tmp/x.wasm: broken"
        );
        assert_eq!(from_flags.problem("cannot listen"), "cannot listen");
    }
}
