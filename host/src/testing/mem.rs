//! The in-memory network under the testing harness: TCP pipes, listeners, UDP sockets,
//! pending outbound connects and name lookups, all held in one [`MemNet`] that the test
//! side scripts. The host side sees one more [transport](crate::transport): the same
//! traits as kernel sockets, so the harness runs the code `netlet run` runs.
//!
//! Each pipe has two ends. The host end ([`MemStream`]) is a
//! [`Stream`](crate::transport::Stream); it behaves like a non-blocking socket
//! (registering wakers when it cannot make progress). The test end ([`Peer`]) plays the
//! remote client: it sends, ends, resets, reads (or does not, to fill the window).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::ReadBuf;

use crate::transport::{
    ConnectDone, ConnectRequest, Datagram, DatagramSource, Listener, ListenerSource, LookupDone,
    Network, Stream, UdpOptions,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// How the host side of a pipe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Closed normally (after its FIN, or dropped).
    Closed,
    /// Reset (`reset-and-destroy`).
    Reset,
}

/// The shared state of one connection.
#[derive(Default)]
struct Pipe {
    /// Bytes the peer sent, not yet read by the host.
    inbound: VecDeque<u8>,
    /// The peer half-closed.
    inbound_eof: bool,
    /// The peer reset the connection.
    reset: bool,
    /// Bytes the host wrote, not yet taken by the test.
    outbound: Vec<u8>,
    /// The host ended its side (FIN).
    outbound_eof: bool,
    /// How the host side went away, once it has.
    closed: Option<Closed>,
    reset_on_close: bool,
    /// Bytes the peer holds unread before the host's writes block (`None`: no limit).
    window: Option<usize>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    no_delay: bool,
    keep_alive: Option<u32>,
}

/// The host end of an in-memory connection.
pub struct MemStream {
    pipe: Arc<Mutex<Pipe>>,
    local: SocketAddr,
    peer: SocketAddr,
}

/// The test end of an in-memory connection: the remote client (or, for an outbound
/// connect, the remote server).
#[derive(Clone)]
pub struct Peer {
    pipe: Arc<Mutex<Pipe>>,
    /// The peer's own address (what the guest sees as remote).
    pub addr: SocketAddr,
    /// The host end's address (what the guest sees as local).
    pub host_addr: SocketAddr,
}

/// A new connected pair.
pub fn pair(local: SocketAddr, peer: SocketAddr) -> (MemStream, Peer) {
    let pipe = Arc::new(Mutex::new(Pipe::default()));
    (
        MemStream {
            pipe: pipe.clone(),
            local,
            peer,
        },
        Peer {
            pipe,
            addr: peer,
            host_addr: local,
        },
    )
}

impl Stream for MemStream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut p = lock(&self.pipe);
        if p.reset {
            // What a kernel reports, so messages read as with real sockets.
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ECONNRESET)));
        }
        if !p.inbound.is_empty() {
            let n = buf.remaining().min(p.inbound.len());
            let (a, b) = p.inbound.as_slices();
            let from_a = n.min(a.len());
            buf.put_slice(&a[..from_a]);
            buf.put_slice(&b[..n - from_a]);
            p.inbound.drain(..n);
            return Poll::Ready(Ok(()));
        }
        if p.inbound_eof {
            return Poll::Ready(Ok(()));
        }
        p.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut p = lock(&self.pipe);
        if p.reset || p.inbound_eof || !p.inbound.is_empty() {
            Poll::Ready(Ok(()))
        } else {
            p.read_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut p = lock(&self.pipe);
        if p.reset {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::EPIPE)));
        }
        let room = p
            .window
            .map_or(usize::MAX, |w| w.saturating_sub(p.outbound.len()));
        if room == 0 {
            p.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        p.outbound.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.pipe).outbound_eof = true;
        Poll::Ready(Ok(()))
    }

    fn reset_on_close(&mut self) -> io::Result<()> {
        lock(&self.pipe).reset_on_close = true;
        Ok(())
    }

    fn set_nodelay(&mut self, on: bool) -> io::Result<()> {
        lock(&self.pipe).no_delay = on;
        Ok(())
    }

    fn set_keepalive(&mut self, enable: bool, initial_delay_ms: u32) -> io::Result<()> {
        lock(&self.pipe).keep_alive = enable.then_some(initial_delay_ms);
        Ok(())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

impl Drop for MemStream {
    fn drop(&mut self) {
        let mut p = lock(&self.pipe);
        p.closed = Some(if p.reset_on_close {
            Closed::Reset
        } else {
            Closed::Closed
        });
        p.outbound_eof = true;
    }
}

impl Peer {
    /// The peer sends `data`.
    pub fn send(&self, data: &[u8]) {
        let mut p = lock(&self.pipe);
        p.inbound.extend(data);
        wake(&mut p.read_waker);
    }

    /// The peer half-closes (FIN).
    pub fn end(&self) {
        let mut p = lock(&self.pipe);
        p.inbound_eof = true;
        wake(&mut p.read_waker);
    }

    /// The peer resets the connection (RST).
    pub fn reset(&self) {
        let mut p = lock(&self.pipe);
        p.reset = true;
        wake(&mut p.read_waker);
        wake(&mut p.write_waker);
    }

    /// Takes everything the host wrote so far (the peer reads it).
    pub fn take_output(&self) -> Vec<u8> {
        let mut p = lock(&self.pipe);
        let out = std::mem::take(&mut p.outbound);
        wake(&mut p.write_waker);
        out
    }

    /// Reads at most `n` of the bytes the host wrote.
    pub fn read(&self, n: usize) -> Vec<u8> {
        let mut p = lock(&self.pipe);
        let n = n.min(p.outbound.len());
        let out: Vec<u8> = p.outbound.drain(..n).collect();
        wake(&mut p.write_waker);
        out
    }

    /// How many bytes the peer holds unread before the host's writes block; `None`
    /// reads everything at once. A small window makes `write` return false.
    pub fn set_window(&self, window: Option<usize>) {
        let mut p = lock(&self.pipe);
        p.window = window;
        wake(&mut p.write_waker);
    }

    /// Bytes written by the host and not yet taken.
    pub fn pending_output(&self) -> usize {
        lock(&self.pipe).outbound.len()
    }

    /// The host sent its FIN (or closed).
    pub fn host_ended(&self) -> bool {
        lock(&self.pipe).outbound_eof
    }

    /// How the host side went away, if it has.
    pub fn host_closed(&self) -> Option<Closed> {
        lock(&self.pipe).closed
    }

    pub fn no_delay(&self) -> bool {
        lock(&self.pipe).no_delay
    }

    pub fn keep_alive(&self) -> Option<u32> {
        lock(&self.pipe).keep_alive
    }
}

/// A datagram the guest sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentDatagram {
    /// The guest socket's address.
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct UdpState {
    local: Option<SocketAddr>,
    connected: Option<SocketAddr>,
    inbox: VecDeque<(SocketAddr, Vec<u8>)>,
    waker: Option<Waker>,
    closed: bool,
}

/// The host end of an in-memory UDP socket. Socket options go to `options`, a kernel
/// socket that is never bound or used for traffic, so they behave (and fail) as they
/// would on a real one.
pub struct MemUdp {
    state: Arc<Mutex<UdpState>>,
    net: MemNet,
    options: Socket,
}

/// An outbound TCP connect waiting for the test to answer it.
#[derive(Clone, Debug)]
pub struct PendingConnect {
    /// The destination as the guest asked for it.
    pub host: String,
    pub port: u16,
}

#[derive(Default)]
struct NetState {
    /// Connections waiting to be accepted, per listener index.
    backlog: Vec<VecDeque<(MemStream, SocketAddr)>>,
    accept_wakers: Vec<Option<Waker>>,
    listeners: Vec<SocketAddr>,
    udp: Vec<Arc<Mutex<UdpState>>>,
    sent: Vec<SentDatagram>,
    connects: VecDeque<(PendingConnect, ConnectDone)>,
    /// Names the in-memory resolver knows (`localhost` and literals need none).
    hosts: HashMap<String, Vec<IpAddr>>,
    next_port: u16,
}

/// The in-memory network of one harness.
#[derive(Clone, Default)]
pub struct MemNet {
    state: Arc<Mutex<NetState>>,
}

impl MemNet {
    /// A free port for a client or a bound socket.
    pub fn next_port(&self) -> u16 {
        let mut s = lock(&self.state);
        if s.next_port < 40000 {
            s.next_port = 40000;
        }
        s.next_port += 1;
        s.next_port
    }

    /// Adds a listener at `addr`.
    pub fn listen(&self, addr: SocketAddr) -> MemListener {
        let mut s = lock(&self.state);
        s.listeners.push(addr);
        s.backlog.push(VecDeque::new());
        s.accept_wakers.push(None);
        MemListener {
            net: self.clone(),
            index: s.listeners.len() - 1,
            addr,
        }
    }

    /// A client connects to listener `index`; returns its end.
    pub fn connect(&self, index: usize) -> Option<Peer> {
        let port = self.next_port();
        let mut s = lock(&self.state);
        let local = *s.listeners.get(index)?;
        let peer_addr = SocketAddr::new(local.ip(), port);
        let (host, peer) = pair(local, peer_addr);
        s.backlog[index].push_back((host, peer_addr));
        if let Some(w) = s.accept_wakers[index].take() {
            w.wake();
        }
        Some(peer)
    }

    /// A new UDP socket (bound to `addr` if given).
    pub fn udp(&self, addr: Option<SocketAddr>) -> io::Result<MemUdp> {
        let domain = if addr.is_some_and(|a| a.is_ipv6()) {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let options = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        Ok(self.udp_with(addr, options))
    }

    fn udp_with(&self, addr: Option<SocketAddr>, options: Socket) -> MemUdp {
        let state = Arc::new(Mutex::new(UdpState {
            local: addr,
            ..UdpState::default()
        }));
        lock(&self.state).udp.push(state.clone());
        MemUdp {
            state,
            net: self.clone(),
            options,
        }
    }

    /// Delivers a datagram from `from` to the guest socket bound at `to`; false if none is.
    pub fn deliver(&self, from: SocketAddr, to: SocketAddr, data: &[u8]) -> bool {
        let s = lock(&self.state);
        for sock in &s.udp {
            let mut u = lock(sock);
            if u.local == Some(to) && !u.closed {
                if u.connected.is_some_and(|c| c != from) {
                    return true; // a connected socket ignores others, as the kernel does
                }
                u.inbox.push_back((from, data.to_vec()));
                wake(&mut u.waker);
                return true;
            }
        }
        false
    }

    /// Takes the datagrams the guest sent so far.
    pub fn take_sent(&self) -> Vec<SentDatagram> {
        std::mem::take(&mut lock(&self.state).sent)
    }

    /// Takes the oldest outbound connect waiting for an answer, with what answers it.
    pub fn pop_connect(&self) -> Option<(PendingConnect, ConnectDone)> {
        lock(&self.state).connects.pop_front()
    }

    /// Outbound connects waiting for an answer.
    pub fn pending_connects(&self) -> Vec<PendingConnect> {
        lock(&self.state)
            .connects
            .iter()
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Lets the in-memory resolver answer `name` with `addrs`.
    pub fn add_host(&self, name: &str, addrs: Vec<IpAddr>) {
        lock(&self.state)
            .hosts
            .insert(name.to_ascii_lowercase(), addrs);
    }
}

/// The guests' network under the harness: connects wait for the test to answer them,
/// names resolve from the hosts the test declared (others are not found), UDP sockets
/// are in memory.
impl Network for MemNet {
    fn connect(&self, request: ConnectRequest, done: ConnectDone) {
        lock(&self.state).connects.push_back((
            PendingConnect {
                host: request.host,
                port: request.port,
            },
            done,
        ));
    }

    fn lookup(&self, host: String, port: u16, done: LookupDone) {
        let found = lock(&self.state)
            .hosts
            .get(&host.to_ascii_lowercase())
            .cloned();
        done(match found {
            Some(addrs) => Ok(addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} is not a host of the in-memory network"),
            )),
        });
    }

    fn udp_socket(&self, options: &UdpOptions) -> io::Result<Box<dyn Datagram>> {
        let socket = crate::transport::udp::socket(options)?;
        Ok(Box::new(self.udp_with(None, socket)))
    }

    fn tcp_listener(
        &self,
        addr: SocketAddr,
        _reuse_port: bool,
    ) -> io::Result<Box<dyn ListenerSource>> {
        Ok(Box::new(self.listen(addr)))
    }
}

/// An in-memory listener.
pub struct MemListener {
    net: MemNet,
    index: usize,
    addr: SocketAddr,
}

impl Listener for MemListener {
    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        let mut s = lock(&self.net.state);
        match s.backlog.get_mut(self.index).and_then(VecDeque::pop_front) {
            Some((stream, peer)) => Poll::Ready(Ok((Box::new(stream), peer))),
            None => {
                if let Some(slot) = s.accept_wakers.get_mut(self.index) {
                    *slot = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl ListenerSource for MemListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn open(self: Box<Self>) -> io::Result<Box<dyn Listener>> {
        Ok(self)
    }
}

impl Datagram for MemUdp {
    fn poll_recv_from(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let mut u = lock(&self.state);
        match u.inbox.pop_front() {
            Some((from, data)) => {
                let n = data.len().min(buf.remaining());
                buf.put_slice(&data[..n]);
                Poll::Ready(Ok(from))
            }
            None => {
                u.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn poll_send(
        &mut self,
        _cx: &mut Context<'_>,
        data: &[u8],
        dest: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        let (from, to) = {
            let u = lock(&self.state);
            let Some(to) = dest.or(u.connected) else {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
            };
            (
                u.local
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                to,
            )
        };
        lock(&self.net.state).sent.push(SentDatagram {
            from,
            to,
            data: data.to_vec(),
        });
        Poll::Ready(Ok(data.len()))
    }

    fn bind(&mut self, addr: SocketAddr) -> io::Result<()> {
        let addr = if addr.port() == 0 {
            SocketAddr::new(addr.ip(), self.net.next_port())
        } else {
            addr
        };
        lock(&self.state).local = Some(addr);
        Ok(())
    }

    fn connect(&mut self, peer: Option<SocketAddr>) -> io::Result<()> {
        lock(&self.state).connected = peer;
        Ok(())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        lock(&self.state)
            .local
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    fn options(&self) -> SockRef<'_> {
        SockRef::from(&self.options)
    }
}

impl DatagramSource for MemUdp {
    fn open(self: Box<Self>) -> io::Result<Box<dyn Datagram>> {
        Ok(self)
    }
}

impl Drop for MemUdp {
    fn drop(&mut self) {
        lock(&self.state).closed = true;
    }
}
