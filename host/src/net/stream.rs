//! A TCP connection's transport: a real socket, or the in-memory pipe of the testing
//! harness ([`crate::testing`]). Everything above it (reads, flushes, half-close, events)
//! is the same code for both, so the harness tests what `netlet run` runs.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::testing::mem::MemStream;

/// A connected byte stream.
pub enum Stream {
    Tcp(tokio::net::TcpStream),
    Mem(MemStream),
}

impl Stream {
    /// Reads into `buf`; `Pending` registers the waker.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Mem(s) => s.poll_read(cx, buf),
        }
    }

    /// Whether a read would make progress; `Pending` registers the waker.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Mem(s) => s.poll_read_ready(cx),
        }
    }

    /// Writes some of `data`; `Pending` registers the waker.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, data),
            Stream::Mem(s) => s.poll_write(cx, data),
        }
    }

    /// Sends our FIN.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write),
            Stream::Mem(s) => {
                s.shutdown_write();
                Ok(())
            }
        }
    }

    /// Makes the coming close a reset (SO_LINGER 0).
    pub fn reset_on_close(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)),
            Stream::Mem(s) => {
                s.reset_on_close();
                Ok(())
            }
        }
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Mem(s) => {
                s.set_nodelay(on);
                Ok(())
            }
        }
    }

    /// SO_KEEPALIVE, with the idle time before the first probe when `initial_delay_ms` > 0.
    pub fn set_keepalive(&self, enable: bool, initial_delay_ms: u32) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                let sock = socket2::SockRef::from(s);
                if !enable {
                    return sock.set_keepalive(false);
                }
                if initial_delay_ms > 0 {
                    let ka = socket2::TcpKeepalive::new()
                        .with_time(Duration::from_millis(u64::from(initial_delay_ms)));
                    sock.set_tcp_keepalive(&ka)
                } else {
                    sock.set_keepalive(true)
                }
            }
            Stream::Mem(s) => {
                s.set_keepalive(enable.then_some(initial_delay_ms));
                Ok(())
            }
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr(),
            Stream::Mem(s) => Ok(s.local_addr()),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr(),
            Stream::Mem(s) => Ok(s.peer_addr()),
        }
    }
}
