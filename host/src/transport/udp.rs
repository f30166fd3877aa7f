//! UDP over the kernel's sockets (tokio): the [`Datagram`] of `netlet run`, binding
//! host-side sockets for `--udp`, and creating a guest's own sockets.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::ReadBuf;

use super::{Datagram, DatagramSource, UdpOptions};

impl Datagram for tokio::net::UdpSocket {
    fn poll_recv_from(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        tokio::net::UdpSocket::poll_recv_from(self, cx, buf)
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        dest: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        match dest {
            Some(dest) => self.poll_send_to(cx, data, dest),
            None => tokio::net::UdpSocket::poll_send(self, cx, data),
        }
    }

    fn bind(&mut self, addr: SocketAddr) -> io::Result<()> {
        SockRef::from(&*self).bind(&addr.into())
    }

    fn connect(&mut self, peer: Option<SocketAddr>) -> io::Result<()> {
        match peer {
            Some(peer) => SockRef::from(&*self).connect(&peer.into()),
            None => disconnect(&SockRef::from(&*self)),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::UdpSocket::local_addr(self)
    }

    fn options(&self) -> SockRef<'_> {
        SockRef::from(self)
    }
}

impl DatagramSource for std::net::UdpSocket {
    fn open(self: Box<Self>) -> io::Result<Box<dyn Datagram>> {
        Ok(Box::new(tokio::net::UdpSocket::from_std(*self)?))
    }
}

/// Binds a UDP socket on `addr` (for `--udp`).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A new unbound, non-blocking UDP socket with Node's `createSocket` options applied.
pub fn socket(options: &UdpOptions) -> io::Result<Socket> {
    let domain = if options.v6 {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if options.reuse_addr {
        socket.set_reuse_address(true)?;
    }
    if options.v6 {
        socket.set_only_v6(options.ipv6_only)?;
    }
    if let Some(size) = options.recv_buffer_size {
        socket.set_recv_buffer_size(size as usize)?;
    }
    if let Some(size) = options.send_buffer_size {
        socket.set_send_buffer_size(size as usize)?;
    }
    Ok(socket)
}

/// Dissolves a UDP socket's association (`connect` with `AF_UNSPEC`).
fn disconnect(sock: &SockRef<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed sockaddr with family AF_UNSPEC is a valid argument to connect(2),
    // and the fd is a live socket borrowed for the duration of the call.
    let rc = unsafe {
        let mut addr: libc::sockaddr = std::mem::zeroed();
        addr.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        libc::connect(
            sock.as_raw_fd(),
            &addr,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
