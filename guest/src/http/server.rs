//! The server: one state machine per connection on the `net` events, answering one
//! request at a time (pipelined requests wait, bounded, in the parser's buffer), with
//! Node's timeouts checked by one interval timer per instance.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use super::parse::{Event, Head, Kind, Limits, Parser, Version};
use super::response::{ResState, Response, error_response};
use super::{Error, HttpHandler, ServerOptions};
use crate::error::Error as NetError;
use crate::handler::NetHandler;
use crate::net::{Server, Socket, SocketEvent};
use crate::timers::{self, TimerId};

/// A request and its response: what the [`Request`] and [`Response`] handles share.
pub(crate) struct Exchange {
    pub(crate) id: u64,
    pub(crate) socket: Socket,
    pub(crate) head: Head,
    pub(crate) res: RefCell<ResState>,
    pub(crate) req: RefCell<ReqState>,
}

#[derive(Default)]
pub(crate) struct ReqState {
    /// The whole body arrived.
    complete: bool,
    /// The handler paused the body.
    paused: bool,
    /// Collect the body (up to this many bytes) instead of delivering it.
    collect: Option<usize>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    /// `Expect: 100-continue` was asked.
    expect_continue: bool,
    /// The response ended first: the rest of the body is read and dropped (Node's
    /// `req._dump()`), so the connection can serve the next request.
    dump: bool,
}

thread_local! {
    /// Connections with something new to do (a response ended, a body resumed), run
    /// once the handler's current callback returns.
    static READY: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The server is handling one of its events: what is scheduled meanwhile runs
    /// before it returns.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// A zero timer that wakes the server for what was scheduled outside its events
    /// (in a client's callback, which the runtime calls directly).
    static WAKE: Cell<Option<TimerId>> = const { Cell::new(None) };
}

pub(crate) fn schedule(socket: u32) {
    READY.with(|r| r.borrow_mut().push(socket));
    if !BUSY.get() && WAKE.get().is_none() {
        WAKE.set(Some(timers::set_timeout(Duration::ZERO)));
    }
}

/// Marks the server busy for the life of the guard.
struct Busy;

impl Busy {
    fn enter() -> Self {
        BUSY.set(true);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.set(false);
    }
}

/// A request: Node's `http.IncomingMessage` on a server. A cheap handle: clone it to
/// keep it. Its body arrives in [`HttpHandler::on_body`] calls, then
/// [`HttpHandler::on_body_end`] (or all at once: [`Request::collect_body`]).
#[derive(Clone)]
pub struct Request(pub(crate) Rc<Exchange>);

impl Request {
    /// A number unique to this request within the instance (its response's
    /// [`Response::id`] too).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Node's `req.method`: `GET`, `POST`, ...
    pub fn method(&self) -> &str {
        self.0.head.method()
    }

    /// Node's `req.url`: the request target as sent (`/path?query`).
    pub fn url(&self) -> &str {
        self.0.head.target()
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.0.head.version()
    }

    /// Node's `req.httpVersion`: `"1.1"` or `"1.0"`.
    pub fn http_version(&self) -> &'static str {
        self.0.head.version().as_str()
    }

    /// Every header field in order with its name's original case: Node's `rawHeaders`,
    /// as pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.head.headers()
    }

    /// The first value of header `name`, any case: Node's `req.headers[name]` (which
    /// joins repeated fields; see [`Request::header_values`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.head.header(name)
    }

    /// Every value of header `name`, any case, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.head.header_values(name)
    }

    /// The parsed head.
    pub fn head(&self) -> &Head {
        &self.0.head
    }

    /// The connection: Node's `req.socket`.
    pub fn socket(&self) -> &Socket {
        &self.0.socket
    }

    /// Node's `req.complete`: the whole body arrived.
    pub fn complete(&self) -> bool {
        self.0.req.borrow().complete
    }

    /// Node's `req.pause()`: no more body until [`Request::resume`]; the socket stops
    /// reading, so the client is slowed by TCP flow control. What `pipe` does when
    /// the destination is full.
    pub fn pause(&self) {
        self.0.req.borrow_mut().paused = true;
        self.0.socket.pause();
    }

    /// Node's `req.resume()`.
    pub fn resume(&self) {
        self.0.req.borrow_mut().paused = false;
        self.0.socket.resume();
        schedule(self.0.socket.id());
    }

    /// Node's `req.isPaused()`.
    pub fn is_paused(&self) -> bool {
        self.0.req.borrow().paused
    }

    /// Collects the body instead of delivering it piece by piece: [`HttpHandler::on_body`]
    /// is not called, and in [`HttpHandler::on_body_end`] [`Request::take_body`] returns
    /// it whole. A body longer than `limit` bytes is answered with `413 Payload Too
    /// Large` and the connection closes (`on_body_end` is not called). Call it in
    /// `on_request`.
    pub fn collect_body(&self, limit: usize) {
        self.0.req.borrow_mut().collect = Some(limit);
    }

    /// The body collected with [`Request::collect_body`] (taken: a second call returns
    /// nothing).
    pub fn take_body(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.req.borrow_mut().body)
    }

    /// Node's `req.trailers`: the trailer fields of a chunked body, once complete.
    pub fn trailers(&self) -> Vec<(String, String)> {
        self.0.req.borrow().trailers.clone()
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id())
            .field("method", &self.method())
            .field("url", &self.url())
            .finish()
    }
}

/// One connection's state.
struct Conn {
    socket: Socket,
    parser: Parser,
    /// The request being answered.
    current: Option<Rc<Exchange>>,
    served: u32,
    /// Handed to the handler by an upgrade: its events are the handler's.
    upgraded: bool,
    /// Answered with an error (or closing): input is dropped.
    dead: Option<u64>,
    peer_ended: bool,
    /// Paused because pipelined input filled the read-ahead.
    paused_for_buffer: bool,
    /// Paused because the responses written are not being read: no new request is
    /// parsed until the socket drains.
    waiting_drain: bool,
    /// Ticks at which the head began, the request began, the connection went idle.
    head_since: Option<u64>,
    request_since: Option<u64>,
    idle_since: Option<u64>,
}

/// An HTTP server on `net`: a [`NetHandler`] that parses each connection's bytes and
/// calls an [`HttpHandler`]. [`export_http!`](crate::export_http) exports one.
pub struct HttpServer<H> {
    handler: H,
    options: ServerOptions,
    conns: HashMap<u32, Conn>,
    next_id: u64,
    /// Timeout checks so far: the clock of every timeout.
    tick: u64,
    sweep: Option<TimerId>,
}

impl<H: HttpHandler> HttpServer<H> {
    /// A server calling `handler`.
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            options: ServerOptions::default(),
            conns: HashMap::new(),
            next_id: 0,
            tick: 0,
            sweep: None,
        }
    }

    /// The handler.
    pub fn handler(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The options in force (the handler's, with the arguments applied).
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    fn limits(&self) -> Limits {
        Limits {
            max_header_size: self.options.max_header_size,
            max_headers: self.options.max_headers_count,
        }
    }

    /// Runs every connection that has something new to do, until none has.
    fn run_ready(&mut self) {
        loop {
            let ready = READY.with(|r| std::mem::take(&mut *r.borrow_mut()));
            if ready.is_empty() {
                return;
            }
            for id in ready {
                self.pump(id);
            }
        }
    }

    /// Moves connection `id` on as far as it can go: retires a finished exchange,
    /// parses and delivers what is buffered.
    fn pump(&mut self, id: u32) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.upgraded || conn.dead.is_some() || conn.waiting_drain || conn.socket.destroyed()
            {
                return;
            }
            if let Some(ex) = conn.current.clone() {
                let (res_done, close_after, backed_up) = {
                    let r = ex.res.borrow();
                    (r.finished, r.close_after, r.backed_up)
                };
                let mut req = ex.req.borrow_mut();
                if res_done && req.complete {
                    // A pause of a request that is over must not stall the next one.
                    let user_paused = std::mem::take(&mut req.paused);
                    drop(req);
                    conn.current = None;
                    conn.served += 1;
                    conn.request_since = None;
                    let closing = close_after || conn.peer_ended;
                    if closing {
                        conn.dead = Some(self.tick);
                        // `end` after the response (a no-op if it ended the socket).
                        conn.socket.end();
                    } else {
                        if conn.parser.buffered() > 0 {
                            conn.head_since = Some(self.tick);
                        } else {
                            conn.idle_since = Some(self.tick);
                        }
                        if backed_up {
                            // A client pipelining requests without reading the answers:
                            // stop reading until it does (Node pauses the same way), so
                            // what the host queues stays near one response.
                            conn.waiting_drain = true;
                            conn.paused_for_buffer = false;
                            conn.socket.pause();
                        } else if conn.paused_for_buffer || user_paused {
                            conn.paused_for_buffer = false;
                            conn.socket.resume();
                        }
                    }
                    self.handler
                        .on_close(&Request(ex.clone()), &Response(ex.clone()));
                    continue;
                }
                if res_done && !req.complete {
                    if close_after || (req.expect_continue && !ex.res.borrow().continue_sent) {
                        // The socket is ending, or the client waits for a `100
                        // Continue` that will not come: its body may never arrive.
                        drop(req);
                        conn.dead = Some(self.tick);
                        conn.socket.end();
                        return;
                    }
                    if !req.dump {
                        req.dump = true;
                        if req.paused {
                            req.paused = false;
                            conn.socket.resume();
                        }
                    }
                }
                if req.complete {
                    // Waiting for the response: read ahead no more than a head's worth.
                    if conn.parser.buffered() >= self.options.max_header_size
                        && !conn.paused_for_buffer
                    {
                        conn.paused_for_buffer = true;
                        conn.socket.pause();
                    }
                    return;
                }
                if req.paused {
                    return;
                }
            }
            let event = conn.parser.next_event();
            match event {
                Ok(None) => return,
                Ok(Some(Event::Head(head))) => {
                    conn.head_since = None;
                    conn.idle_since = None;
                    conn.request_since = Some(self.tick);
                    self.next_id += 1;
                    let max = self.options.max_requests_per_socket;
                    let last = max > 0 && conn.served + 1 >= max;
                    let keep_alive = head.keep_alive() && !conn.peer_ended && !last;
                    let version = head.version();
                    let to_head = head.method() == "HEAD";
                    let upgrade = head.is_upgrade();
                    let expect = head
                        .header("expect")
                        .map(|v| v.trim().eq_ignore_ascii_case("100-continue"));
                    let ex = Rc::new(Exchange {
                        id: self.next_id,
                        socket: conn.socket.clone(),
                        head,
                        res: RefCell::new(ResState::new(
                            version,
                            to_head,
                            keep_alive,
                            self.options.keep_alive_timeout.as_secs(),
                        )),
                        req: RefCell::new(ReqState::default()),
                    });
                    let req = Request(ex.clone());
                    if upgrade && self.handler.wants_upgrade(&req) {
                        conn.upgraded = true;
                        conn.request_since = None;
                        let rest = conn.parser.take_rest();
                        let socket = conn.socket.clone();
                        self.handler.on_upgrade(&req, &socket, rest);
                        return;
                    }
                    conn.current = Some(ex.clone());
                    let res = Response(ex);
                    match expect {
                        None => self.handler.on_request(&req, &res),
                        Some(true) if version == Version::Http11 => {
                            req.0.req.borrow_mut().expect_continue = true;
                            self.handler.on_check_continue(&req, &res);
                        }
                        // Node's `checkExpectation` default: an expectation we cannot meet.
                        Some(_) => {
                            res.set_status(417);
                            res.set_header("Connection", "close");
                            res.end();
                        }
                    }
                }
                Ok(Some(Event::Body(chunk))) => {
                    let Some(ex) = conn.current.clone() else {
                        continue;
                    };
                    let mut req = ex.req.borrow_mut();
                    if req.dump {
                        continue;
                    }
                    if let Some(limit) = req.collect {
                        if req.body.len() + chunk.len() <= limit {
                            req.body.extend_from_slice(&chunk);
                            continue;
                        }
                        req.collect = None;
                        req.body = Vec::new();
                        drop(req);
                        conn.dead = Some(self.tick);
                        let res = Response(ex);
                        if res.headers_sent() {
                            conn.socket.destroy();
                        } else {
                            res.set_status(413);
                            res.set_header("Connection", "close");
                            res.end();
                        }
                        return;
                    }
                    drop(req);
                    self.handler
                        .on_body(&Request(ex.clone()), &Response(ex), chunk);
                }
                Ok(Some(Event::End)) => {
                    conn.request_since = None;
                    let Some(ex) = conn.current.clone() else {
                        continue;
                    };
                    let dump = {
                        let mut req = ex.req.borrow_mut();
                        req.complete = true;
                        req.trailers = conn.parser.take_trailers();
                        req.dump
                    };
                    if !dump {
                        self.handler
                            .on_body_end(&Request(ex.clone()), &Response(ex));
                    }
                }
                Err(e) => {
                    self.refuse(id, &e);
                    return;
                }
            }
        }
    }

    /// Answers a request that cannot be served (malformed, too large, too slow) as
    /// Node's `clientError` does, unless the handler overrides it, then ends the
    /// connection.
    fn refuse(&mut self, id: u32, e: &Error) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.dead = Some(self.tick);
        let socket = conn.socket.clone();
        if let Some(ex) = &conn.current {
            let mut res = ex.res.borrow_mut();
            if res.head_sent {
                // A response is under way: nothing can be said any more.
                drop(res);
                socket.destroy();
                return;
            }
            // The handler's response handle now writes nothing.
            res.finished = true;
        }
        self.handler.on_client_error(e, &socket);
        socket.end();
    }

    /// The interval timer: times out slow heads and requests, and idle keep-alive
    /// connections.
    fn sweep(&mut self) {
        self.tick += 1;
        let interval = self.options.check_interval();
        let tick = self.tick;
        // A state entered during tick t may be only just old at t+1: count whole ticks.
        let over = |since: Option<u64>, limit: Duration| {
            since.is_some_and(|s| {
                !limit.is_zero() && interval * (tick.saturating_sub(s + 1) as u32) >= limit
            })
        };
        let o = &self.options;
        let mut timed_out = Vec::new();
        for (&id, conn) in &self.conns {
            if conn.upgraded {
                continue;
            }
            if conn.dead.is_some() {
                // Answered and ending: give the client this long to read and close.
                if over(conn.dead, o.keep_alive_timeout.max(Duration::from_secs(1))) {
                    conn.socket.destroy();
                }
                continue;
            }
            if over(conn.head_since, o.headers_timeout)
                || over(conn.request_since, o.request_timeout)
            {
                timed_out.push(id);
            } else if conn.current.is_none()
                && conn.parser.buffered() == 0
                && over(conn.idle_since, o.keep_alive_timeout)
            {
                conn.socket.destroy();
            }
        }
        for id in timed_out {
            self.refuse(
                id,
                &Error::new(408, "ERR_HTTP_REQUEST_TIMEOUT", "the request timed out"),
            );
        }
    }

    fn upgraded(&mut self, socket: &Socket) -> bool {
        self.conns.get(&socket.id()).is_some_and(|c| c.upgraded)
    }
}

impl<H: HttpHandler> NetHandler for HttpServer<H> {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let mut options = self.handler.options();
        let rest = options.apply_args(args)?;
        self.options = options;
        self.handler.init(rest)
    }

    fn on_listening(&mut self, server: &Server) {
        let _busy = Busy::enter();
        self.handler.on_listening(server);
        self.run_ready();
    }

    fn on_connection(&mut self, socket: &Socket) {
        let _busy = Busy::enter();
        let limits = self.limits();
        self.conns.insert(
            socket.id(),
            Conn {
                socket: socket.clone(),
                parser: Parser::new(Kind::Request, limits),
                current: None,
                served: 0,
                upgraded: false,
                dead: None,
                peer_ended: false,
                paused_for_buffer: false,
                waiting_drain: false,
                // Node counts headersTimeout from the connection for its first request.
                head_since: Some(self.tick),
                request_since: None,
                idle_since: None,
            },
        );
        if self.sweep.is_none() {
            self.sweep = Some(timers::set_interval(self.options.check_interval()));
        }
        // Node's http server sets noDelay: a response is sent as soon as it is written.
        let _ = socket.set_no_delay(true);
        self.handler.on_connection(socket);
        self.run_ready();
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        let _busy = Busy::enter();
        let id = socket.id();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.upgraded {
            self.handler.on_upgraded(socket, SocketEvent::Data(data));
        } else if conn.dead.is_none() {
            if conn.current.is_none() && conn.head_since.is_none() {
                conn.head_since = Some(self.tick);
                conn.idle_since = None;
            }
            conn.parser.push(data);
            self.pump(id);
        }
        self.run_ready();
    }

    fn on_end(&mut self, socket: &Socket) {
        let _busy = Busy::enter();
        let id = socket.id();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.upgraded {
            self.handler.on_upgraded(socket, SocketEvent::End);
        } else {
            conn.peer_ended = true;
            let aborted = conn.parser.finish().is_err();
            let busy = conn.current.is_some();
            if conn.dead.is_none() && (aborted || !busy) {
                // Nothing more will come: end our side too (a request cut short
                // cannot be answered).
                conn.dead = Some(self.tick);
                if let Some(ex) = &conn.current {
                    ex.res.borrow_mut().finished = true;
                }
                socket.end();
            }
        }
        self.run_ready();
    }

    fn on_drain(&mut self, socket: &Socket) {
        let _busy = Busy::enter();
        let Some(conn) = self.conns.get_mut(&socket.id()) else {
            return;
        };
        if conn.waiting_drain {
            conn.waiting_drain = false;
            conn.socket.resume();
            schedule(socket.id());
        }
        if conn.upgraded {
            self.handler.on_upgraded(socket, SocketEvent::Drain);
        } else if let Some(ex) = conn.current.clone()
            && !ex.res.borrow().finished
        {
            self.handler.on_drain(&Request(ex.clone()), &Response(ex));
        }
        self.run_ready();
    }

    fn on_timeout(&mut self, socket: &Socket) {
        let _busy = Busy::enter();
        if self.upgraded(socket) {
            self.handler.on_upgraded(socket, SocketEvent::Timeout);
            self.run_ready();
        }
    }

    fn on_error(&mut self, socket: &Socket, error: NetError) {
        let _busy = Busy::enter();
        if self.upgraded(socket) {
            self.handler.on_upgraded(socket, SocketEvent::Error(error));
            self.run_ready();
        }
    }

    fn on_close(&mut self, socket: &Socket, had_error: bool) {
        let _busy = Busy::enter();
        if let Some(conn) = self.conns.remove(&socket.id()) {
            if conn.upgraded {
                self.handler
                    .on_upgraded(socket, SocketEvent::Close { had_error });
            } else if let Some(ex) = conn.current {
                // The connection went before the exchange was over (Node's `aborted`
                // and `close`): the response can no longer be written.
                ex.res.borrow_mut().finished = true;
                self.handler.on_close(&Request(ex.clone()), &Response(ex));
            }
        }
        if self.conns.is_empty()
            && let Some(t) = self.sweep.take()
        {
            timers::clear(t);
        }
        self.run_ready();
    }

    fn on_timer(&mut self, timer: TimerId) {
        let _busy = Busy::enter();
        if Some(timer) == WAKE.get() {
            WAKE.set(None);
        } else if Some(timer) == self.sweep {
            self.sweep();
        } else {
            self.handler.on_timer(timer);
        }
        self.run_ready();
    }
}

/// Node's default `clientError` answer: `HTTP/1.1 400 Bad Request` (or 431, 408, 505
/// as the error says) with `Connection: close`. The SDK calls
/// [`HttpHandler::on_client_error`] only while no response is under way on the
/// connection, and ends the connection after it.
pub fn default_client_error(error: &Error, socket: &Socket) {
    socket.write(error_response(error.status()));
}
