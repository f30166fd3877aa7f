//! `kv`: a Redis-compatible key-value store (RESP2), served to Redis's own clients
//! (`redis-cli`, `redis-benchmark`, client libraries).
//!
//! Commands: `PING`, `ECHO`, `GET`, `SET` (`EX`/`PX`/`NX`/`XX`, and `GET`/`KEEPTTL`),
//! `DEL`, `EXISTS`, `INCR`/`DECR`/`INCRBY`/`DECRBY`, `MGET`/`MSET`,
//! `EXPIRE`/`PEXPIRE` (`NX`/`XX`/`GT`/`LT`), `TTL`/`PTTL`, `DBSIZE`, `FLUSHALL`, `QUIT`,
//! `COMMAND` (`COUNT`/`LIST`/`INFO`/`DOCS`), `CONFIG GET`, `DEBUG SET-ACTIVE-EXPIRE`;
//! Redis's exact error replies for everything else. Requests in multibulk or inline form,
//! pipelined (replies in order, a partial command waits for the rest).
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p kv
//! netlet run target/wasm32-wasip2/release/kv.wasm --tcp 127.0.0.1:6379
//! netlet run target/wasm32-wasip2/release/kv.wasm --tcp 127.0.0.1:6379 -- --max-request 1MiB
//! redis-cli -p 6379 set greeting hello
//! ```
//!
//! One instance holds one store, as one Redis server does: with one shard (the default)
//! every connection sees the same keys; with `--shards N` each shard has its own.
//!
//! **Bounded costs.** A request (one command as received) larger than `--max-request`
//! (default 4 MiB; Redis's 512 MB bulk limit is too much for a sandbox) gets Redis's
//! `-ERR Protocol error: invalid bulk length` (or `too big inline request`) and the
//! connection is closed after the reply. A connection's unread input is therefore at most
//! one request plus one read; replies wait in the host's write queue, and a client that
//! does not read them is paused (no more commands are read from it) until they drain.
//! The store is bounded by `--max-memory`: writes that cannot allocate get Redis's
//! `-OOM` reply (see `memory`).
//!
//! # Layout
//!
//! - `resp`: the request parser and reply encodings.
//! - `commands`: the command table and each command's semantics.
//! - `store`: keys, values, expiry.
//! - `memory`: `-OOM` instead of a trap.
//! - this file: connections, pipelining, backpressure, the expiry timer.

mod commands;
mod memory;
mod resp;
mod store;

use std::time::{Duration, Instant};

use netlet_guest::{NetHandler, Socket, TimerId, timers};

use commands::{Db, Flow};
use resp::{Parsed, Parser};

#[global_allocator]
static ALLOCATOR: memory::WithReserve = memory::WithReserve;

/// The default `--max-request`.
const DEFAULT_MAX_REQUEST: usize = 4 << 20;

/// Replies are collected and written once per read; past this size they are written
/// at once, so a long pipeline does not build one huge reply.
const WRITE_AT: usize = 64 * 1024;

/// The largest partial request a connection may hold once the instance is short of
/// memory (see `memory`).
const HOLD_UNDER_PRESSURE: usize = 64 * 1024;

/// Keys the expiry timer removes per event at most; more due keys are left to the next
/// timer event, so one event's work stays bounded.
const EXPIRE_PER_EVENT: usize = 10_000;

struct Kv {
    db: Db,
    max_request: usize,
    /// Replies to the commands of the read being served.
    out: Vec<u8>,
    /// The store's clock starts with the instance...
    epoch: Instant,
    /// ...and is moved forward when a timer fires before the clock reaches the time the
    /// timer was set for.
    skew: u64,
    /// The pending expiry timer and the expiry time it was set for.
    timer: Option<(TimerId, u64)>,
}

/// One client connection.
struct Conn {
    /// Unread input: bytes before `start` were served.
    buf: Vec<u8>,
    start: usize,
    parser: Parser,
    /// Replies are waiting in the host's queue: reading stopped until `drain`.
    waiting: bool,
    /// `QUIT` or a protocol error: the reply is out, the connection is ending, input is
    /// discarded.
    closing: bool,
}

impl Default for Conn {
    fn default() -> Self {
        Conn {
            buf: Vec::new(),
            start: 0,
            parser: Parser::new(DEFAULT_MAX_REQUEST),
            waiting: false,
            closing: false,
        }
    }
}

/// Parses `4194304`, `512KiB`, `4MiB`, `1GiB`.
fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("bad size {s:?}: expected bytes, KiB, MiB or GiB"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" | "kb" => 1 << 10,
        "mib" | "m" | "mb" => 1 << 20,
        "gib" | "g" | "gb" => 1 << 30,
        _ => return Err(format!("bad size {s:?}: expected bytes, KiB, MiB or GiB")),
    };
    n.checked_mul(scale)
        .filter(|&n| n >= 64)
        .ok_or_else(|| format!("bad size {s:?}: at least 64 bytes"))
}

impl Kv {
    /// Milliseconds on the store's clock: the instance's monotonic clock, never behind
    /// the timers the host has fired. (The two agree to the millisecond in a real
    /// process; under the test harness the host's timers run on virtual time, and the
    /// store keeps up with it through them.)
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + self.skew
    }

    /// Sends the collected replies; false when the socket's queue is full (the client is
    /// not reading), and `drain` will follow.
    fn flush(&mut self, socket: &Socket) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let below = socket.write(&self.out);
        self.out.clear();
        if self.out.capacity() > 4 * WRITE_AT {
            self.out = Vec::new();
        }
        below
    }

    /// Serves every whole command in the connection's input, in order.
    fn serve(&mut self, socket: &Socket, conn: &mut Conn) {
        self.db.now = self.now();
        while !conn.closing && !conn.waiting {
            let unread = &conn.buf[conn.start..];
            match conn.parser.parse(unread) {
                Parsed::Incomplete => break,
                Parsed::Empty(n) => conn.start += n,
                Parsed::Command(n) => {
                    let args = conn.parser.args(&unread[..n]);
                    let flow = self.db.execute(&args, &mut self.out);
                    conn.start += n;
                    if flow == Flow::Close {
                        conn.closing = true;
                    } else if self.out.len() >= WRITE_AT && !self.flush(socket) {
                        conn.waiting = true;
                    }
                }
                Parsed::Error(error) => {
                    resp::error(&mut self.out, &error.reply());
                    conn.closing = true;
                }
            }
        }
        if !self.flush(socket) {
            conn.waiting = true;
        }
        if conn.closing {
            // Redis closes after the reply; the rest of the input is not read.
            socket.end();
            conn.buf = Vec::new();
            conn.start = 0;
        } else if conn.waiting {
            socket.pause();
        }
        // Keep only the unread bytes (at most one partial request, or the commands of
        // one read when waiting), at the front.
        if conn.start == conn.buf.len() {
            conn.buf.clear();
            conn.start = 0;
            if conn.buf.capacity() > WRITE_AT {
                conn.buf = Vec::new();
            }
        } else if conn.start > 0 {
            conn.buf.drain(..conn.start);
            conn.start = 0;
        }
        self.arm_timer();
    }

    /// Makes the expiry timer fire at the earliest expiry time, if it would not already.
    fn arm_timer(&mut self) {
        if !std::mem::take(&mut self.db.store.expiry_changed) || self.db.active_expire_off {
            return;
        }
        let Some(next) = self.db.store.next_expiry() else {
            return;
        };
        // A key expires once the time is past its expiry time.
        let due = next + 1;
        if let Some((timer, at)) = self.timer {
            if at <= due {
                return;
            }
            timers::clear(timer);
        }
        let delay = due.saturating_sub(self.now());
        self.timer = Some((timers::set_timeout(Duration::from_millis(delay)), due));
    }
}

impl Kv {
    /// Makes room in the connection's buffer for `more` bytes; false if the instance
    /// is out of memory. The buffer grows by doubling, but never past the end of the
    /// argument being read: a large request takes what it needs, not a doubling
    /// buffer's slack, and an announced length is not trusted for more than twice
    /// what actually came.
    fn hold(&self, conn: &mut Conn, more: usize) -> bool {
        let held = conn.buf.len() - conn.start + more;
        let wanted = conn.parser.wanted();
        // Once the reserve is spent, what is left must serve events and replies: a
        // connection may still hold a small partial request (a pipelined batch cut by
        // a read), not a large one.
        if held.max(wanted) > HOLD_UNDER_PRESSURE && memory::under_pressure() {
            return false;
        }
        let target = if wanted > held {
            wanted.min(held.saturating_mul(2))
        } else {
            held
        };
        let extra = (conn.start + target).saturating_sub(conn.buf.len());
        let buf = &mut conn.buf;
        memory::fallible(|| {
            if wanted > held {
                buf.try_reserve_exact(extra)
            } else {
                // Amortised, so a request trickling in is not copied over and over.
                buf.try_reserve(more)
            }
        })
        .is_ok()
    }
}

impl NetHandler for Kv {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--max-request" => {
                    let value = args.next().ok_or("--max-request needs a size")?;
                    self.max_request = parse_size(&value)?;
                }
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; kv takes: --max-request SIZE (default 4MiB)"
                    ));
                }
            }
        }
        memory::init()
    }

    fn on_connection(&mut self, socket: &Socket) {
        // As Redis does: replies are written whole, so Nagle would only delay them.
        let _ = socket.set_no_delay(true);
        let mut conn = socket.state::<Conn>();
        conn.parser = Parser::new(self.max_request);
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        let mut conn = socket.state::<Conn>();
        if conn.closing {
            return;
        }
        if conn.buf.is_empty() {
            conn.buf = data;
        } else if self.hold(&mut conn, data.len()) {
            conn.buf.extend_from_slice(&data);
        } else {
            // The request cannot be held: refuse it as Redis refuses a write when full,
            // and close, since the rest of it cannot be told from the next command.
            drop(data);
            conn.buf = Vec::new();
            conn.start = 0;
            conn.closing = true;
            resp::error(&mut self.out, commands::OOM);
            self.flush(socket);
            socket.end();
            return;
        }
        if !conn.waiting {
            self.serve(socket, &mut conn);
        }
    }

    fn on_drain(&mut self, socket: &Socket) {
        let mut conn = socket.state::<Conn>();
        if conn.waiting {
            conn.waiting = false;
            socket.resume();
            self.serve(socket, &mut conn);
        }
    }

    fn on_timer(&mut self, timer: TimerId) {
        let Some((armed, due)) = self.timer else {
            return;
        };
        if armed != timer {
            return;
        }
        self.timer = None;
        // The host fired the timer set for `due`: it is at least `due` now.
        let now = self.now();
        if now < due {
            self.skew += due - now;
        }
        let now = self.now();
        if self.db.active_expire_off {
            return;
        }
        if self.db.store.expire_due(now, EXPIRE_PER_EVENT) {
            self.timer = Some((timers::set_timeout(Duration::ZERO), due));
        } else {
            self.db.store.expiry_changed = true;
            self.arm_timer();
        }
    }
}

netlet_guest::export_net!(Kv {
    db: Db::default(),
    max_request: DEFAULT_MAX_REQUEST,
    out: Vec::new(),
    epoch: Instant::now(),
    skew: 0,
    timer: None,
});
