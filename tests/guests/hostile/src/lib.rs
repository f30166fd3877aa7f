//! `hostile`: a test-only handler that echoes like `echo`, and misbehaves on request, so
//! tests can check that a fault never takes down the host, its listener or (with
//! `--isolation connection`) any other connection.
//!
//! A line starting with `!` is a command; anything else is echoed byte for byte:
//!
//! - `!loop`: spin forever (the event deadline must stop it)
//! - `!work N`: compute N million rounds of a shift-xor loop; reply `worked N`
//! - `!sleep MS`: block in `std::thread::sleep` (a blocking WASI call)
//! - `!alloc`: allocate 1 MiB blocks until memory runs out
//! - `!panic`, or any data containing byte 0xFF: panic
//! - `!stale`: call every method on sockets that have closed; reply with what they returned
//! - `!forged`: call a socket method through a handle that was never issued
//! - `!flood`: write 1 MiB chunks until the host refuses (the write buffer cap)
//! - `!timers N`: set N one-hour timers; reply `timers N`
//! - `!connect HOST PORT`: `net.connect`; reply `connect ok` or `connect CODE`
//! - `!wasi-connect HOST:PORT`: connect through `wasi:sockets` (`std::net::TcpStream`)
//! - `!dns NAME`: resolve through `wasi:sockets/ip-name-lookup`
//! - `!sockets N`: create N UDP sockets; reply how many the host allowed
//! - `!wasi-sockets N`: bind N UDP sockets through `wasi:sockets` (`std::net::UdpSocket`),
//!   keep them; reply how many the host allowed
//! - `!udp-bind ADDR PORT`: bind a new UDP socket there; reply `udp-bind ok PORT` or
//!   `udp-bind CODE`
//! - `!close-sockets`: close every socket `!sockets` and `!wasi-sockets` made; reply
//!   `closed N`
//! - `!count`: reply with how many connections this instance has seen
//!
//! What a guest may make the host pay for (each replies once done):
//!
//! - `!queue N MIB PORT`: open N connections to 127.0.0.1:PORT and, once each is up,
//!   write MIB MiB to it in 1 MiB chunks whatever `write` answers, until it fails
//! - `!timer-churn N`: set a one-hour timer and clear it again, N times
//! - `!deny N`: try a connect the policy denies (127.0.0.1:9), N times
//! - `!print N`: print N lines
//! - `!hammer METHOD N`: call one socket method N times on this connection (`pause-resume`,
//!   `nodelay`, `keepalive`, `timeout`, `write0`, `address`, `state`, `buffer`, `timer`,
//!   `udp-create`, `close-server`)
//! - `!close-server`: `server.close()` on every server; reply `close-server ok` or the code
//! - `!tick-sleep MS` / `!tick-spin MS`: every 1 ms, sleep (a blocking WASI call) or
//!   compute for MS
//! - `!zero-timers N`: N timers of 0 ms that set themselves again when they fire

use std::time::Duration;

use netlet_guest::{NetHandler, Socket, TimerId, net, timers};

#[derive(Default)]
struct Hostile {
    seen: u64,
    closed: Vec<Socket>,
    timers: Vec<TimerId>,
    udp: Vec<netlet_guest::DgramSocket>,
    wasi_udp: Vec<std::net::UdpSocket>,
    servers: Vec<netlet_guest::Server>,
    /// Outbound sockets of `!queue`, with the MiB each is to be sent.
    queued: std::collections::HashMap<u32, usize>,
    /// What each `!tick-*` or `!zero-timers` timer does when it fires.
    ticks: std::collections::HashMap<TimerId, Tick>,
}

#[derive(Clone, Copy)]
enum Tick {
    Sleep(u64),
    Spin(u64),
    Again,
}

fn spin(ms: u64) {
    let until = std::time::Instant::now() + Duration::from_millis(ms);
    let mut x = 0u64;
    while std::time::Instant::now() < until {
        x = x.wrapping_add(1);
        std::hint::black_box(x);
    }
}

/// Tries `n` times to make something, keeping what was made; returns (made, refused).
fn make<T, E>(n: usize, kept: &mut Vec<T>, mut f: impl FnMut() -> Result<T, E>) -> (usize, usize) {
    let before = kept.len();
    kept.extend((0..n).filter_map(|_| f().ok()));
    let made = kept.len() - before;
    (made, n - made)
}

impl Hostile {
    fn command(&mut self, socket: &Socket, line: &str) {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "!loop" => {
                let mut x = 0u64;
                loop {
                    x = x.wrapping_add(1);
                    std::hint::black_box(x);
                }
            }
            "!work" => {
                // A fixed amount of computing, whatever the clock says.
                let n: u64 = rest.parse().unwrap_or(1);
                let mut x = 0x9e37_79b9_7f4a_7c15u64;
                for _ in 0..n * 1_000_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x = std::hint::black_box(x);
                }
                socket.write(format!("worked {n}\n"));
            }
            "!sleep" => {
                std::thread::sleep(Duration::from_millis(rest.parse().unwrap_or(10_000)));
                socket.write("slept\n");
            }
            "!alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "!panic" => panic!("hostile guest panics on request"),
            "!stale" => {
                let mut report = String::from("stale");
                for old in &self.closed {
                    let write = old.try_write(b"x").map_err(|e| e.code().node_code());
                    let nodelay = old.set_no_delay(true).map_err(|e| e.code().node_code());
                    old.end();
                    old.pause();
                    old.resume();
                    old.set_timeout(Duration::from_millis(10));
                    old.destroy();
                    report.push_str(&format!(
                        " [write={write:?} nodelay={nodelay:?} state={} read={} remote={:?}]",
                        old.ready_state(),
                        old.bytes_read(),
                        old.remote_address().map(|a| a.to_string())
                    ));
                }
                report.push('\n');
                socket.write(report);
            }
            "!forged" => {
                // A handle index this instance was never given: the component model
                // refuses it, which traps the guest.
                let forged = unsafe {
                    netlet_guest::__private::bindings::netlet::net::net::Socket::from_handle(
                        0x7fff_fff0,
                    )
                };
                let _ = forged.write(b"forged");
                std::mem::forget(forged);
                socket.write("forged call returned\n");
            }
            "!flood" => {
                let chunk = vec![b'f'; 1 << 20];
                let mut sent = 0usize;
                loop {
                    match socket.try_write(&chunk) {
                        Ok(_) => sent += chunk.len(),
                        Err(e) => {
                            println!("flood stopped after {sent} bytes: {}", e.code().node_code());
                            break;
                        }
                    }
                }
            }
            "!timers" => {
                let n: usize = rest.parse().unwrap_or(1000);
                for _ in 0..n {
                    self.timers
                        .push(timers::set_timeout(Duration::from_secs(3600)));
                }
                socket.write(format!("timers {n}\n"));
            }
            "!connect" => {
                let mut parts = rest.split(' ');
                let host = parts.next().unwrap_or("");
                let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                match net::connect_to(host, port) {
                    Ok(_) => socket.write("connect ok\n"),
                    Err(e) => socket.write(format!("connect {}\n", e.code().node_code())),
                };
            }
            "!wasi-connect" => {
                let reply = match std::net::TcpStream::connect(rest) {
                    Ok(_) => "wasi-connect ok\n".to_string(),
                    Err(e) => format!("wasi-connect {:?}\n", e.kind()),
                };
                socket.write(reply);
            }
            "!dns" => {
                use std::net::ToSocketAddrs;
                let reply = match (rest, 80).to_socket_addrs() {
                    Ok(addrs) => format!("dns ok {}\n", addrs.count()),
                    Err(e) => format!("dns {:?}\n", e.kind()),
                };
                socket.write(reply);
            }
            "!sockets" => {
                let n: usize = rest.parse().unwrap_or(10);
                let (ok, refused) = make(n, &mut self.udp, || {
                    netlet_guest::dgram::create_socket(
                        netlet_guest::dgram::SocketType::Udp4,
                        Default::default(),
                    )
                });
                socket.write(format!("sockets ok={ok} refused={refused}\n"));
            }
            "!wasi-sockets" => {
                let n: usize = rest.parse().unwrap_or(10);
                let (ok, refused) = make(n, &mut self.wasi_udp, || {
                    std::net::UdpSocket::bind("127.0.0.1:0")
                });
                socket.write(format!("wasi-sockets ok={ok} refused={refused}\n"));
            }
            "!udp-bind" => {
                let mut parts = rest.split(' ');
                let addr = parts.next().unwrap_or("").to_string();
                let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let reply = netlet_guest::dgram::create_socket(
                    netlet_guest::dgram::SocketType::Udp4,
                    Default::default(),
                )
                .and_then(|s| {
                    s.bind(port, Some(&addr))?;
                    let port = s.address().map(|a| a.port).unwrap_or(0);
                    self.udp.push(s);
                    Ok(port)
                });
                match reply {
                    Ok(port) => socket.write(format!("udp-bind ok {port}\n")),
                    Err(e) => socket.write(format!("udp-bind {}\n", e.code().node_code())),
                };
            }
            "!close-sockets" => {
                let n = self.udp.len() + self.wasi_udp.len();
                for s in self.udp.drain(..) {
                    s.close();
                }
                self.wasi_udp.clear();
                socket.write(format!("closed {n}\n"));
            }
            "!count" => {
                socket.write(format!("count {}\n", self.seen));
            }
            "!queue" => {
                let mut parts = rest.split(' ');
                let n: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(1);
                let mib: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(1);
                let port: u16 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let mut opened = 0;
                for _ in 0..n {
                    if let Ok(out) = net::connect_to("127.0.0.1", port) {
                        self.queued.insert(out.id(), mib);
                        opened += 1;
                    }
                }
                socket.write(format!("queue opened {opened}\n"));
            }
            "!timer-churn" => {
                let n: usize = rest.parse().unwrap_or(1000);
                for _ in 0..n {
                    let id = timers::set_timeout(Duration::from_secs(3600));
                    timers::clear(id);
                }
                socket.write(format!("churned {n}\n"));
            }
            "!deny" => {
                let n: usize = rest.parse().unwrap_or(1000);
                let denied = (0..n)
                    .filter(|_| net::connect_to("127.0.0.1", 9).is_err())
                    .count();
                socket.write(format!("denied {denied}\n"));
            }
            "!print" => {
                let n: usize = rest.parse().unwrap_or(1000);
                for i in 0..n {
                    println!("line {i} of a guest that prints too much");
                }
                socket.write(format!("printed {n}\n"));
            }
            "!hammer" => {
                let mut parts = rest.split(' ');
                let method = parts.next().unwrap_or("");
                let n: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(1000);
                for _ in 0..n {
                    match method {
                        "pause-resume" => {
                            socket.pause();
                            socket.resume();
                        }
                        "nodelay" => {
                            let _ = socket.set_no_delay(true);
                        }
                        "keepalive" => {
                            let _ = socket.set_keep_alive(true, Duration::from_secs(60));
                        }
                        "timeout" => socket.set_timeout(Duration::from_secs(3600)),
                        "write0" => {
                            let _ = socket.try_write(b"");
                        }
                        "address" => {
                            std::hint::black_box(socket.remote_address());
                        }
                        "state" => {
                            std::hint::black_box(socket.ready_state());
                        }
                        "buffer" => {
                            std::hint::black_box(socket.buffer_size());
                        }
                        "timer" => timers::clear(timers::set_timeout(Duration::from_secs(1))),
                        "udp-create" => {
                            if let Ok(s) = netlet_guest::dgram::create_socket(
                                netlet_guest::dgram::SocketType::Udp4,
                                Default::default(),
                            ) {
                                s.close();
                            }
                        }
                        "close-server" => {
                            for server in &self.servers {
                                let _ = server.close();
                            }
                        }
                        _ => break,
                    }
                }
                socket.write(format!("hammered {method} {n}\n"));
            }
            "!close-server" => {
                let refused = self.servers.iter().find_map(|s| s.close().err());
                match refused {
                    None => socket.write("close-server ok\n"),
                    Some(e) => socket.write(format!("close-server {}\n", e.code().node_code())),
                };
            }
            "!tick-sleep" | "!tick-spin" => {
                let ms: u64 = rest.parse().unwrap_or(100);
                let id = timers::set_interval(Duration::from_millis(1));
                let tick = if cmd == "!tick-sleep" {
                    Tick::Sleep(ms)
                } else {
                    Tick::Spin(ms)
                };
                self.ticks.insert(id, tick);
                socket.write("ticking\n");
            }
            "!zero-timers" => {
                let n: usize = rest.parse().unwrap_or(1000);
                for _ in 0..n {
                    self.ticks
                        .insert(timers::set_timeout(Duration::ZERO), Tick::Again);
                }
                socket.write(format!("zero-timers {n}\n"));
            }
            _ => {
                socket.write(format!("unknown {cmd}\n"));
            }
        }
    }
}

impl NetHandler for Hostile {
    fn on_listening(&mut self, server: &netlet_guest::Server) {
        self.servers.push(server.clone());
    }

    fn on_connection(&mut self, _socket: &Socket) {
        self.seen += 1;
    }

    fn on_connect(&mut self, socket: &Socket) {
        let Some(mib) = self.queued.remove(&socket.id()) else {
            return;
        };
        let chunk = vec![b'q'; 1 << 20];
        for _ in 0..mib {
            if socket.try_write(&chunk).is_err() {
                break;
            }
        }
    }

    fn on_timer(&mut self, timer: TimerId) {
        match self.ticks.get(&timer).copied() {
            Some(Tick::Sleep(ms)) => std::thread::sleep(Duration::from_millis(ms)),
            Some(Tick::Spin(ms)) => spin(ms),
            Some(Tick::Again) => {
                self.ticks.remove(&timer);
                self.ticks
                    .insert(timers::set_timeout(Duration::ZERO), Tick::Again);
            }
            None => {}
        }
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        if data.contains(&0xFF) {
            panic!("hostile guest got the poison byte");
        }
        if data.first() == Some(&b'!') {
            let text = String::from_utf8_lossy(&data).to_string();
            for line in text.lines() {
                self.command(socket, line.trim());
            }
            return;
        }
        if !socket.write(&data) {
            socket.pause();
        }
    }

    fn on_drain(&mut self, socket: &Socket) {
        socket.resume();
    }

    fn on_error(&mut self, socket: &Socket, error: netlet_guest::Error) {
        println!("socket {} error {}", socket.id(), error.code().node_code());
    }

    fn on_close(&mut self, socket: &Socket, _had_error: bool) {
        self.closed.push(socket.clone());
        if self.closed.len() > 16 {
            self.closed.remove(0);
        }
    }
}

netlet_guest::export_net!(Hostile::default());
