//! UDP over the kernel's sockets (tokio): the [`Datagram`] of `netlet run`, binding
//! host-side sockets for `--udp`, and creating a guest's own sockets. Datagrams move in
//! batches: one `recvmmsg` or `sendmmsg` for up to [`BATCH`] of them.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::ReadBuf;

use super::{Datagram, DatagramSource, DgramOption, UdpOptions};

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

    fn set_option(&self, option: DgramOption) -> io::Result<()> {
        set_option(&SockRef::from(self), option)
    }

    fn buffer_size(&self, recv: bool) -> io::Result<usize> {
        let sock = SockRef::from(self);
        if recv {
            sock.recv_buffer_size()
        } else {
            sock.send_buffer_size()
        }
    }

    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [Vec<u8>],
        got: &mut [(usize, SocketAddr)],
    ) -> Poll<io::Result<usize>> {
        use std::os::fd::AsRawFd;
        loop {
            std::task::ready!(self.poll_recv_ready(cx))?;
            let fd = self.as_raw_fd();
            match self.try_io(tokio::io::Interest::READABLE, || recv_many(fd, bufs, got)) {
                // Readiness was cleared: poll it again, which registers the waker.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_send_many(
        &mut self,
        cx: &mut Context<'_>,
        datagrams: &[(&[u8], Option<SocketAddr>)],
    ) -> Poll<io::Result<usize>> {
        use std::os::fd::AsRawFd;
        loop {
            std::task::ready!(self.poll_send_ready(cx))?;
            let fd = self.as_raw_fd();
            match self.try_io(tokio::io::Interest::WRITABLE, || send_many(fd, datagrams)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
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

/// Sets `option` on a kernel UDP socket.
fn set_option(sock: &SockRef<'_>, option: DgramOption) -> io::Result<()> {
    match option {
        DgramOption::Broadcast(on) => sock.set_broadcast(on),
        DgramOption::Ttl { hops, v6: false } => sock.set_ttl_v4(hops),
        DgramOption::Ttl { hops, v6: true } => sock.set_unicast_hops_v6(hops),
        DgramOption::MulticastTtl { hops, v6: false } => sock.set_multicast_ttl_v4(hops),
        DgramOption::MulticastTtl { hops, v6: true } => sock.set_multicast_hops_v6(hops),
        DgramOption::MulticastLoopback { on, v6: false } => sock.set_multicast_loop_v4(on),
        DgramOption::MulticastLoopback { on, v6: true } => sock.set_multicast_loop_v6(on),
        DgramOption::MulticastInterfaceV4(interface) => sock.set_multicast_if_v4(&interface),
        DgramOption::MulticastInterfaceV6(index) => sock.set_multicast_if_v6(index),
        DgramOption::MembershipV4 {
            group,
            interface,
            join,
        } => {
            if join {
                sock.join_multicast_v4(&group, &interface)
            } else {
                sock.leave_multicast_v4(&group, &interface)
            }
        }
        DgramOption::MembershipV6 {
            group,
            interface,
            join,
        } => {
            if join {
                sock.join_multicast_v6(&group, interface)
            } else {
                sock.leave_multicast_v6(&group, interface)
            }
        }
        DgramOption::BufferSize { recv: true, size } => sock.set_recv_buffer_size(size),
        DgramOption::BufferSize { recv: false, size } => sock.set_send_buffer_size(size),
    }
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

/// Datagrams one system call moves at most (`recvmmsg`, `sendmmsg`).
pub const BATCH: usize = 16;

/// An address as the kernel takes it.
fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The address the kernel wrote, if it is an IP one.
fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(storage as *const _ as *const _) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*(storage as *const _ as *const _) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `recvmmsg(2)`: up to `bufs.len()` datagrams at once, without waiting.
fn recv_many(
    fd: std::os::fd::RawFd,
    bufs: &mut [Vec<u8>],
    got: &mut [(usize, SocketAddr)],
) -> io::Result<usize> {
    let n = bufs.len().min(got.len()).min(BATCH);
    // SAFETY: all-zero values of these C structs are valid.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        iovs[i] = libc::iovec {
            iov_base: bufs[i].as_mut_ptr().cast(),
            iov_len: bufs[i].len(),
        };
        msgs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
        msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every message points at a live buffer of the length given and at its own
    // address storage; the arrays outlive the call.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let r = r as usize;
    for i in 0..r {
        let from = from_sockaddr(&names[i]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a datagram from a non-IP address",
            )
        })?;
        got[i] = (msgs[i].msg_len as usize, from);
    }
    Ok(r)
}

/// `sendmmsg(2)`: the datagrams in order, each to its destination (or the connected
/// peer), without waiting; how many went.
fn send_many(
    fd: std::os::fd::RawFd,
    datagrams: &[(&[u8], Option<SocketAddr>)],
) -> io::Result<usize> {
    let n = datagrams.len().min(BATCH);
    // SAFETY: all-zero values of these C structs are valid.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (i, (data, dest)) in datagrams.iter().take(n).enumerate() {
        iovs[i] = libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: data.len(),
        };
        if let Some(dest) = dest {
            let (storage, len) = to_sockaddr(dest);
            names[i] = storage;
            msgs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
            msgs[i].msg_hdr.msg_namelen = len;
        }
        msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every message points at live data of the length given (the kernel only
    // reads it) and at its own address; the arrays outlive the call.
    let r = unsafe {
        libc::sendmmsg(
            fd,
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}
