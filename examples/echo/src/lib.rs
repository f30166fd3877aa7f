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
//! `pipe` is more than a loop of writes: it pauses the source while the destination's
//! queue is full and resumes it on `drain`, so a client that writes faster than it reads
//! is slowed down instead of filling the server's memory. This handler does the same.
//! When the client ends, the host ends our side (Node's `allowHalfOpen: false`), as
//! `pipe` would.
//!
//! Run it (the demo, `cargo run --release`, serves it on 1337 already):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p echo
//! netlet run target/wasm32-wasip2/release/echo.wasm --tcp 127.0.0.1:1337
//! nc 127.0.0.1 1337
//! ```

use netlet_guest::{NetHandler, Socket};

struct Echo;

impl NetHandler for Echo {
    fn on_connection(&mut self, socket: &Socket) {
        socket.write(b"Echo server\r\n");
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        if !socket.write(&data) {
            socket.pause();
        }
    }

    fn on_drain(&mut self, socket: &Socket) {
        socket.resume();
    }
}

netlet_guest::export_net!(Echo);
