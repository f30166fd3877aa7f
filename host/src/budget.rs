//! The process-wide budget of sockets that guests open themselves.
//!
//! The per-instance cap (`config::MAX_GUEST_SOCKETS`) alone does not protect the host:
//! with `--isolation connection` every connection has its own instance, so enough
//! connections to a guest that opens sockets would use up the process's file
//! descriptors, and then no handler could accept anything. So every socket a guest opens
//! (through netlet's `net`/`dgram` or through `wasi:sockets`) also holds a share of this
//! budget: half of the process's descriptor limit (`RLIMIT_NOFILE`), the other half
//! staying free for listeners, accepted connections and the host's own files. Past it,
//! opening a socket fails in the guest as it would at the per-instance cap.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static HELD: AtomicUsize = AtomicUsize::new(0);
static LIMIT: OnceLock<usize> = OnceLock::new();

/// How many guest-opened sockets the whole process allows.
pub fn limit() -> usize {
    *LIMIT.get_or_init(|| (descriptor_limit() / 2).max(16))
}

/// The soft `RLIMIT_NOFILE`, or a large number where there is none.
fn descriptor_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return 1 << 20;
    }
    usize::try_from(lim.rlim_cur).unwrap_or(1 << 20)
}

/// Which limit refused a guest a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `config::MAX_GUEST_SOCKETS` in one instance.
    Instance,
    /// `config::MAX_IN_FLIGHT` connects and lookups in one instance.
    InFlight,
    /// This process-wide budget.
    Process,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Instance => write!(
                f,
                "{} sockets per instance",
                crate::config::MAX_GUEST_SOCKETS
            ),
            Refusal::InFlight => write!(
                f,
                "{} connects and lookups in flight per instance",
                crate::config::MAX_IN_FLIGHT
            ),
            Refusal::Process => write!(
                f,
                "{} sockets for all guests together (half the process's descriptor limit)",
                limit()
            ),
        }
    }
}

/// A share of the budget: some number of sockets, given back when dropped.
#[derive(Debug, Default)]
pub struct Permit {
    held: usize,
}

impl Permit {
    /// A share for one socket, if the budget has room.
    pub fn one() -> Option<Permit> {
        let mut permit = Permit::default();
        permit.resize(1).then_some(permit)
    }

    /// Grows or shrinks this share to `sockets`. Growing fails (leaving the share as it
    /// was) if the budget has no room.
    pub fn resize(&mut self, sockets: usize) -> bool {
        if sockets <= self.held {
            HELD.fetch_sub(self.held - sockets, Ordering::SeqCst);
            self.held = sockets;
            return true;
        }
        let more = sockets - self.held;
        let limit = limit();
        let grown = HELD
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                (held + more <= limit).then_some(held + more)
            })
            .is_ok();
        if grown {
            self.held = sockets;
        }
        grown
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        HELD.fetch_sub(self.held, Ordering::SeqCst);
    }
}
