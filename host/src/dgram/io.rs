//! Moving a UDP socket's datagrams: receiving (a bounded number per turn), sending at
//! once or queueing what the kernel does not take, binding (explicitly, or implicitly
//! on first `send`/`connect`, as Node does), connecting, and name lookups for
//! destinations given by name.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

use super::{
    DgramView, MAX_DATAGRAM_V6, MAX_PEERS, MAX_QUEUED, MAX_QUEUED_BYTES, READS_PER_TURN, UdpSock,
};
use crate::bindings::ErrorCode;
use crate::error::{error_code, error_info, host_error};
use crate::events::{HostError, HostEvent};
use crate::net::guest_ip;
use crate::policy::Use;
use crate::reactor::{Completion, UdpRequest};
use crate::resolve;
use crate::stats::HandlerStats;
use crate::transport::Datagram;
use crate::transport::udp::BATCH;

/// Receive buffers, and each datagram's length and sender.
type Scratch = (Vec<Vec<u8>>, Vec<(usize, SocketAddr)>);

thread_local! {
    /// Where a shard's batched receives land before their `message` events are made.
    static SCRATCH: std::cell::RefCell<Scratch> =
        std::cell::RefCell::new((
            (0..BATCH).map(|_| vec![0; MAX_DATAGRAM_V6]).collect(),
            vec![(0, SocketAddr::from(([0, 0, 0, 0], 0))); BATCH],
        ));
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

/// An address converted to a socket's family (an IPv4 address on a `udp6` socket
/// becomes IPv4-mapped); `None` if it cannot be.
pub(super) fn fit_family(ip: IpAddr, v6: bool) -> Option<IpAddr> {
    match (ip, v6) {
        (IpAddr::V4(_), false) | (IpAddr::V6(_), true) => Some(ip),
        (IpAddr::V4(v4), true) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        (IpAddr::V6(v6addr), false) => v6addr.to_ipv4_mapped().map(IpAddr::V4),
    }
}

/// Resolves a destination that needs no DNS: `None` address means `localhost`, as in Node.
pub(super) fn dest_now(address: Option<&str>, v6: bool) -> Option<Result<IpAddr, ErrorCode>> {
    let host = address.unwrap_or("localhost");
    let ips = resolve::resolve_now(host)?;
    Some(
        ips.into_iter()
            .find_map(|ip| fit_family(ip, v6))
            .ok_or(ErrorCode::InvalidArgument),
    )
}

impl DgramView<'_> {
    /// An open (not closing) socket.
    pub(super) fn sock(&self, id: u32) -> Result<&UdpSock, ErrorCode> {
        match self.udp.socks.get(&id) {
            Some(udp) if !udp.closing => Ok(udp),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    /// An open socket's transport.
    pub(super) fn transport(&mut self, id: u32) -> Result<&mut Box<dyn Datagram>, ErrorCode> {
        match self.udp.socks.get_mut(&id) {
            Some(udp) if !udp.closing => udp.sock.as_mut().ok_or(ErrorCode::InvalidState),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    /// The reactor found the socket readable (or the host queued a read).
    pub fn on_readable(&mut self, id: u32) {
        if let Some(udp) = self.udp.socks.get_mut(&id) {
            udp.read_queued = false;
        }
        self.read(id);
    }

    /// Reads the datagrams waiting on a socket (a bounded number per turn), many per
    /// system call.
    pub(super) fn read(&mut self, id: u32) {
        SCRATCH.with(|scratch| {
            let (bufs, got) = &mut *scratch.borrow_mut();
            let mut read = 0;
            while read < READS_PER_TURN {
                if self.events.arena.bytes.len() >= crate::net::conn::MAX_BATCH_BYTES
                    || self.events.len() >= crate::events::MAX_EVENTS_PER_CALL
                {
                    break;
                }
                let Some(udp) = self.udp.socks.get_mut(&id) else {
                    return;
                };
                if !udp.bound || udp.closing {
                    return;
                }
                let Some(sock) = udp.sock.as_mut() else {
                    return;
                };
                let mut cx = Context::from_waker(&udp.read_waker);
                let want = BATCH
                    .min(READS_PER_TURN - read)
                    .min(crate::events::MAX_EVENTS_PER_CALL - self.events.len());
                match sock.poll_recv_many(&mut cx, &mut bufs[..want], &mut got[..want]) {
                    Poll::Pending => return,
                    Poll::Ready(Ok(0)) => return,
                    Poll::Ready(Ok(n)) => {
                        read += n;
                        for (buf, &(len, from)) in bufs.iter().zip(&got[..n]) {
                            self.received(id, &buf[..len], from);
                        }
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => {
                        // Node reports receive errors (e.g. ECONNREFUSED from an ICMP
                        // reply on a connected socket) as 'error' and keeps the socket open.
                        self.events.push(HostEvent::UdpError {
                            socket: id,
                            error: error_info(&e, "recvmsg", None),
                        });
                        break;
                    }
                }
            }
            // More may be waiting: come back next turn; behind the others if it had
            // datagrams this turn, in its place if the batch was full before it.
            self.queue_read(id, read > 0);
        })
    }

    /// One datagram arrived on socket `id`: the `message` event.
    fn received(&mut self, id: u32, data: &[u8], from: SocketAddr) {
        let Some(udp) = self.udp.socks.get_mut(&id) else {
            return;
        };
        if udp.peers.len() >= MAX_PEERS {
            udp.peers.clear();
            // Its permission may have come from the reply rule.
            udp.last_dest = None;
        }
        udp.peers.insert(from);
        let port = self.cx.shard.stats.udp_port(udp.port);
        HandlerStats::add(&port.datagrams_in, 1);
        HandlerStats::add(&port.bytes_in, data.len() as u64);
        let data = self.events.arena.bytes(data);
        let (ip, family) = guest_ip(from);
        let address = self.events.arena.text(|t| {
            let _ = write!(t, "{ip}");
        });
        self.events.push(HostEvent::UdpMessage {
            socket: id,
            data,
            address,
            family,
            port: from.port(),
        });
    }

    /// Sends what is queued, many datagrams per system call; closes a closing socket
    /// once its queue is empty.
    pub fn flush(&mut self, id: u32) {
        let Some(udp) = self.udp.socks.get_mut(&id) else {
            return;
        };
        udp.touched = false;
        let mut errors = Vec::new();
        if let Some(sock) = udp.sock.as_mut() {
            let mut cx = Context::from_waker(&udp.write_waker);
            while !udp.queue.is_empty() {
                let batch: Vec<(&[u8], Option<SocketAddr>)> = udp
                    .queue
                    .iter()
                    .take(BATCH)
                    .map(|(data, dest)| (data.as_slice(), *dest))
                    .collect();
                let polled = sock.poll_send_many(&mut cx, &batch);
                drop(batch);
                let (sent, failed) = match polled {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Poll::Ready(Ok(n)) => (n.max(1).min(udp.queue.len()), None),
                    // The first datagram failed: it is dropped, the rest go on.
                    Poll::Ready(Err(e)) => (1, Some(e)),
                };
                for k in 0..sent {
                    let (data, dest) = udp.queue.pop_front().expect("sent from the queue");
                    udp.queue_bytes -= data.len();
                    udp.charge.shrink(data.len());
                    let ok = k + 1 < sent || failed.is_none();
                    count_sent(&self.cx.shard.stats, udp.port, data.len(), ok);
                    if let (false, Some(e)) = (ok, &failed) {
                        let target = dest.map(|d| resolve::display_addr(&d));
                        errors.push(error_info(e, "send", target.as_deref()));
                    }
                }
            }
        }
        let done_closing = udp.closing && udp.queue.is_empty();
        for error in errors {
            self.events.push(HostEvent::UdpError { socket: id, error });
        }
        if done_closing {
            self.finish_close(id);
        }
    }

    /// The after-call pass over the sockets the guest touched.
    pub fn after_call(&mut self) {
        let touched = std::mem::take(&mut self.udp.touched);
        for id in touched {
            self.flush(id);
        }
    }

    /// Node's `close()`: at once, or once the queued datagrams are sent.
    pub(super) fn close(&mut self, id: u32) {
        let Some(udp) = self.udp.socks.get_mut(&id) else {
            return;
        };
        if udp.closing {
            return;
        }
        if udp.queue.is_empty() {
            self.finish_close(id);
        } else {
            udp.closing = true;
            self.touch(id);
        }
    }

    /// Binds `id` to `addr` and announces `listening`.
    pub(super) fn bind_to(&mut self, id: u32, addr: SocketAddr) -> Result<(), ErrorCode> {
        self.transport(id)?.bind(addr).map_err(|e| error_code(&e))?;
        if let Some(udp) = self.udp.socks.get_mut(&id) {
            udp.bound = true;
        }
        self.events.push(HostEvent::UdpListening {
            socket: id,
            with_handle: false,
        });
        self.queue_read(id, false);
        Ok(())
    }

    /// Node binds a socket implicitly on first `send`/`connect`: any address, free port.
    pub(super) fn autobind(&mut self, id: u32) -> Result<(), ErrorCode> {
        let udp = self.sock(id)?;
        if udp.bound {
            return Ok(());
        }
        let any = if udp.v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        self.bind_to(id, SocketAddr::new(any, 0))
    }

    /// Whether the policy (or the reply rule: a peer that sent this socket a datagram
    /// may be answered) lets socket `id` use `dest`.
    pub(super) fn permitted(
        &self,
        id: u32,
        what: Use,
        dest: SocketAddr,
        name_allowed: bool,
    ) -> bool {
        name_allowed
            || self.cx.policy().permits(what, dest)
            || self
                .udp
                .socks
                .get(&id)
                .is_some_and(|u| u.peers.contains(&dest))
    }

    /// Queues one datagram to a checked destination; the queue goes out after the
    /// guest's call, many datagrams per system call.
    pub(super) fn enqueue(
        &mut self,
        id: u32,
        data: Vec<u8>,
        dest: Option<SocketAddr>,
    ) -> Result<(), ErrorCode> {
        self.autobind(id)?;
        let stats = self.cx.shard.stats.clone();
        let udp = self.udp.socks.get_mut(&id).ok_or(ErrorCode::InvalidState)?;
        if udp.queue.len() >= MAX_QUEUED
            || udp.queue_bytes + data.len() > MAX_QUEUED_BYTES
            || udp.charge.grow(data.len()).is_err()
        {
            count_sent(&stats, udp.port, data.len(), false);
            return Err(ErrorCode::WouldExceedLimit);
        }
        udp.queue_bytes += data.len();
        udp.queue.push_back((data, dest));
        self.touch(id);
        Ok(())
    }

    /// Fixes the socket's peer; `connect` follows.
    pub(super) fn connect_to(&mut self, id: u32, dest: SocketAddr) -> Result<(), ErrorCode> {
        self.autobind(id)?;
        self.transport(id)?
            .connect(Some(dest))
            .map_err(|e| error_code(&e))?;
        if let Some(udp) = self.udp.socks.get_mut(&id) {
            udp.connected = Some(dest);
        }
        self.events.push(HostEvent::UdpConnect(id));
        Ok(())
    }

    /// Starts a name lookup for a destination; its completion finishes the request.
    pub(super) fn lookup(
        &mut self,
        id: u32,
        host: String,
        request: UdpRequest,
    ) -> Result<(), ErrorCode> {
        if self.cx.quota.in_flight >= crate::config::MAX_IN_FLIGHT {
            return Err(ErrorCode::WouldExceedLimit);
        }
        self.cx.quota.in_flight += 1;
        let reactor = self.cx.shard.reactor.clone();
        let inst = self.cx.key;
        let port = match &request {
            UdpRequest::Send { port, .. } | UdpRequest::Connect { port, .. } => *port,
        };
        self.cx.shard.net.lookup(
            host,
            port,
            Box::new(move |result| {
                reactor.complete(Completion::UdpResolved {
                    inst,
                    id,
                    request,
                    result,
                })
            }),
        );
        Ok(())
    }

    /// A name lookup for `send`/`connect` finished.
    pub fn on_resolved(
        &mut self,
        id: u32,
        request: UdpRequest,
        result: io::Result<Vec<SocketAddr>>,
    ) {
        self.cx.quota.in_flight = self.cx.quota.in_flight.saturating_sub(1);
        let Some(udp) = self.udp.socks.get(&id) else {
            return;
        };
        let v6 = udp.v6;
        let (op, what, port, name_allowed) = match &request {
            UdpRequest::Send {
                port, name_allowed, ..
            } => ("send", Use::Send, *port, *name_allowed),
            UdpRequest::Connect { port, name_allowed } => {
                ("connect", Use::UdpConnect, *port, *name_allowed)
            }
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
                Some(dest) if !self.permitted(id, what, dest, name_allowed) => {
                    let shown = resolve::display_addr(&dest);
                    self.cx.denied(what, &shown);
                    Err(host_error(
                        ErrorCode::AccessDenied,
                        format!("{op} EACCES {shown} (not allowed by --allow)"),
                    ))
                }
                Some(dest) => match request {
                    UdpRequest::Send { data, .. } => self
                        .enqueue(id, data, Some(dest))
                        .map_err(|code| host_error(code, format!("{op} failed: {code:?}"))),
                    UdpRequest::Connect { .. } => self
                        .connect_to(id, dest)
                        .map_err(|code| host_error(code, format!("{op} failed: {code:?}"))),
                },
            },
        };
        if let Err(error) = outcome {
            self.events.push(HostEvent::UdpError { socket: id, error });
        }
    }
}
