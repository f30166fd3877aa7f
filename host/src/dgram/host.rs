//! The guest's side of the `dgram` interface: Node's `dgram.createSocket` and socket
//! methods, served by [`DgramView`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wasmtime::component::Resource;

use super::io::dest_now;
use super::{DgramRep, DgramView, MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
use crate::bindings::netlet::net::dgram::{Host, HostSocket, SocketOptions, SocketType};
use crate::bindings::{AddressInfo, ErrorCode};
use crate::error::error_code;
use crate::net::address_info;
use crate::policy::Use;
use crate::reactor::UdpRequest;
use crate::resolve::{self, display_addr, display_target};
use crate::transport::UdpOptions;

impl HostSocket for DgramView<'_> {
    fn id(&mut self, this: Resource<DgramRep>) -> u32 {
        this.rep()
    }

    fn bind(
        &mut self,
        this: Resource<DgramRep>,
        port: u16,
        address: Option<String>,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let udp = self.sock(id)?;
        if udp.bound {
            return Err(ErrorCode::InvalidState);
        }
        let v6 = udp.v6;
        if port != 0
            && let Some(claimed) = self.claim_host_port(id, port)
        {
            return claimed;
        }
        let ip = match address.as_deref() {
            None | Some("") => {
                if v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                }
            }
            Some(host) => match dest_now(Some(host), v6) {
                Some(ip) => ip?,
                None => return Err(ErrorCode::InvalidArgument),
            },
        };
        let addr = SocketAddr::new(ip, port);
        if !self.cx.policy().permits(Use::UdpBind, addr) {
            self.cx.denied(Use::UdpBind, &display_addr(&addr));
            return Err(ErrorCode::AccessDenied);
        }
        self.bind_to(id, addr)
    }

    fn send(
        &mut self,
        this: Resource<DgramRep>,
        msg: Vec<u8>,
        port: u16,
        address: Option<String>,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let udp = self.sock(id)?;
        let max = if udp.v6 {
            MAX_DATAGRAM_V6
        } else {
            MAX_DATAGRAM_V4
        };
        if msg.len() > max {
            return Err(ErrorCode::MessageTooLarge);
        }
        if udp.connected.is_some() {
            if port != 0 || address.is_some() {
                return Err(ErrorCode::InvalidArgument);
            }
            return self.enqueue(id, msg, None);
        }
        if port == 0 {
            // No destination on an unconnected socket: Node's ERR_SOCKET_DGRAM_NOT_CONNECTED.
            return Err(if address.is_none() {
                ErrorCode::InvalidState
            } else {
                ErrorCode::InvalidArgument
            });
        }
        if let (Some((text, last_port, dest)), Some(address)) = (&udp.last_dest, &address)
            && *last_port == port
            && text == address
        {
            let dest = *dest;
            return self.enqueue(id, msg, Some(dest));
        }
        let v6 = udp.v6;
        let name_allowed = address
            .as_deref()
            .is_some_and(|h| self.cx.policy().permits_name(Use::Send, h, port));
        match dest_now(address.as_deref(), v6) {
            Some(ip) => {
                let dest = SocketAddr::new(ip?, port);
                if !self.permitted(id, Use::Send, dest, name_allowed) {
                    self.cx.denied(Use::Send, &display_addr(&dest));
                    return Err(ErrorCode::AccessDenied);
                }
                if let (Some(udp), Some(address)) = (self.udp.socks.get_mut(&id), address) {
                    udp.last_dest = Some((address, port, dest));
                }
                self.enqueue(id, msg, Some(dest))
            }
            None => {
                let host = address.unwrap_or_default();
                if !resolve::is_plausible_name(&host) {
                    return Err(ErrorCode::InvalidArgument);
                }
                if !self.cx.policy().permits_name(Use::Lookup, &host, port) {
                    self.cx.denied(Use::Send, &display_target(&host, port));
                    return Err(ErrorCode::AccessDenied);
                }
                self.autobind(id)?;
                self.lookup(
                    id,
                    host,
                    UdpRequest::Send {
                        data: msg,
                        port,
                        name_allowed,
                    },
                )
            }
        }
    }

    fn connect(
        &mut self,
        this: Resource<DgramRep>,
        port: u16,
        address: Option<String>,
    ) -> Result<(), ErrorCode> {
        let id = this.rep();
        let udp = self.sock(id)?;
        if udp.connected.is_some() {
            return Err(ErrorCode::InvalidState);
        }
        if port == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let v6 = udp.v6;
        let name_allowed = address
            .as_deref()
            .is_some_and(|h| self.cx.policy().permits_name(Use::UdpConnect, h, port));
        match dest_now(address.as_deref(), v6) {
            Some(ip) => {
                let dest = SocketAddr::new(ip?, port);
                if !self.permitted(id, Use::UdpConnect, dest, name_allowed) {
                    self.cx.denied(Use::UdpConnect, &display_addr(&dest));
                    return Err(ErrorCode::AccessDenied);
                }
                self.connect_to(id, dest)
            }
            None => {
                let host = address.unwrap_or_default();
                if !resolve::is_plausible_name(&host) {
                    return Err(ErrorCode::InvalidArgument);
                }
                if !self.cx.policy().permits_name(Use::Lookup, &host, port) {
                    self.cx
                        .denied(Use::UdpConnect, &display_target(&host, port));
                    return Err(ErrorCode::AccessDenied);
                }
                self.lookup(id, host, UdpRequest::Connect { port, name_allowed })
            }
        }
    }

    fn disconnect(&mut self, this: Resource<DgramRep>) -> Result<(), ErrorCode> {
        let id = this.rep();
        if self.sock(id)?.connected.is_none() {
            return Err(ErrorCode::InvalidState);
        }
        self.transport(id)?
            .connect(None)
            .map_err(|e| error_code(&e))?;
        if let Some(udp) = self.udp.socks.get_mut(&id) {
            udp.connected = None;
        }
        Ok(())
    }

    fn address(&mut self, this: Resource<DgramRep>) -> Result<AddressInfo, ErrorCode> {
        let udp = self.sock(this.rep())?;
        if !udp.bound {
            return Err(ErrorCode::InvalidState);
        }
        if let Some(addr) = udp.offered_addr {
            return Ok(address_info(addr));
        }
        let sock = udp.sock.as_ref().ok_or(ErrorCode::InvalidState)?;
        sock.local_addr()
            .map(address_info)
            .map_err(|e| error_code(&e))
    }

    fn remote_address(&mut self, this: Resource<DgramRep>) -> Result<AddressInfo, ErrorCode> {
        let udp = self.sock(this.rep())?;
        udp.connected
            .map(address_info)
            .ok_or(ErrorCode::InvalidState)
    }

    fn close(&mut self, this: Resource<DgramRep>) {
        DgramView::close(self, this.rep());
    }

    fn set_broadcast(&mut self, this: Resource<DgramRep>, flag: bool) -> Result<(), ErrorCode> {
        DgramView::set_broadcast(self, this.rep(), flag)
    }

    fn set_ttl(&mut self, this: Resource<DgramRep>, ttl: u8) -> Result<(), ErrorCode> {
        DgramView::set_ttl(self, this.rep(), ttl)
    }

    fn set_multicast_ttl(&mut self, this: Resource<DgramRep>, ttl: u8) -> Result<(), ErrorCode> {
        DgramView::set_multicast_ttl(self, this.rep(), ttl)
    }

    fn set_multicast_loopback(
        &mut self,
        this: Resource<DgramRep>,
        flag: bool,
    ) -> Result<(), ErrorCode> {
        DgramView::set_multicast_loopback(self, this.rep(), flag)
    }

    fn set_multicast_interface(
        &mut self,
        this: Resource<DgramRep>,
        interface_address: String,
    ) -> Result<(), ErrorCode> {
        DgramView::set_multicast_interface(self, this.rep(), &interface_address)
    }

    fn add_membership(
        &mut self,
        this: Resource<DgramRep>,
        multicast_address: String,
        interface_address: Option<String>,
    ) -> Result<(), ErrorCode> {
        self.membership(
            this.rep(),
            &multicast_address,
            interface_address.as_deref(),
            true,
        )
    }

    fn drop_membership(
        &mut self,
        this: Resource<DgramRep>,
        multicast_address: String,
        interface_address: Option<String>,
    ) -> Result<(), ErrorCode> {
        self.membership(
            this.rep(),
            &multicast_address,
            interface_address.as_deref(),
            false,
        )
    }

    fn get_recv_buffer_size(&mut self, this: Resource<DgramRep>) -> Result<u32, ErrorCode> {
        self.buffer_size(this.rep(), true)
    }

    fn set_recv_buffer_size(
        &mut self,
        this: Resource<DgramRep>,
        size: u32,
    ) -> Result<(), ErrorCode> {
        self.set_buffer_size(this.rep(), true, size)
    }

    fn get_send_buffer_size(&mut self, this: Resource<DgramRep>) -> Result<u32, ErrorCode> {
        self.buffer_size(this.rep(), false)
    }

    fn set_send_buffer_size(
        &mut self,
        this: Resource<DgramRep>,
        size: u32,
    ) -> Result<(), ErrorCode> {
        self.set_buffer_size(this.rep(), false, size)
    }

    fn get_send_queue_size(&mut self, this: Resource<DgramRep>) -> u64 {
        self.udp
            .socks
            .get(&this.rep())
            .map_or(0, |u| u.queue_bytes as u64)
    }

    fn get_send_queue_count(&mut self, this: Resource<DgramRep>) -> u32 {
        self.udp
            .socks
            .get(&this.rep())
            .map_or(0, |u| u.queue.len() as u32)
    }

    fn drop(&mut self, this: Resource<DgramRep>) -> wasmtime::Result<()> {
        // The guest let go of its last handle: close the socket (queued datagrams go out).
        let id = this.rep();
        DgramView::close(self, id);
        self.cx.ids.release(id);
        Ok(())
    }
}

impl Host for DgramView<'_> {
    fn create_socket(
        &mut self,
        kind: SocketType,
        options: SocketOptions,
    ) -> Result<Resource<DgramRep>, ErrorCode> {
        let permit = self.cx.socket_permit().ok_or(ErrorCode::WouldExceedLimit)?;
        let v6 = matches!(kind, SocketType::Udp6);
        let sock = self
            .cx
            .shard
            .net
            .udp_socket(&UdpOptions {
                v6,
                reuse_addr: options.reuse_addr,
                ipv6_only: options.ipv6_only,
                recv_buffer_size: options.recv_buffer_size,
                send_buffer_size: options.send_buffer_size,
            })
            .map_err(|e| error_code(&e))?;
        let id = self.cx.ids.allocate();
        let mut udp = self.new_sock(id, sock, v6);
        udp._permit = Some(permit);
        self.udp.socks.insert(id, udp);
        self.cx.ids.handle_given(id);
        Ok(Resource::new_own(id))
    }
}
