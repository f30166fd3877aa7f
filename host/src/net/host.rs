//! The guest's side of the `net` interface: Node's socket and server methods, served by
//! [`NetView`]. Calls on a socket that is gone are harmless (`invalid-state`, `false`,
//! zeroes, `none`), as the WIT documents.

use std::time::Duration;

use wasmtime::component::Resource;

use super::{NetView, ServerRep, SocketRep, TcpConn, address_info};
use crate::bindings::netlet::net::net::{
    ConnectOptions, Host, HostServer, HostSocket, PeerCertificate, PipeOptions, ReadyState,
    ServerOptions, TlsInfo, TlsOptions,
};
use crate::bindings::{AddressInfo, ErrorCode};

impl TcpConn {
    fn ready_state(&self) -> ReadyState {
        if self.connecting {
            return ReadyState::Opening;
        }
        match (!self.read_eof, !self.end_called) {
            (true, true) => ReadyState::Open,
            (true, false) => ReadyState::ReadOnly,
            (false, true) => ReadyState::WriteOnly,
            (false, false) => ReadyState::Closed,
        }
    }
}

impl NetView<'_> {
    fn conn(&self, this: &Resource<SocketRep>) -> Option<&TcpConn> {
        self.tcp.conns.get(&this.rep())
    }
}

impl HostSocket for NetView<'_> {
    fn id(&mut self, this: Resource<SocketRep>) -> u32 {
        this.rep()
    }

    fn write(&mut self, this: Resource<SocketRep>, data: Vec<u8>) -> Result<bool, ErrorCode> {
        // Linked in place of this one: `write_in_place` (the bytes read where the guest
        // holds them). Kept for the trait.
        NetView::write(self, this.rep(), &data)
    }

    fn pipe(
        &mut self,
        this: Resource<SocketRep>,
        dest: Resource<SocketRep>,
        options: PipeOptions,
    ) -> Result<(), ErrorCode> {
        NetView::pipe(self, this.rep(), dest.rep(), options.end)
    }

    fn unpipe(&mut self, this: Resource<SocketRep>) {
        NetView::unpipe(self, this.rep())
    }

    fn end(&mut self, this: Resource<SocketRep>, data: Option<Vec<u8>>) {
        let id = this.rep();
        if let Some(data) = data {
            let _ = NetView::write(self, id, &data);
        }
        NetView::end(self, id);
    }

    fn destroy(&mut self, this: Resource<SocketRep>) {
        self.close(this.rep(), None);
    }

    fn reset_and_destroy(&mut self, this: Resource<SocketRep>) {
        let id = this.rep();
        if let Some(stream) = self.tcp.conns.get_mut(&id).and_then(|c| c.stream.as_mut()) {
            let _ = stream.reset_on_close();
        }
        self.close(id, None);
    }

    fn pause(&mut self, this: Resource<SocketRep>) {
        if let Some(conn) = self.tcp.conns.get_mut(&this.rep()) {
            conn.paused = true;
        }
    }

    fn resume(&mut self, this: Resource<SocketRep>) {
        let id = this.rep();
        if let Some(conn) = self.tcp.conns.get_mut(&id)
            && conn.paused
        {
            conn.paused = false;
            // Bytes may have arrived while paused, with no new readiness edge to tell us.
            self.queue_read(id, false);
        }
    }

    fn is_paused(&mut self, this: Resource<SocketRep>) -> bool {
        self.conn(&this).is_some_and(|c| c.paused)
    }

    fn set_no_delay(&mut self, this: Resource<SocketRep>, no_delay: bool) -> Result<(), ErrorCode> {
        let conn = self
            .tcp
            .conns
            .get_mut(&this.rep())
            .ok_or(ErrorCode::InvalidState)?;
        match &mut conn.stream {
            Some(stream) => stream
                .set_nodelay(no_delay)
                .map_err(|e| crate::error::error_code(&e)),
            None => {
                conn.pending.no_delay = Some(no_delay);
                Ok(())
            }
        }
    }

    fn set_keep_alive(
        &mut self,
        this: Resource<SocketRep>,
        enable: bool,
        initial_delay_ms: u32,
    ) -> Result<(), ErrorCode> {
        let conn = self
            .tcp
            .conns
            .get_mut(&this.rep())
            .ok_or(ErrorCode::InvalidState)?;
        match &mut conn.stream {
            Some(stream) => stream
                .set_keepalive(enable, initial_delay_ms)
                .map_err(|e| crate::error::error_code(&e)),
            None => {
                conn.pending.keep_alive = Some((enable, initial_delay_ms));
                Ok(())
            }
        }
    }

    fn set_timeout(&mut self, this: Resource<SocketRep>, ms: u32) {
        let idle = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
        NetView::set_timeout(self, this.rep(), idle);
    }

    fn remote_address(&mut self, this: Resource<SocketRep>) -> Option<AddressInfo> {
        self.conn(&this).and_then(|c| c.peer).map(address_info)
    }

    fn local_address(&mut self, this: Resource<SocketRep>) -> Option<AddressInfo> {
        self.conn(&this).and_then(|c| c.local).map(address_info)
    }

    fn bytes_read(&mut self, this: Resource<SocketRep>) -> u64 {
        self.tcp.counts(this.rep()).0
    }

    fn bytes_written(&mut self, this: Resource<SocketRep>) -> u64 {
        self.tcp.counts(this.rep()).1
    }

    fn buffer_size(&mut self, this: Resource<SocketRep>) -> u64 {
        self.conn(&this).map_or(0, |c| c.queued() as u64)
    }

    fn ready_state(&mut self, this: Resource<SocketRep>) -> ReadyState {
        self.conn(&this)
            .map_or(ReadyState::Closed, TcpConn::ready_state)
    }

    fn tls(&mut self, this: Resource<SocketRep>) -> Option<TlsInfo> {
        let info = self.conn(&this)?.stream.as_ref()?.tls()?;
        Some(TlsInfo {
            protocol: info.protocol.clone(),
            cipher: info.cipher.clone(),
            servername: info.servername.clone(),
            alpn_protocol: info.alpn.clone(),
            peer_certificate: info.peer.as_ref().map(|p| PeerCertificate {
                subject: p.subject.clone(),
                subject_alt_names: p.alt_names.clone(),
            }),
        })
    }

    fn drop(&mut self, this: Resource<SocketRep>) -> wasmtime::Result<()> {
        // The guest let go of its last handle: a socket still open is destroyed, as a
        // Rust `TcpStream` is when dropped.
        let id = this.rep();
        self.close(id, None);
        self.tcp.forget_counts(id);
        self.cx.ids.release(id);
        Ok(())
    }
}

impl HostServer for NetView<'_> {
    fn id(&mut self, this: Resource<ServerRep>) -> u32 {
        this.rep()
    }

    fn address(&mut self, this: Resource<ServerRep>) -> Option<AddressInfo> {
        self.tcp
            .servers
            .get(&this.rep())
            .filter(|s| s.listening)
            .map(|s| address_info(s.addr))
    }

    fn get_connections(&mut self, this: Resource<ServerRep>) -> u32 {
        self.tcp
            .servers
            .get(&this.rep())
            .map_or(0, |s| s.connections)
    }

    fn listening(&mut self, this: Resource<ServerRep>) -> bool {
        self.tcp
            .servers
            .get(&this.rep())
            .is_some_and(|s| s.listening)
    }

    fn close(&mut self, this: Resource<ServerRep>) -> Result<(), ErrorCode> {
        if self.cx.per_connection {
            // The listener is every connection's; one connection's code may not close it.
            return Err(ErrorCode::InvalidState);
        }
        let id = this.rep();
        if let Some(server) = self.tcp.servers.get_mut(&id)
            && server.listening
        {
            server.listening = false;
            self.tcp.closed_servers.push(id);
            self.maybe_server_closed(id);
        }
        Ok(())
    }

    fn drop(&mut self, _this: Resource<ServerRep>) -> wasmtime::Result<()> {
        // Servers belong to the host (they came from `--tcp`); a dropped handle leaves
        // the server running, as losing the last reference to a listening Node server does.
        Ok(())
    }
}

impl Host for NetView<'_> {
    fn listen(
        &mut self,
        port: u16,
        host: Option<String>,
        options: ServerOptions,
    ) -> Result<Resource<ServerRep>, ErrorCode> {
        NetView::listen(self, port, host.as_deref(), options).map(Resource::new_own)
    }

    fn set_server_options(&mut self, options: ServerOptions) {
        NetView::set_server_options(self, options)
    }

    fn connect(&mut self, options: ConnectOptions) -> Result<Resource<SocketRep>, ErrorCode> {
        NetView::connect(self, options, None).map(Resource::new_own)
    }

    fn connect_tls(
        &mut self,
        options: ConnectOptions,
        tls: TlsOptions,
    ) -> Result<Resource<SocketRep>, ErrorCode> {
        NetView::connect(self, options, Some(tls)).map(Resource::new_own)
    }
}
