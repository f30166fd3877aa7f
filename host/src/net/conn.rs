//! Moving a TCP connection's bytes: reading into the shard's buffer, flushing the write
//! queue with `writev`, half-close, close, and outbound connects.
//!
//! Every function here runs on the shard's thread outside any guest call (or inside one,
//! for `write`/`close`, which only touch state) and never blocks: tokio's `poll_*`
//! methods are called with the connection's own waker, so a socket that is not ready
//! registers that waker and the reactor queues its token when it becomes ready.

use std::io;
use std::net::{IpAddr, SocketAddr};

use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use super::stream::Stream;

use super::{TcpConn, display_addr};
use crate::bindings::netlet::net::net::ConnectOptions;
use crate::bindings::{ErrorCode, IpFamily};
use crate::error::{error_info, host_error};
use crate::events::{HostError, HostEvent};
use crate::guest::Io;
use crate::policy::Policy;
use crate::reactor::{ConnectError, Kind};
use crate::resolve;
use crate::stats::HandlerStats;

fn push(io: &mut Io, ev: HostEvent) {
    io.events.push(ev);
}

/// The guest's `write`: queue `data`; Node's backpressure answer.
pub fn write(io: &mut Io, id: u32, data: Vec<u8>) -> Result<bool, ErrorCode> {
    let hwm = io.ctx.config.high_water_mark;
    let cap = io.ctx.config.max_write_buffer;
    let conn = io.tcp.get_mut(&id).ok_or(ErrorCode::InvalidState)?;
    if conn.end_called {
        return Err(ErrorCode::InvalidState);
    }
    if data.is_empty() {
        return Ok(conn.out.len() < hwm);
    }
    if conn.out.len() + data.len() > cap {
        let queued = conn.out.len();
        let info = host_error(
            ErrorCode::WouldExceedLimit,
            format!(
                "write buffer limit exceeded: {queued} bytes queued + {} more > {cap} (--max-write-buffer)",
                data.len()
            ),
        );
        io.ctx.log(format_args!("socket {id}: {}", info.message));
        close(io, id, Some(info));
        return Err(ErrorCode::WouldExceedLimit);
    }
    conn.bytes_written += data.len() as u64;
    HandlerStats::add(
        &conn.stats.tcp_port(conn.server).bytes_out,
        data.len() as u64,
    );
    conn.out.push(data);
    let below = conn.out.len() < hwm;
    if !below {
        conn.need_drain = true;
    }
    io.touch_tcp(id);
    Ok(below)
}

/// Closes a connection now: the fd is closed, queued bytes are dropped, the guest gets
/// `error` (if any) then `close`. Closing a socket that is gone does nothing.
pub fn close(io: &mut Io, id: u32, error: Option<HostError>) {
    let Some(conn) = io.tcp.remove(&id) else {
        return;
    };
    let server = conn.server;
    drop(conn);
    let had_error = error.is_some();
    if let Some(error) = error {
        push(io, HostEvent::Error { socket: id, error });
    }
    push(
        io,
        HostEvent::Close {
            socket: id,
            had_error,
        },
    );
    if let Some(server) = server
        && let Some(view) = io.servers.get_mut(&server)
    {
        view.connections = view.connections.saturating_sub(1);
        super::listener::maybe_server_closed(io, server);
    }
}

/// Closes with an OS error from `op`.
fn fail(io: &mut Io, id: u32, e: &io::Error, op: &str) {
    close(io, id, Some(error_info(e, op, None)));
}

/// A new accepted connection: registers it, tells the guest, reads what already arrived.
pub fn accept(io: &mut Io, server: u32, stream: Stream, peer: SocketAddr, buf: &mut [u8]) {
    let id = io.next_id();
    let allow_half_open = io.ctx.config.allow_half_open;
    let mut conn = TcpConn::new(io, id, allow_half_open);
    conn.server = Some(server);
    conn.local = stream.local_addr().ok();
    conn.peer = Some(peer);
    conn.stream = Some(stream);
    let stats = &io.ctx.stats;
    HandlerStats::add(&stats.connections_active, 1);
    HandlerStats::add(&stats.connections_total, 1);
    let port = stats.tcp_port(Some(server));
    HandlerStats::add(&port.connections_active, 1);
    HandlerStats::add(&port.connections_total, 1);
    conn.active(
        &io.ctx.clock,
        &mut io.timers,
        io.ctx.config.idle_timeout,
        id,
    );
    io.tcp.insert(id, conn);
    if let Some(view) = io.servers.get_mut(&server) {
        view.connections += 1;
    }
    push(io, HostEvent::Connection { server, socket: id });
    // A client usually writes right after connecting: read now rather than a turn later.
    read(io, id, buf);
}

/// Reads once from a readable connection into `buf` and queues what came (`data`,
/// `end`, or `error` + `close`).
pub fn read(io: &mut Io, id: u32, buf: &mut [u8]) {
    let Some(conn) = io.tcp.get_mut(&id) else {
        return;
    };
    if conn.paused || conn.read_eof || conn.connecting {
        return;
    }
    if conn.read_turn == io.turn {
        // One `data` per socket per batch: a guest that pauses on it must see no more,
        // as in Node. The rest is read next turn, after the guest had its say.
        io.ctx.reactor.push(io.token(Kind::TcpRead, id));
        return;
    }
    conn.read_turn = io.turn;
    let Some(stream) = conn.stream.as_mut() else {
        return;
    };
    let mut cx = Context::from_waker(&conn.read_waker);
    let mut rb = ReadBuf::new(buf);
    match stream.poll_read(&mut cx, &mut rb) {
        Poll::Pending => {}
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
            io.ctx.reactor.push(io.token(Kind::TcpRead, id));
        }
        Poll::Ready(Err(e)) => fail(io, id, &e, "read"),
        Poll::Ready(Ok(())) => {
            let n = rb.filled().len();
            if n == 0 {
                on_eof(io, id);
                return;
            }
            conn.bytes_read += n as u64;
            HandlerStats::add(&conn.stats.tcp_port(conn.server).bytes_in, n as u64);
            let data = io.arena.bytes(rb.filled());
            let full = n == rb.capacity();
            // A full buffer means more may be waiting (readiness was not cleared): come
            // back next turn, after the guest has seen this. A short read cleared it:
            // register the waker now (no syscall) unless more arrived meanwhile.
            let again = full || stream.poll_read_ready(&mut cx).is_ready();
            conn.active(
                &io.ctx.clock,
                &mut io.timers,
                io.ctx.config.idle_timeout,
                id,
            );
            push(io, HostEvent::Data { socket: id, data });
            if again {
                io.ctx.reactor.push(io.token(Kind::TcpRead, id));
            }
        }
    }
}

fn on_eof(io: &mut Io, id: u32) {
    let Some(conn) = io.tcp.get_mut(&id) else {
        return;
    };
    conn.read_eof = true;
    push(io, HostEvent::End(id));
    let conn = io.tcp.get_mut(&id).expect("checked above");
    if conn.fin_sent {
        close(io, id, None);
    } else if !conn.allow_half_open {
        conn.auto_end = true;
        io.touch_tcp(id);
    }
}

/// Sends as much of the write queue as the kernel takes. When it empties: `drain` if
/// owed, then our FIN if `end` was called, then `close` if the peer had ended too.
pub fn flush(io: &mut Io, id: u32) {
    let Some(conn) = io.tcp.get_mut(&id) else {
        return;
    };
    let Some(stream) = conn.stream.as_mut() else {
        return;
    };
    if conn.connecting {
        return;
    }
    let mut cx = Context::from_waker(&conn.write_waker);
    let mut wrote = false;
    while !conn.out.is_empty() {
        match stream.poll_write(&mut cx, conn.out.pending()) {
            Poll::Pending => break,
            Poll::Ready(Ok(0)) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "the socket accepted no bytes");
                fail(io, id, &e, "write");
                return;
            }
            Poll::Ready(Ok(n)) => {
                wrote = true;
                conn.out.consume(n);
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => {
                fail(io, id, &e, "write");
                return;
            }
        }
    }
    if wrote {
        conn.active(
            &io.ctx.clock,
            &mut io.timers,
            io.ctx.config.idle_timeout,
            id,
        );
    }
    if !conn.out.is_empty() {
        return;
    }
    if conn.need_drain {
        conn.need_drain = false;
        push(io, HostEvent::Drain(id));
    }
    let conn = io.tcp.get_mut(&id).expect("still open");
    if conn.end_called && !conn.fin_sent {
        conn.fin_sent = true;
        if let Some(stream) = &conn.stream
            && let Err(e) = stream.shutdown_write()
            && e.kind() != io::ErrorKind::NotConnected
        {
            fail(io, id, &e, "shutdown");
            return;
        }
        let conn = io.tcp.get(&id).expect("still open");
        if conn.read_eof {
            close(io, id, None);
        }
    }
}

/// The after-call pass over the connections the guest touched: host-side `end` for
/// sockets that are not half-open, then a flush.
pub fn after_call(io: &mut Io) {
    let mut touched = std::mem::take(&mut io.touched_tcp);
    for &id in &touched {
        let Some(conn) = io.tcp.get_mut(&id) else {
            continue;
        };
        conn.touched = false;
        if conn.auto_end {
            conn.auto_end = false;
            conn.end_called = true;
        }
        flush(io, id);
    }
    touched.clear();
    // Keep the capacity; anything touched during this pass was already queued anew.
    if io.touched_tcp.is_empty() {
        io.touched_tcp = touched;
    }
}

/// The host's `--idle-timeout` came up for a connection: destroy it if it really was
/// idle that long (the guest gets `error` then `close`).
pub fn host_idle_check(io: &mut Io, id: u32, now: Instant) {
    let Some(idle) = io.ctx.config.idle_timeout else {
        return;
    };
    let Some(conn) = io.tcp.get_mut(&id) else {
        return;
    };
    let due = conn.last_active + idle;
    if due <= now {
        conn.host_idle_armed = false;
        let info = host_error(
            ErrorCode::TimedOut,
            format!("idle for {idle:?}: destroyed (--idle-timeout)"),
        );
        close(io, id, Some(info));
    } else {
        io.timers
            .scheduled
            .push((due, crate::timers::TimerKey::HostIdle(id)));
    }
}

/// A socket's idle deadline came up: `timeout` if it really was idle that long,
/// otherwise the deadline moves to where the last activity puts it.
pub fn idle_check(io: &mut Io, id: u32, now: Instant) {
    let Some(conn) = io.tcp.get_mut(&id) else {
        return;
    };
    let Some(idle) = conn.idle else {
        conn.idle_armed = false;
        return;
    };
    let due = conn.last_active + idle;
    if due <= now {
        conn.idle_armed = false;
        push(io, HostEvent::Timeout(id));
    } else {
        io.timers
            .scheduled
            .push((due, crate::timers::TimerKey::SocketIdle(id)));
    }
}

/// Destroys every connection without telling the guest (it trapped, or the host stops).
pub fn drop_all(io: &mut Io) {
    io.tcp.clear();
}

/// Where an outbound connection goes, decided in the guest's call; run in a task.
pub struct ConnectPlan {
    host: String,
    port: u16,
    family: Option<IpFamily>,
    /// Addresses known at once (literal or `localhost`); `None`: resolve `host`.
    addrs: Option<Vec<IpAddr>>,
    /// A rule names the host itself, so whatever it resolves to is allowed.
    name_allowed: bool,
    local: Option<IpAddr>,
}

fn family_ok(ip: &IpAddr, family: Option<IpFamily>) -> bool {
    match family {
        None => true,
        Some(IpFamily::Ipv4) => ip.is_ipv4(),
        Some(IpFamily::Ipv6) => ip.is_ipv6(),
    }
}

impl ConnectPlan {
    /// The destination host, as the guest wrote it.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Resolves (if needed), filters by family and policy, and tries each address in
    /// turn until one connects.
    pub async fn run(self, policy: &Policy) -> Result<TcpStream, ConnectError> {
        let target = format!("{}:{}", self.host, self.port);
        let addrs: Vec<SocketAddr> = match &self.addrs {
            Some(ips) => ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, self.port))
                .collect(),
            None => resolve::lookup(self.host.clone(), self.port)
                .await
                .map_err(|error| ConnectError {
                    error: io::Error::new(io::ErrorKind::NotFound, error.to_string()),
                    target: self.host.clone(),
                    denied: false,
                })?,
        };
        let candidates: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| family_ok(&a.ip(), self.family))
            .filter(|a| self.local.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
            .collect();
        let allowed: Vec<SocketAddr> = candidates
            .iter()
            .copied()
            .filter(|a| self.name_allowed || policy.allows(*a))
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
                target,
                denied,
            });
        }
        let mut last = None;
        for addr in allowed {
            match connect_one(addr, self.local).await {
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
}

async fn connect_one(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
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

/// The guest's `net.connect`: validates, applies the policy where it can at once, and
/// starts the connection. Returns the new socket's id.
pub fn start_connect(io: &mut Io, options: ConnectOptions) -> Result<u32, ErrorCode> {
    let ConnectOptions {
        host,
        port,
        family,
        local_address,
        no_delay,
        keep_alive,
        keep_alive_initial_delay_ms,
        allow_half_open,
    } = options;
    if port == 0 {
        return Err(ErrorCode::InvalidArgument);
    }
    let permit = io.socket_permit().ok_or(ErrorCode::WouldExceedLimit)?;
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    let local = match local_address.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| ErrorCode::InvalidArgument)?,
        ),
    };
    let policy = io.ctx.policy.clone();
    let name_allowed = policy.allows_name(&host, port);
    let addrs = resolve::resolve_now(&host);
    match &addrs {
        Some(ips) => {
            let any_allowed = name_allowed
                || ips
                    .iter()
                    .filter(|ip| family_ok(ip, family))
                    .any(|ip| policy.allows(SocketAddr::new(*ip, port)));
            if !any_allowed {
                deny_log(io, &shown(&host, port));
                return Err(ErrorCode::AccessDenied);
            }
        }
        None => {
            if !resolve::is_plausible_name(&host) {
                return Err(ErrorCode::InvalidArgument);
            }
            if !io.may_resolve(name_allowed, port) {
                deny_log(io, &shown(&host, port));
                return Err(ErrorCode::AccessDenied);
            }
        }
    }
    let id = io.next_id();
    let mut conn = TcpConn::new(io, id, allow_half_open);
    conn.connecting = true;
    conn.permit = Some(permit);
    conn.pending.no_delay = no_delay.then_some(true);
    conn.pending.keep_alive = keep_alive.then_some((true, keep_alive_initial_delay_ms));
    io.tcp.insert(id, conn);
    super::spawn_connect(
        io,
        id,
        ConnectPlan {
            host,
            port,
            family,
            addrs,
            name_allowed,
            local,
        },
    );
    Ok(id)
}

/// `host:port`, bracketing an IPv6 literal.
fn shown(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn deny_log(io: &Io, target: &str) {
    io.ctx.log(format_args!(
        "denied connect to {target} (not allowed; run with --allow {target} to permit it)"
    ));
}

/// The connect task finished.
pub fn finish_connect(io: &mut Io, id: u32, result: Result<Stream, ConnectError>, buf: &mut [u8]) {
    let Some(conn) = io.tcp.get_mut(&id) else {
        // Destroyed while connecting; a stream that did come up is dropped here.
        return;
    };
    match result {
        Err(ConnectError {
            error,
            target,
            denied,
        }) => {
            let info = if denied {
                deny_log(io, &target);
                host_error(
                    ErrorCode::AccessDenied,
                    format!("connect EACCES {target} (not allowed by --allow)"),
                )
            } else {
                error_info(&error, "connect", Some(&target))
            };
            close(io, id, Some(info));
        }
        Ok(stream) => {
            conn.connecting = false;
            conn.local = stream.local_addr().ok();
            conn.peer = stream.peer_addr().ok();
            if let Some(no_delay) = conn.pending.no_delay {
                let _ = stream.set_nodelay(no_delay);
            }
            if let Some((enable, delay)) = conn.pending.keep_alive {
                let _ = stream.set_keepalive(enable, delay);
            }
            conn.stream = Some(stream);
            push(io, HostEvent::Connect(id));
            // Writes and `end` made while connecting go out now.
            io.touch_tcp(id);
            read(io, id, buf);
        }
    }
}
