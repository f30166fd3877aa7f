//! The handler traits: one method per Node event, each defaulting to doing nothing.

use crate::dgram::{DgramSocket, RemoteInfo};
use crate::error::Error;
use crate::http::{ClientRequest, ResponseEvent};
use crate::net::{AddressInfo, Server, ServerOptions, Socket};
use crate::timers::TimerId;
use crate::ws::{WebSocket, WsEvent};

/// A TCP handler: the events of Node's `net.Server` and `net.Socket`.
///
/// Every method has a default that does nothing, so implement only the events you need.
/// Export the handler with [`export_net!`](crate::export_net).
pub trait NetHandler: 'static {
    /// Runs once when the instance starts, before any event, with the guest's arguments
    /// (`netlet run X.wasm -- ARGS...`). Open client connections and set timers here.
    /// An `Err` stops the instance; the host reports the message.
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let _ = args;
        Ok(())
    }

    /// Node's `net.createServer(options)`: how the sockets of the operator's listeners
    /// start (half-open, paused, no-delay, keep-alive). Asked once, before
    /// [`NetHandler::init`]; Node's defaults unless overridden. A proxy that forwards a
    /// response after its client half-closed says `allow_half_open: true` here.
    fn server_options(&self) -> ServerOptions {
        ServerOptions::default()
    }

    /// Node's server `'listening'`: a server is ready (one the operator configured, or
    /// one from [`listen`](crate::net::listen)).
    fn on_listening(&mut self, server: &Server) {
        let _ = server;
    }

    /// Node's server `'connection'`: a new connection. [`Socket::server_id`] says which
    /// server accepted it.
    fn on_connection(&mut self, socket: &Socket) {
        let _ = socket;
    }

    /// Node's socket `'connect'`: a client socket from [`connect`](crate::net::connect)
    /// is connected.
    fn on_connect(&mut self, socket: &Socket) {
        let _ = socket;
    }

    /// Node's socket `'data'`: bytes as they arrived. One write by the peer may arrive
    /// in several `data` events, several writes in one.
    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        let _ = (socket, data);
    }

    /// Node's socket `'end'`: the peer finished sending (FIN). Unless the socket allows
    /// half-open, the host ends our side right after this returns.
    fn on_end(&mut self, socket: &Socket) {
        let _ = socket;
    }

    /// Node's socket `'drain'`: the write queue emptied after a `write` returned false.
    fn on_drain(&mut self, socket: &Socket) {
        let _ = socket;
    }

    /// Node's socket `'timeout'`: idle for the period of [`Socket::set_timeout`]. The
    /// socket stays open; end or destroy it here if that is what you want.
    fn on_timeout(&mut self, socket: &Socket) {
        let _ = socket;
    }

    /// Node's socket `'error'`. [`NetHandler::on_close`] always follows.
    fn on_error(&mut self, socket: &Socket, error: Error) {
        let _ = (socket, error);
    }

    /// Node's socket `'close'`: the socket is fully closed; nothing follows.
    fn on_close(&mut self, socket: &Socket, had_error: bool) {
        let _ = (socket, had_error);
    }

    /// Node's server `'close'`: after [`Server::close`], once every connection closed.
    fn on_server_close(&mut self, server: &Server) {
        let _ = server;
    }

    /// Node's server `'error'`.
    fn on_server_error(&mut self, server: &Server, error: Error) {
        let _ = (server, error);
    }

    /// Node's server `'drop'`: a connection arrived past `--max-connections` and was
    /// closed at once; the addresses say whose.
    fn on_drop(
        &mut self,
        server: &Server,
        local: Option<AddressInfo>,
        remote: Option<AddressInfo>,
    ) {
        let _ = (server, local, remote);
    }

    /// A timer set with [`timers`](crate::timers) fired.
    fn on_timer(&mut self, timer: TimerId) {
        let _ = timer;
    }

    /// What happened to a request made with [`http::request`](crate::http::request):
    /// its response's head, body pieces and end, or an error.
    fn on_response(&mut self, request: &ClientRequest, event: ResponseEvent) {
        let _ = (request, event);
    }

    /// What happened on a WebSocket opened with [`ws::connect`](crate::ws::connect):
    /// `Open`, messages, pings and pongs, `Drain`, `Error`, then `Close`.
    fn on_websocket(&mut self, ws: &WebSocket, event: WsEvent) {
        let _ = (ws, event);
    }
}

/// A UDP handler: the events of Node's `dgram.Socket`.
///
/// Every method has a default that does nothing. Export with
/// [`export_dgram!`](crate::export_dgram).
pub trait DgramHandler: 'static {
    /// Runs once when the instance starts, before any event (see [`NetHandler::init`]).
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let _ = args;
        Ok(())
    }

    /// Node's `'listening'`: a socket is bound, by the host (`--udp ADDR`) or by
    /// [`DgramSocket::bind`].
    fn on_listening(&mut self, socket: &DgramSocket) {
        let _ = socket;
    }

    /// Node's `'message'`: a datagram and who sent it.
    fn on_message(&mut self, socket: &DgramSocket, msg: Vec<u8>, rinfo: RemoteInfo) {
        let _ = (socket, msg, rinfo);
    }

    /// Node's `'connect'` after [`DgramSocket::connect`].
    fn on_connect(&mut self, socket: &DgramSocket) {
        let _ = socket;
    }

    /// Node's `'error'`: a send that failed later, or a receive error. The socket stays
    /// open.
    fn on_error(&mut self, socket: &DgramSocket, error: Error) {
        let _ = (socket, error);
    }

    /// Node's `'close'`.
    fn on_close(&mut self, socket: &DgramSocket) {
        let _ = socket;
    }

    /// A timer set with [`timers`](crate::timers) fired.
    fn on_timer(&mut self, timer: TimerId) {
        let _ = timer;
    }
}
