//! What guests may make the host hold: sockets (a process-wide budget of descriptors)
//! and host memory in their queues (per instance, and for the process).
//!
//! # Sockets
//!
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

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
    /// `config::MAX_SOCKETS_PER_EVENT` opened in one guest call.
    PerEvent,
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
            Refusal::PerEvent => write!(
                f,
                "{} sockets opened in one event",
                crate::config::MAX_SOCKETS_PER_EVENT
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

/// Host memory the guests' queues hold (TCP write queues, UDP send queues), all
/// instances together.
static HOST_BYTES: AtomicUsize = AtomicUsize::new(0);
static HOST_LIMIT: OnceLock<usize> = OnceLock::new();

/// How much host memory all guests' queues may hold together: half of the machine's
/// memory, so that guests together can never take the host down, whatever each
/// instance's own limit allows.
pub fn host_memory_limit() -> usize {
    *HOST_LIMIT.get_or_init(|| (physical_memory() / 2).max(64 << 20))
}

/// The machine's memory, or 4 GiB where it cannot be read.
fn physical_memory() -> usize {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || size <= 0 {
        return 4 << 30;
    }
    (pages as usize).saturating_mul(size as usize)
}

/// Which limit refused host memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryRefusal {
    /// The instance's own limit (`--max-host-memory`).
    Instance(usize),
    /// All guests together ([`host_memory_limit`]).
    Process,
}

impl std::fmt::Display for MemoryRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryRefusal::Instance(limit) => write!(
                f,
                "the instance's queues would hold more than {} KiB of host memory (--max-host-memory)",
                limit >> 10
            ),
            MemoryRefusal::Process => write!(
                f,
                "all guests' queues together would hold more than {} MiB of host memory (half the machine's)",
                host_memory_limit() >> 20
            ),
        }
    }
}

/// One instance's host memory: what its queues hold, and its limit.
#[derive(Debug)]
pub struct MemoryAccount {
    held: AtomicUsize,
    limit: usize,
}

impl MemoryAccount {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryAccount {
            held: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// Host memory one queue holds, charged to its instance and to the process; given back
/// when it shrinks or is dropped.
#[derive(Debug)]
pub struct Charge {
    account: Arc<MemoryAccount>,
    bytes: usize,
}

impl Charge {
    pub fn new(account: Arc<MemoryAccount>) -> Self {
        Charge { account, bytes: 0 }
    }

    /// Holds `n` more bytes, if both the instance's limit and the process's allow it.
    pub fn grow(&mut self, n: usize) -> Result<(), MemoryRefusal> {
        let account = &self.account;
        if account
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + n <= account.limit).then_some(held + n)
            })
            .is_err()
        {
            return Err(MemoryRefusal::Instance(account.limit));
        }
        let limit = host_memory_limit();
        if HOST_BYTES
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + n <= limit).then_some(held + n)
            })
            .is_err()
        {
            account.held.fetch_sub(n, Ordering::Relaxed);
            return Err(MemoryRefusal::Process);
        }
        self.bytes += n;
        Ok(())
    }

    /// Gives `n` bytes back.
    pub fn shrink(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.bytes -= n;
        self.account.held.fetch_sub(n, Ordering::Relaxed);
        HOST_BYTES.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.shrink(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_stays_within_its_instance_and_gives_everything_back() {
        let account = MemoryAccount::new(1000);
        let mut a = Charge::new(account.clone());
        let mut b = Charge::new(account.clone());
        a.grow(600).unwrap();
        assert_eq!(b.grow(500), Err(MemoryRefusal::Instance(1000)));
        b.grow(400).unwrap();
        assert_eq!(account.held(), 1000);
        a.shrink(100);
        b.grow(100).unwrap();
        drop(a);
        drop(b);
        assert_eq!(account.held(), 0);
    }
}
