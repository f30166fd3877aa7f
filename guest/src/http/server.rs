//! The server: a [`NetHandler`] that keeps a [`Conn`] per connection, hands it the
//! socket's events, runs the connections the handler's handles scheduled once each
//! callback returns, and checks Node's timeouts with one interval timer per instance.

use std::collections::HashMap;
use std::time::Duration;

use super::conn::{Conn, Env, Reading};
use super::exchange::{self, Busy};
use super::handler::HttpHandler;
use super::options::ServerOptions;
use super::parse::{Error, Limits};
use crate::error::Error as NetError;
use crate::handler::NetHandler;
use crate::net::{Server, Socket, SocketEvent};
use crate::timers::{self, TimerId};

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

    /// Runs `f` on connection `id` with the handler, if the connection is there.
    fn with_conn(&mut self, id: u32, f: impl FnOnce(&mut Conn, &mut H, &mut Env)) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut env = Env {
            options: &self.options,
            tick: self.tick,
            next_id: &mut self.next_id,
        };
        f(conn, &mut self.handler, &mut env);
    }

    /// Whether connection `socket` was handed over by an upgrade.
    fn upgraded(&self, socket: &Socket) -> bool {
        self.conns
            .get(&socket.id())
            .is_some_and(|c| c.reading == Reading::Upgraded)
    }

    /// Runs every connection that has something new to do, until none has.
    fn run_ready(&mut self) {
        loop {
            let ready = exchange::take_ready();
            if ready.is_empty() {
                return;
            }
            for id in ready {
                self.with_conn(id, |conn, h, env| conn.pump(h, env));
            }
        }
    }

    /// The interval timer: times out slow heads and requests, and idle keep-alive
    /// connections; destroys ending ones the client has not closed.
    fn sweep(&mut self) {
        self.tick += 1;
        let interval = self.options.check_interval();
        let tick = self.tick;
        // A state entered during tick t may be only just old at t+1: count whole ticks.
        let over = |since: u64, limit: Duration| {
            !limit.is_zero() && interval * (tick.saturating_sub(since + 1) as u32) >= limit
        };
        let o = &self.options;
        let mut timed_out = Vec::new();
        for (&id, conn) in &self.conns {
            let destroy = match conn.reading {
                // Answered and ending: give the client this long to read and close.
                Reading::Closed { since } => {
                    over(since, o.keep_alive_timeout.max(Duration::from_secs(1)))
                }
                Reading::Head { since } if over(since, o.headers_timeout) => {
                    timed_out.push(id);
                    false
                }
                Reading::Body { since } | Reading::Dump { since }
                    if over(since, o.request_timeout) =>
                {
                    timed_out.push(id);
                    false
                }
                Reading::Idle { since } => {
                    conn.exchange().is_none()
                        && conn.buffered() == 0
                        && over(since, o.keep_alive_timeout)
                }
                _ => false,
            };
            if destroy {
                conn.socket.destroy();
            }
        }
        let timeout = Error::new(408, "ERR_HTTP_REQUEST_TIMEOUT", "the request timed out");
        for id in timed_out {
            self.with_conn(id, |conn, h, env| conn.refuse(&timeout, h, env));
        }
    }
}

/// Every event runs as the server's: what the handler's handles schedule meanwhile
/// runs before it returns, not on a wake-up timer.
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
        let conn = Conn::new(socket.clone(), self.limits(), self.tick);
        self.conns.insert(socket.id(), conn);
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
        if self.upgraded(socket) {
            self.handler.on_upgraded(socket, SocketEvent::Data(data));
        } else {
            self.with_conn(socket.id(), |conn, h, env| conn.data(data, h, env));
        }
        self.run_ready();
    }

    fn on_end(&mut self, socket: &Socket) {
        let _busy = Busy::enter();
        if self.upgraded(socket) {
            self.handler.on_upgraded(socket, SocketEvent::End);
        } else {
            self.with_conn(socket.id(), |conn, _, env| conn.peer_end(env));
        }
        self.run_ready();
    }

    fn on_drain(&mut self, socket: &Socket) {
        let _busy = Busy::enter();
        if self.upgraded(socket) {
            self.handler.on_upgraded(socket, SocketEvent::Drain);
        } else {
            self.with_conn(socket.id(), |conn, h, _| conn.drain(h));
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
            if conn.reading == Reading::Upgraded {
                self.handler
                    .on_upgraded(socket, SocketEvent::Close { had_error });
            } else {
                conn.closed(&mut self.handler);
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
        if exchange::is_wake(timer) {
            // What a callback outside the server scheduled runs below.
        } else if Some(timer) == self.sweep {
            self.sweep();
        } else {
            self.handler.on_timer(timer);
        }
        self.run_ready();
    }
}
