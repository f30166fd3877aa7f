//! UDP: the host side of the `dgram` interface. A [`UdpSock`] is one socket's state: the
//! tokio socket, its send queue, whether it is bound or connected, and the peers it has
//! heard from (which it may always answer, whatever the outbound policy says).
//!
//! Like TCP, nothing blocks: `send` tries the kernel at once and queues what does not
//! fit; receiving happens in the shard loop when the socket's read waker fires.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll, Waker};

use rustc_hash::FxHashSet;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::ReadBuf;
use wasmtime::component::Resource;

use crate::bindings::netlet::net::dgram::{Host, HostSocket, SocketOptions, SocketType};
use crate::bindings::{AddressInfo, ErrorCode};
use crate::error::{error_code, error_info, host_error};
use crate::events::{HostError, HostEvent};
use crate::guest::{GuestState, Io};
use crate::net::{address_info, guest_ip};
use crate::reactor::{Completion, Kind, UdpRequest};
use crate::resolve;
use crate::stats::HandlerStats;
use crate::testing::mem::MemUdp;

/// The type behind the guest's `dgram.socket` handles; a handle's rep is the socket's id.
pub struct DgramRep;

/// Largest UDP payload over IPv4 (65,535 − 8 − 20).
pub const MAX_DATAGRAM_V4: usize = 65_507;
/// Largest UDP payload over IPv6 without jumbograms (65,535 − 8).
pub const MAX_DATAGRAM_V6: usize = 65_527;
/// A send queue holds at most this many datagrams...
const MAX_QUEUED: usize = 1024;
/// ...and this many bytes.
const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// Peers remembered per socket for the reply rule; the set restarts when full.
const MAX_PEERS: usize = 4096;
/// Datagrams read from one socket per loop turn before others get their go.
const READS_PER_TURN: usize = 64;

/// A UDP socket's transport: a real socket, or the testing harness's in-memory one.
pub enum Transport {
    Udp(tokio::net::UdpSocket),
    /// Socket options go to `options`, a real socket that is never bound or used for
    /// traffic, so they behave (and fail) as they would on a real one.
    Mem {
        mem: MemUdp,
        options: Socket,
    },
}

impl Transport {
    fn options(&self) -> SockRef<'_> {
        match self {
            Transport::Udp(s) => SockRef::from(s),
            Transport::Mem { options, .. } => SockRef::from(options),
        }
    }

    fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Udp(s) => SockRef::from(s).bind(&addr.into()),
            Transport::Mem { mem, .. } => mem.bind(addr),
        }
    }

    fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Udp(s) => SockRef::from(s).connect(&addr.into()),
            Transport::Mem { mem, .. } => {
                mem.connect(Some(addr));
                Ok(())
            }
        }
    }

    fn disconnect(&self) -> io::Result<()> {
        match self {
            Transport::Udp(s) => disconnect(&SockRef::from(s)),
            Transport::Mem { mem, .. } => {
                mem.connect(None);
                Ok(())
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Transport::Udp(s) => s.local_addr(),
            Transport::Mem { mem, .. } => mem
                .local_addr()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        match self {
            Transport::Udp(s) => s.poll_recv_from(cx, buf),
            Transport::Mem { mem, .. } => mem.poll_recv_from(cx, buf),
        }
    }

    /// Sends to `dest`, or to the connected peer.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
        dest: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        match (self, dest) {
            (Transport::Udp(s), Some(dest)) => s.poll_send_to(cx, data, dest),
            (Transport::Udp(s), None) => s.poll_send(cx, data),
            (Transport::Mem { mem, .. }, dest) => Poll::Ready(mem.send_to(data, dest)),
        }
    }
}

/// One UDP socket's state.
pub struct UdpSock {
    sock: Option<Transport>,
    v6: bool,
    bound: bool,
    connected: Option<SocketAddr>,
    /// `close` was called with datagrams still queued: close once they are sent.
    closing: bool,
    /// Bound by the host (`--udp`), not by the guest: survives an instance restart.
    pub host_bound: bool,
    /// Which of the handler's UDP counters this socket feeds.
    port: usize,
    queue: VecDeque<(Vec<u8>, Option<SocketAddr>)>,
    queue_bytes: usize,
    peers: FxHashSet<SocketAddr>,
    /// The last destination a `send` resolved and the policy allowed (as the guest wrote
    /// it, and as parsed): an echo answering the same peer skips parsing and checks.
    last_dest: Option<(String, u16, SocketAddr)>,
    touched: bool,
    read_waker: Waker,
    write_waker: Waker,
    /// Its share of the process's socket budget (for a socket the guest created).
    permit: Option<crate::budget::Permit>,
}

fn push(io: &mut Io, ev: HostEvent) {
    io.events.push(ev);
}

fn new_sock(io: &Io, id: u32, sock: Transport, v6: bool) -> UdpSock {
    UdpSock {
        sock: Some(sock),
        v6,
        bound: false,
        connected: None,
        closing: false,
        host_bound: false,
        port: 0,
        queue: VecDeque::new(),
        queue_bytes: 0,
        peers: FxHashSet::default(),
        last_dest: None,
        touched: false,
        read_waker: io.ctx.reactor.waker(io.token(Kind::UdpRead, id)),
        write_waker: io.ctx.reactor.waker(io.token(Kind::UdpWrite, id)),
        permit: None,
    }
}

/// A socket the host bound for `--udp`, handed to the guest with a `listening` event.
pub fn adopt_bound(io: &mut Io, socket: UdpSource, buf: &mut [u8]) -> io::Result<u32> {
    let local = match &socket {
        UdpSource::Std(socket) => socket.local_addr().ok(),
        UdpSource::Mem(mem) => mem.local_addr(),
    };
    let (sock, v6) = match socket {
        UdpSource::Std(socket) => {
            let v6 = socket.local_addr()?.is_ipv6();
            (Transport::Udp(tokio::net::UdpSocket::from_std(socket)?), v6)
        }
        UdpSource::Mem(mem) => {
            let v6 = mem.local_addr().is_some_and(|a| a.is_ipv6());
            let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
            let options = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
            (Transport::Mem { mem, options }, v6)
        }
    };
    let id = io.next_id();
    let mut udp = new_sock(io, id, sock, v6);
    udp.bound = true;
    udp.host_bound = true;
    udp.port = io.ctx.stats.udp_index(local);
    io.udp.insert(id, udp);
    push(
        io,
        HostEvent::UdpListening {
            socket: id,
            with_handle: true,
        },
    );
    read(io, id, buf);
    Ok(id)
}

/// A socket bound by the host for `--udp`, before an instance adopts it.
pub enum UdpSource {
    Std(std::net::UdpSocket),
    /// The testing harness's in-memory socket.
    Mem(MemUdp),
}

/// Takes back the host-bound sockets (to hand them to a new instance after a trap).
pub fn take_host_bound(io: &mut Io) -> Vec<UdpSource> {
    let ids: Vec<u32> = io
        .udp
        .iter()
        .filter(|(_, s)| s.host_bound)
        .map(|(id, _)| *id)
        .collect();
    ids.into_iter()
        .filter_map(|id| io.udp.remove(&id))
        .filter_map(|mut s| s.sock.take())
        .filter_map(|s| match s {
            Transport::Udp(s) => s.into_std().ok().map(UdpSource::Std),
            Transport::Mem { mem, .. } => Some(UdpSource::Mem(mem)),
        })
        .collect()
}

/// Reads the datagrams waiting on a socket (a bounded number per turn).
pub fn read(io: &mut Io, id: u32, buf: &mut [u8]) {
    for _ in 0..READS_PER_TURN {
        let Some(udp) = io.udp.get_mut(&id) else {
            return;
        };
        if !udp.bound || udp.closing {
            return;
        }
        let Some(sock) = udp.sock.as_ref() else {
            return;
        };
        let mut cx = Context::from_waker(&udp.read_waker);
        let mut rb = ReadBuf::new(buf);
        match sock.poll_recv_from(&mut cx, &mut rb) {
            Poll::Pending => return,
            Poll::Ready(Ok(from)) => {
                if udp.peers.len() >= MAX_PEERS {
                    udp.peers.clear();
                    // Its permission may have come from the reply rule.
                    udp.last_dest = None;
                }
                udp.peers.insert(from);
                let port = io.ctx.stats.udp_port(udp.port);
                HandlerStats::add(&port.datagrams_in, 1);
                HandlerStats::add(&port.bytes_in, rb.filled().len() as u64);
                let data = io.arena.bytes(rb.filled());
                let (ip, family) = guest_ip(from);
                let address = io.arena.text(|t| {
                    let _ = write!(t, "{ip}");
                });
                push(
                    io,
                    HostEvent::UdpMessage {
                        socket: id,
                        data,
                        address,
                        family,
                        port: from.port(),
                    },
                );
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => {
                // Node reports receive errors (e.g. ECONNREFUSED from an ICMP reply on a
                // connected socket) as 'error' and keeps the socket open.
                push(
                    io,
                    HostEvent::UdpError {
                        socket: id,
                        error: error_info(&e, "recvmsg", None),
                    },
                );
                break;
            }
        }
    }
    // More may be waiting: come back next turn.
    io.ctx.reactor.push(io.token(Kind::UdpRead, id));
}

/// Sends what is queued; closes a closing socket once its queue is empty.
pub fn flush(io: &mut Io, id: u32) {
    let Some(udp) = io.udp.get_mut(&id) else {
        return;
    };
    udp.touched = false;
    let mut errors = Vec::new();
    if let Some(sock) = udp.sock.as_ref() {
        let mut cx = Context::from_waker(&udp.write_waker);
        while let Some((data, dest)) = udp.queue.front() {
            let polled = sock.poll_send(&mut cx, data, *dest);
            match polled {
                Poll::Pending => break,
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(result) => {
                    let (data, dest) = udp.queue.pop_front().expect("front exists");
                    udp.queue_bytes -= data.len();
                    count_sent(&io.ctx.stats, udp.port, data.len(), result.is_ok());
                    if let Err(e) = result {
                        let target = dest.map(|d| resolve::display_addr(&d));
                        errors.push(error_info(&e, "send", target.as_deref()));
                    }
                }
            }
        }
    }
    let done_closing = udp.closing && udp.queue.is_empty();
    for error in errors {
        push(io, HostEvent::UdpError { socket: id, error });
    }
    if done_closing {
        finish_close(io, id);
    }
}

/// The after-call pass over the UDP sockets the guest touched.
pub fn after_call(io: &mut Io) {
    let touched = std::mem::take(&mut io.touched_udp);
    for id in touched {
        flush(io, id);
    }
}

fn touch(io: &mut Io, id: u32) {
    if let Some(udp) = io.udp.get_mut(&id)
        && !udp.touched
    {
        udp.touched = true;
        io.touched_udp.push(id);
    }
}

/// Counts a datagram sent (or dropped: refused by a full queue, or failed).
fn count_sent(stats: &HandlerStats, port: usize, len: usize, sent: bool) {
    let port = stats.udp_port(port);
    if sent {
        HandlerStats::add(&port.datagrams_out, 1);
        HandlerStats::add(&port.bytes_out, len as u64);
    } else {
        HandlerStats::add(&port.datagrams_dropped, 1);
    }
}

fn finish_close(io: &mut Io, id: u32) {
    if io.udp.remove(&id).is_some() {
        push(io, HostEvent::UdpClose(id));
    }
}

/// Closes the host-bound sockets (the host is stopping); the guest gets `close`.
pub fn close_host_bound(io: &mut Io) {
    let ids: Vec<u32> = io
        .udp
        .iter()
        .filter(|(_, s)| s.host_bound)
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        finish_close(io, id);
    }
}

/// Drops every socket without telling the guest (it trapped, or the host stops).
pub fn drop_all(io: &mut Io) {
    io.udp.clear();
}

/// The unspecified or loopback address of a socket's family, or a literal converted to
/// it (an IPv4 address on a `udp6` socket becomes IPv4-mapped).
fn fit_family(ip: IpAddr, v6: bool) -> Option<IpAddr> {
    match (ip, v6) {
        (IpAddr::V4(_), false) | (IpAddr::V6(_), true) => Some(ip),
        (IpAddr::V4(v4), true) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        (IpAddr::V6(v6addr), false) => v6addr.to_ipv4_mapped().map(IpAddr::V4),
    }
}

/// Resolves a destination that needs no DNS: `None` address means `localhost`, as in Node.
fn dest_now(address: Option<&str>, v6: bool) -> Option<Result<IpAddr, ErrorCode>> {
    let host = address.unwrap_or("localhost");
    let ips = resolve::resolve_now(host)?;
    Some(
        ips.into_iter()
            .find_map(|ip| fit_family(ip, v6))
            .ok_or(ErrorCode::InvalidArgument),
    )
}

impl Io {
    fn udp_sock(&self, id: u32) -> Result<&UdpSock, ErrorCode> {
        match self.udp.get(&id) {
            Some(udp) if !udp.closing => Ok(udp),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    fn transport(&self, id: u32) -> Result<&Transport, ErrorCode> {
        self.udp_sock(id)?
            .sock
            .as_ref()
            .ok_or(ErrorCode::InvalidState)
    }

    /// The socket to set options on.
    fn sock_ref(&self, id: u32) -> Result<SockRef<'_>, ErrorCode> {
        Ok(self.transport(id)?.options())
    }

    /// Binds `id` to `addr` and announces `listening`.
    fn udp_bind(&mut self, id: u32, addr: SocketAddr) -> Result<(), ErrorCode> {
        self.transport(id)?.bind(addr).map_err(|e| error_code(&e))?;
        let udp = self.udp.get_mut(&id).expect("checked by transport");
        udp.bound = true;
        push(
            self,
            HostEvent::UdpListening {
                socket: id,
                with_handle: false,
            },
        );
        self.ctx.reactor.push(self.token(Kind::UdpRead, id));
        Ok(())
    }

    /// Node binds a socket implicitly on first `send`/`connect`: any address, free port.
    fn udp_autobind(&mut self, id: u32) -> Result<(), ErrorCode> {
        let udp = self.udp_sock(id)?;
        if udp.bound {
            return Ok(());
        }
        let any = if udp.v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        self.udp_bind(id, SocketAddr::new(any, 0))
    }

    /// Whether the policy (or the reply rule) lets socket `id` send to `dest`.
    fn udp_allowed(&self, id: u32, dest: SocketAddr, name_allowed: bool) -> bool {
        name_allowed
            || self.ctx.policy.allows(dest)
            || self.udp.get(&id).is_some_and(|u| u.peers.contains(&dest))
    }

    fn udp_deny_log(&self, what: &str, dest: &str) {
        self.ctx.log(format_args!(
            "denied UDP {what} to {dest} (not allowed; run with --allow {dest} to permit it)"
        ));
    }

    /// Queues (or sends at once) one datagram to a checked destination.
    fn udp_enqueue(
        &mut self,
        id: u32,
        data: Vec<u8>,
        dest: Option<SocketAddr>,
    ) -> Result<(), ErrorCode> {
        self.udp_autobind(id)?;
        let udp = self.udp.get_mut(&id).ok_or(ErrorCode::InvalidState)?;
        if udp.queue.is_empty()
            && let Some(sock) = udp.sock.as_ref()
        {
            let mut cx = Context::from_waker(&udp.write_waker);
            let polled = sock.poll_send(&mut cx, &data, dest);
            match polled {
                Poll::Ready(Ok(_)) => {
                    count_sent(&self.ctx.stats, udp.port, data.len(), true);
                    return Ok(());
                }
                Poll::Ready(Err(e)) if e.kind() != io::ErrorKind::Interrupted => {
                    count_sent(&self.ctx.stats, udp.port, data.len(), false);
                    return Err(error_code(&e));
                }
                _ => {}
            }
        }
        if udp.queue.len() >= MAX_QUEUED || udp.queue_bytes + data.len() > MAX_QUEUED_BYTES {
            count_sent(&self.ctx.stats, udp.port, data.len(), false);
            return Err(ErrorCode::WouldExceedLimit);
        }
        udp.queue_bytes += data.len();
        udp.queue.push_back((data, dest));
        touch(self, id);
        Ok(())
    }

    fn udp_connect_to(&mut self, id: u32, dest: SocketAddr) -> Result<(), ErrorCode> {
        self.udp_autobind(id)?;
        self.transport(id)?
            .connect(dest)
            .map_err(|e| error_code(&e))?;
        if let Some(udp) = self.udp.get_mut(&id) {
            udp.connected = Some(dest);
        }
        push(self, HostEvent::UdpConnect(id));
        Ok(())
    }

    /// Spawns a name lookup for a UDP destination; the completion finishes the request.
    fn udp_resolve(&mut self, id: u32, host: String, request: UdpRequest) -> Result<(), ErrorCode> {
        if self.in_flight >= crate::config::MAX_IN_FLIGHT {
            return Err(ErrorCode::WouldExceedLimit);
        }
        self.in_flight += 1;
        let reactor = self.ctx.reactor.clone();
        let inst = self.inst;
        let port = match &request {
            UdpRequest::Send { port, .. } | UdpRequest::Connect { port } => *port,
        };
        self.ctx.rt.spawn(async move {
            let result = resolve::lookup(host, port).await;
            reactor.complete(Completion::UdpResolved {
                inst,
                id,
                request,
                result,
            });
        });
        Ok(())
    }
}

/// A name lookup for `send`/`connect` finished.
pub fn on_resolved(io: &mut Io, id: u32, request: UdpRequest, result: io::Result<Vec<SocketAddr>>) {
    io.in_flight = io.in_flight.saturating_sub(1);
    let Some(udp) = io.udp.get(&id) else {
        return;
    };
    let v6 = udp.v6;
    let (op, port) = match &request {
        UdpRequest::Send { port, .. } => ("send", *port),
        UdpRequest::Connect { port } => ("connect", *port),
    };
    let outcome: Result<(), HostError> = match result {
        Err(e) => Err(error_info(&e, op, None)),
        Ok(addrs) => match addrs
            .iter()
            .find_map(|a| fit_family(a.ip(), v6).map(|ip| SocketAddr::new(ip, port)))
        {
            None => Err(host_error(
                ErrorCode::NameNotFound,
                format!("{op} ENOTFOUND (no address of the socket's family)"),
            )),
            Some(dest) if !io.udp_allowed(id, dest, false) => {
                let shown = resolve::display_addr(&dest);
                io.udp_deny_log(op, &shown);
                Err(host_error(
                    ErrorCode::AccessDenied,
                    format!("{op} EACCES {shown} (not allowed by --allow)"),
                ))
            }
            Some(dest) => match request {
                UdpRequest::Send { data, .. } => io
                    .udp_enqueue(id, data, Some(dest))
                    .map_err(|code| host_error(code, format!("{op} failed: {code:?}"))),
                UdpRequest::Connect { .. } => io
                    .udp_connect_to(id, dest)
                    .map_err(|code| host_error(code, format!("{op} failed: {code:?}"))),
            },
        },
    };
    if let Err(error) = outcome {
        push(io, HostEvent::UdpError { socket: id, error });
    }
}

fn parse_interface_v4(interface: Option<&str>) -> Result<Ipv4Addr, ErrorCode> {
    match interface {
        None | Some("") => Ok(Ipv4Addr::UNSPECIFIED),
        Some(s) => s.parse().map_err(|_| ErrorCode::InvalidArgument),
    }
}

/// An IPv6 interface as Node writes it (`::%2`, `%eth0` is not supported) or an index.
fn parse_interface_v6(interface: Option<&str>) -> Result<u32, ErrorCode> {
    match interface {
        None | Some("") => Ok(0),
        Some(s) => {
            let index = s.rsplit_once('%').map_or(s, |(_, scope)| scope);
            index.parse().map_err(|_| ErrorCode::InvalidArgument)
        }
    }
}

fn ttl_ok(ttl: u8) -> Result<u32, ErrorCode> {
    if ttl == 0 {
        Err(ErrorCode::InvalidArgument)
    } else {
        Ok(u32::from(ttl))
    }
}

impl HostSocket for GuestState {
    fn id(&mut self, this: Resource<DgramRep>) -> u32 {
        this.rep()
    }

    fn bind(
        &mut self,
        this: Resource<DgramRep>,
        port: u16,
        address: Option<String>,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let udp = self.io.udp_sock(id)?;
        if udp.bound {
            return Err(ErrorCode::InvalidState);
        }
        let v6 = udp.v6;
        let ip = match address.as_deref() {
            None | Some("") => {
                if v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                }
            }
            Some(host) => match dest_now(Some(host), v6) {
                Some(ip) => ip?,
                None => return Err(ErrorCode::InvalidArgument),
            },
        };
        let addr = SocketAddr::new(ip, port);
        // A chosen port is a listener the operator did not configure (on an unspecified
        // address, one any network can reach), so it needs a rule, as a `wasi:sockets`
        // bind does; a free port (0) is what every client socket gets anyway.
        if port != 0 && !self.io.ctx.policy.allows(addr) {
            self.io.udp_deny_log("bind", &resolve::display_addr(&addr));
            return Err(ErrorCode::AccessDenied);
        }
        self.io.udp_bind(id, addr)
    }

    fn send(
        &mut self,
        this: Resource<DgramRep>,
        msg: Vec<u8>,
        port: u16,
        address: Option<String>,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let udp = self.io.udp_sock(id)?;
        let max = if udp.v6 {
            MAX_DATAGRAM_V6
        } else {
            MAX_DATAGRAM_V4
        };
        if msg.len() > max {
            return Err(ErrorCode::MessageTooLarge);
        }
        if udp.connected.is_some() {
            if port != 0 || address.is_some() {
                return Err(ErrorCode::InvalidArgument);
            }
            return self.io.udp_enqueue(id, msg, None);
        }
        if port == 0 {
            // No destination on an unconnected socket: Node's ERR_SOCKET_DGRAM_NOT_CONNECTED.
            return Err(if address.is_none() {
                ErrorCode::InvalidState
            } else {
                ErrorCode::InvalidArgument
            });
        }
        if let (Some((text, last_port, dest)), Some(address)) = (&udp.last_dest, &address)
            && *last_port == port
            && text == address
        {
            let dest = *dest;
            return self.io.udp_enqueue(id, msg, Some(dest));
        }
        let v6 = udp.v6;
        let name_allowed = address
            .as_deref()
            .is_some_and(|h| self.io.ctx.policy.allows_name(h, port));
        match dest_now(address.as_deref(), v6) {
            Some(ip) => {
                let dest = SocketAddr::new(ip?, port);
                if !self.io.udp_allowed(id, dest, name_allowed) {
                    self.io.udp_deny_log("send", &resolve::display_addr(&dest));
                    return Err(ErrorCode::AccessDenied);
                }
                if let (Some(udp), Some(address)) = (self.io.udp.get_mut(&id), address) {
                    udp.last_dest = Some((address, port, dest));
                }
                self.io.udp_enqueue(id, msg, Some(dest))
            }
            None => {
                let host = address.unwrap_or_default();
                if !resolve::is_plausible_name(&host) {
                    return Err(ErrorCode::InvalidArgument);
                }
                if !self.io.may_resolve(name_allowed, port) {
                    self.io.udp_deny_log("send", &format!("{host}:{port}"));
                    return Err(ErrorCode::AccessDenied);
                }
                self.io.udp_autobind(id)?;
                self.io
                    .udp_resolve(id, host, UdpRequest::Send { data: msg, port })
            }
        }
    }

    fn connect(
        &mut self,
        this: Resource<DgramRep>,
        port: u16,
        address: Option<String>,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let udp = self.io.udp_sock(id)?;
        if udp.connected.is_some() {
            return Err(ErrorCode::InvalidState);
        }
        if port == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let v6 = udp.v6;
        let name_allowed = address
            .as_deref()
            .is_some_and(|h| self.io.ctx.policy.allows_name(h, port));
        match dest_now(address.as_deref(), v6) {
            Some(ip) => {
                let dest = SocketAddr::new(ip?, port);
                if !self.io.udp_allowed(id, dest, name_allowed) {
                    self.io
                        .udp_deny_log("connect", &resolve::display_addr(&dest));
                    return Err(ErrorCode::AccessDenied);
                }
                self.io.udp_connect_to(id, dest)
            }
            None => {
                let host = address.unwrap_or_default();
                if !resolve::is_plausible_name(&host) {
                    return Err(ErrorCode::InvalidArgument);
                }
                if !self.io.may_resolve(name_allowed, port) {
                    self.io.udp_deny_log("connect", &format!("{host}:{port}"));
                    return Err(ErrorCode::AccessDenied);
                }
                self.io.udp_resolve(id, host, UdpRequest::Connect { port })
            }
        }
    }

    fn disconnect(&mut self, this: Resource<DgramRep>) -> Result<(), ErrorCode> {
        let id = this.rep();
        let udp = self.io.udp_sock(id)?;
        if udp.connected.is_none() {
            return Err(ErrorCode::InvalidState);
        }
        self.io
            .transport(id)?
            .disconnect()
            .map_err(|e| error_code(&e))?;
        if let Some(udp) = self.io.udp.get_mut(&id) {
            udp.connected = None;
        }
        Ok(())
    }

    fn address(&mut self, this: Resource<DgramRep>) -> Result<AddressInfo, ErrorCode> {
        let udp = self.io.udp_sock(this.rep())?;
        if !udp.bound {
            return Err(ErrorCode::InvalidState);
        }
        let sock = udp.sock.as_ref().ok_or(ErrorCode::InvalidState)?;
        sock.local_addr()
            .map(address_info)
            .map_err(|e| error_code(&e))
    }

    fn remote_address(&mut self, this: Resource<DgramRep>) -> Result<AddressInfo, ErrorCode> {
        let udp = self.io.udp_sock(this.rep())?;
        udp.connected
            .map(address_info)
            .ok_or(ErrorCode::InvalidState)
    }

    fn close(&mut self, this: Resource<DgramRep>) {
        let id = this.rep();
        let Some(udp) = self.io.udp.get_mut(&id) else {
            return;
        };
        if udp.closing {
            return;
        }
        if udp.queue.is_empty() {
            finish_close(&mut self.io, id);
        } else {
            udp.closing = true;
            touch(&mut self.io, id);
        }
    }

    fn set_broadcast(&mut self, this: Resource<DgramRep>, flag: bool) -> Result<(), ErrorCode> {
        self.io
            .sock_ref(this.rep())?
            .set_broadcast(flag)
            .map_err(|e| error_code(&e))
    }

    fn set_ttl(&mut self, this: Resource<DgramRep>, ttl: u8) -> Result<(), ErrorCode> {
        let id = this.rep();
        let ttl = ttl_ok(ttl)?;
        let v6 = self.io.udp_sock(id)?.v6;
        let sock = self.io.sock_ref(id)?;
        if v6 {
            sock.set_unicast_hops_v6(ttl)
        } else {
            sock.set_ttl_v4(ttl)
        }
        .map_err(|e| error_code(&e))
    }

    fn set_multicast_ttl(&mut self, this: Resource<DgramRep>, ttl: u8) -> Result<(), ErrorCode> {
        let id = this.rep();
        let v6 = self.io.udp_sock(id)?.v6;
        let sock = self.io.sock_ref(id)?;
        if v6 {
            sock.set_multicast_hops_v6(u32::from(ttl))
        } else {
            sock.set_multicast_ttl_v4(u32::from(ttl))
        }
        .map_err(|e| error_code(&e))
    }

    fn set_multicast_loopback(
        &mut self,
        this: Resource<DgramRep>,
        flag: bool,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let v6 = self.io.udp_sock(id)?.v6;
        let sock = self.io.sock_ref(id)?;
        if v6 {
            sock.set_multicast_loop_v6(flag)
        } else {
            sock.set_multicast_loop_v4(flag)
        }
        .map_err(|e| error_code(&e))
    }

    fn set_multicast_interface(
        &mut self,
        this: Resource<DgramRep>,
        interface_address: String,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let v6 = self.io.udp_sock(id)?.v6;
        let sock = self.io.sock_ref(id)?;
        if v6 {
            sock.set_multicast_if_v6(parse_interface_v6(Some(&interface_address))?)
        } else {
            sock.set_multicast_if_v4(&parse_interface_v4(Some(&interface_address))?)
        }
        .map_err(|e| error_code(&e))
    }

    fn add_membership(
        &mut self,
        this: Resource<DgramRep>,
        multicast_address: String,
        interface_address: Option<String>,
    ) -> Result<(), ErrorCode> {
        membership(
            &self.io,
            this.rep(),
            &multicast_address,
            interface_address.as_deref(),
            true,
        )
    }

    fn drop_membership(
        &mut self,
        this: Resource<DgramRep>,
        multicast_address: String,
        interface_address: Option<String>,
    ) -> Result<(), ErrorCode> {
        membership(
            &self.io,
            this.rep(),
            &multicast_address,
            interface_address.as_deref(),
            false,
        )
    }

    fn get_recv_buffer_size(&mut self, this: Resource<DgramRep>) -> Result<u32, ErrorCode> {
        let size = self
            .io
            .sock_ref(this.rep())?
            .recv_buffer_size()
            .map_err(|e| error_code(&e))?;
        Ok(u32::try_from(size).unwrap_or(u32::MAX))
    }

    fn set_recv_buffer_size(
        &mut self,
        this: Resource<DgramRep>,
        size: u32,
    ) -> Result<(), ErrorCode> {
        self.io
            .sock_ref(this.rep())?
            .set_recv_buffer_size(size as usize)
            .map_err(|e| error_code(&e))
    }

    fn get_send_buffer_size(&mut self, this: Resource<DgramRep>) -> Result<u32, ErrorCode> {
        let size = self
            .io
            .sock_ref(this.rep())?
            .send_buffer_size()
            .map_err(|e| error_code(&e))?;
        Ok(u32::try_from(size).unwrap_or(u32::MAX))
    }

    fn set_send_buffer_size(
        &mut self,
        this: Resource<DgramRep>,
        size: u32,
    ) -> Result<(), ErrorCode> {
        self.io
            .sock_ref(this.rep())?
            .set_send_buffer_size(size as usize)
            .map_err(|e| error_code(&e))
    }

    fn get_send_queue_size(&mut self, this: Resource<DgramRep>) -> u64 {
        self.io
            .udp
            .get(&this.rep())
            .map_or(0, |u| u.queue_bytes as u64)
    }

    fn get_send_queue_count(&mut self, this: Resource<DgramRep>) -> u32 {
        self.io
            .udp
            .get(&this.rep())
            .map_or(0, |u| u.queue.len() as u32)
    }

    fn drop(&mut self, this: Resource<DgramRep>) -> wasmtime::Result<()> {
        // The guest let go of its last handle: close the socket (queued datagrams go out).
        let id = this.rep();
        if let Some(udp) = self.io.udp.get_mut(&id)
            && !udp.closing
        {
            if udp.queue.is_empty() {
                finish_close(&mut self.io, id);
            } else {
                udp.closing = true;
                touch(&mut self.io, id);
            }
        }
        Ok(())
    }
}

fn membership(
    io: &Io,
    id: u32,
    group: &str,
    interface: Option<&str>,
    join: bool,
) -> Result<(), ErrorCode> {
    let v6 = io.udp_sock(id)?.v6;
    let group: IpAddr = group.parse().map_err(|_| ErrorCode::InvalidArgument)?;
    if !group.is_multicast() {
        return Err(ErrorCode::InvalidArgument);
    }
    let sock = io.sock_ref(id)?;
    let result = match (group, v6) {
        (IpAddr::V4(g), false) => {
            let iface = parse_interface_v4(interface)?;
            if join {
                sock.join_multicast_v4(&g, &iface)
            } else {
                sock.leave_multicast_v4(&g, &iface)
            }
        }
        (IpAddr::V6(g), true) => {
            let index = parse_interface_v6(interface)?;
            if join {
                sock.join_multicast_v6(&g, index)
            } else {
                sock.leave_multicast_v6(&g, index)
            }
        }
        _ => return Err(ErrorCode::InvalidArgument),
    };
    result.map_err(|e| error_code(&e))
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

impl Host for GuestState {
    fn create_socket(
        &mut self,
        kind: SocketType,
        options: SocketOptions,
    ) -> Result<Resource<DgramRep>, ErrorCode> {
        let permit = self.io.socket_permit().ok_or(ErrorCode::WouldExceedLimit)?;
        let v6 = matches!(kind, SocketType::Udp6);
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket =
            Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| error_code(&e))?;
        let setup = || -> io::Result<()> {
            socket.set_nonblocking(true)?;
            if options.reuse_addr {
                socket.set_reuse_address(true)?;
            }
            if v6 {
                socket.set_only_v6(options.ipv6_only)?;
            }
            if let Some(size) = options.recv_buffer_size {
                socket.set_recv_buffer_size(size as usize)?;
            }
            if let Some(size) = options.send_buffer_size {
                socket.set_send_buffer_size(size as usize)?;
            }
            Ok(())
        };
        setup().map_err(|e| error_code(&e))?;
        // Guest calls run outside the shard's runtime (see `shard`); register with it.
        let rt = self.io.ctx.rt.clone();
        let _enter = rt.enter();
        let sock = match &self.io.ctx.mem {
            // Under the testing harness: traffic in memory, options on the real socket.
            Some(net) => Transport::Mem {
                mem: net.udp(None),
                options: socket,
            },
            None => Transport::Udp(
                tokio::net::UdpSocket::from_std(socket.into()).map_err(|e| error_code(&e))?,
            ),
        };
        let id = self.io.next_id();
        let mut udp = new_sock(&self.io, id, sock, v6);
        udp.permit = Some(permit);
        self.io.udp.insert(id, udp);
        Ok(Resource::new_own(id))
    }
}

impl crate::bindings::netlet::net::dgram_handler::Host for GuestState {}
