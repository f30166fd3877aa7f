//! `netlet inspect`: what a component is (which netlet world it targets), what it
//! exports and imports, and what it would need granted to do all it can.

use std::fmt;

use wasmtime::component::types::{ComponentExtern, ComponentItem};

use crate::build::js::JsInfo;
use crate::build::py::PyInfo;
use crate::engine::HANDLER_EXPORT;
use crate::handler::Handler;

/// One imported or exported instance and the functions in it.
#[derive(Debug)]
pub struct Interface {
    pub name: String,
    pub functions: Vec<String>,
}

/// What `netlet inspect` reports.
#[derive(Debug)]
pub struct Report {
    pub file: String,
    pub sha256: String,
    pub world: &'static str,
    /// What made it, when netlet knows: `netlet build`'s JavaScript section.
    pub language: Option<String>,
    pub exports: Vec<Interface>,
    pub imports: Vec<Interface>,
    /// What would need `--allow` / `--allow-dns`, one line each.
    pub grants: Vec<String>,
    /// Imports the component links but its SDK never calls (CPython's own sockets and
    /// name lookups): refused unless granted, listed apart from the grants.
    pub linked_unused: Vec<String>,
}

fn interfaces<'a>(
    engine: &wasmtime::Engine,
    items: impl Iterator<Item = (&'a str, ComponentExtern<'a>)>,
) -> Vec<Interface> {
    let mut out: Vec<Interface> = items
        .map(|(name, item)| {
            let functions = match item.ty {
                ComponentItem::ComponentInstance(instance) => {
                    let mut fns: Vec<String> = instance
                        .exports(engine)
                        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(name, _)| name.to_string())
                        .collect();
                    fns.sort();
                    fns
                }
                _ => Vec::new(),
            };
            Interface {
                name: name.to_string(),
                functions,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn has(imports: &[Interface], interface: &str, function: Option<&str>) -> bool {
    imports.iter().any(|i| {
        i.name.starts_with(interface) && function.is_none_or(|f| i.functions.iter().any(|g| g == f))
    })
}

/// Inspects a loaded handler; `bytes` are the file's (a JavaScript or Python handler
/// says so in a custom section).
pub fn inspect(handler: &Handler, file: &str, bytes: &[u8]) -> Report {
    let js = JsInfo::read(bytes);
    let py = PyInfo::read(bytes);
    let engine = &handler.engine;
    let ty = handler.component.component_type();
    let exports = interfaces(engine, ty.exports(engine));
    let imports = interfaces(engine, ty.imports(engine));
    let tcp = has(&imports, "netlet:net/net@", None);
    let udp = has(&imports, "netlet:net/dgram@", None);
    let world = match (tcp, udp) {
        (true, true) => "netlet:net/tcp-udp (TCP and UDP)",
        (false, true) => "netlet:net/udp (UDP)",
        _ => "netlet:net/tcp (TCP)",
    };
    // A JavaScript or Python component imports every function of the world; what its
    // code can reach follows from the Node modules it uses, or from the asyncio calls in
    // its Python source.
    let uses = |module: &str| match (&js, &py) {
        (Some(info), _) => info.modules.iter().any(|m| m == module),
        (None, Some(info)) => match module {
            "net" => info.uses("tcp-connect"),
            "dgram" => info.uses("udp"),
            _ => false,
        },
        (None, None) => true,
    };
    let mut grants = Vec::new();
    let mut linked_unused = Vec::new();
    if uses("net") && has(&imports, "netlet:net/net@", Some("connect")) {
        grants
            .push("outbound TCP (net.connect): --allow HOST:PORT for each destination".to_string());
    }
    let tls_reachable = match (&js, &py) {
        (Some(_), _) => false,
        (None, Some(info)) => info.uses("tcp-connect"),
        (None, None) => true,
    };
    if tls_reachable && has(&imports, "netlet:net/net@", Some("connect-tls")) {
        grants.push(
            "outbound TLS (tls.connect): --allow HOST:PORT for each destination; servers are \
             verified against the platform's roots, or --tls-ca FILE"
                .to_string(),
        );
    }
    if !uses("dgram") {
        // No UDP of its own.
    } else if has(&imports, "netlet:net/dgram@", Some("create-socket")) {
        grants.push(
            "UDP sockets of its own (dgram.create-socket): sending needs --allow HOST:PORT \
             (answering a peer that wrote to it does not)"
                .to_string(),
        );
    } else if has(&imports, "netlet:net/dgram@", Some("[method]socket.send")) {
        grants.push(
            "UDP send to new peers: --allow HOST:PORT (answering a peer does not)".to_string(),
        );
    }
    // CPython links its socket module's imports whatever the program does; the Python
    // SDK never calls them (asyncio goes through netlet's net and dgram).
    let sink = if py.is_some() {
        &mut linked_unused
    } else {
        &mut grants
    };
    if has(&imports, "wasi:sockets/tcp-create-socket@", None)
        || has(&imports, "wasi:sockets/udp-create-socket@", None)
    {
        sink.push(
            "wasi:sockets (its own sockets): --allow HOST:PORT for each destination".to_string(),
        );
    }
    if has(&imports, "wasi:sockets/ip-name-lookup@", None) {
        sink.push("name lookups (wasi:sockets/ip-name-lookup): --allow-dns".to_string());
    }
    Report {
        file: file.to_string(),
        sha256: handler.sha256.clone(),
        world,
        language: match (&js, &py) {
            (Some(info), _) => {
                let modules = if info.modules.is_empty() {
                    "none".to_string()
                } else {
                    info.modules.join(", ")
                };
                Some(format!(
                    "JavaScript (netlet JS SDK {}); Node modules it uses: {modules}",
                    info.sdk_version
                ))
            }
            (None, Some(info)) => {
                let used = if info.uses.is_empty() {
                    "none".to_string()
                } else {
                    info.uses.join(", ")
                };
                Some(format!(
                    "Python handler (asyncio, netlet Python SDK {}); what its code uses: {used}",
                    info.sdk_version
                ))
            }
            (None, None) => None,
        },
        exports,
        imports,
        grants,
        linked_unused,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: a netlet handler for {}", self.file, self.world)?;
        writeln!(f, "sha256: {}", self.sha256)?;
        if let Some(language) = &self.language {
            writeln!(f, "language: {language}")?;
        }
        writeln!(f, "exports:")?;
        for e in &self.exports {
            let mark = if e.name == HANDLER_EXPORT {
                " (the handler)"
            } else {
                ""
            };
            writeln!(f, "  {}{mark}: {}", e.name, e.functions.join(", "))?;
        }
        writeln!(f, "imports:")?;
        for i in &self.imports {
            if i.functions.is_empty() {
                writeln!(f, "  {}", i.name)?;
            } else {
                writeln!(f, "  {}: {}", i.name, i.functions.join(", "))?;
            }
        }
        writeln!(f, "needs granted:")?;
        if self.grants.is_empty() {
            writeln!(
                f,
                "  nothing: it cannot reach out (no outbound connects, no sockets of its own, no name lookups)"
            )?;
        }
        for g in &self.grants {
            writeln!(f, "  {g}")?;
        }
        if !self.linked_unused.is_empty() {
            writeln!(
                f,
                "linked but never called by its SDK (refused by policy unless granted):"
            )?;
            for g in &self.linked_unused {
                writeln!(f, "  {g}")?;
            }
        }
        Ok(())
    }
}
