//! The system's network for a shard's guests: kernel sockets registered with the
//! shard's runtime, connects and name lookups run as tasks on it.

use std::io;
use std::net::SocketAddr;

use super::{ConnectDone, ConnectError, ConnectRequest, Datagram, LookupDone, Network, UdpOptions};

/// Opens kernel sockets for one shard.
pub struct SystemNetwork {
    rt: tokio::runtime::Handle,
}

impl SystemNetwork {
    /// Sockets and tasks go to the runtime of `rt` (the shard's).
    pub fn new(rt: tokio::runtime::Handle) -> Self {
        Self { rt }
    }
}

impl Network for SystemNetwork {
    fn connect(&self, request: ConnectRequest, done: ConnectDone) {
        self.rt.spawn(async move {
            let tls = request.tls.clone();
            let result = super::tcp::connect(request).await;
            let result = match (result, tls) {
                (Ok(tcp), Some(tls)) => {
                    let target = tcp
                        .peer_addr()
                        .map(|a| crate::resolve::display_addr(&a))
                        .unwrap_or_default();
                    super::tls::connect(Box::new(tcp), tls)
                        .await
                        .map(|s| Box::new(s) as Box<dyn super::Stream>)
                        .map_err(|e| ConnectError {
                            error: io::Error::other(e),
                            target,
                            denied: false,
                        })
                }
                (result, _) => result.map(|s| Box::new(s) as Box<dyn super::Stream>),
            };
            done(result);
        });
    }

    fn lookup(&self, host: String, port: u16, done: LookupDone) {
        self.rt.spawn(async move { done(lookup(host, port).await) });
    }

    fn tcp_listener(
        &self,
        addr: SocketAddr,
        reuse_port: bool,
    ) -> io::Result<Box<dyn super::ListenerSource>> {
        Ok(Box::new(super::tcp::bind(addr, reuse_port)?))
    }

    fn udp_socket(&self, options: &UdpOptions) -> io::Result<Box<dyn Datagram>> {
        let socket = super::udp::socket(options)?;
        // Guest calls run outside the shard's runtime (see `shard`); register with it.
        let _enter = self.rt.enter();
        Ok(Box::new(tokio::net::UdpSocket::from_std(socket.into())?))
    }
}

/// Resolves `host` through the system resolver (in tokio's blocking pool).
pub async fn lookup(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address"),
        ));
    }
    Ok(addrs)
}
