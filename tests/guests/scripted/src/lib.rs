//! `scripted`: a test-only handler driven by its clients. Each line a TCP client sends
//! (or each UDP datagram) is a command that calls one socket method; the reply is a line.
//! Every event is logged to stderr as `ev NAME ID ...`, so tests can assert which events
//! came, in which order, through the host's log.
//!
//! TCP commands (one per line):
//! `echo TEXT`, `nodelay 0|1`, `keepalive 0|1 MS`, `timeout MS`, `pause MS` (resume
//! after MS), `pause`, `resume`, `end`, `endwith TEXT`, `destroy`, `reset`,
//! `info [ID]`, `connections`, `address`, `close-server`, `write N` (N bytes of a
//! pattern, then `wrote N ok|full`), `timer MS`, `connect HOST PORT`, `csend TEXT`,
//! `cend`, `udp HOST PORT TEXT` (send from a fresh UDP socket, reply relayed),
//! `uconnect HOST PORT`, `usend TEXT`, `uremote`, `udisconnect` (a connected UDP socket),
//! `panic`, `log TEXT`, `after-end TEXT` (100 ms after the peer's end, write TEXT and
//! end), `sink` (discard further data), `resume ID`, `tlsconnect HOST PORT [SERVERNAME
//! [ALPN,ALPN...]]` (`connect` with TLS; `-` for no servername), `tlsinfo` (what TLS
//! negotiated for this connection: `tls none`, or `tls PROTOCOL CIPHER sni=..
//! alpn=.. peer=SUBJECT sans=A,B`).
//!
//! `listen PORT` (Node's `server.listen(PORT)`: `listen ok ID ADDR` or `listen err
//! CODE`), `paused` (`paused true|false`).
//!
//! Arguments (`-- ARGS`): `options=LIST` sets the server options in `init` (`halfopen`,
//! `pause`, `nodelay`, `keepalive:MS`, comma-separated); `listen=PORT` listens on PORT in
//! `init`; `bind=PORT` binds a UDP socket of its own to PORT in `init`;
//! `resume-after=MS` resumes each new connection MS after it came (with `pause`). Each outcome is
//! logged as `ev init-listen ...` / `ev init-bind ...`.
//!
//! UDP commands (one per datagram, reply to the sender): `echo TEXT`, `info`,
//! `ttl N`, `mttl N`, `mloop 0|1`, `broadcast 0|1`, `rcvbuf N`, `sndbuf N`,
//! `join GROUP`, `leave GROUP`, `send HOST PORT TEXT`, `big N` (reply with N bytes).

use std::collections::HashMap;
use std::time::Duration;

use netlet_guest::dgram::{self, SocketOptions, SocketType};
use netlet_guest::{
    DgramHandler, DgramSocket, Error, NetHandler, RemoteInfo, Server, ServerOptions, Socket,
    TimerId, net, timers,
};

#[derive(Default)]
struct Scripted {
    servers: Vec<Server>,
    sockets: HashMap<u32, Socket>,
    /// Timers that resume a paused socket, and timers whose firing is reported.
    resume_at: HashMap<TimerId, Socket>,
    report_at: HashMap<TimerId, Socket>,
    /// Outbound client sockets, and the connection that asked for each.
    clients: HashMap<u32, Socket>,
    last_client: Option<Socket>,
    /// UDP sockets created by `udp`, and who asked.
    udp_owners: HashMap<u32, Socket>,
    after_end: HashMap<u32, String>,
    late_writes: HashMap<TimerId, (Socket, String)>,
    /// A connected UDP socket made by `uconnect`, and who asked.
    connected_udp: Option<(DgramSocket, Socket)>,
    /// `resume-after=MS`.
    resume_after: Option<Duration>,
}

/// Per-connection flag: discard data instead of parsing commands.
#[derive(Default)]
struct Sink(bool);

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn tls_info(socket: &Socket) -> String {
    let Some(tls) = socket.tls() else {
        return format!("tls none encrypted={}\n", socket.encrypted());
    };
    let peer = tls.peer_certificate.as_ref();
    format!(
        "tls {} {} sni={} alpn={} peer={} sans={}\n",
        tls.protocol,
        tls.cipher,
        tls.servername.as_deref().unwrap_or("-"),
        tls.alpn_protocol.as_deref().unwrap_or("-"),
        peer.map_or("-", |p| p.subject.as_str()),
        peer.map_or("-".to_string(), |p| p.subject_alt_names.join(",")),
    )
}

fn info(socket: &Socket) -> String {
    let remote = socket
        .remote_address()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "-".into());
    let local = socket
        .local_address()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "info id={} remote={remote} local={local} read={} written={} buffer={} state={} paused={} server={}\n",
        socket.id(),
        socket.bytes_read(),
        socket.bytes_written(),
        socket.buffer_size(),
        socket.ready_state(),
        socket.is_paused(),
        socket
            .server_id()
            .map_or("-".to_string(), |s| s.to_string()),
    )
}

impl Scripted {
    fn command(&mut self, socket: &Socket, line: &str) {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let reply = |text: String| {
            socket.write(text);
        };
        match cmd {
            "echo" => reply(format!("{rest}\n")),
            "nodelay" => match socket.set_no_delay(rest == "1") {
                Ok(()) => reply("ok nodelay\n".into()),
                Err(e) => reply(format!("err {e}\n")),
            },
            "keepalive" => {
                let mut parts = rest.split(' ');
                let on = parts.next() == Some("1");
                let ms = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
                match socket.set_keep_alive(on, Duration::from_millis(ms)) {
                    Ok(()) => reply("ok keepalive\n".into()),
                    Err(e) => reply(format!("err {e}\n")),
                }
            }
            "timeout" => {
                socket.set_timeout(Duration::from_millis(rest.parse().unwrap_or(0)));
                reply("ok timeout\n".into());
            }
            "pause" => {
                socket.pause();
                if let Ok(ms) = rest.parse::<u64>() {
                    let timer = timers::set_timeout(Duration::from_millis(ms));
                    self.resume_at.insert(timer, socket.clone());
                }
                reply("paused\n".into());
            }
            "resume" => {
                let target = rest
                    .parse::<u32>()
                    .ok()
                    .and_then(|id| self.sockets.get(&id))
                    .unwrap_or(socket);
                target.resume();
                reply("resumed\n".into());
            }
            "sink" => {
                // Everything after this line is discarded; `sink pause` also pauses.
                socket.state::<Sink>().0 = true;
                if rest == "pause" {
                    socket.pause();
                    reply("sinking paused\n".into());
                } else {
                    reply("sinking\n".into());
                }
            }
            "end" => socket.end(),
            "endwith" => socket.end_with(format!("{rest}\n")),
            "destroy" => socket.destroy(),
            "reset" => socket.reset_and_destroy(),
            "info" => match rest.parse::<u32>() {
                Ok(id) => match self.sockets.get(&id) {
                    Some(other) => reply(info(other)),
                    None => reply(format!("err no socket {id}\n")),
                },
                Err(_) => reply(info(socket)),
            },
            "connections" => {
                let n = self.servers.first().map_or(0, Server::connections);
                reply(format!("connections {n}\n"));
            }
            "address" => {
                let a = self.servers.first().and_then(Server::address);
                reply(format!(
                    "address {}\n",
                    a.map_or("-".into(), |a| a.to_string())
                ));
            }
            "close-server" => {
                let refused = self.servers.iter().find_map(|s| s.close().err());
                reply(match refused {
                    None => "server closing\n".into(),
                    Some(e) => format!("close-server {}\n", e.code().node_code()),
                });
            }
            "write" => {
                let n: usize = rest.parse().unwrap_or(0);
                let data = pattern(n);
                let mut below = true;
                for chunk in data.chunks(64 * 1024) {
                    below = socket.write(chunk);
                }
                eprintln!(
                    "ev wrote {} {n} {}",
                    socket.id(),
                    if below { "ok" } else { "full" }
                );
            }
            "timer" => {
                let timer = timers::set_timeout(Duration::from_millis(rest.parse().unwrap_or(0)));
                self.report_at.insert(timer, socket.clone());
            }
            "connect" => {
                let mut parts = rest.split(' ');
                let host = parts.next().unwrap_or("");
                let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                match net::connect_to(host, port) {
                    Ok(client) => {
                        self.clients.insert(client.id(), socket.clone());
                        self.last_client = Some(client);
                        reply("connecting\n".into());
                    }
                    Err(e) => reply(format!("connect failed {}\n", e.code().node_code())),
                }
            }
            "tlsconnect" => {
                let mut parts = rest.split(' ');
                let host = parts.next().unwrap_or("");
                let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let mut tls = net::TlsOptions::new();
                if let Some(name) = parts.next().filter(|n| *n != "-") {
                    tls = tls.servername(name);
                }
                for proto in parts.next().into_iter().flat_map(|p| p.split(',')) {
                    tls = tls.alpn(proto);
                }
                match net::connect_tls(net::ConnectOptions::new(host, port), tls) {
                    Ok(client) => {
                        self.clients.insert(client.id(), socket.clone());
                        self.last_client = Some(client);
                        reply("connecting\n".into());
                    }
                    Err(e) => reply(format!("connect failed {}\n", e.code().node_code())),
                }
            }
            "tlsinfo" => reply(tls_info(socket)),
            "csend" => {
                if let Some(client) = &self.last_client {
                    client.write(format!("{rest}\n"));
                }
            }
            "cend" => {
                if let Some(client) = &self.last_client {
                    client.end();
                }
            }
            "udp" => {
                let mut parts = rest.splitn(3, ' ');
                let host = parts.next().unwrap_or("");
                let port: u16 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let text = parts.next().unwrap_or("");
                let kind = if host.contains(':') {
                    SocketType::Udp6
                } else {
                    SocketType::Udp4
                };
                match dgram::create_socket(kind, SocketOptions::default()) {
                    Ok(udp) => match udp.send(text, port, host) {
                        Ok(()) => {
                            self.udp_owners.insert(udp.id(), socket.clone());
                            reply("udp sent\n".into());
                        }
                        Err(e) => {
                            udp.close();
                            reply(format!("udp failed {}\n", e.code().node_code()));
                        }
                    },
                    Err(e) => reply(format!("udp failed {}\n", e.code().node_code())),
                }
            }
            "uconnect" => {
                let mut parts = rest.split(' ');
                let host = parts.next().unwrap_or("");
                let port: u16 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let kind = if host.contains(':') {
                    SocketType::Udp6
                } else {
                    SocketType::Udp4
                };
                let result = dgram::create_socket(kind, SocketOptions::default())
                    .and_then(|udp| udp.connect(port, Some(host)).map(|()| udp));
                match result {
                    Ok(udp) => {
                        self.connected_udp = Some((udp, socket.clone()));
                        reply("uconnect ok\n".into());
                    }
                    Err(e) => reply(format!("uconnect failed {}\n", e.code().node_code())),
                }
            }
            "usend" => match &self.connected_udp {
                Some((udp, _)) => match udp.send_connected(rest) {
                    Ok(()) => reply("usend ok\n".into()),
                    Err(e) => reply(format!("usend failed {}\n", e.code().node_code())),
                },
                None => reply("usend failed no socket\n".into()),
            },
            "uremote" => match &self.connected_udp {
                Some((udp, _)) => match udp.remote_address() {
                    Ok(a) => reply(format!("uremote {a}\n")),
                    Err(e) => reply(format!("uremote err {}\n", e.code().node_code())),
                },
                None => reply("uremote err no socket\n".into()),
            },
            "udisconnect" => match &self.connected_udp {
                Some((udp, _)) => match udp.disconnect() {
                    Ok(()) => reply("udisconnect ok\n".into()),
                    Err(e) => reply(format!("udisconnect err {}\n", e.code().node_code())),
                },
                None => reply("udisconnect err no socket\n".into()),
            },
            "after-end" => {
                self.after_end.insert(socket.id(), format!("{rest}\n"));
                reply("ok after-end\n".into());
            }
            "listen" => {
                let port: u16 = rest.parse().unwrap_or(0);
                match net::listen(port, None, ServerOptions::default()) {
                    Ok(server) => reply(format!(
                        "listen ok {} {}\n",
                        server.id(),
                        server.address().map_or("-".into(), |a| a.to_string())
                    )),
                    Err(e) => reply(format!("listen err {}\n", e.code().node_code())),
                }
            }
            "paused" => reply(format!("paused {}\n", socket.is_paused())),
            "panic" => panic!("scripted guest asked to panic"),
            "log" => println!("{rest}"),
            _ => reply(format!("err unknown command {cmd:?}\n")),
        }
    }
}

/// `options=halfopen,pause,nodelay,keepalive:MS`.
fn parse_options(list: &str) -> ServerOptions {
    let mut options = ServerOptions::default();
    for item in list.split(',') {
        match item.split_once(':') {
            Some(("keepalive", ms)) => {
                options.keep_alive = true;
                options.keep_alive_initial_delay = Duration::from_millis(ms.parse().unwrap_or(0));
            }
            _ => match item {
                "halfopen" => options.allow_half_open = true,
                "pause" => options.pause_on_connect = true,
                "nodelay" => options.no_delay = true,
                "keepalive" => options.keep_alive = true,
                _ => {}
            },
        }
    }
    options
}

impl NetHandler for Scripted {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        for arg in args {
            match arg.split_once('=') {
                Some(("options", list)) => net::set_server_options(parse_options(list)),
                Some(("listen", port)) => {
                    let port: u16 = port.parse().map_err(|_| format!("bad port {port}"))?;
                    match net::listen(port, None, ServerOptions::default()) {
                        Ok(server) => {
                            eprintln!(
                                "ev init-listen ok {} {}",
                                server.id(),
                                server.address().map_or("-".into(), |a| a.to_string())
                            );
                            self.servers.push(server);
                        }
                        Err(e) => eprintln!("ev init-listen err {}", e.code().node_code()),
                    }
                }
                Some(("bind", port)) => {
                    let port: u16 = port.parse().map_err(|_| format!("bad port {port}"))?;
                    let result = dgram::create_socket(SocketType::Udp4, SocketOptions::default())
                        .and_then(|s| s.bind(port, None).map(|()| s));
                    match result {
                        Ok(socket) => eprintln!(
                            "ev init-bind ok {} {}",
                            socket.id(),
                            socket.address().map_or("-".into(), |a| a.to_string())
                        ),
                        Err(e) => eprintln!("ev init-bind err {}", e.code().node_code()),
                    }
                }
                Some(("resume-after", ms)) => {
                    let ms = ms.parse().map_err(|_| format!("bad duration {ms}"))?;
                    self.resume_after = Some(Duration::from_millis(ms));
                }
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(())
    }

    fn on_listening(&mut self, server: &Server) {
        eprintln!(
            "ev listening {} {}",
            server.id(),
            server.address().map_or("-".into(), |a| a.to_string())
        );
        self.servers.push(server.clone());
    }

    fn on_connection(&mut self, socket: &Socket) {
        eprintln!(
            "ev connection {} {}",
            socket.id(),
            socket.server_id().unwrap_or(0)
        );
        self.sockets.insert(socket.id(), socket.clone());
        if let Some(after) = self.resume_after {
            let timer = timers::set_timeout(after);
            self.resume_at.insert(timer, socket.clone());
        }
    }

    fn on_connect(&mut self, socket: &Socket) {
        eprintln!("ev connect {}", socket.id());
        if let Some(owner) = self.clients.get(&socket.id()) {
            if socket.encrypted() {
                owner.write(format!("client connect {}", tls_info(socket)));
            } else {
                owner.write("client connect\n");
            }
        }
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        eprintln!("ev data {} {}", socket.id(), data.len());
        if socket.state::<Sink>().0 {
            return;
        }
        if let Some(owner) = self.clients.get(&socket.id()) {
            owner.write(format!(
                "client data {}\n",
                String::from_utf8_lossy(&data).trim_end()
            ));
            return;
        }
        let mut pending = std::mem::take(&mut *socket.state::<Vec<u8>>());
        pending.extend_from_slice(&data);
        let mut start = 0;
        while let Some(n) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&pending[start..start + n])
                .trim_end_matches('\r')
                .to_string();
            start += n + 1;
            self.command(socket, &line);
            if socket.state::<Sink>().0 {
                return;
            }
        }
        pending.drain(..start);
        *socket.state::<Vec<u8>>() = pending;
    }

    fn on_end(&mut self, socket: &Socket) {
        eprintln!("ev end {}", socket.id());
        if let Some(owner) = self.clients.get(&socket.id()) {
            owner.write("client end\n");
        }
        if let Some(text) = self.after_end.remove(&socket.id()) {
            // Later, so only a half-open socket can still carry it.
            let timer = timers::set_timeout(Duration::from_millis(100));
            self.late_writes.insert(timer, (socket.clone(), text));
        }
    }

    fn on_drain(&mut self, socket: &Socket) {
        eprintln!("ev drain {}", socket.id());
    }

    fn on_timeout(&mut self, socket: &Socket) {
        // Only logged: a write would itself be activity and re-arm the timeout.
        eprintln!("ev timeout {}", socket.id());
    }

    fn on_error(&mut self, socket: &Socket, error: Error) {
        eprintln!(
            "ev error {} {} {}",
            socket.id(),
            error.code().node_code(),
            error.message()
        );
        if let Some(owner) = self.clients.get(&socket.id()) {
            if error.code() == netlet_guest::ErrorCode::TlsHandshakeFailed {
                owner.write(format!(
                    "client error {} {}\n",
                    error.code().node_code(),
                    error.message()
                ));
            } else {
                owner.write(format!("client error {}\n", error.code().node_code()));
            }
        }
    }

    fn on_close(&mut self, socket: &Socket, had_error: bool) {
        eprintln!("ev close {} {had_error}", socket.id());
        self.sockets.remove(&socket.id());
        self.after_end.remove(&socket.id());
        if let Some(owner) = self.clients.remove(&socket.id()) {
            owner.write(format!("client close {had_error}\n"));
        }
    }

    fn on_drop(
        &mut self,
        server: &Server,
        _local: Option<netlet_guest::AddressInfo>,
        remote: Option<netlet_guest::AddressInfo>,
    ) {
        let remote = remote.map_or("-".to_string(), |a| a.to_string());
        eprintln!("ev drop {} {remote}", server.id());
    }

    fn on_server_close(&mut self, server: &Server) {
        eprintln!("ev server-close {}", server.id());
        self.servers.retain(|s| s != server);
    }

    fn on_timer(&mut self, timer: TimerId) {
        if let Some(socket) = self.resume_at.remove(&timer) {
            eprintln!("ev resumed {}", socket.id());
            socket.resume();
            socket.write("resumed\n");
        }
        if let Some((socket, text)) = self.late_writes.remove(&timer) {
            match socket.try_write(&text) {
                Ok(_) => eprintln!("ev late-write {} ok", socket.id()),
                Err(e) => eprintln!("ev late-write {} {}", socket.id(), e.code().node_code()),
            }
            socket.end();
        }
        if let Some(socket) = self.report_at.remove(&timer) {
            socket.write(format!("timer {}\n", timer.0));
        }
    }
}

impl Scripted {
    fn udp_command(
        &mut self,
        socket: &DgramSocket,
        line: &str,
        rinfo: &RemoteInfo,
    ) -> Option<Vec<u8>> {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let ok = |r: Result<(), Error>, what: &str| -> Vec<u8> {
            match r {
                Ok(()) => format!("ok {what}").into_bytes(),
                Err(e) => format!("err {what} {}", e.code().node_code()).into_bytes(),
            }
        };
        let n = || rest.parse::<u32>().unwrap_or(0);
        Some(match cmd {
            "echo" => rest.as_bytes().to_vec(),
            "info" => {
                let a = socket
                    .address()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|e| format!("err {e}"));
                format!(
                    "info address={a} from={}:{} family={} size={}",
                    rinfo.address, rinfo.port, rinfo.family, rinfo.size
                )
                .into_bytes()
            }
            "ttl" => ok(socket.set_ttl(n() as u8), "ttl"),
            "mttl" => ok(socket.set_multicast_ttl(n() as u8), "mttl"),
            "mloop" => ok(socket.set_multicast_loopback(rest == "1"), "mloop"),
            "broadcast" => ok(socket.set_broadcast(rest == "1"), "broadcast"),
            "rcvbuf" => match socket
                .set_recv_buffer_size(n())
                .and_then(|()| socket.recv_buffer_size())
            {
                Ok(size) => format!("rcvbuf {size}").into_bytes(),
                Err(e) => format!("err rcvbuf {}", e.code().node_code()).into_bytes(),
            },
            "sndbuf" => match socket
                .set_send_buffer_size(n())
                .and_then(|()| socket.send_buffer_size())
            {
                Ok(size) => format!("sndbuf {size}").into_bytes(),
                Err(e) => format!("err sndbuf {}", e.code().node_code()).into_bytes(),
            },
            "join" => ok(socket.add_membership(rest, None), "join"),
            "leave" => ok(socket.drop_membership(rest, None), "leave"),
            "send" => {
                let mut parts = rest.splitn(3, ' ');
                let host = parts.next().unwrap_or("");
                let port: u16 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let text = parts.next().unwrap_or("");
                ok(socket.send(text, port, host), "send")
            }
            "big" => pattern(n() as usize),
            _ => return None,
        })
    }
}

impl DgramHandler for Scripted {
    fn on_listening(&mut self, socket: &DgramSocket) {
        eprintln!(
            "ev udp-listening {} {}",
            socket.id(),
            socket
                .address()
                .map(|a| a.to_string())
                .unwrap_or_else(|e| e.to_string())
        );
    }

    fn on_connect(&mut self, socket: &DgramSocket) {
        eprintln!("ev udp-connect {}", socket.id());
        if let Some((udp, owner)) = &self.connected_udp
            && udp == socket
        {
            let remote = udp
                .remote_address()
                .map(|a| a.to_string())
                .unwrap_or_default();
            owner.write(format!("udp connect {remote}\n"));
        }
    }

    fn on_message(&mut self, socket: &DgramSocket, msg: Vec<u8>, rinfo: RemoteInfo) {
        eprintln!(
            "ev message {} {} {}:{}",
            socket.id(),
            msg.len(),
            rinfo.address,
            rinfo.port
        );
        if let Some((udp, owner)) = &self.connected_udp
            && udp == socket
        {
            owner.write(format!(
                "udp creply {} from {rinfo}\n",
                String::from_utf8_lossy(&msg)
            ));
            return;
        }
        if let Some(owner) = self.udp_owners.get(&socket.id()) {
            owner.write(format!(
                "udp reply {} from {rinfo}\n",
                String::from_utf8_lossy(&msg)
            ));
            socket.close();
            return;
        }
        let line = String::from_utf8_lossy(&msg).to_string();
        let reply = self
            .udp_command(socket, &line, &rinfo)
            .unwrap_or_else(|| format!("err unknown command {line:?}").into_bytes());
        if let Err(e) = socket.send(&reply, rinfo.port, &rinfo.address) {
            eprintln!(
                "ev udp-reply-failed {} {}",
                socket.id(),
                e.code().node_code()
            );
        }
    }

    fn on_error(&mut self, socket: &DgramSocket, error: Error) {
        eprintln!("ev udp-error {} {}", socket.id(), error.message());
    }

    fn on_close(&mut self, socket: &DgramSocket) {
        eprintln!("ev udp-close {}", socket.id());
        self.udp_owners.remove(&socket.id());
    }
}

netlet_guest::export_handler!(Scripted::default());
