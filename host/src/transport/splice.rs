//! Moving bytes between two kernel sockets without copying them through the host:
//! `splice(2)` from one socket into a kernel pipe, and from the pipe into the other
//! socket. What `socket.pipe(dest)` uses when both ends are plain TCP sockets
//! ([`Stream::can_splice`](super::Stream::can_splice)); a TLS layer or a socket in memory
//! moves its bytes through the [`Stream`](super::Stream) methods instead.
//!
//! A [`KernelPipe`] holds the bytes on their way to one destination: they were read from
//! the source (the kernel moved page references, no copy) and are written out as the
//! destination's socket takes them. Bytes go in only while the pipe is empty, so a
//! `splice` that would block always means the socket had nothing to read, never that
//! the pipe was full (which would leave the socket readable with its readiness cleared).
//!
//! Each pipe is two descriptors; they hold a share of the process's socket budget
//! ([`crate::budget`]), as the sockets a guest opens do.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::budget::Permit;

/// The size asked of each pipe: room for more than one read (64 KiB) even when the
/// kernel hands over small pieces (a pipe holds a number of pieces, not of bytes). A
/// request the kernel refuses (an unprivileged user over `pipe-user-pages-soft`) leaves
/// the default.
const PIPE_SIZE: libc::c_int = 256 * 1024;

/// A kernel pipe and the bytes it holds.
#[derive(Debug)]
pub struct KernelPipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe, not yet written to the destination.
    held: usize,
    _permit: Permit,
}

impl KernelPipe {
    /// A new empty pipe, if the process's socket budget has room for two descriptors
    /// and the kernel gives them.
    pub fn new() -> io::Result<KernelPipe> {
        let mut permit = Permit::default();
        if !permit.resize(2) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ on a pipe we own; failure leaves the pipe as it was.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        Ok(KernelPipe {
            read,
            write,
            held: 0,
            _permit: permit,
        })
    }

    /// Bytes in the pipe.
    pub fn held(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Moves at most `max` bytes from the socket `from` into the pipe, which must be
    /// empty; returns how many (0: the peer's end of stream). `WouldBlock`: the socket
    /// has nothing to read.
    pub fn fill_from(&mut self, from: RawFd, max: usize) -> io::Result<usize> {
        debug_assert!(self.held == 0, "bytes go into an empty pipe only");
        let n = splice(from, self.write.as_raw_fd(), max)?;
        self.held += n;
        Ok(n)
    }

    /// Moves what the pipe holds into the socket `to`, as much as it takes; returns how
    /// many bytes went. `WouldBlock`: the socket's buffer is full.
    pub fn drain_to(&mut self, to: RawFd) -> io::Result<usize> {
        let n = splice(self.read.as_raw_fd(), to, self.held)?;
        self.held -= n.min(self.held);
        Ok(n)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are open for the duration of the call (the caller
        // holds them); no offsets are passed.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn bytes_move_from_one_socket_to_another_through_the_pipe() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        let listener2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener2.local_addr().unwrap()).unwrap();
        let (mut d, _) = listener2.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        c.set_nonblocking(true).unwrap();
        let mut pipe = KernelPipe::new().unwrap();
        // Nothing to read yet.
        let e = pipe.fill_from(b.as_raw_fd(), 65536).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        a.write_all(b"through the kernel").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(pipe.fill_from(b.as_raw_fd(), 65536).unwrap(), 18);
        assert_eq!(pipe.held(), 18);
        assert_eq!(pipe.drain_to(c.as_raw_fd()).unwrap(), 18);
        assert!(pipe.is_empty());
        let mut got = [0; 18];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"through the kernel");
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            pipe.fill_from(b.as_raw_fd(), 65536).unwrap(),
            0,
            "end of stream"
        );
    }
}
