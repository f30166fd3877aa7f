//! Transports: what a connection's byte stream, a listener, a UDP socket and name
//! resolution must do, whatever carries them.
//!
//! Everything above this module (the `net` and `dgram` state machines, the shard's loop)
//! talks to the network only through these traits, with non-blocking `poll_*` calls and
//! the caller's [`Waker`](std::task::Waker): a transport that cannot make progress
//! registers the waker and returns `Pending`, and the shard's reactor queues the socket
//! when it is woken.
//!
//! Implementations:
//! - [`tcp`] and [`udp`]: the kernel's sockets, through tokio ([`SystemNetwork`] opens
//!   them for guests);
//! - [`crate::testing::mem`]: the testing harness's in-memory network;
//! - [`tls`]: a TLS layer, a [`Stream`] over another [`Stream`], and a [`Listener`]
//!   whose accepted streams have finished their handshake.
//!
//! Adding a transport means implementing these traits and choosing it where listeners
//! are bound ([`crate::serve`]) or where a guest's `connect` starts
//! ([`crate::net::connect`]); nothing else changes.

pub mod migrate;
pub mod system;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use socket2::SockRef;
use tokio::io::ReadBuf;

use crate::bindings::IpFamily;
use crate::policy::Policy;

pub use system::SystemNetwork;

/// A connected byte stream (one TCP connection, perhaps with a layer on top).
pub trait Stream: Send {
    /// Reads into `buf`; `Ok` with nothing filled is the peer's end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>>;

    /// `Ready` when a read would make progress now: bytes (or an end, or an error) that
    /// the kernel *or this layer* holds. A layer that buffers (TLS keeps decrypted bytes
    /// after a short socket read) must answer `Ready` while it holds any. `Pending`
    /// registers the waker.
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Writes some of `data`.
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes some of `bufs`, in order, with one system call where the stream can (a TLS
    /// layer sends several records at once). By default, the first non-empty buffer.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        self.poll_write(cx, first)
    }

    /// Pushes out what the layer itself holds (a TLS layer's records); `Ready(Ok)` once
    /// nothing written is left inside it. A plain socket holds nothing.
    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ends our direction after everything written so far: TCP's FIN; a TLS layer sends
    /// its `close_notify` first. Called again after `Pending` until it is `Ready`.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Makes the coming close a reset (`SO_LINGER` 0: RST, unsent bytes dropped).
    fn reset_on_close(&mut self) -> io::Result<()>;

    /// `TCP_NODELAY`.
    fn set_nodelay(&mut self, on: bool) -> io::Result<()>;

    /// `SO_KEEPALIVE`, with the idle time before the first probe when `initial_delay_ms`
    /// is above 0.
    fn set_keepalive(&mut self, enable: bool, initial_delay_ms: u32) -> io::Result<()>;

    fn local_addr(&self) -> io::Result<SocketAddr>;

    fn peer_addr(&self) -> io::Result<SocketAddr>;

    /// What a TLS layer negotiated (`None`: not encrypted, Node's `socket.encrypted`
    /// false).
    fn tls(&self) -> Option<&tls::TlsInfo> {
        None
    }
}

/// A listening socket: connections come out of it as [`Stream`]s, each with its peer's
/// address.
pub trait Listener: Send {
    fn local_addr(&self) -> SocketAddr;

    /// The next connection. `Err` is a failure of the listener worth reporting (out of
    /// descriptors); transient ones (a peer that gave up before it was accepted) are
    /// retried inside.
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>>;
}

/// A UDP socket.
pub trait Datagram: Send {
    /// Receives one datagram into `buf` (cut to its size); returns the sender.
    fn poll_recv_from(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>>;

    /// Sends one datagram to `dest`, or to the connected peer when `None`.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        dest: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>>;

    fn bind(&mut self, addr: SocketAddr) -> io::Result<()>;

    /// Fixes the peer (`Some`), or dissolves the association (`None`).
    fn connect(&mut self, peer: Option<SocketAddr>) -> io::Result<()>;

    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Where socket options are set (`SO_BROADCAST`, TTLs, multicast, buffer sizes).
    fn options(&self) -> SockRef<'_>;

    /// Receives up to `bufs.len()` datagrams at once, each into its buffer (cut to its
    /// size); `got[i]` is the `i`th one's length and sender. Returns how many came.
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [Vec<u8>],
        got: &mut [(usize, SocketAddr)],
    ) -> Poll<io::Result<usize>> {
        let Some(buf) = bufs.first_mut() else {
            return Poll::Ready(Ok(0));
        };
        let mut rb = ReadBuf::new(buf);
        self.poll_recv_from(cx, &mut rb).map_ok(|from| {
            got[0] = (rb.filled().len(), from);
            1
        })
    }

    /// Sends datagrams in order, each to its destination (or the connected peer);
    /// returns how many went. An error is the first datagram's.
    fn poll_send_many(
        &mut self,
        cx: &mut Context<'_>,
        datagrams: &[(&[u8], Option<SocketAddr>)],
    ) -> Poll<io::Result<usize>> {
        let Some((data, dest)) = datagrams.first() else {
            return Poll::Ready(Ok(0));
        };
        self.poll_send(cx, data, *dest).map_ok(|_| 1)
    }
}

/// A listener bound before its shard exists (so a port in use fails before anything
/// starts); the shard opens it on its own thread, where it registers with the shard's
/// runtime.
pub trait ListenerSource: Send {
    /// Where it is bound.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    fn open(self: Box<Self>) -> io::Result<Box<dyn Listener>>;
}

/// A UDP socket bound before its shard exists (`netlet run --udp`).
pub trait DatagramSource: Send {
    fn open(self: Box<Self>) -> io::Result<Box<dyn Datagram>>;
}

/// Options of a UDP socket a guest creates (Node's `dgram.createSocket(options)`).
#[derive(Clone, Copy, Debug, Default)]
pub struct UdpOptions {
    pub v6: bool,
    pub reuse_addr: bool,
    pub ipv6_only: bool,
    pub recv_buffer_size: Option<u32>,
    pub send_buffer_size: Option<u32>,
}

/// Where a guest's outbound connection goes, as decided in its `connect` call (the
/// policy already let at least one possible destination through).
#[derive(Clone, Debug)]
pub struct ConnectRequest {
    /// The destination host as the guest wrote it.
    pub host: String,
    pub port: u16,
    /// Node's `family: 4 | 6`.
    pub family: Option<IpFamily>,
    /// Addresses known without DNS (a literal, `localhost`); `None`: resolve `host`.
    pub addrs: Option<Vec<IpAddr>>,
    /// A rule names the host itself, so whatever it resolves to is allowed.
    pub name_allowed: bool,
    /// Node's `localAddress`.
    pub local: Option<IpAddr>,
    /// Checks each address the name resolves to.
    pub policy: Arc<Policy>,
    /// Wrap the connection in TLS (Node's `tls.connect`): the handshake is part of the
    /// connect, and a failure is the connect's (an [`io::Error`] whose inner error is a
    /// [`tls::HandshakeError`]).
    pub tls: Option<tls::ConnectTls>,
}

/// A failed outbound connection: the error and the address it was for (for Node's
/// `connect ECONNREFUSED 127.0.0.1:9` message).
#[derive(Debug)]
pub struct ConnectError {
    pub error: io::Error,
    pub target: String,
    /// Every address the name resolved to was refused by the policy.
    pub denied: bool,
}

/// Receives the outcome of an outbound connect, from whatever thread finished it.
pub type ConnectDone = Box<dyn FnOnce(Result<Box<dyn Stream>, ConnectError>) + Send>;

/// Receives the outcome of a name lookup.
pub type LookupDone = Box<dyn FnOnce(io::Result<Vec<SocketAddr>>) + Send>;

/// What a shard's guests reach the network through: outbound connections, name
/// lookups, new UDP sockets. One per shard.
pub trait Network: Send + Sync {
    /// Starts an outbound connection; `done` is called once with the outcome. Never blocks.
    fn connect(&self, request: ConnectRequest, done: ConnectDone);

    /// Resolves `host`; `done` is called once with its addresses. Never blocks.
    fn lookup(&self, host: String, port: u16, done: LookupDone);

    /// A new, unbound UDP socket with `options` applied.
    fn udp_socket(&self, options: &UdpOptions) -> io::Result<Box<dyn Datagram>>;

    /// A listener bound on `addr` for the guest's `listen` (with `SO_REUSEPORT` when
    /// `reuse_port`, as the shards of one handler bind one port).
    fn tcp_listener(
        &self,
        addr: SocketAddr,
        reuse_port: bool,
    ) -> io::Result<Box<dyn ListenerSource>>;
}
