//! `bench-echo`: the handler the benchmark drives. The same work as the reference servers:
//! a TCP echo with `pipe` semantics (pause while the peer is not reading, resume on
//! `drain`), no banner, and a UDP echo, with no logging.

use netlet_guest::{DgramHandler, DgramSocket, NetHandler, RemoteInfo, Socket};

struct BenchEcho;

impl NetHandler for BenchEcho {
    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        if !socket.write(&data) {
            socket.pause();
        }
    }

    fn on_drain(&mut self, socket: &Socket) {
        socket.resume();
    }
}

impl DgramHandler for BenchEcho {
    fn on_message(&mut self, socket: &DgramSocket, msg: Vec<u8>, rinfo: RemoteInfo) {
        let _ = socket.send(&msg, rinfo.port, &rinfo.address);
    }
}

netlet_guest::export_handler!(BenchEcho);
