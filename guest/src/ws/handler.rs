//! [`WsHandler`]: a WebSocket server's handler, one method per Node `ws` event.

use super::event::{Message, WsError, WsEvent};
use super::options::WsOptions;
use super::socket::WebSocket;
use crate::http::{Head, Request, Response, ServerOptions};
use crate::timers::TimerId;

/// A WebSocket server's handler: Node's `ws` `WebSocketServer` and `WebSocket` events.
/// Every method has a default. Export with [`export_ws!`](crate::export_ws) (over
/// HTTP) or `export_net!(WsNetServer::new(h))` (on bare `net` connections).
pub trait WsHandler: 'static {
    /// The WebSocket layer's limits. Read once, before `init`; arguments may override
    /// them.
    fn options(&self) -> WsOptions {
        WsOptions::default()
    }

    /// The HTTP server's limits (see
    /// [`HttpHandler::options`](crate::http::HttpHandler::options)).
    fn http_options(&self) -> ServerOptions {
        ServerOptions::default()
    }

    /// Runs once when the instance starts, with the arguments the options did not take.
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let _ = args;
        Ok(())
    }

    /// An HTTP request that is not a WebSocket handshake (a page, an asset). The
    /// default answers `426 Upgrade Required`.
    fn on_request(&mut self, req: &Request, res: &Response) {
        let _ = req;
        res.write_head(
            426,
            &[
                ("Content-Type", "text/plain"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
            ],
        );
        res.end_with("this is a WebSocket endpoint\n");
    }

    /// Node's `handleProtocols`: choose one of the subprotocols the client offered
    /// (`Sec-WebSocket-Protocol`), or none. A name that was not offered is ignored.
    fn select_protocol(&mut self, request: &Head, offered: &[String]) -> Option<String> {
        let _ = (request, offered);
        None
    }

    /// Node's `connection` (a server's) or `open` (a client's): messages may flow.
    /// [`WebSocket::path`] and [`WebSocket::header`] tell what the handshake asked.
    fn on_open(&mut self, ws: &WebSocket) {
        let _ = ws;
    }

    /// Node's `message`: a whole message, text or binary.
    fn on_message(&mut self, ws: &WebSocket, msg: Message) {
        let _ = (ws, msg);
    }

    /// Node's `ping`: the SDK has already answered with a pong carrying `payload`.
    fn on_ping(&mut self, ws: &WebSocket, payload: &[u8]) {
        let _ = (ws, payload);
    }

    /// Node's `pong`.
    fn on_pong(&mut self, ws: &WebSocket, payload: &[u8]) {
        let _ = (ws, payload);
    }

    /// Everything sent is out after a send returned false.
    fn on_drain(&mut self, ws: &WebSocket) {
        let _ = ws;
    }

    /// Node's `error`: a protocol violation by the peer (the connection was failed
    /// with its code), a failed client handshake, a socket error. `on_close` follows.
    fn on_error(&mut self, ws: &WebSocket, error: &WsError) {
        let _ = (ws, error);
    }

    /// Node's `close`: the connection is closed, with the peer's close code (1005 if
    /// its frame had none), the code we failed it with, or 1006 without a close frame.
    fn on_close(&mut self, ws: &WebSocket, code: u16, reason: &str) {
        let _ = (ws, code, reason);
    }

    /// A timer set with [`timers`](crate::timers) fired.
    fn on_timer(&mut self, timer: TimerId) {
        let _ = timer;
    }
}

impl WsEvent {
    /// Calls the method of `handler` this event stands for (`Open` is
    /// [`WsHandler::on_open`], `Message` [`WsHandler::on_message`], ...): how a
    /// client's callback hands its events to a [`WsHandler`].
    pub fn deliver<H: WsHandler + ?Sized>(self, handler: &mut H, ws: &WebSocket) {
        match self {
            WsEvent::Open => handler.on_open(ws),
            WsEvent::Message(m) => handler.on_message(ws, m),
            WsEvent::Ping(p) => handler.on_ping(ws, &p),
            WsEvent::Pong(p) => handler.on_pong(ws, &p),
            WsEvent::Drain => handler.on_drain(ws),
            WsEvent::Error(e) => handler.on_error(ws, &e),
            WsEvent::Close { code, reason } => handler.on_close(ws, code, &reason),
        }
    }
}
