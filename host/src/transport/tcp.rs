//! TCP over the kernel's sockets (tokio): the [`Stream`] and [`Listener`] of `netlet
//! run`, binding listeners with Node's semantics (backlog 511, `SO_REUSEADDR`,
//! dual-stack `[::]`), and outbound connects (resolve, filter by family and policy, try
//! each address in turn).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{ConnectError, ConnectRequest, Listener, ListenerSource, Stream};
use crate::bindings::IpFamily;
use crate::config::BACKLOG;
use crate::resolve::display_addr;

impl Stream for tokio::net::TcpStream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(self).poll_read(cx, buf)
    }

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // tokio's readiness state: no system call.
        tokio::net::TcpStream::poll_read_ready(self, cx)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self).poll_write(cx, data)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self).poll_write_vectored(cx, bufs)
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match SockRef::from(&*self).shutdown(std::net::Shutdown::Write) {
            // The peer reset first: there is no direction left to end.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }

    fn reset_on_close(&mut self) -> io::Result<()> {
        SockRef::from(&*self).set_linger(Some(Duration::ZERO))
    }

    fn set_nodelay(&mut self, on: bool) -> io::Result<()> {
        tokio::net::TcpStream::set_nodelay(self, on)
    }

    fn set_keepalive(&mut self, enable: bool, initial_delay_ms: u32) -> io::Result<()> {
        let sock = SockRef::from(&*self);
        if !enable {
            return sock.set_keepalive(false);
        }
        if initial_delay_ms > 0 {
            let ka = socket2::TcpKeepalive::new()
                .with_time(Duration::from_millis(u64::from(initial_delay_ms)));
            sock.set_tcp_keepalive(&ka)
        } else {
            sock.set_keepalive(true)
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpStream::local_addr(self)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpStream::peer_addr(self)
    }
}

/// A listening TCP socket registered with a shard's runtime.
pub struct TcpListener {
    socket: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl Listener for TcpListener {
    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        loop {
            return match self.socket.poll_accept(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok((stream, peer))) => Poll::Ready(Ok((Box::new(stream), peer))),
                // The peer gave up before we accepted: not the listener's fault.
                Poll::Ready(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            };
        }
    }
}

impl ListenerSource for std::net::TcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        std::net::TcpListener::local_addr(self)
    }

    fn open(self: Box<Self>) -> io::Result<Box<dyn Listener>> {
        let addr = self.local_addr()?;
        let socket = tokio::net::TcpListener::from_std(*self)?;
        Ok(Box::new(TcpListener { socket, addr }))
    }
}

/// Binds and listens on `addr`. With `reuse_port`, several shards can bind the same port
/// and the kernel spreads connections over them.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `[::]` accepts IPv4 too, as Node's default listen address does.
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn family_ok(ip: &IpAddr, family: Option<IpFamily>) -> bool {
    match family {
        None => true,
        Some(IpFamily::Ipv4) => ip.is_ipv4(),
        Some(IpFamily::Ipv6) => ip.is_ipv6(),
    }
}

/// Runs an outbound connect: resolves (if needed), keeps the addresses of the requested
/// family that the policy allows, and tries each in turn until one connects.
pub async fn connect(request: ConnectRequest) -> Result<tokio::net::TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = match &request.addrs {
        Some(ips) => ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, request.port))
            .collect(),
        None => super::system::lookup(request.host.clone(), request.port)
            .await
            .map_err(|error| ConnectError {
                error: io::Error::new(io::ErrorKind::NotFound, error.to_string()),
                target: request.host.clone(),
                denied: false,
            })?,
    };
    let candidates: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| family_ok(&a.ip(), request.family))
        .filter(|a| request.local.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
        .collect();
    let allowed: Vec<SocketAddr> = candidates
        .iter()
        .copied()
        .filter(|a| request.name_allowed || request.policy.allows(*a))
        .collect();
    if allowed.is_empty() {
        let denied = !candidates.is_empty();
        return Err(ConnectError {
            error: if denied {
                io::Error::from_raw_os_error(libc::EACCES)
            } else {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no address of the requested family",
                )
            },
            target: crate::resolve::display_target(&request.host, request.port),
            denied,
        });
    }
    let mut last = None;
    for addr in allowed {
        match connect_one(addr, request.local).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some((error, addr)),
        }
    }
    let (error, addr) = last.expect("at least one address was tried");
    Err(ConnectError {
        error,
        target: display_addr(&addr),
        denied: false,
    })
}

async fn connect_one(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<tokio::net::TcpStream> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

/// Whether `ip` is of `family` (no family: any).
pub fn of_family(ip: &IpAddr, family: Option<IpFamily>) -> bool {
    family_ok(ip, family)
}
