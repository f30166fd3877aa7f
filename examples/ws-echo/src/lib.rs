//! `ws-echo`: a WebSocket echo server at any path: every message comes back with its
//! type (text as text, binary as binary), what conformance suites expect of a server
//! under test. A client that does not read its echoes is not read either (`pause`
//! until `drain`), so the server's memory stays bounded. Plain HTTP requests get `426
//! Upgrade Required`.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p ws-echo
//! netlet run target/wasm32-wasip2/release/ws_echo.wasm --tcp 127.0.0.1:8082
//! node -e "const ws=new (require('ws'))('ws://127.0.0.1:8082/');ws.on('open',()=>ws.send('hi'));ws.on('message',m=>{console.log(String(m));ws.close()})"
//! ```
//!
//! Limits come from the handler's arguments: `-- --max-message-size 1MiB`.

use netlet_guest::ws::{Message, WebSocket, WsHandler};

struct Echo;

impl WsHandler for Echo {
    fn on_message(&mut self, ws: &WebSocket, msg: Message) {
        if !ws.send(msg) {
            ws.pause();
        }
    }

    fn on_drain(&mut self, ws: &WebSocket) {
        ws.resume();
    }
}

netlet_guest::export_ws!(Echo);
