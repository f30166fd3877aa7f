//! `udp-client`: the seed's dgram client, which sends one datagram and closes.
//!
//! ```javascript
//! var message = Buffer.from('hello world');
//! var client = dgram.createSocket('udp4');
//! client.send(message, 0, message.length, 41234, 'localhost', function (err, bytes) {
//!   client.close();
//! });
//! ```
//!
//! Arguments: `[HOST:PORT] [MESSAGE...]`. The address defaults to `localhost:41234`, the
//! message to `hello world`. Sending must be allowed:
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p udp-client
//! netlet run target/wasm32-wasip2/release/udp_client.wasm --allow localhost:41234 -- localhost:41234 hi there
//! ```
//!
//! `close` right after `send` is safe: the host sends what was queued before closing.

use netlet_guest::dgram::{self, SocketOptions, SocketType};
use netlet_guest::{DgramHandler, DgramSocket};

struct Client;

/// `HOST:PORT`, `[V6]:PORT` or `PORT`, when the argument looks like one.
fn parse_target(arg: &str) -> Option<(String, u16)> {
    match arg.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((
            host.trim_matches(['[', ']']).to_string(),
            port.parse().ok()?,
        )),
        _ => Some(("localhost".to_string(), arg.parse().ok()?)),
    }
}

impl DgramHandler for Client {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let (target, words) = match args.first().and_then(|a| parse_target(a)) {
            Some(target) => (target, &args[1..]),
            None => (("localhost".to_string(), 41234), &args[..]),
        };
        let message = if words.is_empty() {
            "hello world".to_string()
        } else {
            words.join(" ")
        };
        let (host, port) = target;
        let kind = if host.contains(':') {
            SocketType::Udp6
        } else {
            SocketType::Udp4
        };
        let client =
            dgram::create_socket(kind, SocketOptions::default()).map_err(|e| e.to_string())?;
        client
            .send(message.as_bytes(), port, &host)
            .map_err(|e| e.to_string())?;
        println!("sent {} bytes to {host}:{port}", message.len());
        client.close();
        Ok(())
    }

    fn on_error(&mut self, _socket: &DgramSocket, error: netlet_guest::Error) {
        eprintln!("client error: {error}");
    }
}

netlet_guest::export_dgram!(Client);
