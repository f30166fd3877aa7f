//! `chat`: a chat room, the example of state shared across connections. Every line a
//! client sends goes to every other client, prefixed with the sender's address:
//! `[127.0.0.1:50312] hello`.
//!
//! It needs one instance to see every connection, which is netlet's default (one shard,
//! as one Node process). With `--shards N` each shard would be a separate room.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p chat
//! netlet run target/wasm32-wasip2/release/chat.wasm --tcp 127.0.0.1:8000
//! nc 127.0.0.1 8000    # in two terminals
//! ```

use netlet_guest::{NetHandler, Socket};

#[derive(Default)]
struct Chat {
    clients: Vec<Socket>,
}

/// A line longer than this is cut and sent as is, so one client cannot grow the room's
/// memory without bound.
const MAX_LINE: usize = 64 * 1024;

impl Chat {
    fn broadcast(&self, from: &Socket, line: &[u8]) {
        let who = from
            .remote_address()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("#{}", from.id()));
        let mut message = format!("[{who}] ").into_bytes();
        message.extend_from_slice(line);
        if message.last() != Some(&b'\n') {
            message.push(b'\n');
        }
        for client in self.clients.iter().filter(|c| *c != from) {
            client.write(&message);
        }
    }
}

impl NetHandler for Chat {
    fn on_connection(&mut self, socket: &Socket) {
        self.clients.push(socket.clone());
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        let mut pending = std::mem::take(&mut *socket.state::<Vec<u8>>());
        pending.extend_from_slice(&data);
        let mut start = 0;
        while let Some(n) = pending[start..].iter().position(|&b| b == b'\n') {
            self.broadcast(socket, &pending[start..start + n + 1]);
            start += n + 1;
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE {
            self.broadcast(socket, &pending);
            pending.clear();
        }
        *socket.state::<Vec<u8>>() = pending;
    }

    fn on_end(&mut self, socket: &Socket) {
        let rest = std::mem::take(&mut *socket.state::<Vec<u8>>());
        if !rest.is_empty() {
            self.broadcast(socket, &rest);
        }
    }

    fn on_close(&mut self, socket: &Socket, _had_error: bool) {
        self.clients.retain(|c| c != socket);
    }
}

netlet_guest::export_net!(Chat::default());
