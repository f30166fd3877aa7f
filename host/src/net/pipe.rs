//! `socket.pipe(dest)` done by the host: Node's `readable.pipe(destination, { end })`
//! between two sockets of one instance, with no guest call per chunk.
//!
//! While a socket is piped, what the host reads from it goes to its destination instead
//! of into a `data` event: one read (at most 64 KiB) per socket per loop turn, as for
//! `data`, and only while the destination holds less than the high-water mark. That is
//! Node's backpressure: the source waits unread (the kernel slows its peer) until the
//! destination's flush brings its queue back under the mark and wakes it. A source that
//! moved a full read goes behind the sockets that waited, and an instance's pipes move
//! at most [`MAX_PIPED_PER_TURN`] bytes per turn, so bulk traffic through pipes is
//! served round-robin with everything else.
//!
//! When both ends are plain kernel TCP sockets ([`Stream::can_splice`]) the bytes never
//! enter the host's memory: `splice(2)` moves them into a kernel pipe and from there to
//! the destination ([`crate::transport::splice`]). Otherwise (TLS on either side, the
//! testing harness's sockets in memory) the source is read straight into the
//! destination's write queue, one copy, and flushed with it. Spliced bytes go out ahead
//! of what is queued after them, so guest writes and moved bytes keep their order.
//!
//! What the guest sees: no `data` for a piped source, and its `end`, `error` and
//! `close` as always. With `end`, the destination is ended once the guest has handled
//! the source's `end` (after every byte moved). A source's error leaves the destination
//! alone (the guest decides, as with Node's `pipe`); a destination that closes (error,
//! destroy, reset) unpipes its sources, which are then paused, as Node's `unpipe`
//! pauses a source with no destination left. `data` events queued before `pipe` was
//! called are still delivered (an SDK writes them to the destination); the host moves
//! nothing from the source until they have been, so bytes keep their order.

use std::io;
use std::task::{Context, Poll, Waker};

use super::conn::READ_SIZE;
use super::{NetView, TcpConn, WriteQueue};
use crate::bindings::ErrorCode;
use crate::error::host_error;
use crate::events::HostEvent;
use crate::stats::HandlerStats;
use crate::transport::Stream;
use crate::transport::splice::KernelPipe;

/// Bytes one instance's pipes move in one loop turn; past it, piped sockets wait for the
/// next turn, behind the others.
pub const MAX_PIPED_PER_TURN: usize = 1 << 20;

/// Empty kernel pipes an instance keeps for its next splices (each is two descriptors).
pub(super) const SPARE_PIPES: usize = 4;

/// Where a piped socket's bytes go.
#[derive(Clone, Copy, Debug)]
pub struct PipeTo {
    pub dest: u32,
    /// End `dest` when this socket's peer ends (Node's `{ end }`).
    pub end: bool,
    /// Waiting for `dest`'s queue to fall below the high-water mark.
    held: bool,
}

/// Reads at most `max` bytes from `src` into `kernel` (a splice) or, without one, into
/// `out`.
fn pull(
    src: &mut dyn Stream,
    waker: &Waker,
    out: &mut WriteQueue,
    kernel: Option<&mut KernelPipe>,
    max: usize,
) -> Poll<io::Result<usize>> {
    let mut cx = Context::from_waker(waker);
    match kernel {
        Some(pipe) => src.poll_splice_in(&mut cx, pipe, max),
        None => out.read_from(max, |rb| src.poll_read(&mut cx, rb)),
    }
}

impl NetView<'_> {
    /// The guest's `pipe`: from now on the host moves what `id` reads to `dest`.
    pub fn pipe(&mut self, id: u32, dest: u32, end: bool) -> Result<(), ErrorCode> {
        if self.tcp.conns.get(&dest).is_none_or(|d| d.end_called) {
            return Err(ErrorCode::InvalidState);
        }
        let conn = self.tcp.conns.get_mut(&id).ok_or(ErrorCode::InvalidState)?;
        match &mut conn.pipe {
            Some(pipe) if pipe.dest == dest => {
                pipe.end = end;
                return Ok(());
            }
            // One destination at a time: `unpipe` first.
            Some(_) => return Err(ErrorCode::InvalidState),
            None => {}
        }
        conn.pipe = Some(PipeTo {
            dest,
            end,
            held: false,
        });
        // Node's `pipe` resumes a paused source.
        conn.paused = false;
        let ended = conn.read_eof;
        if let Some(d) = self.tcp.conns.get_mut(&dest) {
            d.feeders.push(id);
        }
        if ended && end {
            // Its end came already: the destination ends as it would have then.
            self.end_after_call(dest);
        }
        // Bytes may be waiting already, with no readiness edge to tell.
        self.queue_read(id, false);
        Ok(())
    }

    /// The guest's `unpipe`: nothing more moves; the source is paused (Node's `unpipe`),
    /// and `resume` brings its `data` events back. Bytes already moved still go out.
    pub fn unpipe(&mut self, id: u32) {
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let Some(pipe) = conn.pipe.take() else {
            return;
        };
        conn.paused = true;
        if let Some(dest) = self.tcp.conns.get_mut(&pipe.dest) {
            dest.feeders.retain(|&f| f != id);
        }
    }

    /// A closing socket leaves its pipes: it stops feeding its destination, and the
    /// sockets piped into it are unpiped and paused.
    pub(super) fn unlink_pipes(&mut self, conn: &mut TcpConn, id: u32) {
        if let Some(pipe) = conn.pipe.take()
            && let Some(dest) = self.tcp.conns.get_mut(&pipe.dest)
        {
            dest.feeders.retain(|&f| f != id);
        }
        for source in std::mem::take(&mut conn.feeders) {
            if let Some(source) = self.tcp.conns.get_mut(&source)
                && source.pipe.take().is_some()
            {
                source.paused = true;
            }
        }
    }

    /// The destination of a piped source ends once the guest has handled the source's
    /// `end`, as `allowHalfOpen: false` ends a socket's own side.
    pub(super) fn end_after_call(&mut self, dest: u32) {
        if let Some(conn) = self.tcp.conns.get_mut(&dest) {
            conn.auto_end = true;
            self.touch(dest);
        }
    }

    /// After a flush: sources held back by this socket's queue go on once it is below
    /// the high-water mark.
    pub(super) fn release_feeders(&mut self, id: u32) {
        let hwm = self.cx.config().high_water_mark;
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if !conn.holding || conn.queued() >= hwm {
            return;
        }
        conn.holding = false;
        let feeders = std::mem::take(&mut conn.feeders);
        for &source in &feeders {
            if let Some(pipe) = self
                .tcp
                .conns
                .get_mut(&source)
                .and_then(|c| c.pipe.as_mut())
                && pipe.held
            {
                pipe.held = false;
                // It waited: it keeps its place.
                self.queue_read(source, false);
            }
        }
        if let Some(conn) = self.tcp.conns.get_mut(&id) {
            conn.feeders = feeders;
        }
    }

    /// Gives back a kernel pipe that emptied.
    pub(super) fn spare_pipe(&mut self, pipe: KernelPipe) {
        if pipe.is_empty() && self.tcp.spare_pipes.len() < SPARE_PIPES {
            self.tcp.spare_pipes.push(pipe);
        }
    }

    /// A piped source is readable: moves one read's worth to its destination and
    /// flushes the destination (see the module doc).
    pub(super) fn move_piped(&mut self, id: u32, pipe: PipeTo) {
        let turn = self.cx.turn;
        let hwm = self.cx.config().high_water_mark;
        let dest_id = pipe.dest;
        let Some(dest) = self.tcp.conns.get_mut(&dest_id) else {
            self.unpipe(id);
            return;
        };
        if dest.end_called {
            // It takes no more bytes (the guest ended it): as if it had closed.
            self.unpipe(id);
            return;
        }
        if dest.queued() >= hwm {
            // Backpressure: the destination's flush wakes the source.
            dest.holding = true;
            if let Some(pipe) = self.tcp.conns.get_mut(&id).and_then(|c| c.pipe.as_mut()) {
                pipe.held = true;
            }
            return;
        }
        let dest_splices = dest.sends_now()
            && dest.out.is_empty()
            && dest.stream.as_ref().is_some_and(|s| s.can_splice());
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if conn.read_turn == turn {
            // One read per socket per turn, piped or not.
            self.queue_read(id, false);
            return;
        }
        if self.tcp.moved.0 == turn && self.tcp.moved.1 >= MAX_PIPED_PER_TURN {
            self.queue_read(id, true);
            return;
        }
        if self
            .events
            .queue
            .iter()
            .any(|e| matches!(e, HostEvent::Data { socket, .. } if *socket == id))
        {
            // Its `data` from before the pipe go first (the guest passes them on).
            self.queue_read(id, true);
            return;
        }
        conn.read_turn = turn;
        let splice = dest_splices && conn.stream.as_ref().is_some_and(|s| s.can_splice());
        let mut kernel = None;
        if splice {
            kernel = match self
                .tcp
                .conns
                .get_mut(&dest_id)
                .and_then(|d| d.spliced.take())
            {
                Some(pipe) => Some(pipe),
                // Without a pipe (no descriptors left), the bytes are copied instead.
                None => self
                    .tcp
                    .spare_pipes
                    .pop()
                    .or_else(|| KernelPipe::new().ok()),
            };
        }
        let max = READ_SIZE;
        let polled = if id == dest_id {
            let Some(conn) = self.tcp.conns.get_mut(&id) else {
                return;
            };
            let TcpConn {
                stream,
                read_waker,
                out,
                ..
            } = conn;
            let Some(stream) = stream.as_mut() else {
                return;
            };
            pull(stream.as_mut(), read_waker, out, kernel.as_mut(), max)
        } else {
            let [Some(conn), Some(dest)] = self.tcp.conns.get_disjoint_mut([&id, &dest_id]) else {
                return;
            };
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            pull(
                stream.as_mut(),
                &conn.read_waker,
                &mut dest.out,
                kernel.as_mut(),
                max,
            )
        };
        if let Some(kernel) = kernel {
            if kernel.is_empty() {
                self.spare_pipe(kernel);
            } else if let Some(dest) = self.tcp.conns.get_mut(&dest_id) {
                dest.spliced = Some(kernel);
            }
        }
        match polled {
            Poll::Pending => {}
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                self.queue_read(id, false)
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::OutOfMemory => {
                // The instance's host memory is used up (`--max-host-memory`): as a
                // `write` it refused, the destination goes.
                let info = host_error(ErrorCode::WouldExceedLimit, format!("pipe refused: {e}"));
                self.cx
                    .log(format_args!("socket {dest_id}: {}", info.message));
                self.close(dest_id, Some(info));
            }
            Poll::Ready(Err(e)) => self.fail(id, &e, "read"),
            Poll::Ready(Ok(0)) => self.on_eof(id),
            Poll::Ready(Ok(n)) => {
                self.moved(id, dest_id, n, turn);
                self.flush(dest_id);
                if n == max {
                    // It had its share: the others that are ready go first next turn.
                    self.queue_read(id, true);
                } else if let Some(conn) = self.tcp.conns.get_mut(&id)
                    && let Some(stream) = conn.stream.as_mut()
                    && stream
                        .poll_read_ready(&mut Context::from_waker(&conn.read_waker))
                        .is_ready()
                {
                    self.queue_read(id, false);
                }
            }
        }
    }

    /// Counts `n` bytes moved from `id` to `dest`: read by one, written by the other.
    fn moved(&mut self, id: u32, dest: u32, n: usize, turn: u64) {
        let moved = &mut self.tcp.moved;
        if moved.0 != turn {
            *moved = (turn, 0);
        }
        moved.1 += n;
        if let Some(conn) = self.tcp.conns.get_mut(&id) {
            conn.bytes_read += n as u64;
            HandlerStats::add(&conn.stats.tcp_port(conn.server).bytes_in, n as u64);
        }
        if let Some(conn) = self.tcp.conns.get_mut(&dest) {
            conn.bytes_written += n as u64;
            HandlerStats::add(&conn.stats.tcp_port(conn.server).bytes_out, n as u64);
        }
        self.active(id);
    }
}
