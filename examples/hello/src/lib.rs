//! `hello`: the seed's greeting server (Node's `net.createServer` on port 8124).
//!
//! ```javascript
//! var server = net.createServer(function (socket) {
//!   socket.on('data', function (data) { socket.write("你好"); });
//!   socket.on('end', function () { console.log('连接断开'); });
//!   socket.write("欢迎光临《深入浅出Node.js》示例：\n");
//! });
//! server.listen(8124, function () { console.log('server bound'); });
//! ```
//!
//! Run it (the demo, `cargo run --release`, serves it on 8124 already):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p hello
//! netlet run target/wasm32-wasip2/release/hello.wasm --tcp 127.0.0.1:8124
//! nc 127.0.0.1 8124
//! ```

use netlet_guest::{NetHandler, Server, Socket};

struct Hello;

impl NetHandler for Hello {
    fn on_listening(&mut self, _server: &Server) {
        println!("server bound");
    }

    fn on_connection(&mut self, socket: &Socket) {
        socket.write("欢迎光临《深入浅出Node.js》示例：\n");
    }

    fn on_data(&mut self, socket: &Socket, _data: Vec<u8>) {
        socket.write("你好");
    }

    fn on_end(&mut self, _socket: &Socket) {
        println!("连接断开");
    }
}

netlet_guest::export_net!(Hello);
