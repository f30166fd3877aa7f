//! One server connection, as hyper's `proto::h1::conn` keeps one: what it is
//! **reading** and what it is **writing**, two explicit states, moved on by the
//! socket's events and by what the handler does to the current exchange (a response
//! ended, a body paused or resumed).
//!
//! ```text
//! reading:  Head ─head─> Body ─end─> Done ─response ended─> Idle or Head (keep-alive)
//!            ▲                │                           └─> Closed (closing)
//!            └── Idle <─data──┘ response ended first: Dump ─end─┘
//!           Upgraded (the socket handed over), Closed (answered, ending)
//! writing:  Idle ─head─> Response(exchange) ─request read, response ended─> Idle
//!                                                       └ answers not read ─> Blocked ─drain─> Idle
//! ```
//!
//! One request is answered at a time: the next is parsed once the current response
//! has ended and its request is read; pipelined bytes wait, bounded, in the parser.
//! Each timeout of Node's server belongs to a reading state and is counted from the
//! tick the state began (see [`Reading`]).

use std::rc::Rc;

use super::encode::ResState;
use super::exchange::{Exchange, schedule};
use super::handler::HttpHandler;
use super::options::ServerOptions;
use super::parse::{Error, Event, Head, Kind, Limits, Parser, Version};
use super::request::Request;
use super::response::Response;
use crate::net::Socket;

/// What the connection is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Waiting for the next request on a kept-alive connection, nothing buffered, since
    /// this tick (`keep_alive_timeout`).
    Idle { since: u64 },
    /// A request head, begun at this tick (`headers_timeout`; counted from the
    /// connection for its first request, as Node counts it).
    Head { since: u64 },
    /// The current request's body; its head came at this tick (`request_timeout`).
    Body { since: u64 },
    /// The current request's body after its response ended: read and dropped (Node's
    /// `req._dump()`) so that the connection can serve the next request.
    Dump { since: u64 },
    /// The current request is read: the next is parsed once its response has ended.
    /// `paused`: the read-ahead is full (`max_header_size`), the socket paused.
    Done { paused: bool },
    /// Taken over by an upgrade: the socket's events are the handler's.
    Upgraded,
    /// Nothing more is read: the connection ends (its last response sent, or a
    /// request refused) and is destroyed if the client has not closed it a while
    /// after this tick.
    Closed { since: u64 },
}

/// What the connection is writing.
pub(crate) enum Writing {
    /// No response is under way.
    Idle,
    /// The current exchange's response, written by the handler through its
    /// [`Response`]; the exchange is current until its response has ended and its
    /// request is read (or the connection closes).
    Response(Rc<Exchange>),
    /// The answers written are not being read (a write found the socket's queue past
    /// its high-water mark): no request is parsed until the socket drains, so what
    /// the host queues stays near one response.
    Blocked,
}

/// What the server lends a connection to move it on.
pub(crate) struct Env<'a> {
    pub(crate) options: &'a ServerOptions,
    /// The timeout clock's tick.
    pub(crate) tick: u64,
    /// The last request id handed out in the instance.
    pub(crate) next_id: &'a mut u64,
}

/// One server connection.
pub(crate) struct Conn {
    pub(crate) socket: Socket,
    parser: Parser,
    pub(crate) reading: Reading,
    pub(crate) writing: Writing,
    /// Requests answered so far.
    served: u32,
    /// The client ended its side: no request follows the current one.
    peer_ended: bool,
}

/// Whether [`Conn::pump`] goes on.
enum Flow {
    /// Parse the next event.
    Read,
    /// Look at the states again.
    Again,
    /// Nothing more to do until the next event.
    Stop,
}

impl Conn {
    /// A new connection, reading its first head from `tick`.
    pub(crate) fn new(socket: Socket, limits: Limits, tick: u64) -> Self {
        Conn {
            socket,
            parser: Parser::new(Kind::Request, limits),
            reading: Reading::Head { since: tick },
            writing: Writing::Idle,
            served: 0,
            peer_ended: false,
        }
    }

    /// The exchange under way.
    pub(crate) fn exchange(&self) -> Option<&Rc<Exchange>> {
        match &self.writing {
            Writing::Response(ex) => Some(ex),
            _ => None,
        }
    }

    /// Bytes read and not yet parsed.
    pub(crate) fn buffered(&self) -> usize {
        self.parser.buffered()
    }

    /// Bytes arrived: parse and deliver what they complete.
    pub(crate) fn data<H: HttpHandler>(&mut self, data: Vec<u8>, h: &mut H, env: &mut Env) {
        match self.reading {
            Reading::Closed { .. } | Reading::Upgraded => return,
            // The head's clock starts with its first byte.
            Reading::Idle { .. } => self.reading = Reading::Head { since: env.tick },
            _ => {}
        }
        self.parser.push(data);
        self.pump(h, env);
    }

    /// The client ended its side.
    pub(crate) fn peer_end(&mut self, env: &Env) {
        self.peer_ended = true;
        let aborted = self.parser.finish().is_err();
        let busy = self.exchange().is_some();
        if !matches!(self.reading, Reading::Closed { .. }) && (aborted || !busy) {
            // Nothing more will come: end our side too (a request cut short cannot be
            // answered).
            self.reading = Reading::Closed { since: env.tick };
            if let Some(ex) = self.exchange() {
                ex.res.borrow_mut().finished = true;
            }
            self.socket.end();
        }
    }

    /// The socket drained: a blocked connection reads again; the handler's `on_drain`
    /// if a response is being written.
    pub(crate) fn drain<H: HttpHandler>(&mut self, h: &mut H) {
        if let Writing::Blocked = self.writing {
            self.writing = Writing::Idle;
            self.socket.resume();
            schedule(self.socket.id());
        }
        if let Some(ex) = self.exchange().cloned()
            && !ex.res.borrow().finished
        {
            h.on_drain(&Request(ex.clone()), &Response(ex));
        }
    }

    /// The socket closed: an exchange under way is over (Node's `aborted` and `close`),
    /// its response can no longer be written.
    pub(crate) fn closed<H: HttpHandler>(self, h: &mut H) {
        if let Writing::Response(ex) = self.writing {
            ex.res.borrow_mut().finished = true;
            h.on_close(&Request(ex.clone()), &Response(ex));
        }
    }

    /// Moves the connection on as far as it can go: retires an exchange that is over,
    /// parses and delivers what is buffered.
    pub(crate) fn pump<H: HttpHandler>(&mut self, h: &mut H, env: &mut Env) {
        loop {
            if self.socket.destroyed() {
                return;
            }
            let flow = match (&self.writing, self.reading) {
                (_, Reading::Upgraded | Reading::Closed { .. }) | (Writing::Blocked, _) => {
                    Flow::Stop
                }
                (Writing::Response(ex), _) => {
                    let ex = ex.clone();
                    self.answering(ex, h, env)
                }
                (Writing::Idle, _) => Flow::Read,
            };
            match flow {
                Flow::Stop => return,
                Flow::Again => continue,
                Flow::Read => {}
            }
            let event = match self.parser.next_event() {
                Ok(None) => return,
                Ok(Some(event)) => event,
                Err(e) => return self.refuse(&e, h, env),
            };
            let flow = match event {
                Event::Head(head) => self.head(head, h, env),
                Event::Body(chunk) => self.body(chunk, h, env),
                Event::End => self.request_end(h),
            };
            if let Flow::Stop = flow {
                return;
            }
        }
    }

    /// While an exchange is current: whether to retire it, read on, or wait.
    fn answering<H: HttpHandler>(&mut self, ex: Rc<Exchange>, h: &mut H, env: &Env) -> Flow {
        let (finished, close_after, continue_sent) = {
            let r = ex.res.borrow();
            (r.finished, r.close_after, r.continue_sent)
        };
        match self.reading {
            Reading::Done { paused } if finished => {
                self.retire(ex, paused, h, env);
                Flow::Again
            }
            Reading::Body { since } if finished => {
                let mut req = ex.req.borrow_mut();
                if close_after || (req.expect_continue && !continue_sent) {
                    // The socket is ending, or the client waits for a `100 Continue`
                    // that will not come: its body may never arrive.
                    drop(req);
                    self.reading = Reading::Closed { since: env.tick };
                    self.socket.end();
                    return Flow::Stop;
                }
                self.reading = Reading::Dump { since };
                if std::mem::take(&mut req.paused) {
                    self.socket.resume();
                }
                Flow::Read
            }
            Reading::Done { paused } => {
                // Waiting for the response: read ahead no more than a head's worth.
                if !paused && self.parser.buffered() >= env.options.max_header_size {
                    self.reading = Reading::Done { paused: true };
                    self.socket.pause();
                }
                Flow::Stop
            }
            _ if ex.req.borrow().paused => Flow::Stop,
            _ => Flow::Read,
        }
    }

    /// The exchange is over (its response ended, its request read): the connection
    /// closes, or waits for the next request.
    fn retire<H: HttpHandler>(
        &mut self,
        ex: Rc<Exchange>,
        read_ahead_full: bool,
        h: &mut H,
        env: &Env,
    ) {
        // A pause of a request that is over must not stall the next one.
        let user_paused = std::mem::take(&mut ex.req.borrow_mut().paused);
        let (close_after, backed_up) = {
            let r = ex.res.borrow();
            (r.close_after, r.backed_up)
        };
        self.served += 1;
        if close_after || self.peer_ended {
            self.reading = Reading::Closed { since: env.tick };
            self.writing = Writing::Idle;
            // `end` after the response (a no-op if it ended the socket).
            self.socket.end();
        } else {
            self.reading = if self.parser.buffered() > 0 {
                Reading::Head { since: env.tick }
            } else {
                Reading::Idle { since: env.tick }
            };
            self.writing = if backed_up {
                // A client pipelining requests without reading the answers: stop
                // reading until it does (Node pauses the same way).
                self.socket.pause();
                Writing::Blocked
            } else {
                if read_ahead_full || user_paused {
                    self.socket.resume();
                }
                Writing::Idle
            };
        }
        h.on_close(&Request(ex.clone()), &Response(ex));
    }

    /// A request's head: a new exchange, or an upgrade.
    fn head<H: HttpHandler>(&mut self, head: Head, h: &mut H, env: &mut Env) -> Flow {
        self.reading = Reading::Body { since: env.tick };
        *env.next_id += 1;
        let max = env.options.max_requests_per_socket;
        let last = max > 0 && self.served + 1 >= max;
        let keep_alive = head.keep_alive() && !self.peer_ended && !last;
        let version = head.version();
        let to_head = head.method() == "HEAD";
        let upgrade = head.is_upgrade();
        let expect = head
            .header("expect")
            .map(|v| v.trim().eq_ignore_ascii_case("100-continue"));
        let res = ResState::new(
            version,
            to_head,
            keep_alive,
            env.options.keep_alive_timeout.as_secs(),
        );
        let ex = Exchange::new(*env.next_id, self.socket.clone(), head, res);
        let req = Request(ex.clone());
        if upgrade && h.wants_upgrade(&req) {
            self.reading = Reading::Upgraded;
            let rest = self.parser.take_rest();
            let socket = self.socket.clone();
            h.on_upgrade(&req, &socket, rest);
            return Flow::Stop;
        }
        self.writing = Writing::Response(ex.clone());
        let res = Response(ex);
        match expect {
            None => h.on_request(&req, &res),
            Some(true) if version == Version::Http11 => {
                req.0.req.borrow_mut().expect_continue = true;
                h.on_check_continue(&req, &res);
            }
            // Node's `checkExpectation` default: an expectation we cannot meet.
            Some(_) => {
                res.set_status(417);
                res.set_header("Connection", "close");
                res.end();
            }
        }
        Flow::Again
    }

    /// A piece of the current request's body: delivered, collected, or dropped.
    fn body<H: HttpHandler>(&mut self, chunk: Vec<u8>, h: &mut H, env: &Env) -> Flow {
        let (Reading::Body { .. }, Some(ex)) = (self.reading, self.exchange().cloned()) else {
            // Dumped (the response ended first).
            return Flow::Again;
        };
        let mut req = ex.req.borrow_mut();
        if let Some(limit) = req.collect {
            if req.body.len() + chunk.len() <= limit {
                req.body.extend_from_slice(&chunk);
                return Flow::Again;
            }
            req.collect = None;
            req.body = Vec::new();
            drop(req);
            self.reading = Reading::Closed { since: env.tick };
            let res = Response(ex);
            if res.headers_sent() {
                self.socket.destroy();
            } else {
                res.set_status(413);
                res.set_header("Connection", "close");
                res.end();
            }
            return Flow::Stop;
        }
        drop(req);
        h.on_body(&Request(ex.clone()), &Response(ex), chunk);
        Flow::Again
    }

    /// The current request is read.
    fn request_end<H: HttpHandler>(&mut self, h: &mut H) -> Flow {
        let dumped = matches!(self.reading, Reading::Dump { .. });
        self.reading = Reading::Done { paused: false };
        let Some(ex) = self.exchange().cloned() else {
            return Flow::Again;
        };
        {
            let mut req = ex.req.borrow_mut();
            req.complete = true;
            req.trailers = self.parser.take_trailers();
        }
        if !dumped {
            h.on_body_end(&Request(ex.clone()), &Response(ex));
        }
        Flow::Again
    }

    /// Answers a request that cannot be served (malformed, too large, too slow) as
    /// Node's `clientError` does, unless the handler overrides it, then ends the
    /// connection.
    pub(crate) fn refuse<H: HttpHandler>(&mut self, e: &Error, h: &mut H, env: &Env) {
        self.reading = Reading::Closed { since: env.tick };
        if let Some(ex) = self.exchange() {
            let mut res = ex.res.borrow_mut();
            if res.head_sent {
                // A response is under way: nothing can be said any more.
                drop(res);
                self.socket.destroy();
                return;
            }
            // The handler's response handle now writes nothing.
            res.finished = true;
        }
        h.on_client_error(e, &self.socket);
        self.socket.end();
    }
}
