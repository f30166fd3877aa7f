//! UDP socket options, as Node's `dgram.Socket` sets them: broadcast, TTLs, multicast
//! interface, loopback and membership, kernel buffer sizes.

use std::net::{IpAddr, Ipv4Addr};

use super::DgramView;
use crate::bindings::ErrorCode;
use crate::error::error_code;
use crate::transport::DgramOption;

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
    /// Sets `option` (built knowing whether the socket is a `udp6` one) on socket `id`.
    fn set(
        &self,
        id: u32,
        option: impl FnOnce(bool) -> Result<DgramOption, ErrorCode>,
    ) -> Result<(), ErrorCode> {
        let udp = self.sock(id)?;
        let sock = udp.sock.as_ref().ok_or(ErrorCode::InvalidState)?;
        sock.set_option(option(udp.v6)?).map_err(|e| error_code(&e))
    }

    pub(super) fn set_broadcast(&self, id: u32, flag: bool) -> Result<(), ErrorCode> {
        self.set(id, |_| Ok(DgramOption::Broadcast(flag)))
    }

    pub(super) fn set_ttl(&self, id: u32, ttl: u8) -> Result<(), ErrorCode> {
        if ttl == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let hops = u32::from(ttl);
        self.set(id, |v6| Ok(DgramOption::Ttl { hops, v6 }))
    }

    pub(super) fn set_multicast_ttl(&self, id: u32, ttl: u8) -> Result<(), ErrorCode> {
        let hops = u32::from(ttl);
        self.set(id, |v6| Ok(DgramOption::MulticastTtl { hops, v6 }))
    }

    pub(super) fn set_multicast_loopback(&self, id: u32, flag: bool) -> Result<(), ErrorCode> {
        self.set(id, |v6| Ok(DgramOption::MulticastLoopback { on: flag, v6 }))
    }

    pub(super) fn set_multicast_interface(
        &self,
        id: u32,
        interface: &str,
    ) -> Result<(), ErrorCode> {
        self.set(id, |v6| {
            Ok(if v6 {
                DgramOption::MulticastInterfaceV6(parse_interface_v6(Some(interface))?)
            } else {
                DgramOption::MulticastInterfaceV4(parse_interface_v4(Some(interface))?)
            })
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
        self.set(id, |v6| match (group, v6) {
            (IpAddr::V4(group), false) => Ok(DgramOption::MembershipV4 {
                group,
                interface: parse_interface_v4(interface)?,
                join,
            }),
            (IpAddr::V6(group), true) => Ok(DgramOption::MembershipV6 {
                group,
                interface: parse_interface_v6(interface)?,
                join,
            }),
            _ => Err(ErrorCode::InvalidArgument),
        })
    }

    /// `SO_RCVBUF` (`recv`) or `SO_SNDBUF`.
    pub(super) fn buffer_size(&self, id: u32, recv: bool) -> Result<u32, ErrorCode> {
        let udp = self.sock(id)?;
        let sock = udp.sock.as_ref().ok_or(ErrorCode::InvalidState)?;
        let size = sock.buffer_size(recv).map_err(|e| error_code(&e))?;
        Ok(u32::try_from(size).unwrap_or(u32::MAX))
    }

    pub(super) fn set_buffer_size(&self, id: u32, recv: bool, size: u32) -> Result<(), ErrorCode> {
        let size = size as usize;
        self.set(id, |_| Ok(DgramOption::BufferSize { recv, size }))
    }
}
