//! `echo`: the seed's pipe echo server (port 1337).
//!
//! ```javascript
//! var server = net.createServer(function (socket) {
//!   socket.write('Echo server\r\n');
//!   socket.pipe(socket);
//! });
//! server.listen(1337, '127.0.0.1');
//! ```
//!
//! `pipe` is more than a loop of writes: it stops reading the source while the
//! destination's queue is full and goes on once it drains, so a client that writes
//! faster than it reads is slowed down instead of filling the server's memory.
//! [`Socket::pipe`] is the host's: it moves the bytes itself (kernel to kernel with
//! `splice(2)`), with that backpressure, and the handler is not called per chunk.
//! When the client ends, our side ends after the echo (the pipe's `end`).
//!
//! Run it (the demo, `cargo run --release`, serves it on 1337 already):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p echo
//! netlet run target/wasm32-wasip2/release/echo.wasm --tcp 127.0.0.1:1337
//! nc 127.0.0.1 1337
//! ```

use netlet_guest::net::PipeOptions;
use netlet_guest::{NetHandler, Socket};

struct Echo;

impl NetHandler for Echo {
    fn on_connection(&mut self, socket: &Socket) {
        socket.write(b"Echo server\r\n");
        let _ = socket.pipe(socket, PipeOptions::default());
    }
}

netlet_guest::export_net!(Echo);
