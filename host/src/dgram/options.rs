//! UDP socket options, as Node's `dgram.Socket` sets them: broadcast, TTLs, multicast
//! interface, loopback and membership, kernel buffer sizes.

use std::net::{IpAddr, Ipv4Addr};

use socket2::SockRef;

use super::DgramView;
use crate::bindings::ErrorCode;
use crate::error::error_code;

fn parse_interface_v4(interface: Option<&str>) -> Result<Ipv4Addr, ErrorCode> {
    match interface {
        None | Some("") => Ok(Ipv4Addr::UNSPECIFIED),
        Some(s) => s.parse().map_err(|_| ErrorCode::InvalidArgument),
    }
}

/// An IPv6 interface as Node writes it (`::%2`, `%eth0` is not supported) or an index.
fn parse_interface_v6(interface: Option<&str>) -> Result<u32, ErrorCode> {
    match interface {
        None | Some("") => Ok(0),
        Some(s) => {
            let index = s.rsplit_once('%').map_or(s, |(_, scope)| scope);
            index.parse().map_err(|_| ErrorCode::InvalidArgument)
        }
    }
}

impl DgramView<'_> {
    /// Applies `set` to the socket's options, with whether it is a `udp6` socket.
    fn with_options<T>(
        &self,
        id: u32,
        set: impl FnOnce(SockRef<'_>, bool) -> Result<T, ErrorCode>,
    ) -> Result<T, ErrorCode> {
        let udp = self.sock(id)?;
        let sock = udp.sock.as_ref().ok_or(ErrorCode::InvalidState)?;
        set(sock.options(), udp.v6)
    }

    pub(super) fn set_broadcast(&self, id: u32, flag: bool) -> Result<(), ErrorCode> {
        self.with_options(id, |s, _| s.set_broadcast(flag).map_err(|e| error_code(&e)))
    }

    pub(super) fn set_ttl(&self, id: u32, ttl: u8) -> Result<(), ErrorCode> {
        if ttl == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let ttl = u32::from(ttl);
        self.with_options(id, |s, v6| {
            if v6 {
                s.set_unicast_hops_v6(ttl)
            } else {
                s.set_ttl_v4(ttl)
            }
            .map_err(|e| error_code(&e))
        })
    }

    pub(super) fn set_multicast_ttl(&self, id: u32, ttl: u8) -> Result<(), ErrorCode> {
        let ttl = u32::from(ttl);
        self.with_options(id, |s, v6| {
            if v6 {
                s.set_multicast_hops_v6(ttl)
            } else {
                s.set_multicast_ttl_v4(ttl)
            }
            .map_err(|e| error_code(&e))
        })
    }

    pub(super) fn set_multicast_loopback(&self, id: u32, flag: bool) -> Result<(), ErrorCode> {
        self.with_options(id, |s, v6| {
            if v6 {
                s.set_multicast_loop_v6(flag)
            } else {
                s.set_multicast_loop_v4(flag)
            }
            .map_err(|e| error_code(&e))
        })
    }

    pub(super) fn set_multicast_interface(
        &self,
        id: u32,
        interface: &str,
    ) -> Result<(), ErrorCode> {
        self.with_options(id, |s, v6| {
            if v6 {
                s.set_multicast_if_v6(parse_interface_v6(Some(interface))?)
            } else {
                s.set_multicast_if_v4(&parse_interface_v4(Some(interface))?)
            }
            .map_err(|e| error_code(&e))
        })
    }

    /// Node's `addMembership` (`join`) / `dropMembership`.
    pub(super) fn membership(
        &self,
        id: u32,
        group: &str,
        interface: Option<&str>,
        join: bool,
    ) -> Result<(), ErrorCode> {
        let group: IpAddr = group.parse().map_err(|_| ErrorCode::InvalidArgument)?;
        if !group.is_multicast() {
            return Err(ErrorCode::InvalidArgument);
        }
        self.with_options(id, |sock, v6| {
            let result = match (group, v6) {
                (IpAddr::V4(g), false) => {
                    let iface = parse_interface_v4(interface)?;
                    if join {
                        sock.join_multicast_v4(&g, &iface)
                    } else {
                        sock.leave_multicast_v4(&g, &iface)
                    }
                }
                (IpAddr::V6(g), true) => {
                    let index = parse_interface_v6(interface)?;
                    if join {
                        sock.join_multicast_v6(&g, index)
                    } else {
                        sock.leave_multicast_v6(&g, index)
                    }
                }
                _ => return Err(ErrorCode::InvalidArgument),
            };
            result.map_err(|e| error_code(&e))
        })
    }

    /// `SO_RCVBUF` (`recv`) or `SO_SNDBUF`.
    pub(super) fn buffer_size(&self, id: u32, recv: bool) -> Result<u32, ErrorCode> {
        self.with_options(id, |s, _| {
            let size = if recv {
                s.recv_buffer_size()
            } else {
                s.send_buffer_size()
            }
            .map_err(|e| error_code(&e))?;
            Ok(u32::try_from(size).unwrap_or(u32::MAX))
        })
    }

    pub(super) fn set_buffer_size(&self, id: u32, recv: bool, size: u32) -> Result<(), ErrorCode> {
        self.with_options(id, |s, _| {
            if recv {
                s.set_recv_buffer_size(size as usize)
            } else {
                s.set_send_buffer_size(size as usize)
            }
            .map_err(|e| error_code(&e))
        })
    }
}
