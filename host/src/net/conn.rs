//! Moving a TCP connection's bytes: accepting, reading into the instance's event arena,
//! flushing the write queue with one vectored write, half-close, close, idle timeouts.
//!
//! Every function here runs on the shard's thread, outside any guest call (or inside
//! one, for `write`/`close`, which only touch state), and never blocks: the transport's
//! `poll_*` methods are called with the connection's own waker, so a socket that is not
//! ready registers that waker and the reactor queues its token when it becomes ready.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use super::pipe::SPARE_PIPES;
use super::{NetView, Shutdown, TcpConn};
use crate::bindings::ErrorCode;
use crate::error::{error_info, host_error};
use crate::events::{HostError, HostEvent, MAX_EVENTS_PER_CALL};
use crate::stats::HandlerStats;
use crate::timers::Deadline;
use crate::transport::Stream;

/// Once a batch holds this many received bytes, other sockets' reads wait a turn.
///
/// One full read (64 KiB) fills it, so bulk data goes socket by socket: each read
/// reaches the guest, and its echo the kernel, before the next socket is read, which is
/// the order Node keeps (read callback, then its write). Batching four 64 KiB reads
/// before any write held every reply back a whole round and cost a third of the
/// streaming throughput; small messages from many sockets still share one call.
pub const MAX_BATCH_BYTES: usize = 64 << 10;

/// How much one read takes from a socket: Node reads in 64 KiB chunks; so do we.
pub const READ_SIZE: usize = 64 * 1024;

/// The least a read takes from a socket whose data the guest is slow to handle.
pub const MIN_READ_SIZE: usize = 4 * 1024;

/// How long a guest call carrying a socket's full read may take before that socket's
/// reads shrink.
///
/// A socket's turn costs what the guest spends on its bytes: 64 KiB of one-byte
/// WebSocket frames is ~9,000 messages, milliseconds of guest work in one call, which
/// every other socket of the shard waits out. A call that ran past this halves the read
/// size of each socket whose read filled it (down to [`MIN_READ_SIZE`]); a call under a
/// quarter of it doubles them back (up to [`READ_SIZE`]). Bulk data that the guest
/// handles quickly (an echo, a proxy) keeps full reads; a flood of tiny messages comes
/// in slices of about this much guest time, so its neighbours wait a slice, not a
/// 64 KiB batch.
pub const READ_SLICE: std::time::Duration = std::time::Duration::from_millis(1);

/// The read size after a full read of `size` bytes went to the guest in a call that
/// took `took`: halved past [`READ_SLICE`], doubled under a quarter of it. Between the
/// two it stays, so a handler settles where its calls take 0.25–1 ms and the cost of
/// the extra calls stays a few percent of its work.
pub fn next_read_size(size: usize, took: std::time::Duration) -> usize {
    if took > READ_SLICE {
        (size / 2).max(MIN_READ_SIZE)
    } else if took < READ_SLICE / 4 {
        (size * 2).min(READ_SIZE)
    } else {
        size
    }
}

/// Writes as much of the queue, then of `data` (not queued), as the transport takes at
/// once, without waiting and without the after-flush work (`drain`, end); returns how
/// many bytes of `data` went. Errors are left for the flush to meet.
fn send_now(conn: &mut TcpConn, data: &[u8]) -> usize {
    if !conn.sends_now() {
        return 0;
    }
    let Some(stream) = conn.stream.as_mut() else {
        return 0;
    };
    let mut cx = Context::from_waker(&conn.write_waker);
    let mut sent = 0;
    while sent < data.len() {
        let rest = &data[sent..];
        let polled = conn
            .out
            .send_with(rest, |slices| stream.poll_write_vectored(&mut cx, slices));
        match polled {
            Poll::Ready(Ok(n)) if n > 0 => {
                let from_queue = n.min(conn.out.len());
                conn.out.consume(from_queue);
                sent += n - from_queue;
            }
            _ => break,
        }
    }
    sent
}

impl NetView<'_> {
    /// A new accepted connection: registers it, tells the guest, reads what already
    /// arrived. It starts as its server's options say (Node's `createServer(options)`),
    /// the operator's `--allow-half-open` overriding.
    pub fn accept(&mut self, server: u32, mut stream: Box<dyn Stream>, peer: SocketAddr) {
        let id = self.cx.ids.allocate();
        let options = self.tcp.options_for(server);
        let allow_half_open = self.cx.config().allow_half_open || options.allow_half_open;
        // Failures here are the peer's doing (it is gone already): its first read or
        // write reports them.
        if options.no_delay {
            let _ = stream.set_nodelay(true);
        }
        if options.keep_alive {
            let _ = stream.set_keepalive(true, options.keep_alive_initial_delay_ms);
        }
        let mut conn = TcpConn::new(self.cx, id, allow_half_open);
        conn.server = Some(server);
        conn.paused = options.pause_on_connect;
        conn.local = stream.local_addr().ok();
        conn.peer = Some(peer);
        conn.stream = Some(stream);
        let stats = &self.cx.shard.stats;
        HandlerStats::add(&stats.connections_active, 1);
        HandlerStats::add(&stats.connections_total, 1);
        let port = stats.tcp_port(Some(server));
        HandlerStats::add(&port.connections_active, 1);
        HandlerStats::add(&port.connections_total, 1);
        self.tcp.conns.insert(id, conn);
        self.tcp.accepted += 1;
        self.active(id);
        if let Some(view) = self.tcp.servers.get_mut(&server) {
            view.connections += 1;
        }
        // The event hands the guest a handle to it.
        self.cx.ids.handle_given(id);
        self.events
            .push(HostEvent::Connection { server, socket: id });
        // A client usually writes right after connecting: read now rather than a turn later.
        self.read(id);
    }

    /// Records activity for the idle timeouts (the guest's `set-timeout` and the host's
    /// `--idle-timeout`) and arms one not pending. Reads no clock when neither is set
    /// (the common case, on the hot path).
    pub(super) fn active(&mut self, id: u32) {
        let host_idle = self.cx.config().idle_timeout;
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if conn.idle.is_none() && host_idle.is_none() {
            return;
        }
        let now = self.cx.now();
        conn.last_active = now;
        if let Some(idle) = conn.idle
            && conn.idle_slot.is_none()
        {
            conn.idle_slot = Some(self.timers.schedule(now + idle, Deadline::SocketIdle(id)));
        }
        if let Some(idle) = host_idle
            && conn.host_idle_slot.is_none()
        {
            conn.host_idle_slot = Some(self.timers.schedule(now + idle, Deadline::HostIdle(id)));
        }
    }

    /// The guest's `write`: queue `data`; Node's backpressure answer.
    ///
    /// `data` may be a view of the guest's memory, valid for this call only: what the
    /// queue keeps is copied. A write that takes the queue to the high-water mark is
    /// sent at once, queue and `data` in one vectored write, so the bytes the kernel
    /// takes leave straight from `data` and only the rest is copied.
    pub fn write(&mut self, id: u32, data: &[u8]) -> Result<bool, ErrorCode> {
        let hwm = self.cx.config().high_water_mark;
        let cap = self.cx.config().max_write_buffer;
        let conn = self.tcp.conns.get_mut(&id).ok_or(ErrorCode::InvalidState)?;
        if conn.end_called {
            return Err(ErrorCode::InvalidState);
        }
        if data.is_empty() {
            return Ok(conn.queued() < hwm);
        }
        if conn.queued() + data.len() > cap {
            let queued = conn.queued();
            let info = host_error(
                ErrorCode::WouldExceedLimit,
                format!(
                    "write buffer limit exceeded: {queued} bytes queued + {} more > {cap} (--max-write-buffer)",
                    data.len()
                ),
            );
            self.cx.log(format_args!("socket {id}: {}", info.message));
            self.close(id, Some(info));
            return Err(ErrorCode::WouldExceedLimit);
        }
        let len = data.len();
        let sent = if conn.queued() + len >= hwm {
            // Past the high-water mark: hand the kernel what it takes now, as libuv's
            // `uv_try_write` does, rather than answer `false` for a queue it would empty
            // at once (a pause, a `drain` and a resume for every large chunk). Smaller
            // writes still wait for the one `send` after the call.
            send_now(conn, data)
        } else {
            0
        };
        if let Err(refusal) = conn.out.push_slice(&data[sent..]) {
            let info = host_error(
                ErrorCode::WouldExceedLimit,
                format!("write refused: {refusal}"),
            );
            self.cx.log(format_args!("socket {id}: {}", info.message));
            self.close(id, Some(info));
            return Err(ErrorCode::WouldExceedLimit);
        }
        conn.bytes_written += len as u64;
        HandlerStats::add(&conn.stats.tcp_port(conn.server).bytes_out, len as u64);
        let below = conn.queued() < hwm;
        if !below {
            conn.need_drain = true;
        }
        self.touch(id);
        Ok(below)
    }

    /// The guest's `end`: our side ends once everything queued has gone out.
    pub fn end(&mut self, id: u32) {
        if let Some(conn) = self.tcp.conns.get_mut(&id) {
            conn.end_called = true;
            self.touch(id);
        }
    }

    /// Closes a connection now: the socket is closed, queued bytes are dropped, the
    /// guest gets `error` (if any) then `close`. Closing a socket that is gone does
    /// nothing.
    pub fn close(&mut self, id: u32, error: Option<HostError>) {
        let Some(mut conn) = self.tcp.conns.remove(&id) else {
            return;
        };
        for slot in [conn.idle_slot, conn.host_idle_slot].into_iter().flatten() {
            self.timers.cancel(slot);
        }
        self.unlink_pipes(&mut conn, id);
        let server = conn.server;
        self.tcp
            .keep_counts(id, conn.bytes_read, conn.bytes_written);
        drop(conn);
        if server.is_some() {
            self.tcp.accepted -= 1;
        }
        self.cx.ids.release(id);
        let had_error = error.is_some();
        if let Some(error) = error {
            self.events.push(HostEvent::Error { socket: id, error });
        }
        self.events.push(HostEvent::Close {
            socket: id,
            had_error,
        });
        if let Some(server) = server
            && let Some(view) = self.tcp.servers.get_mut(&server)
        {
            view.connections = view.connections.saturating_sub(1);
            self.maybe_server_closed(server);
        }
    }

    /// Closes with an OS error from `op`.
    pub(super) fn fail(&mut self, id: u32, e: &io::Error, op: &str) {
        self.close(id, Some(error_info(e, op, None)));
    }

    /// The reactor found the connection readable (or the host queued a read).
    pub fn on_readable(&mut self, id: u32) {
        if let Some(conn) = self.tcp.conns.get_mut(&id) {
            conn.read_queued = false;
        }
        self.read(id);
    }

    /// Reads once from a readable connection, straight into the instance's event
    /// arena, and queues what came (`data`, `end`, or `error` + `close`).
    pub fn read(&mut self, id: u32) {
        let turn = self.cx.turn;
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if conn.paused || conn.read_eof || conn.connecting {
            return;
        }
        if let Some(pipe) = conn.pipe {
            self.move_piped(id, pipe);
            return;
        }
        if conn.read_turn == turn
            || self.events.arena.bytes.len() >= MAX_BATCH_BYTES
            || self.events.len() >= MAX_EVENTS_PER_CALL
        {
            // One `data` per socket per batch: a guest that pauses on it must see no more,
            // as in Node. The rest is read next turn, after the guest had its say. And a
            // batch holds a bounded number of bytes, however many sockets are readable;
            // a `data` is always among the events the next call carries.
            // It waited: it keeps its place ahead of the socket that filled the batch.
            self.queue_read(id, false);
            return;
        }
        conn.read_turn = turn;
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(&conn.read_waker);
        let size = conn.read_size;
        let polled = self
            .events
            .arena
            .read_into(size, |rb| stream.poll_read(&mut cx, rb));
        match polled {
            Poll::Pending => {}
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                self.queue_read(id, false)
            }
            Poll::Ready(Err(e)) => self.fail(id, &e, "read"),
            Poll::Ready(Ok(((), data))) => {
                let n = data.len();
                if n == 0 {
                    self.on_eof(id);
                    return;
                }
                conn.bytes_read += n as u64;
                HandlerStats::add(&conn.stats.tcp_port(conn.server).bytes_in, n as u64);
                let full = n == size;
                if full {
                    self.tcp.full_reads.push(id);
                }
                // A full buffer means more may be waiting: come back next turn, after the
                // guest has seen this. After a short read, ask the transport whether it
                // can still make progress (a TLS layer may hold decrypted bytes); if not,
                // that registers the waker, with no system call.
                let again = full || stream.poll_read_ready(&mut cx).is_ready();
                self.active(id);
                self.events.push(HostEvent::Data { socket: id, data });
                if again {
                    // It had its share: the others that are ready go first next turn.
                    self.queue_read(id, full);
                }
            }
        }
    }

    pub(super) fn on_eof(&mut self, id: u32) {
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        conn.read_eof = true;
        let ended = conn.shutdown == Shutdown::Done;
        let auto_end = !conn.allow_half_open;
        let piped_end = conn.pipe.filter(|p| p.end).map(|p| p.dest);
        self.events.push(HostEvent::End(id));
        if let Some(dest) = piped_end
            && dest != id
        {
            self.end_after_call(dest);
        }
        if ended {
            self.close(id, None);
        } else if auto_end || piped_end == Some(id) {
            self.end_after_call(id);
        }
    }

    /// Sends as much of the write queue as the transport takes. When it empties: `drain`
    /// if owed, then our end of stream if `end` was called, then `close` if the peer had
    /// ended too.
    pub fn flush(&mut self, id: u32) {
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if conn.connecting {
            return;
        }
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(&conn.write_waker);
        let mut wrote = false;
        // Spliced bytes first: they were moved here before anything queued now.
        if let Some(kernel) = conn.spliced.as_mut() {
            while !kernel.is_empty() {
                match stream.poll_splice_out(&mut cx, kernel) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(0)) => {
                        let e = io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the socket accepted no bytes",
                        );
                        self.fail(id, &e, "write");
                        return;
                    }
                    Poll::Ready(Ok(_)) => wrote = true,
                    Poll::Ready(Err(e)) => {
                        self.fail(id, &e, "write");
                        return;
                    }
                }
            }
            if kernel.is_empty()
                && let Some(kernel) = conn.spliced.take()
                && self.tcp.spare_pipes.len() < SPARE_PIPES
            {
                self.tcp.spare_pipes.push(kernel);
            }
        }
        while conn.spliced.is_none() && !conn.out.is_empty() {
            let polled = conn
                .out
                .send(|slices| stream.poll_write_vectored(&mut cx, slices));
            match polled {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => {
                    let e =
                        io::Error::new(io::ErrorKind::WriteZero, "the socket accepted no bytes");
                    self.fail(id, &e, "write");
                    return;
                }
                Poll::Ready(Ok(n)) => {
                    wrote = true;
                    conn.out.consume(n);
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.fail(id, &e, "write");
                    return;
                }
            }
        }
        let queued = !conn.out.is_empty() || conn.spliced.is_some();
        // What the transport itself holds goes out too (nothing, for plain TCP).
        let held = if queued {
            false
        } else {
            match stream.poll_flush(&mut cx) {
                Poll::Pending => true,
                Poll::Ready(Ok(())) => false,
                Poll::Ready(Err(e)) => {
                    self.fail(id, &e, "write");
                    return;
                }
            }
        };
        if wrote {
            self.active(id);
            self.release_feeders(id);
        }
        if queued || held {
            return;
        }
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if conn.need_drain {
            conn.need_drain = false;
            self.events.push(HostEvent::Drain(id));
        }
        self.finish_end(id);
    }

    /// Once everything written is out: ends our direction if `end` was called (the
    /// transport may take more than one turn: a TLS layer sends `close_notify` first).
    fn finish_end(&mut self, id: u32) {
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if !conn.end_called || conn.shutdown == Shutdown::Done {
            return;
        }
        conn.shutdown = Shutdown::Ending;
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(&conn.write_waker);
        match stream.poll_shutdown(&mut cx) {
            // The write waker brings the connection back to `flush`.
            Poll::Pending => {}
            Poll::Ready(Err(e)) => self.fail(id, &e, "shutdown"),
            Poll::Ready(Ok(())) => {
                conn.shutdown = Shutdown::Done;
                if conn.read_eof {
                    self.close(id, None);
                }
            }
        }
    }

    /// The after-call pass over the connections the guest touched: host-side `end` for
    /// sockets that are not half-open, then a flush.
    pub fn after_call(&mut self, took: std::time::Duration) {
        self.adapt_read_sizes(took);
        let mut touched = std::mem::take(&mut self.tcp.touched);
        for &id in &touched {
            let Some(conn) = self.tcp.conns.get_mut(&id) else {
                continue;
            };
            conn.touched = false;
            if conn.auto_end {
                conn.auto_end = false;
                conn.end_called = true;
            }
            self.flush(id);
        }
        touched.clear();
        // Keep the capacity; anything touched during this pass was already queued anew.
        if self.tcp.touched.is_empty() {
            self.tcp.touched = touched;
        }
    }

    /// Shrinks or grows the read size of the sockets whose full reads the call that
    /// took `took` carried (see [`READ_SLICE`]).
    fn adapt_read_sizes(&mut self, took: std::time::Duration) {
        for id in self.tcp.full_reads.drain(..) {
            if let Some(conn) = self.tcp.conns.get_mut(&id) {
                conn.read_size = next_read_size(conn.read_size, took);
            }
        }
    }

    /// A deadline of one of the instance's sockets came up.
    pub fn on_deadline(&mut self, what: Deadline, now: Instant) {
        match what {
            Deadline::SocketIdle(id) => self.idle_check(id, now),
            Deadline::HostIdle(id) => self.host_idle_check(id, now),
            Deadline::Guest(_) => {}
        }
    }

    /// The host's `--idle-timeout` came up for a connection: destroy it if it really was
    /// idle that long (the guest gets `error` then `close`).
    fn host_idle_check(&mut self, id: u32, now: Instant) {
        let Some(idle) = self.cx.config().idle_timeout else {
            return;
        };
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        conn.host_idle_slot = None;
        let due = conn.last_active + idle;
        if due <= now {
            let info = host_error(
                ErrorCode::TimedOut,
                format!("idle for {idle:?}: destroyed (--idle-timeout)"),
            );
            self.close(id, Some(info));
        } else {
            conn.host_idle_slot = Some(self.timers.schedule(due, Deadline::HostIdle(id)));
        }
    }

    /// A socket's idle deadline came up: `timeout` if it really was idle that long,
    /// otherwise the deadline moves to where the last activity puts it.
    fn idle_check(&mut self, id: u32, now: Instant) {
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        conn.idle_slot = None;
        let Some(idle) = conn.idle else {
            return;
        };
        let due = conn.last_active + idle;
        if due <= now {
            self.events.push(HostEvent::Timeout(id));
        } else {
            conn.idle_slot = Some(self.timers.schedule(due, Deadline::SocketIdle(id)));
        }
    }

    /// The guest's `set-timeout`.
    pub fn set_timeout(&mut self, id: u32, idle: Option<std::time::Duration>) {
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        conn.idle = idle;
        // As Node's `setTimeout`: the period starts again from now.
        if let Some(slot) = conn.idle_slot.take() {
            self.timers.cancel(slot);
        }
        self.active(id);
    }
}
