//! `ws-chat`: a chat room for browsers. `GET /` serves a small page (embedded in the
//! component, `src/index.html`) whose script connects to `/ws`; every text message a
//! client sends goes to every other client as `NAME: TEXT`, and everyone sees
//! `* NAME joined` / `* NAME left`. A newcomer first gets `* you are NAME (N here)`.
//! The name comes from the URL (`/ws?name=alice`: letters, digits, `-` and `_`, at most
//! 20), else `guest-N`.
//!
//! ```text
//! cargo run --release           # the demo serves it at http://127.0.0.1:8081/
//! netlet run target/wasm32-wasip2/release/ws_chat.wasm --tcp 127.0.0.1:8081
//! ```
//!
//! One instance sees every connection (netlet's default, one shard, as one Node
//! process). A message is at most 4 KiB (larger ones close the sender with 1009);
//! binary messages close the sender with 1003. The room holds at most 16 MiB of
//! messages its members are too slow to take (the host holds the first 64 KiB of each
//! member's backlog; the rest waits in the room): a member more than its share behind
//! (16 MiB over the number of members, at most 1 MiB) is closed with 1013 (try again
//! later), which drops what it had not read, so readers that stall cannot grow the
//! room's memory however many they are. A message the room's memory cannot hold closes
//! its would-be receiver the same way.

use netlet_guest::http::{Request, Response};
use netlet_guest::ws::{Message, SendError, WebSocket, WsHandler, WsOptions, code};

const PAGE: &str = include_str!("index.html");
/// Unsent bytes the whole room may hold...
const ROOM_BACKLOG: u64 = 16 << 20;
/// ...shared out among the members, each at most this.
const MAX_SHARE: u64 = 1 << 20;

#[derive(Default)]
struct Chat {
    members: Vec<(WebSocket, String)>,
    joined: u64,
}

impl Chat {
    fn name_of(&self, ws: &WebSocket) -> String {
        self.members
            .iter()
            .find(|(m, _)| m == ws)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    }

    /// Sends `text` to every member but `except`.
    fn broadcast(&self, except: Option<&WebSocket>, text: &str) {
        let share = (ROOM_BACKLOG / self.members.len().max(1) as u64).min(MAX_SHARE);
        for (m, _) in &self.members {
            if Some(m) == except {
                continue;
            }
            if m.backlog() > share {
                let _ = m.close(code::TRY_AGAIN_LATER, "too far behind");
                continue;
            }
            match m.try_send_str(text) {
                Ok(_) | Err(SendError::Closed | SendError::Closing) => {}
                Err(_) => {
                    let _ = m.close(code::TRY_AGAIN_LATER, "the room is full");
                }
            }
        }
    }
}

/// The name asked for in `?name=`, if it is a plain one.
fn requested_name(path: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    let name = query.split('&').find_map(|kv| kv.strip_prefix("name="))?;
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| name.to_string())
}

impl WsHandler for Chat {
    fn options(&self) -> WsOptions {
        WsOptions {
            max_message_size: 4096,
            ..WsOptions::default()
        }
    }

    fn on_request(&mut self, req: &Request, res: &Response) {
        match req.url() {
            "/" | "/index.html" => {
                res.write_head(200, &[("Content-Type", "text/html; charset=utf-8")]);
                res.end_with(PAGE);
            }
            _ => {
                res.write_head(404, &[("Content-Type", "text/plain")]);
                res.end_with("not found: the room is at / (WebSocket at /ws)\n");
            }
        }
    }

    fn on_open(&mut self, ws: &WebSocket) {
        if ws.path() != "/ws" && !ws.path().starts_with("/ws?") {
            let _ = ws.close(code::POLICY_VIOLATION, "the room is at /ws");
            return;
        }
        self.joined += 1;
        let name = requested_name(ws.path()).unwrap_or_else(|| format!("guest-{}", self.joined));
        self.broadcast(None, &format!("* {name} joined"));
        self.members.push((ws.clone(), name.clone()));
        ws.send_text(format!("* you are {name} ({} here)", self.members.len()));
    }

    fn on_message(&mut self, ws: &WebSocket, msg: Message) {
        match msg {
            Message::Text(text) => {
                let line = format!("{}: {text}", self.name_of(ws));
                self.broadcast(Some(ws), &line);
            }
            Message::Binary(_) => {
                let _ = ws.close(code::UNSUPPORTED_DATA, "text only");
            }
        }
    }

    fn on_close(&mut self, ws: &WebSocket, _code: u16, _reason: &str) {
        let Some(at) = self.members.iter().position(|(m, _)| m == ws) else {
            return;
        };
        let (_, name) = self.members.remove(at);
        self.broadcast(None, &format!("* {name} left"));
    }
}

netlet_guest::export_ws!(Chat::default());
