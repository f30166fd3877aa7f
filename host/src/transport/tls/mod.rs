//! TLS, terminated by the host (rustls): a [`TlsStream`] is a [`Stream`](super::Stream)
//! over another one, a [`TlsListener`] a [`Listener`](super::Listener) whose accepted
//! streams have finished their handshake, and [`connect`] the client side of a guest's
//! `connect` with a `tls` option. Private keys are read here and never reach a guest.
//!
//! - [`files`]: reading certificates, keys and CA files (PEM), each problem one line
//!   naming the file; the server's certificate chosen by SNI ([`files::SniResolver`]).
//! - [`stream`]: rustls's sans-I/O connection driven from the `poll_*` methods, on the
//!   shard's thread, with no task per connection.
//! - [`listener`]: handshakes in progress (bounded per listener), their timeout, failures
//!   counted and logged at a bounded rate.
//! - [`info`]: what a TLS socket tells the guest (protocol, cipher, SNI, ALPN, the
//!   verified peer certificate's subject and names).
//!
//! The crypto provider is *ring*: it builds in well under a minute on two cores, where
//! aws-lc-rs compiles a large C library (and wants cmake); rustls's protocol code and
//! safe defaults are the same with either. Only TLS 1.2 and 1.3 are offered.
//!
//! [`Tls`] is what a handler's TLS settings load into: the server configuration its TLS
//! listeners use and the client configuration its guests' TLS connects use. A
//! [`TlsCell`] holds the current one; it is shared by the handler's shards and replaced
//! at a reload (new handshakes use the new certificates, open connections keep theirs).

pub mod files;
pub mod info;
pub mod listener;
pub mod stream;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::HandlerConfig;

pub use info::{PeerCertificate, TlsInfo};
pub use listener::{TlsListener, TlsListenerSource};
pub use stream::TlsStream;

/// Handshakes in progress one TLS listener holds at once (per shard); past it a new
/// connection takes the place of the one that has waited longest for its peer.
pub const MAX_HANDSHAKES: usize = 1024;

/// The versions offered: TLS 1.3 and 1.2, nothing older.
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider (ring), made once.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A problem with one of the TLS settings' files: the setting (`tls-cert`), the file and
/// what is wrong with it, shown as `FILE: PROBLEM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsError {
    /// The setting that names the file.
    pub setting: &'static str,
    pub file: PathBuf,
    pub message: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for TlsError {}

/// A handler's TLS, loaded from its settings' files.
pub struct Tls {
    /// For its TLS listeners (`None`: it has none).
    pub server: Option<Arc<ServerConfig>>,
    /// For its guests' TLS connects: verified against `--tls-ca`, or the platform's roots
    /// (loaded when first needed).
    pub client_roots: ClientRoots,
    /// How long a handshake may take, either way.
    pub handshake_timeout: Duration,
}

/// Where a TLS client's trusted roots come from.
#[derive(Clone)]
pub enum ClientRoots {
    /// `--tls-ca FILE`.
    File(Arc<RootCertStore>),
    /// The platform's store, read once per process when a guest first needs it.
    Platform,
}

impl Tls {
    /// Reads and checks every file `config`'s TLS settings name.
    pub fn load(config: &HandlerConfig) -> Result<Arc<Tls>, TlsError> {
        let server = if config.tls.is_empty() {
            None
        } else {
            Some(Arc::new(files::server_config(config)?))
        };
        let client_roots = match &config.tls_ca {
            Some(path) => ClientRoots::File(Arc::new(files::roots("tls-ca", path)?)),
            None => ClientRoots::Platform,
        };
        Ok(Arc::new(Tls {
            server,
            client_roots,
            handshake_timeout: config.tls_handshake_timeout,
        }))
    }

    /// A client configuration offering `alpn`.
    pub fn client_config(&self, alpn: &[String]) -> Arc<ClientConfig> {
        let roots = match &self.client_roots {
            ClientRoots::File(roots) => roots.clone(),
            ClientRoots::Platform => platform_roots(),
        };
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }
}

/// The platform's trusted roots (the system's CA store), read once per process. A
/// store that cannot be read leaves them empty: every verification then fails with
/// "unknown issuer", and the first failure says why in the log.
pub fn platform_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            Arc::new(store)
        })
        .clone()
}

/// The handler's current TLS, shared by its shards and replaced by a reload.
pub struct TlsCell {
    current: RwLock<Arc<Tls>>,
}

impl TlsCell {
    pub fn new(tls: Arc<Tls>) -> Arc<Self> {
        Arc::new(TlsCell {
            current: RwLock::new(tls),
        })
    }

    /// No TLS listener, platform roots, the default timeout.
    pub fn empty() -> Arc<Self> {
        Self::new(Arc::new(Tls {
            server: None,
            client_roots: ClientRoots::Platform,
            handshake_timeout: crate::config::DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }))
    }

    pub fn get(&self) -> Arc<Tls> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// New handshakes use `tls` from now on.
    pub fn set(&self, tls: Arc<Tls>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = tls;
    }
}

/// What a guest's `connect` asked of TLS: the name to verify and send as SNI, the
/// protocols to offer.
#[derive(Clone, Debug)]
pub struct ConnectTls {
    pub server_name: rustls_pki_types::ServerName<'static>,
    pub config: Arc<ClientConfig>,
    pub handshake_timeout: Duration,
}

/// Wraps an outbound connection in TLS and runs its handshake (bounded by the
/// handshake timeout). `Err` says why it failed, as the guest's `error` event shows it.
pub async fn connect(
    mut stream: Box<dyn super::Stream>,
    tls: ConnectTls,
) -> Result<TlsStream, HandshakeError> {
    // Whole records go out as they are made (see the listener's handshakes).
    let _ = stream.set_nodelay(true);
    let sent = match &tls.server_name {
        rustls_pki_types::ServerName::DnsName(name) => Some(name.as_ref().to_string()),
        _ => None,
    };
    let conn =
        rustls::ClientConnection::new(tls.config, tls.server_name).map_err(HandshakeError::Tls)?;
    let mut stream = TlsStream::client(stream, conn, sent);
    let handshake = std::future::poll_fn(|cx| stream.poll_handshake(cx));
    match tokio::time::timeout(tls.handshake_timeout, handshake).await {
        Err(_) => Err(HandshakeError::TimedOut(tls.handshake_timeout)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(stream),
    }
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The TLS protocol failed: a certificate that does not verify, no protocol in
    /// common, an alert from the peer, bytes that are not TLS.
    Tls(rustls::Error),
    /// The socket failed, or the peer closed it during the handshake.
    Io(std::io::Error),
    /// It took longer than the handshake timeout.
    TimedOut(Duration),
    /// The listener had `limit` handshakes in progress and this one had waited the
    /// longest for its peer: it made room for a new connection.
    Evicted { idle: Duration, limit: usize },
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Tls(e) => f.write_str(&info::describe(e)),
            HandshakeError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                f.write_str("the peer closed the connection during the handshake")
            }
            HandshakeError::Io(e) => write!(f, "{e}"),
            HandshakeError::TimedOut(d) => write!(
                f,
                "no handshake within {} (--tls-handshake-timeout)",
                crate::config::format_duration(*d)
            ),
            HandshakeError::Evicted { idle, limit } => write!(
                f,
                "closed to make room for a new connection: {limit} handshakes were in \
                 progress and this peer had been silent the longest ({} ms)",
                idle.as_millis()
            ),
        }
    }
}

impl std::error::Error for HandshakeError {}
