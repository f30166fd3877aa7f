//! Reading the TLS settings' files: certificate chains, private keys and CA bundles in
//! PEM, each problem reported as one line naming the file; and choosing a listener's
//! certificate by the client's SNI ([`SniResolver`]).

use std::path::Path;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{TlsError, VERSIONS, provider};
use crate::config::TlsSettings;

/// The largest file read as a certificate, key or CA bundle.
const MAX_FILE: u64 = 4 << 20;

fn error(setting: &'static str, file: &Path, message: impl Into<String>) -> TlsError {
    TlsError {
        setting,
        file: file.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a file named by `setting`, bounded in size.
fn read(setting: &'static str, file: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        error(
            setting,
            file,
            match e.kind() {
                std::io::ErrorKind::NotFound => "cannot read: no such file".to_string(),
                std::io::ErrorKind::PermissionDenied => {
                    "cannot read: permission denied".to_string()
                }
                _ => format!("cannot read: {e}"),
            },
        )
    };
    let f = std::fs::File::open(file).map_err(cannot)?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(error(
            setting,
            file,
            "larger than 4 MiB: not a certificate or key file",
        ));
    }
    Ok(bytes)
}

/// The certificates of a PEM file (a chain: the leaf first).
pub fn certificates(
    setting: &'static str,
    file: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(setting, file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(setting, file, format!("not a valid PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(error(
            setting,
            file,
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
        ));
    }
    for (i, cert) in certs.iter().enumerate() {
        if webpki::EndEntityCert::try_from(cert).is_err() {
            return Err(error(
                setting,
                file,
                format!("certificate {} is not a valid X.509 certificate", i + 1),
            ));
        }
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("tls-key", file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        error(
            "tls-key",
            file,
            match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    "no private key in it (expected PEM: a PKCS#8, PKCS#1 or SEC1 key)".to_string()
                }
                other => format!("not a valid PEM file: {other}"),
            },
        )
    })
}

/// A CA bundle: the roots a peer's certificate must chain to.
pub fn roots(setting: &'static str, file: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(setting, file)? {
        store
            .add(cert)
            .map_err(|e| error(setting, file, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(store)
}

/// One certificate a listener serves, with the names it is for.
#[derive(Debug)]
struct Served {
    /// DNS names (lowercase), `*.example.com` for a wildcard.
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// Chooses the certificate for a client's SNI: one whose names include it (exactly, or
/// by a wildcard of one label: `*.example.com` for `a.example.com`); otherwise, and
/// without SNI, the first.
#[derive(Debug)]
pub struct SniResolver {
    served: Vec<Served>,
}

impl SniResolver {
    /// The index of the certificate chosen for `sni`.
    pub fn choose(&self, sni: Option<&str>) -> usize {
        let Some(sni) = sni else {
            return 0;
        };
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        let exact = self.served.iter().position(|s| s.names.contains(&sni));
        let wildcard = || {
            let (_, parent) = sni.split_once('.')?;
            self.served.iter().position(|s| {
                s.names
                    .iter()
                    .any(|n| n.strip_prefix("*.").is_some_and(|p| p == parent))
            })
        };
        exact.or_else(wildcard).unwrap_or(0)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let index = self.choose(hello.server_name());
        self.served.get(index).map(|s| s.key.clone())
    }
}

/// The names a certificate is for: its DNS subject alternative names.
fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    webpki::EndEntityCert::try_from(cert)
        .map(|c| c.valid_dns_names().map(str::to_ascii_lowercase).collect())
        .unwrap_or_default()
}

/// The SNI resolver for the certificate/key pairs of `config`.
pub fn resolver(config: &TlsSettings) -> Result<SniResolver, TlsError> {
    let provider = provider();
    let mut served = Vec::new();
    for (cert_file, key_file) in &config.certs {
        let chain = certificates("tls-cert", cert_file)?;
        let key = private_key(key_file)?;
        let names = dns_names(&chain[0]);
        let signing = provider.key_provider.load_private_key(key).map_err(|e| {
            error(
                "tls-key",
                key_file,
                format!("the key cannot be used: {}", super::info::describe(&e)),
            )
        })?;
        let key = CertifiedKey::new(chain, signing);
        match key.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => {
                return Err(error(
                    "tls-key",
                    key_file,
                    format!(
                        "this key does not match the certificate in {}",
                        cert_file.display()
                    ),
                ));
            }
        }
        served.push(Served {
            names,
            key: Arc::new(key),
        });
    }
    Ok(SniResolver { served })
}

/// The server configuration of `config`'s TLS listeners: its certificates by SNI, its
/// ALPN protocols, client certificates when `tls-client-ca` is set.
pub fn server_config(config: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let resolver = Arc::new(resolver(config)?);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .expect("ring supports TLS 1.2 and 1.3");
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(file) => {
            let roots = Arc::new(roots("tls-client-ca", file)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| {
                    error(
                        "tls-client-ca",
                        file,
                        format!("cannot verify client certificates with it: {e}"),
                    )
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_cert_resolver(resolver);
    server.alpn_protocols = config.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(server)
}

/// A digest of every file `config`'s TLS settings name, as they are now: a reload
/// compares it to tell whether certificates changed. A file that cannot be read counts
/// as changed (loading it then says why).
pub fn fingerprint(config: &TlsSettings) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for file in config.files() {
        hash.update(file.as_os_str().as_encoded_bytes());
        match std::fs::read(file) {
            Ok(bytes) => hash.update(crate::cache::sha256_hex(&bytes)),
            Err(e) => hash.update(format!("unreadable {e}")),
        }
    }
    format!("{:x}", hash.finalize())
}

/// The files `config`'s TLS settings name (what `--watch` watches besides components).
pub fn paths(config: &TlsSettings) -> Vec<std::path::PathBuf> {
    config.files().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver_for(names: &[&[&str]]) -> SniResolver {
        let provider = provider();
        let served = names
            .iter()
            .map(|names| {
                let key = rcgen::KeyPair::generate().unwrap();
                let cert = rcgen::CertificateParams::new(
                    names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                )
                .unwrap()
                .self_signed(&key)
                .unwrap();
                let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
                let signing = provider.key_provider.load_private_key(der).unwrap();
                Served {
                    names: dns_names(cert.der()),
                    key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)),
                }
            })
            .collect();
        SniResolver { served }
    }

    #[test]
    fn sni_picks_exact_names_then_wildcards_then_the_first() {
        let r = resolver_for(&[
            &["default.test"],
            &["*.example.test"],
            &["a.example.test", "other.test"],
        ]);
        assert_eq!(r.choose(None), 0);
        assert_eq!(r.choose(Some("nomatch.test")), 0);
        assert_eq!(r.choose(Some("b.example.test")), 1);
        assert_eq!(r.choose(Some("B.Example.Test.")), 1);
        // An exact name wins over a wildcard.
        assert_eq!(r.choose(Some("a.example.test")), 2);
        assert_eq!(r.choose(Some("other.test")), 2);
        // A wildcard covers one label only.
        assert_eq!(r.choose(Some("x.b.example.test")), 0);
        assert_eq!(r.choose(Some("example.test")), 0);
    }
}
