//! Servers as an instance sees them: the operator's listeners it is handed, the ones its
//! code claims or binds with `listen` (Node's `server.listen(port)`), and how their
//! accepted sockets start (Node's `net.createServer(options)`).
//!
//! The shard owns every listening socket; an instance holds a [`ServerView`] per server.
//! A primary instance is handed its views before `init` runs, unannounced, so that code
//! which names its port (`listen(8124)`) can claim the operator's listener for it; once
//! `init` returns, the rest are announced with `listening` events. A listener `listen`
//! binds itself (where `--allow` permits) waits in [`Tcp::new_listeners`] for the shard to
//! register it after the call.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{NetView, Tcp};
use crate::bindings::ErrorCode;
use crate::bindings::netlet::net::net::ServerOptions;
use crate::context::GuestSocket;
use crate::events::HostEvent;
use crate::policy::Use;
use crate::resolve::display_addr;
use crate::transport::ListenerSource;

/// What an instance knows of one server.
pub struct ServerView {
    pub addr: SocketAddr,
    /// The port the code names it by (see [`crate::config::ListenAddr`]).
    pub code_port: u16,
    /// Open connections it accepted (in this instance).
    pub connections: u32,
    /// Still accepting (`close` not called).
    pub listening: bool,
    /// Its `listening` event was queued: the guest knows it.
    pub announced: bool,
    /// The code claimed it with `listen`.
    pub claimed: bool,
    /// The options `listen` gave; `None`: the instance's `set-server-options`.
    pub options: Option<ServerOptions>,
}

/// A listener `listen` bound, for the shard to register after the call.
pub struct NewListener {
    pub id: u32,
    pub code_port: u16,
    pub source: Box<dyn ListenerSource>,
    /// Its place among the guest's own sockets: a listener holds a descriptor.
    pub permit: GuestSocket,
}

/// An instance's server options, to hand to another.
pub struct ServerOptionsSnapshot {
    instance: ServerOptions,
    servers: Vec<(u32, Option<ServerOptions>)>,
}

/// Node's defaults for `net.createServer()`.
pub fn default_options() -> ServerOptions {
    ServerOptions {
        allow_half_open: false,
        pause_on_connect: false,
        no_delay: false,
        keep_alive: false,
        keep_alive_initial_delay_ms: 0,
    }
}

impl Tcp {
    /// Hands the instance a server, unannounced (see [`NetView::announce_servers`]). A
    /// server it already has keeps its state.
    pub fn add_server(&mut self, id: u32, addr: SocketAddr, code_port: u16) {
        self.servers.entry(id).or_insert(ServerView {
            addr,
            code_port,
            connections: 0,
            listening: true,
            announced: false,
            claimed: false,
            options: None,
        });
    }

    /// The options server `id`'s next connection starts with: its `listen` options, or
    /// the instance's.
    pub fn options_for(&self, id: u32) -> ServerOptions {
        self.servers
            .get(&id)
            .and_then(|s| s.options)
            .unwrap_or(self.server_options)
    }

    /// Its server options: the instance's, and each server's own.
    pub fn server_options_snapshot(&self) -> ServerOptionsSnapshot {
        ServerOptionsSnapshot {
            instance: self.server_options,
            servers: self
                .servers
                .iter()
                .map(|(id, view)| (*id, view.options))
                .collect(),
        }
    }

    /// Takes another instance's server options for the servers both have (a
    /// per-connection instance serves its connection as the primary's code said).
    pub fn take_server_options(&mut self, from: ServerOptionsSnapshot) {
        self.server_options = from.instance;
        for (id, options) in from.servers {
            if let Some(view) = self.servers.get_mut(&id) {
                view.options = options;
            }
        }
    }
}

impl NetView<'_> {
    /// Queues a `listening` event for every server the instance has not heard of, in id
    /// order.
    pub fn announce_servers(&mut self) {
        let mut ids: Vec<u32> = self
            .tcp
            .servers
            .iter()
            .filter(|(_, s)| !s.announced && s.listening)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.announce(id);
        }
    }

    fn announce(&mut self, id: u32) {
        if let Some(view) = self.tcp.servers.get_mut(&id) {
            view.announced = true;
            self.events.push(HostEvent::Listening(id));
        }
    }

    /// The guest's `set-server-options`.
    pub fn set_server_options(&mut self, options: ServerOptions) {
        self.tcp.server_options = options;
    }

    /// The guest's `listen(port, host, options)`: the operator's listener the code
    /// knows by `port`, or a new one where the policy permits; returns the server id.
    pub fn listen(
        &mut self,
        port: u16,
        host: Option<&str>,
        options: ServerOptions,
    ) -> Result<u32, ErrorCode> {
        let ip = match host {
            None | Some("") => None,
            Some(h) if h.eq_ignore_ascii_case("localhost") => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Some(h) => Some(
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map_err(|_| ErrorCode::InvalidArgument)?,
            ),
        };
        // The operator's listeners for this port; the one on `host` first, if any is.
        let mut matching: Vec<(u32, bool, bool)> = self
            .tcp
            .servers
            .iter()
            .filter(|(_, s)| s.code_port == port && s.listening)
            .map(|(id, s)| (*id, s.claimed, Some(s.addr.ip()) == ip))
            .collect();
        matching.sort_unstable_by_key(|&(id, _, on_host)| (!on_host, id));
        if let Some(&(id, _, _)) = matching.iter().find(|(_, claimed, _)| !claimed) {
            return Ok(self.claim(id, options));
        }
        if !matching.is_empty() {
            // Node: listening twice on one port is EADDRINUSE.
            return Err(ErrorCode::AddressInUse);
        }
        if self.cx.per_connection {
            // A listener of one connection's own would outlive its instance's purpose.
            return Err(ErrorCode::InvalidState);
        }
        let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), port);
        if !self.cx.policy().permits(Use::Listen, addr) {
            let target = display_addr(&addr);
            self.cx.log(format_args!(
                "denied listen on {target}: no listener is configured for port {port} \
                 (run with --tcp {target}, or --tcp ADDR={port} to serve it elsewhere; \
                 or --allow {target} to let the handler bind it)"
            ));
            return Err(ErrorCode::AccessDenied);
        }
        let Some(permit) = self.cx.socket_permit() else {
            return Err(ErrorCode::WouldExceedLimit);
        };
        let reuse = self.cx.config().shards > 1 || self.cx.config().reuse_port;
        let source = self
            .cx
            .shard
            .net
            .tcp_listener(addr, reuse)
            .map_err(|e| crate::error::error_code(&e))?;
        let bound = source.local_addr().unwrap_or(addr);
        let id = self.cx.shard.next_server_id();
        self.tcp.add_server(id, bound, port);
        self.tcp.new_listeners.push(NewListener {
            id,
            code_port: port,
            source,
            permit,
        });
        Ok(self.claim(id, options))
    }

    /// Claims server `id` for the code: its options, and one `listening` event after
    /// the claim (the one already queued, if any).
    fn claim(&mut self, id: u32, options: ServerOptions) -> u32 {
        let Some(view) = self.tcp.servers.get_mut(&id) else {
            return id;
        };
        view.claimed = true;
        view.options = Some(options);
        let queued = self
            .events
            .queue
            .iter()
            .any(|e| matches!(e, HostEvent::Listening(s) if *s == id));
        if !queued {
            self.announce(id);
        }
        id
    }
}
