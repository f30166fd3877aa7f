//! Outbound TCP connections: the guest's `net.connect`. The call validates its options,
//! asks the policy, and starts the connect through the shard's
//! [`Network`](crate::transport::Network); the outcome comes back through the reactor
//! as a completion, and [`NetView::finish_connect`] hands the stream to the socket.

use std::net::{IpAddr, SocketAddr};

use super::{NetView, TcpConn};
use crate::bindings::ErrorCode;
use crate::bindings::netlet::net::net::ConnectOptions;
use crate::error::{error_info, host_error};
use crate::events::HostEvent;
use crate::policy::Use;
use crate::reactor::Completion;
use crate::resolve::{self, display_target};
use crate::transport::tcp::of_family;
use crate::transport::{ConnectError, ConnectRequest, Stream};

impl NetView<'_> {
    /// The guest's `net.connect`: validates, applies the policy where it can at once, and
    /// starts the connection. Returns the new socket's id.
    pub fn connect(&mut self, options: ConnectOptions) -> Result<u32, ErrorCode> {
        let ConnectOptions {
            host,
            port,
            family,
            local_address,
            no_delay,
            keep_alive,
            keep_alive_initial_delay_ms,
            allow_half_open,
        } = options;
        if port == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let host = if host.is_empty() {
            "localhost".to_string()
        } else {
            host
        };
        let local = match local_address.as_deref() {
            None | Some("") => None,
            Some(s) => Some(
                s.parse::<IpAddr>()
                    .map_err(|_| ErrorCode::InvalidArgument)?,
            ),
        };
        let policy = self.cx.shard.policy.clone();
        let name_allowed = policy.permits_name(Use::Connect, &host, port);
        let addrs = resolve::resolve_now(&host);
        let permitted = match &addrs {
            Some(ips) => {
                name_allowed
                    || ips
                        .iter()
                        .filter(|ip| of_family(ip, family))
                        .any(|ip| policy.permits(Use::Connect, SocketAddr::new(*ip, port)))
            }
            None => {
                if !resolve::is_plausible_name(&host) {
                    return Err(ErrorCode::InvalidArgument);
                }
                policy.permits_name(Use::Lookup, &host, port)
            }
        };
        if !permitted {
            self.cx.denied(Use::Connect, &display_target(&host, port));
            return Err(ErrorCode::AccessDenied);
        }
        let permit = self.cx.socket_permit().ok_or(ErrorCode::WouldExceedLimit)?;
        let id = self.cx.ids.allocate();
        let mut conn = TcpConn::new(self.cx, id, allow_half_open);
        conn.connecting = true;
        conn._permit = Some(permit);
        conn.pending.no_delay = no_delay.then_some(true);
        conn.pending.keep_alive = keep_alive.then_some((true, keep_alive_initial_delay_ms));
        self.tcp.conns.insert(id, conn);
        self.cx.quota.in_flight += 1;
        let reactor = self.cx.shard.reactor.clone();
        let inst = self.cx.key;
        self.cx.shard.net.connect(
            ConnectRequest {
                host,
                port,
                family,
                addrs,
                name_allowed,
                local,
                policy,
            },
            Box::new(move |result| reactor.complete(Completion::TcpConnect { inst, id, result })),
        );
        // The caller returns a handle to it.
        self.cx.ids.handle_given(id);
        Ok(id)
    }

    /// The connect started by [`NetView::connect`] finished.
    pub fn finish_connect(&mut self, id: u32, result: Result<Box<dyn Stream>, ConnectError>) {
        self.cx.quota.in_flight = self.cx.quota.in_flight.saturating_sub(1);
        let Some(conn) = self.tcp.conns.get_mut(&id) else {
            // Destroyed while connecting; a stream that did come up is dropped here.
            return;
        };
        match result {
            Err(ConnectError {
                error,
                target,
                denied,
            }) => {
                let info = if denied {
                    self.cx.denied(Use::Connect, &target);
                    host_error(
                        ErrorCode::AccessDenied,
                        format!("connect EACCES {target} (not allowed by --allow)"),
                    )
                } else {
                    error_info(&error, "connect", Some(&target))
                };
                self.close(id, Some(info));
            }
            Ok(mut stream) => {
                conn.connecting = false;
                conn.local = stream.local_addr().ok();
                conn.peer = stream.peer_addr().ok();
                if let Some(no_delay) = conn.pending.no_delay {
                    let _ = stream.set_nodelay(no_delay);
                }
                if let Some((enable, delay)) = conn.pending.keep_alive {
                    let _ = stream.set_keepalive(enable, delay);
                }
                conn.stream = Some(stream);
                self.events.push(HostEvent::Connect(id));
                // Writes and `end` made while connecting go out now.
                self.touch(id);
                self.read(id);
            }
        }
    }
}
