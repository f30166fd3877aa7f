//! A TLS session over another [`Stream`]: rustls's sans-I/O connection, driven from the
//! `poll_*` methods on the shard's thread (no task per connection).
//!
//! Reads take one socket read into a per-thread buffer (up to 64 KiB of records in one
//! system call, where rustls alone reads 4 KiB at a time), hand it to rustls and copy
//! out what decrypts. Ciphertext rustls cannot take yet (its plaintext buffer is full
//! because the caller's buffer was) waits in [`TlsStream`]'s backlog, and
//! [`Stream::poll_read_ready`] is `Ready` while it or decrypted bytes wait. Writes
//! encrypt into rustls's buffer (64 KiB) and push the records out with one vectored
//! write; records left over go out in [`Stream::poll_flush`]. `poll_shutdown` sends
//! `close_notify`, then ends the socket's direction.
//!
//! Records rustls must send while reading (an alert, a key update's answer) go out
//! under the waker of the last write, so a full socket wakes whoever writes.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};

use tokio::io::ReadBuf;

use super::HandshakeError;
use super::info::TlsInfo;
use crate::transport::Stream;

/// Bytes one socket read may bring (a shard reads 64 KiB at a time too).
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// Where ciphertext lands before rustls takes it: one per thread, not per connection.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// A TLS session (client or server) over `io`.
pub struct TlsStream {
    io: Box<dyn Stream>,
    conn: rustls::Connection,
    /// Ciphertext read from the socket that rustls could not take yet.
    backlog: Vec<u8>,
    /// The socket's end of stream was read.
    io_eof: bool,
    /// The plaintext's end was reached (the peer's `close_notify`, or the socket's end).
    eof: bool,
    /// The session failed: every later read says so.
    failed: Option<rustls::Error>,
    close_notify_sent: bool,
    /// The waker of the last write, for records a read must send.
    write_waker: Option<Waker>,
    /// The name a client sent as SNI.
    client_servername: Option<String>,
    /// What the guest is told, once the handshake is done.
    info: Option<TlsInfo>,
}

/// The socket as rustls's `write_tls` sees it: `Pending` is `WouldBlock`.
struct Writer<'a, 'b> {
    io: &'a mut dyn Stream,
    cx: &'a mut Context<'b>,
}

impl io::Write for Writer<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.io.poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self.io.poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsStream {
    /// A session over `io`, its handshake not yet run.
    pub fn new(io: Box<dyn Stream>, conn: rustls::Connection) -> Self {
        TlsStream {
            io,
            conn,
            backlog: Vec::new(),
            io_eof: false,
            eof: false,
            failed: None,
            close_notify_sent: false,
            write_waker: None,
            client_servername: None,
            info: None,
        }
    }

    /// A client session: `servername` is what it sent as SNI (for the guest).
    pub fn client(
        io: Box<dyn Stream>,
        conn: rustls::ClientConnection,
        servername: Option<String>,
    ) -> Self {
        let mut s = Self::new(io, conn.into());
        s.client_servername = servername;
        s
    }

    /// The session's failure, as an I/O error.
    fn failure(&self) -> Option<io::Error> {
        self.failed
            .as_ref()
            .map(|e| io::Error::new(io::ErrorKind::InvalidData, super::info::describe(e)))
    }

    fn fail(&mut self, e: rustls::Error) -> io::Error {
        let error = io::Error::new(io::ErrorKind::InvalidData, super::info::describe(&e));
        self.failed = Some(e);
        error
    }

    /// Sends the records rustls holds. `Ready(Ok)` once none is left.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut writer = Writer {
                io: &mut *self.io,
                cx,
            };
            match self.conn.write_tls(&mut writer) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what a read made rustls want to send (an alert, a key update), under the
    /// last writer's waker.
    fn push_after_read(&mut self, cx: &mut Context<'_>) {
        if self.conn.wants_write() {
            let waker = self
                .write_waker
                .clone()
                .unwrap_or_else(|| cx.waker().clone());
            let _ = self.poll_push(&mut Context::from_waker(&waker));
        }
    }

    /// Copies out decrypted bytes into `buf`; notes the plaintext's end.
    fn drain(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<()> {
        if buf.remaining() == 0 || self.eof {
            return Ok(());
        }
        use io::Read;
        match self.conn.reader().read(buf.initialize_unfilled()) {
            Ok(0) => self.eof = true,
            Ok(n) => buf.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The socket ended without `close_notify`: an end all the same (as Node and
            // most servers take it).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.eof = true,
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Hands `data` (ciphertext) to rustls, copying out what decrypts into `buf` when
    /// given; returns how much of `data` rustls took (the rest waits in the backlog).
    fn feed(&mut self, data: &[u8], mut buf: Option<&mut ReadBuf<'_>>) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            match self.conn.read_tls(&mut rest) {
                // After `close_notify` nothing more is read.
                Ok(0) => return Ok(data.len()),
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        // Tell the peer why (the alert rustls queued), if the socket takes it.
                        let waker = self.write_waker.clone().unwrap_or(Waker::noop().clone());
                        let _ = self.poll_push(&mut Context::from_waker(&waker));
                        return Err(self.fail(e));
                    }
                }
                Err(_) => {
                    // Its plaintext buffer is full: make room, or keep the rest for later.
                    let Some(buf) = buf.as_deref_mut() else { break };
                    let before = buf.filled().len();
                    self.drain(buf)?;
                    if buf.filled().len() == before {
                        break;
                    }
                }
            }
        }
        Ok(data.len() - rest.len())
    }

    /// One socket read, handed to rustls. `Ready(Ok(0))`: the socket's end.
    fn read_socket(
        &mut self,
        cx: &mut Context<'_>,
        buf: Option<&mut ReadBuf<'_>>,
    ) -> Poll<io::Result<usize>> {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut rb = ReadBuf::new(&mut scratch[..]);
            match self.io.poll_read(cx, &mut rb) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let data = rb.filled();
                    if data.is_empty() {
                        self.io_eof = true;
                        // Tells rustls the transport ended (an empty read).
                        let _ = self.conn.read_tls(&mut &b""[..]);
                        if let Err(e) = self.conn.process_new_packets() {
                            return Poll::Ready(Err(self.fail(e)));
                        }
                        return Poll::Ready(Ok(0));
                    }
                    let taken = self.feed(data, buf)?;
                    if taken < data.len() {
                        self.backlog.extend_from_slice(&data[taken..]);
                    }
                    Poll::Ready(Ok(data.len()))
                }
            }
        })
    }

    /// Runs the handshake as far as the socket allows. `Ready(Ok)` once it is done and
    /// our last flight is sent.
    pub fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), HandshakeError>> {
        loop {
            match self.poll_push(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(HandshakeError::Io(e))),
                Poll::Pending => return Poll::Pending,
            }
            if !self.conn.is_handshaking() {
                self.info = Some(self.describe());
                return Poll::Ready(Ok(()));
            }
            match self.read_socket(cx, None) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(HandshakeError::Io(
                        io::ErrorKind::UnexpectedEof.into(),
                    )));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(match self.failed.clone() {
                        Some(tls) => HandshakeError::Tls(tls),
                        None => HandshakeError::Io(e),
                    }));
                }
            }
        }
    }

    fn describe(&self) -> TlsInfo {
        let servername = match &self.conn {
            rustls::Connection::Server(s) => s.server_name().map(str::to_string),
            rustls::Connection::Client(_) => self.client_servername.clone(),
        };
        TlsInfo::of(&self.conn, servername)
    }

    fn note_writer(&mut self, cx: &Context<'_>) {
        if !self
            .write_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.write_waker = Some(cx.waker().clone());
        }
    }
}

impl Stream for TlsStream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.failure() {
            return Poll::Ready(Err(e));
        }
        let start = buf.filled().len();
        loop {
            self.drain(buf)?;
            if !self.backlog.is_empty() && buf.remaining() > 0 {
                let backlog = std::mem::take(&mut self.backlog);
                let taken = self.feed(&backlog, Some(buf));
                let mut backlog = backlog;
                match taken {
                    Ok(n) => {
                        backlog.drain(..n);
                        self.backlog = backlog;
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
                self.push_after_read(cx);
                if buf.filled().len() > start || !self.backlog.is_empty() {
                    self.drain(buf)?;
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if buf.filled().len() > start || self.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if self.io_eof {
                // The socket ended and nothing more decrypts: the end.
                self.eof = true;
                return Poll::Ready(Ok(()));
            }
            match self.read_socket(cx, Some(buf)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(_)) => self.push_after_read(cx),
            }
        }
    }

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.failed.is_some() || self.eof || self.io_eof || !self.backlog.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match self.conn.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() => {
                Poll::Ready(Ok(()))
            }
            Ok(_) => self.io.poll_read_ready(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.note_writer(cx);
        if let Some(e) = self.failure() {
            return Poll::Ready(Err(e));
        }
        loop {
            use io::Write;
            let n = self.conn.writer().write(data)?;
            if n > 0 || data.is_empty() {
                // Records that do not fit in the socket now go out in `poll_flush`.
                if let Poll::Ready(Err(e)) = self.poll_push(cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(n));
            }
            // rustls's buffer is full: send some of it first.
            match self.poll_push(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.note_writer(cx);
        self.poll_push(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.note_writer(cx);
        if !self.close_notify_sent {
            self.close_notify_sent = true;
            self.conn.send_close_notify();
        }
        match self.poll_push(cx) {
            Poll::Ready(Ok(())) => self.io.poll_shutdown(cx),
            other => other,
        }
    }

    fn reset_on_close(&mut self) -> io::Result<()> {
        self.io.reset_on_close()
    }

    fn set_nodelay(&mut self, on: bool) -> io::Result<()> {
        self.io.set_nodelay(on)
    }

    fn set_keepalive(&mut self, enable: bool, initial_delay_ms: u32) -> io::Result<()> {
        self.io.set_keepalive(enable, initial_delay_ms)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    fn tls(&self) -> Option<&TlsInfo> {
        self.info.as_ref()
    }
}
