//! What a [`Request`](super::Request) and its [`Response`](super::Response) share (an
//! [`Exchange`]), and how they tell the server that a connection can move on: the
//! handles change the exchange's state and [`schedule`] the connection, and the server
//! runs what is scheduled once the handler's callback returns.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::encode::ResState;
use super::parse::Head;
use crate::net::Socket;
use crate::timers::{self, TimerId};

/// A request and its response: what the [`Request`](super::Request) and
/// [`Response`](super::Response) handles share.
pub(crate) struct Exchange {
    pub(crate) id: u64,
    pub(crate) socket: Socket,
    pub(crate) head: Head,
    pub(crate) res: RefCell<ResState>,
    pub(crate) req: RefCell<ReqState>,
}

impl Exchange {
    /// A new exchange for a request's head.
    pub(crate) fn new(id: u64, socket: Socket, head: Head, res: ResState) -> Rc<Self> {
        Rc::new(Exchange {
            id,
            socket,
            head,
            res: RefCell::new(res),
            req: RefCell::new(ReqState::default()),
        })
    }
}

/// The request's side of an exchange, as its handle sets it.
#[derive(Default)]
pub(crate) struct ReqState {
    /// The whole body arrived.
    pub(crate) complete: bool,
    /// The handler paused the body.
    pub(crate) paused: bool,
    /// Collect the body (up to this many bytes) instead of delivering it.
    pub(crate) collect: Option<usize>,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Vec<(String, String)>,
    /// `Expect: 100-continue` was asked.
    pub(crate) expect_continue: bool,
}

thread_local! {
    /// Connections with something new to do (a response ended, a body resumed), run
    /// once the handler's current callback returns.
    static READY: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The server is handling one of its events: what is scheduled meanwhile runs
    /// before it returns.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// A zero timer that wakes the server for what was scheduled outside its events
    /// (in a client's callback or a protocol's timer, which the runtime calls
    /// directly).
    static WAKE: Cell<Option<TimerId>> = const { Cell::new(None) };
}

/// Connection `socket` has something new to do.
pub(crate) fn schedule(socket: u32) {
    READY.with(|r| r.borrow_mut().push(socket));
    if !BUSY.get() && WAKE.get().is_none() {
        WAKE.set(Some(timers::set_timeout(Duration::ZERO)));
    }
}

/// The connections scheduled so far (and none after).
pub(crate) fn take_ready() -> Vec<u32> {
    READY.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// Whether `timer` is the wake-up [`schedule`] set (and it is now spent).
pub(crate) fn is_wake(timer: TimerId) -> bool {
    if WAKE.get() == Some(timer) {
        WAKE.set(None);
        true
    } else {
        false
    }
}

/// Marks the server busy (handling one of its events) for the life of the guard.
pub(crate) struct Busy;

impl Busy {
    pub(crate) fn enter() -> Self {
        BUSY.set(true);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.set(false);
    }
}
