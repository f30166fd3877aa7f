//! Test guest for `tests/ws.rs`: a WebSocket server that echoes, picks the `chat`
//! subprotocol when offered, and obeys text commands; with `--connect URL` it is also
//! a client of another server (its events handed to the same methods). It logs what happens (`open`, `close CODE REASON`,
//! `error ...`, `ping`, `pong`) for the tests to read.
//!
//! Commands (text messages):
//! - `close:CODE:REASON`: closes with that code and reason.
//! - `frag:N:TEXT`: sends TEXT back as a text message in N fragments, with a ping
//!   (`mid`) after the first.
//! - `ping:DATA`: pings with DATA.
//! - `big:N`: sends N bytes (i % 251) as one binary message.
//! - `terminate`: destroys the socket.
//! - `flood:N:SIZE`: sends N binary messages of SIZE bytes (from one borrowed buffer)
//!   and logs `flood sent K: ERROR` at the first send that fails (the peer is expected
//!   not to read), or `flood sent N`.
//! - anything else: echoed.
//!
//! At each close it also tries a send and logs what became of it (`send after close: ...`).

use netlet_guest::http::Head;
use netlet_guest::ws::{self, Message, WebSocket, WsError, WsHandler};

#[derive(Default)]
struct Tester {
    connect: Option<String>,
}

impl WsHandler for Tester {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        if let [flag, url] = args.as_slice()
            && flag == "--connect"
        {
            self.connect = Some(url.clone());
            // The client's events go to a `Tester` of their own, whose methods tell
            // client from server by `ws.is_client()`.
            let mut client = Tester::default();
            match ws::connect(url, move |ws, event| event.deliver(&mut client, ws)) {
                Ok(_) => println!("client connecting {url}"),
                Err(e) => println!("client connect failed: {e}"),
            }
        }
        Ok(())
    }

    fn select_protocol(&mut self, _request: &Head, offered: &[String]) -> Option<String> {
        offered.iter().find(|p| *p == "chat").cloned()
    }

    fn on_open(&mut self, ws: &WebSocket) {
        println!(
            "open {} client={} protocol={:?}",
            ws.path(),
            ws.is_client(),
            ws.protocol()
        );
        if ws.is_client() {
            ws.send_text("hello from the guest client");
        }
    }

    fn on_message(&mut self, ws: &WebSocket, msg: Message) {
        if ws.is_client() {
            if let Message::Text(t) = &msg {
                println!("client got {t}");
            }
            let _ = ws.close(1000, "client done");
            return;
        }
        let Message::Text(text) = &msg else {
            ws.send(msg);
            return;
        };
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("close"), Some(code), Some(reason)) => {
                let code = code.parse().unwrap_or(1000);
                if let Err(e) = ws.close(code, reason) {
                    println!("close refused: {e}");
                }
            }
            (Some("frag"), Some(n), Some(body)) => {
                let n: usize = n.parse().unwrap_or(1).max(1);
                let bytes = body.as_bytes();
                let step = bytes.len().div_ceil(n).max(1);
                let pieces: Vec<&[u8]> = bytes.chunks(step).collect();
                for (i, piece) in pieces.iter().enumerate() {
                    let _ = ws.send_fragment(false, piece.to_vec(), i + 1 == pieces.len());
                    if i == 0 {
                        let _ = ws.ping("mid");
                    }
                }
            }
            (Some("ping"), Some(data), None) => {
                let _ = ws.ping(data);
            }
            (Some("big"), Some(n), None) => {
                let n: usize = n.parse().unwrap_or(0);
                ws.send_binary((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            }
            (Some("terminate"), None, None) => ws.terminate(),
            (Some("flood"), Some(n), Some(size)) => {
                let n: usize = n.parse().unwrap_or(0);
                let payload = vec![b'f'; size.parse().unwrap_or(0)];
                let mut sent = 0;
                while sent < n {
                    match ws.try_send_bytes(&payload) {
                        Ok(_) => sent += 1,
                        Err(e) => {
                            println!("flood sent {sent}: {e}");
                            return;
                        }
                    }
                }
                println!("flood sent {sent}");
            }
            _ => {
                ws.send(msg);
            }
        }
    }

    fn on_ping(&mut self, _ws: &WebSocket, payload: &[u8]) {
        println!("ping {}", String::from_utf8_lossy(payload));
    }

    fn on_pong(&mut self, _ws: &WebSocket, payload: &[u8]) {
        println!("pong {}", String::from_utf8_lossy(payload));
    }

    fn on_error(&mut self, ws: &WebSocket, error: &WsError) {
        println!("error client={} {error}", ws.is_client());
    }

    fn on_close(&mut self, ws: &WebSocket, code: u16, reason: &str) {
        println!("close client={} {code} {reason}", ws.is_client());
        // A send to a WebSocket that has closed fails at once, and queues nothing.
        match ws.try_send_bytes(b"too late") {
            Ok(_) => println!("send after close: queued"),
            Err(e) => println!("send after close: {e}"),
        }
    }
}

netlet_guest::export_ws!(Tester::default());
