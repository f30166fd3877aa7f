//! `tcp-client`: the seed's `net.connect` client.
//!
//! ```javascript
//! var client = net.connect({ port: 8124 }, function () {
//!   console.log('client connected');
//!   client.write('world!\r\n');
//! });
//! client.on('data', function (data) {
//!   console.log(data.toString());
//!   client.end();
//! });
//! client.on('end', function () { console.log('client disconnected'); });
//! ```
//!
//! The address comes from the first argument (`HOST:PORT`, `[V6]:PORT` or just `PORT`;
//! default `localhost:8124`). Outbound connections must be allowed:
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p tcp-client
//! netlet run target/wasm32-wasip2/release/tcp_client.wasm --allow localhost:8124 -- localhost:8124
//! ```
//!
//! With no listener the process exits once the connection has closed, as `node` does.

use netlet_guest::{NetHandler, Socket, net};

struct Client;

/// Splits `HOST:PORT`, `[V6]:PORT` or `PORT` (host `localhost`).
fn parse_target(arg: &str) -> Result<(String, u16), String> {
    let (host, port) = match arg.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => (host.trim_matches(['[', ']']), port),
        _ => ("localhost", arg),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("bad address {arg:?}: expected HOST:PORT or PORT"))?;
    Ok((host.to_string(), port))
}

impl NetHandler for Client {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let target = args.first().map(String::as_str).unwrap_or("localhost:8124");
        let (host, port) = parse_target(target)?;
        net::connect_to(&host, port).map_err(|err| err.to_string())?;
        Ok(())
    }

    fn on_connect(&mut self, socket: &Socket) {
        println!("client connected");
        socket.write("world!\r\n");
    }

    fn on_data(&mut self, socket: &Socket, data: Vec<u8>) {
        println!("{}", String::from_utf8_lossy(&data));
        socket.end();
    }

    fn on_end(&mut self, _socket: &Socket) {
        println!("client disconnected");
    }

    fn on_error(&mut self, _socket: &Socket, error: netlet_guest::Error) {
        eprintln!("client error: {error}");
    }
}

netlet_guest::export_net!(Client);
