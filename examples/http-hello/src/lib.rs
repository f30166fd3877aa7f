//! `http-hello`: Node's canonical HTTP server, answering every request with
//! `Hello World`.
//!
//! ```javascript
//! http.createServer((req, res) => {
//!   res.writeHead(200, {'Content-Type': 'text/plain'});
//!   res.end('Hello World\n');
//! }).listen(8080);
//! ```
//!
//! Run it (the demo, `cargo run --release`, serves it on 8080 already):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p http-hello
//! netlet run target/wasm32-wasip2/release/http_hello.wasm --tcp 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/
//! ```

use netlet_guest::http::{HttpHandler, Request, Response};

struct Hello;

impl HttpHandler for Hello {
    fn on_request(&mut self, _req: &Request, res: &Response) {
        res.write_head(200, &[("Content-Type", "text/plain")]);
        res.end_with("Hello World\n");
    }
}

netlet_guest::export_http!(Hello);
