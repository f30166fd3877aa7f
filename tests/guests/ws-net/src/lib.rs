//! Test guest: a WebSocket echo server on bare `net` connections (`WsNetServer`, no
//! HTTP server around it). Logs each connection's close code.

use netlet_guest::ws::{Message, WebSocket, WsHandler, WsNetServer};

struct Echo;

impl WsHandler for Echo {
    fn on_message(&mut self, ws: &WebSocket, msg: Message) {
        ws.send(msg);
    }

    fn on_close(&mut self, _ws: &WebSocket, code: u16, reason: &str) {
        println!("close {code} {reason}");
    }
}

netlet_guest::export_net!(WsNetServer::new(Echo));
