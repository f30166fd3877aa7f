//! What a reload does, decided apart from doing it: a pure function of the handlers
//! that run and the handlers the source now names, each seen with digests of what its
//! files hold now. Reading those files, compiling components and starting or swapping
//! handlers are the supervisor's (`deploy`); this module only decides, and is tested
//! alone.

use super::manifest::HandlerSpec;

/// One handler as a reload sees it: its spec, and digests of what its files hold.
pub struct Seen<'a> {
    pub spec: &'a HandlerSpec,
    /// The sha256 of its component: for a running handler, of the code it runs; for a
    /// wanted one, of what the component holds now (`None`: it could not be read).
    pub component: Option<&'a str>,
    /// A digest of its TLS files (see `transport::tls::files::fingerprint`).
    pub tls_files: &'a str,
}

/// What a reload does to one handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing changed.
    Keep,
    /// Only TLS settings or files changed: new certificates for new handshakes; the
    /// code, its instances and its connections are untouched.
    ReloadTls,
    /// Its code (or a setting a swap can take) changed: new code, same listeners.
    Swap,
    /// These settings changed, and only a restart can take them (listeners, shards,
    /// isolation, a pool).
    Restart(Vec<&'static str>),
    /// New in the source.
    Add,
    /// Gone from the source.
    Remove,
}

/// Decides, for every handler that runs or is wanted, what the reload does; in the
/// order: removals first (their ports may be wanted by others), then the wanted ones
/// in their order.
pub fn decide(running: &[Seen<'_>], wanted: &[Seen<'_>]) -> Vec<(String, Decision)> {
    let mut out = Vec::new();
    for old in running {
        if !wanted.iter().any(|w| w.spec.name == old.spec.name) {
            out.push((old.spec.name.clone(), Decision::Remove));
        }
    }
    for new in wanted {
        let decision = match running.iter().find(|r| r.spec.name == new.spec.name) {
            None => Decision::Add,
            Some(old) => change(old, new),
        };
        out.push((new.spec.name.clone(), decision));
    }
    out
}

fn change(old: &Seen<'_>, new: &Seen<'_>) -> Decision {
    let same_code = new.component.is_some() && new.component == old.component;
    let same_tls = new.tls_files == old.tls_files;
    if same_code && same_tls && old.spec.same_settings(new.spec) {
        return Decision::Keep;
    }
    if same_code
        && old.spec.component == new.spec.component
        && old.spec.sha256 == new.spec.sha256
        && old.spec.config.only_tls_differs(&new.spec.config)
    {
        return Decision::ReloadTls;
    }
    let changed = old.spec.config.restart_needed_for(&new.spec.config);
    if changed.is_empty() {
        Decision::Swap
    } else {
        Decision::Restart(changed)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::HandlerConfig;
    use crate::engine::ComponentSource;

    fn spec(name: &str, config: HandlerConfig) -> HandlerSpec {
        let mut spec = HandlerSpec::builtin(ComponentSource::File(PathBuf::from("x.wasm")), config);
        spec.name = name.to_string();
        spec
    }

    fn tcp(port: u16) -> HandlerConfig {
        HandlerConfig {
            tcp: vec![std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()],
            ..HandlerConfig::default()
        }
    }

    fn seen<'a>(spec: &'a HandlerSpec, code: Option<&'a str>, tls: &'a str) -> Seen<'a> {
        Seen {
            spec,
            component: code,
            tls_files: tls,
        }
    }

    #[test]
    fn nothing_changed_is_kept_and_new_or_gone_handlers_are_added_or_removed() {
        let (a, b, c) = (spec("a", tcp(1)), spec("b", tcp(2)), spec("c", tcp(3)));
        let running = [seen(&a, Some("1"), "t"), seen(&b, Some("2"), "t")];
        let wanted = [seen(&a, Some("1"), "t"), seen(&c, Some("3"), "t")];
        assert_eq!(
            decide(&running, &wanted),
            [
                ("b".to_string(), Decision::Remove),
                ("a".to_string(), Decision::Keep),
                ("c".to_string(), Decision::Add),
            ]
        );
    }

    #[test]
    fn new_code_is_swapped_and_new_listeners_restart() {
        let a = spec("a", tcp(1));
        let running = [seen(&a, Some("1"), "t")];
        assert_eq!(
            decide(&running, &[seen(&a, Some("2"), "t")]),
            [("a".to_string(), Decision::Swap)]
        );
        // A component that cannot be read now is reloaded (the load says why).
        assert_eq!(
            decide(&running, &[seen(&a, None, "t")]),
            [("a".to_string(), Decision::Swap)]
        );
        let moved = spec("a", tcp(9));
        assert_eq!(
            decide(&running, &[seen(&moved, Some("1"), "t")]),
            [("a".to_string(), Decision::Restart(vec!["tcp"]))]
        );
        let mut limit = tcp(1);
        limit.max_memory = 1 << 20;
        let limited = spec("a", limit);
        assert_eq!(
            decide(&running, &[seen(&limited, Some("1"), "t")]),
            [("a".to_string(), Decision::Swap)]
        );
    }

    #[test]
    fn rotated_certificates_reload_tls_alone() {
        let mut config = HandlerConfig {
            tls: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 1)).into()],
            tls_cert: vec![PathBuf::from("a.pem")],
            tls_key: vec![PathBuf::from("a.key")],
            ..HandlerConfig::default()
        };
        let old = spec("a", config.clone());
        let running = [seen(&old, Some("1"), "files-1")];
        // The same files, new contents.
        assert_eq!(
            decide(&running, &[seen(&old, Some("1"), "files-2")]),
            [("a".to_string(), Decision::ReloadTls)]
        );
        // Other files named.
        config.tls_cert = vec![PathBuf::from("b.pem")];
        config.tls_key = vec![PathBuf::from("b.key")];
        let renamed = spec("a", config);
        assert_eq!(
            decide(&running, &[seen(&renamed, Some("1"), "files-1")]),
            [("a".to_string(), Decision::ReloadTls)]
        );
        // New code as well: a swap (which takes the new certificates too).
        assert_eq!(
            decide(&running, &[seen(&renamed, Some("2"), "files-2")]),
            [("a".to_string(), Decision::Swap)]
        );
    }
}
