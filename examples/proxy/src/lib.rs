//! `proxy`: a TCP proxy, Node's
//!
//! ```javascript
//! net.createServer({ allowHalfOpen: true }, (socket) => {
//!   const upstream = net.connect({ host, port, allowHalfOpen: true });
//!   socket.pipe(upstream);
//!   upstream.pipe(socket);
//! });
//! ```
//!
//! Each accepted connection opens one connection to the upstream named by the handler's
//! first argument, and bytes flow both ways with backpressure: when one side's write
//! queue is full the other side is paused, and resumed on `drain`, so a slow reader on
//! either end slows the writer on the other instead of filling memory. The guest keeps
//! no buffer of its own: what a connection costs is the host's write queue on each side,
//! which this flow control keeps near `--high-water-mark` (64 KiB) plus one read (64
//! KiB) per direction.
//!
//! - **Half-close** passes through both ways: a side's `end` (FIN) ends the other side's
//!   writing, and the other direction keeps flowing. The proxy asks for it itself
//!   ([`NetHandler::server_options`], Node's `createServer({ allowHalfOpen: true })`),
//!   so the operator need not remember `--allow-half-open`.
//! - **Errors**: a reset (`ECONNRESET`) on one side resets the other; any other error
//!   on one side destroys the other. A side that closes cleanly ends the other.
//! - **An upstream that refuses** (`ECONNREFUSED`), is denied, or does not answer within
//!   the connect timeout closes the client's connection; the proxy logs why.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p proxy
//! netlet run target/wasm32-wasip2/release/proxy.wasm --tcp 127.0.0.1:8080 \
//!     --allow 127.0.0.1:6379 -- 127.0.0.1:6379 [--connect-timeout 10s]
//! ```

use std::time::Duration;

use netlet_guest::net::{self, ConnectOptions, ServerOptions};
use netlet_guest::{Error, ErrorCode, NetHandler, ReadyState, Socket};

/// How long an upstream may take to accept a connection, unless `--connect-timeout`
/// says otherwise.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Proxy {
    host: String,
    port: u16,
    connect_timeout: Duration,
}

/// Each socket's state: the socket on the other side of the proxy.
#[derive(Default)]
struct Link {
    peer: Option<Socket>,
    /// This is the upstream side.
    upstream: bool,
    /// The upstream side is connected.
    connected: bool,
    /// The proxy ended this socket (its peer ended, or closed).
    ended: bool,
    /// The proxy destroyed this socket.
    killed: bool,
    /// This socket failed abruptly (reset, broken pipe): its peer is reset in turn.
    reset: bool,
}

fn peer(socket: &Socket) -> Option<Socket> {
    socket.state::<Link>().peer.clone()
}

/// Splits `HOST:PORT` or `[V6]:PORT`.
fn parse_target(arg: &str) -> Result<(String, u16), String> {
    let bad = || format!("bad upstream {arg:?}: expected HOST:PORT");
    let (host, port) = arg.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(bad)?;
    Ok((host.to_string(), port))
}

/// Parses `500ms`, `10s`, `2m`, or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 500ms, 10s, 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration {s:?}: expected e.g. 500ms, 10s, 2m")),
    }
}

impl Proxy {
    fn name(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Closes `socket` now: with a reset (RST) if `reset`, else with a FIN.
fn kill(socket: &Socket, reset: bool) {
    socket.state::<Link>().killed = true;
    if reset {
        socket.reset_and_destroy();
    } else {
        socket.destroy();
    }
}

/// Ends `socket`'s writing side once its queue is sent (`pipe` ending its destination).
fn finish(socket: &Socket) {
    socket.state::<Link>().ended = true;
    socket.end();
}

impl NetHandler for Proxy {
    fn server_options(&self) -> ServerOptions {
        ServerOptions {
            allow_half_open: true,
            ..ServerOptions::default()
        }
    }

    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let usage = "usage: proxy HOST:PORT [--connect-timeout DURATION]";
        let mut args = args.into_iter();
        let target = args.next().ok_or_else(|| format!("no upstream; {usage}"))?;
        (self.host, self.port) = parse_target(&target)?;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--connect-timeout" => {
                    let value = args.next().ok_or("--connect-timeout needs a duration")?;
                    self.connect_timeout = parse_duration(&value)?;
                }
                other => return Err(format!("unknown argument {other:?}; {usage}")),
            }
        }
        Ok(())
    }

    fn on_connection(&mut self, client: &Socket) {
        let mut options = ConnectOptions::new(self.host.clone(), self.port);
        options.allow_half_open = true;
        // A proxy forwards what it reads at once; Nagle would hold small writes back.
        options.no_delay = true;
        let _ = client.set_no_delay(true);
        let upstream = match net::connect(options) {
            Ok(upstream) => upstream,
            Err(error) => {
                eprintln!(
                    "proxy: upstream {}: {error}; closing the client",
                    self.name()
                );
                kill(client, false);
                return;
            }
        };
        // While connecting, `timeout` means the upstream did not answer in time.
        upstream.set_timeout(self.connect_timeout);
        *upstream.state::<Link>() = Link {
            peer: Some(client.clone()),
            upstream: true,
            ..Link::default()
        };
        client.state::<Link>().peer = Some(upstream);
    }

    fn on_connect(&mut self, upstream: &Socket) {
        upstream.set_timeout(Duration::ZERO);
        upstream.state::<Link>().connected = true;
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        let Some(peer) = peer(socket) else {
            return;
        };
        match peer.try_write(&data) {
            Ok(true) => {}
            // `pipe`: stop reading until the peer's queue drains.
            Ok(false) => socket.pause(),
            Err(_) => {
                // The peer cannot take more (its side ended or closed): what this side
                // sends can no longer be delivered.
                kill(socket, false);
                kill(&peer, false);
            }
        }
    }

    fn on_drain(&mut self, socket: &Socket) {
        if let Some(peer) = peer(socket) {
            peer.resume();
        }
    }

    fn on_end(&mut self, socket: &Socket) {
        // Half-close passes through: the peer's writing side ends once its queue is sent.
        if let Some(peer) = peer(socket) {
            finish(&peer);
        }
    }

    fn on_timeout(&mut self, socket: &Socket) {
        if socket.ready_state() != ReadyState::Opening {
            return;
        }
        eprintln!(
            "proxy: upstream {}: connect timed out after {:?}; closing the client",
            self.name(),
            self.connect_timeout
        );
        if let Some(client) = peer(socket) {
            kill(&client, false);
        }
        kill(socket, false);
    }

    fn on_error(&mut self, socket: &Socket, error: Error) {
        let mut link = socket.state::<Link>();
        link.reset = matches!(
            error.code(),
            ErrorCode::ConnectionReset | ErrorCode::BrokenPipe | ErrorCode::ConnectionAborted
        );
        if link.upstream {
            let name = self.name();
            let what = if link.connected {
                ""
            } else {
                "; closing the client"
            };
            eprintln!("proxy: upstream {name}: {error}{what}");
        }
    }

    fn on_close(&mut self, socket: &Socket, had_error: bool) {
        let mut link = std::mem::take(&mut *socket.state::<Link>());
        let Some(peer) = link.peer.take() else {
            return;
        };
        peer.state::<Link>().peer = None;
        if had_error {
            kill(&peer, link.reset);
        } else {
            // This side is done both ways; the peer sends what it has queued, then ends.
            finish(&peer);
        }
    }
}

netlet_guest::export_net!(Proxy {
    host: String::new(),
    port: 0,
    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
});
