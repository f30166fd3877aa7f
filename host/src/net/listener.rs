//! Binding TCP servers with Node's semantics (backlog 511, SO_REUSEADDR, dual-stack `[::]`)
//! and accepting on them.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};

use socket2::{Domain, Protocol, Socket, Type};

use super::stream::Stream;
use crate::config::BACKLOG;
use crate::events::HostEvent;
use crate::guest::Io;
use crate::testing::mem::MemNet;

/// Binds and listens on `addr`. With `reuse_port`, several shards can bind the same port
/// and the kernel spreads connections over them.
pub fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
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

/// Binds a UDP socket on `addr` (for `--udp`).
pub fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
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

/// A listener before its shard registers it.
pub enum ListenerSource {
    Std(std::net::TcpListener),
    /// The testing harness's in-memory listener number `index`.
    Mem(usize),
}

/// Where a listener's connections come from.
pub enum ListenerSock {
    Tcp(tokio::net::TcpListener),
    /// The testing harness's in-memory listener number `index`.
    Mem(MemNet, usize),
}

/// A listening socket owned by a shard.
pub struct Listener {
    /// The server id the guest sees.
    pub id: u32,
    pub addr: SocketAddr,
    pub socket: ListenerSock,
    pub waker: Waker,
}

/// What one accept attempt produced.
pub enum Accepted {
    Conn(Stream, SocketAddr),
    /// Nothing pending; the waker is registered.
    None,
    /// A transient failure (the peer gave up before we accepted): try again.
    Retry,
    /// A failure worth reporting (out of file descriptors, ...).
    Fail(io::Error),
}

impl Listener {
    pub fn accept(&self) -> Accepted {
        let mut cx = Context::from_waker(&self.waker);
        let socket = match &self.socket {
            ListenerSock::Tcp(socket) => socket,
            ListenerSock::Mem(net, index) => {
                return match net.poll_accept(*index, &mut cx) {
                    Poll::Pending => Accepted::None,
                    Poll::Ready((stream, peer)) => Accepted::Conn(Stream::Mem(stream), peer),
                };
            }
        };
        match socket.poll_accept(&mut cx) {
            Poll::Pending => Accepted::None,
            Poll::Ready(Ok((stream, peer))) => Accepted::Conn(Stream::Tcp(stream), peer),
            Poll::Ready(Err(e)) => match e.kind() {
                io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted => Accepted::Retry,
                _ => Accepted::Fail(e),
            },
        }
    }
}

/// After `server.close()`: once the last connection has closed, `server-close` fires
/// and the server is forgotten.
pub fn maybe_server_closed(io: &mut Io, id: u32) {
    if let Some(view) = io.servers.get(&id)
        && !view.listening
        && view.connections == 0
    {
        io.servers.remove(&id);
        io.events.push(HostEvent::ServerClose(id));
    }
}
