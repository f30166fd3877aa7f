//! `bench-echo`: the handler the benchmark drives. The same work as the reference servers:
//! a TCP echo with `pipe` semantics (pause while the peer is not reading, resume on
//! `drain`), no banner, and a UDP echo, with no logging.
//!
//! With the argument `pipe` (`netlet run bench_echo.wasm -- pipe`) the TCP echo is the
//! host's: each connection is piped into itself ([`Socket::pipe`]) and the handler sees
//! no `data`; without it, each `data` is written back by the handler.

use netlet_guest::net::PipeOptions;
use netlet_guest::{DgramHandler, DgramSocket, NetHandler, RemoteInfo, Socket};

struct BenchEcho {
    pipe: bool,
}

impl NetHandler for BenchEcho {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        self.pipe = args.iter().any(|a| a == "pipe");
        Ok(())
    }

    fn on_connection(&mut self, socket: &Socket) {
        if self.pipe {
            let _ = socket.pipe(socket, PipeOptions::default());
        }
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

impl DgramHandler for BenchEcho {
    fn on_message(&mut self, socket: &DgramSocket, msg: Vec<u8>, rinfo: RemoteInfo) {
        let _ = socket.send(&msg, rinfo.port, &rinfo.address);
    }
}

netlet_guest::export_handler!(BenchEcho { pipe: false });
