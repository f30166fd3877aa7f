//! `udp-echo`: the seed's UDP server (port 41234), which prints every datagram and, as
//! an echo server, sends it back to its sender.
//!
//! ```javascript
//! var server = dgram.createSocket('udp4');
//! server.on('message', function (msg, rinfo) {
//!   console.log('server got: ' + msg + ' from ' + rinfo.address + ':' + rinfo.port);
//!   server.send(msg, rinfo.port, rinfo.address);
//! });
//! server.on('listening', function () {
//!   var address = server.address();
//!   console.log('server listening ' + address.address + ':' + address.port);
//! });
//! server.bind(41234);
//! ```
//!
//! Run it (the demo, `cargo run --release`, serves it on 41234 already):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p udp-echo
//! netlet run target/wasm32-wasip2/release/udp_echo.wasm --udp 127.0.0.1:41234
//! echo -n hello | nc -u -w1 127.0.0.1 41234
//! ```

use netlet_guest::{DgramHandler, DgramSocket, RemoteInfo};

struct UdpEcho;

impl DgramHandler for UdpEcho {
    fn on_listening(&mut self, socket: &DgramSocket) {
        if let Ok(address) = socket.address() {
            println!("server listening {}:{}", address.address, address.port);
        }
    }

    fn on_message(&mut self, socket: &DgramSocket, msg: Vec<u8>, rinfo: RemoteInfo) {
        println!(
            "server got: {} from {}:{}",
            String::from_utf8_lossy(&msg),
            rinfo.address,
            rinfo.port
        );
        if let Err(err) = socket.send(&msg, rinfo.port, &rinfo.address) {
            eprintln!("echo to {rinfo} failed: {err}");
        }
    }
}

netlet_guest::export_dgram!(UdpEcho);
