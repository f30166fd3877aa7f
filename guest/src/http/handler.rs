//! [`HttpHandler`]: an HTTP server's handler, one method per Node `http.Server` event.

use super::encode::error_response;
use super::options::ServerOptions;
use super::parse::Error;
use super::request::Request;
use super::response::Response;
use crate::net::{Server, Socket, SocketEvent};
use crate::timers::TimerId;

/// An HTTP server's handler: Node's `http.Server` events. Every method but
/// [`HttpHandler::on_request`] has a default. Export with
/// [`export_http!`](crate::export_http).
pub trait HttpHandler: 'static {
    /// The server's limits and timeouts (Node's `createServer` options). Read once,
    /// before `init`; the handler's arguments may override them (see
    /// [`ServerOptions::apply_args`]).
    fn options(&self) -> ServerOptions {
        ServerOptions::default()
    }

    /// Runs once when the instance starts, with the arguments the server options did
    /// not take.
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let _ = args;
        Ok(())
    }

    /// Node's `'listening'`.
    fn on_listening(&mut self, server: &Server) {
        let _ = server;
    }

    /// Node's `'connection'`: a new connection, before any request.
    fn on_connection(&mut self, socket: &Socket) {
        let _ = socket;
    }

    /// Node's `'request'`: a request's head arrived. Answer through `res`, now or
    /// later (keep a clone). The body follows in [`HttpHandler::on_body`] calls and
    /// [`HttpHandler::on_body_end`].
    fn on_request(&mut self, req: &Request, res: &Response);

    /// Node's `req.on('data')`: a piece of the request body, as it arrived.
    fn on_body(&mut self, req: &Request, res: &Response, chunk: Vec<u8>) {
        let _ = (req, res, chunk);
    }

    /// Node's `req.on('end')`: the whole body arrived (at once after `on_request` for
    /// a request without a body).
    fn on_body_end(&mut self, req: &Request, res: &Response) {
        let _ = (req, res);
    }

    /// Node's `res.on('drain')`: the socket's queue emptied after
    /// [`Response::write`] returned false.
    fn on_drain(&mut self, req: &Request, res: &Response) {
        let _ = (req, res);
    }

    /// Node's `res.on('close')`: the exchange is over. Either the response ended
    /// and the request was read ([`Response::finished`] is true), or the connection
    /// closed first (false: the client went away, Node's `aborted`).
    fn on_close(&mut self, req: &Request, res: &Response) {
        let _ = (req, res);
    }

    /// Node's `'checkContinue'`: a request with `Expect: 100-continue`. The default,
    /// as Node without a listener, sends `100 Continue` and calls
    /// [`HttpHandler::on_request`]. Answer without [`Response::write_continue`] to
    /// refuse the body (the connection then closes after the response).
    fn on_check_continue(&mut self, req: &Request, res: &Response) {
        res.write_continue();
        self.on_request(req, res);
    }

    /// Node's `'clientError'`: a request that cannot be served (malformed, head too
    /// large, too slow): `error.status()` says which answer fits. The default writes
    /// Node's (`HTTP/1.1 400 Bad Request`, `Connection: close`); the connection is
    /// ended after this returns either way.
    fn on_client_error(&mut self, error: &Error, socket: &Socket) {
        default_client_error(error, socket);
    }

    /// Whether to take over the connection of this upgrade request (`Connection:
    /// upgrade` with an `Upgrade` header, or `CONNECT`). When false (the default, as
    /// Node without an `'upgrade'` listener) it is an ordinary request for
    /// [`HttpHandler::on_request`].
    fn wants_upgrade(&mut self, req: &Request) -> bool {
        let _ = req;
        false
    }

    /// Node's `'upgrade'`: the request, the raw socket and the bytes that came after
    /// the head (the new protocol's first bytes). The socket is yours: write the `101
    /// Switching Protocols` head yourself; its later events come to
    /// [`HttpHandler::on_upgraded`].
    fn on_upgrade(&mut self, req: &Request, socket: &Socket, head: Vec<u8>) {
        let _ = (req, head);
        socket.destroy();
    }

    /// An event of a socket taken over by [`HttpHandler::on_upgrade`].
    fn on_upgraded(&mut self, socket: &Socket, event: SocketEvent) {
        let _ = (socket, event);
    }

    /// A timer set with [`timers`](crate::timers) fired.
    fn on_timer(&mut self, timer: TimerId) {
        let _ = timer;
    }
}

/// Node's default `clientError` answer: `HTTP/1.1 400 Bad Request` (or 431, 408, 505
/// as the error says) with `Connection: close`. The SDK calls
/// [`HttpHandler::on_client_error`] only while no response is under way on the
/// connection, and ends the connection after it.
pub fn default_client_error(error: &Error, socket: &Socket) {
    socket.write(error_response(error.status()));
}
