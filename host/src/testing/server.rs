//! A handler on real loopback sockets, in-process: for tests that drive a component
//! with real clients (tokio, std, `nc`, Node), as tokio's mini-redis starts its server
//! in its tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::HandlerConfig;
use crate::engine::{EngineOptions, Loader, Pooling, Precompiled, default_cache_dir};
use crate::handler::Handler;
use crate::log::LogSink;
use crate::serve::Service;

use super::HarnessError;

/// A running handler. Stops when dropped (or with [`Server::shutdown`]).
///
/// ```no_run
/// use std::io::{Read, Write};
/// use netlet::HandlerConfig;
/// use netlet::testing::Server;
///
/// let server = Server::start("target/wasm32-wasip2/release/echo.wasm", HandlerConfig::default())?;
/// let mut client = std::net::TcpStream::connect(server.tcp[0]).unwrap();
/// let mut banner = [0; 13];
/// client.read_exact(&mut banner).unwrap();
/// assert_eq!(&banner, b"Echo server\r\n");
/// server.shutdown()?;
/// # Ok::<(), netlet::testing::HarnessError>(())
/// ```
pub struct Server {
    service: Option<Service>,
    /// The bound TCP addresses, in the order configured.
    pub tcp: Vec<SocketAddr>,
    /// The bound UDP addresses.
    pub udp: Vec<SocketAddr>,
    /// The bound TLS addresses (`HandlerConfig::tls`), in the order configured.
    pub tls: Vec<SocketAddr>,
    sink: LogSink,
}

impl Server {
    /// Starts the component at `path` with `config`. With no listener configured it
    /// listens on TCP `127.0.0.1:0`.
    pub fn start(
        path: impl AsRef<Path>,
        mut config: HandlerConfig,
    ) -> Result<Server, HarnessError> {
        if config.tcp.is_empty() && config.udp.is_empty() && config.tls.is_empty() {
            config
                .tcp
                .push(SocketAddr::from(([127, 0, 0, 1], 0)).into());
        }
        let config = config.validate().map_err(HarnessError::Config)?;
        let loader = Loader::new(&EngineOptions {
            cache_dir: default_cache_dir(),
            pooling: Pooling::for_config(&config),
        })
        .map_err(|e| HarnessError::Start(format!("{e:#}")))?;
        let precompiled = Precompiled::allowed(config.allow_precompiled);
        let handler = Handler::from_file(&loader, path.as_ref(), precompiled)?;
        let sink = LogSink::capture();
        let service = Service::start(Arc::new(handler), config, sink.clone())
            .map_err(|e| HarnessError::Start(e.to_string()))?;
        Ok(Server {
            tcp: service.tcp.clone(),
            udp: service.udp.clone(),
            tls: service.tls.clone(),
            service: Some(service),
            sink,
        })
    }

    /// What the guest printed so far, one line each.
    pub fn logs(&self) -> Vec<String> {
        self.sink.captured().guest
    }

    /// The host's lines about the handler (faults, denied destinations).
    pub fn host_logs(&self) -> Vec<String> {
        self.sink.captured().host
    }

    /// The handler's counters (connections, TLS handshakes, ...).
    pub fn stats(&self) -> Option<Arc<crate::stats::HandlerStats>> {
        self.service.as_ref().map(|s| s.stats.clone())
    }

    /// Stops the handler (open connections get the grace period) and waits for it.
    pub fn shutdown(mut self) -> Result<(), HarnessError> {
        match self.service.take() {
            Some(service) => {
                service.stop();
                service.wait().map_err(HarnessError::Start)
            }
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(service) = &self.service {
            service.stop();
        }
    }
}
