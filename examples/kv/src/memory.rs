//! Running out of memory without trapping, where that is possible.
//!
//! The instance's linear memory is capped by the host (`--max-memory`). When the cap is
//! reached, a growth of the heap fails and the allocation returns null; Rust's default
//! answer to that is to abort, which traps the instance and closes every connection. A
//! store that fills up should instead refuse writes with Redis's `-OOM` and keep serving.
//! Two mechanisms make that so:
//!
//! - **Fallible allocations** for what clients add: a value, a key, the table growing, a
//!   connection's unread input ([`fallible`] around `try_reserve`). One that fails becomes
//!   an `-OOM` reply.
//! - **A reserve** for everything else: the host writes each event's bytes into guest
//!   memory, and replies and bookkeeping allocate too, infallibly. The global allocator
//!   ([`WithReserve`]) holds back [`RESERVE`] bytes; when an infallible allocation fails,
//!   it hands the reserve back to the heap and retries, so the instance carries on. From
//!   then on [`under_pressure`] is true and commands that grow the data set (Redis's
//!   `denyoom` ones) get `-OOM` until the reserve can be taken back, that is until keys
//!   were deleted or expired.
//!
//! What cannot be helped: a single event whose data exceeds the reserve and the free
//! memory left (for instance many large pipelined requests arriving in one batch at a
//! full instance) still traps, and the host restarts the instance empty.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering::Relaxed};

/// Bytes held back for the allocations that cannot fail gracefully: about sixteen of the
/// host's 64 KiB reads.
pub const RESERVE: usize = 1 << 20;

const RESERVE_LAYOUT: Layout = match Layout::from_size_align(RESERVE, 16) {
    Ok(layout) => layout,
    Err(_) => panic!("a valid layout"),
};

// The instance is single-threaded; atomics are just cells that a `static` may hold.
static FALLIBLE: AtomicBool = AtomicBool::new(false);
static PRESSURE: AtomicBool = AtomicBool::new(false);
static RESERVE_BLOCK: AtomicPtr<u8> = AtomicPtr::new(null_mut());

/// The system allocator, with the reserve described in the module docs.
pub struct WithReserve;

/// Gives the reserve back to the heap for an allocation that may not fail; whether there
/// was one to give.
fn release_reserve() -> bool {
    if FALLIBLE.load(Relaxed) {
        return false;
    }
    let block = RESERVE_BLOCK.swap(null_mut(), Relaxed);
    if block.is_null() {
        return false;
    }
    PRESSURE.store(true, Relaxed);
    // SAFETY: the block was allocated by `System` with this layout in `take_reserve`,
    // and swapping it out of the static makes this the only release.
    unsafe { System.dealloc(block, RESERVE_LAYOUT) };
    true
}

/// Sets the reserve aside, if the memory is there.
fn take_reserve() -> bool {
    if !RESERVE_BLOCK.load(Relaxed).is_null() {
        return true;
    }
    // SAFETY: RESERVE_LAYOUT has a non-zero size.
    let block = unsafe { System.alloc(RESERVE_LAYOUT) };
    if block.is_null() {
        return false;
    }
    RESERVE_BLOCK.store(block, Relaxed);
    PRESSURE.store(false, Relaxed);
    true
}

// SAFETY: every method forwards to `System` with the caller's arguments; a retry after
// releasing the reserve is the same call again.
unsafe impl GlobalAlloc for WithReserve {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() && release_reserve() {
            // SAFETY: as above.
            return unsafe { System.alloc(layout) };
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() && release_reserve() {
            // SAFETY: as above.
            return unsafe { System.alloc_zeroed(layout) };
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees; a failed realloc leaves `ptr`
        // valid, so the retry may use it.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() && release_reserve() {
            // SAFETY: as above.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        p
    }
}

/// Sets the reserve aside; called once when the instance starts.
pub fn init() -> Result<(), String> {
    if take_reserve() {
        Ok(())
    } else {
        Err(format!(
            "cannot set aside {} KiB of memory: raise --max-memory",
            RESERVE >> 10
        ))
    }
}

/// Runs `f` with allocation failures reported to it (`try_reserve` returning an error)
/// rather than covered by the reserve.
pub fn fallible<T>(f: impl FnOnce() -> T) -> T {
    let outer = FALLIBLE.swap(true, Relaxed);
    let result = f();
    FALLIBLE.store(outer, Relaxed);
    result
}

/// Whether the reserve has been spent and cannot be set aside again: writes that grow
/// the data set must be refused.
pub fn under_pressure() -> bool {
    PRESSURE.load(Relaxed) && !take_reserve()
}
