//! `broken`: a test-only echo server with the bugs a handler author makes, to show how
//! the testing harness reports them. It should echo each line, close on `quit`, and say
//! `idle` after a second without traffic; instead it
//!
//! - echoes letters in upper case (wrong bytes),
//! - ignores `quit` (a missing close),
//! - panics on `boom` (a trap),
//! - asks for its idle notice after an hour (a timeout that never comes in time).

use std::time::Duration;

use netlet_guest::{NetHandler, Socket};

struct Broken;

impl NetHandler for Broken {
    fn on_connection(&mut self, socket: &Socket) {
        socket.set_timeout(Duration::from_secs(3600));
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        match data.as_slice() {
            b"quit\n" => {}
            b"boom\n" => panic!("broken handler: boom"),
            _ => {
                socket.write(data.to_ascii_uppercase());
            }
        }
    }

    fn on_timeout(&mut self, socket: &Socket) {
        socket.write("idle\n");
    }
}

netlet_guest::export_net!(Broken);
