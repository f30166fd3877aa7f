//! `http-echo`: answers every request with the request itself: its request line and
//! header fields as received (original case, in order), an empty line, then its body,
//! streamed back chunked as it arrives, with `pipe`'s backpressure (the request is
//! paused while the response cannot be written), so an upload of any size comes back
//! byte-exact in bounded memory.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p http-echo
//! netlet run target/wasm32-wasip2/release/http_echo.wasm --tcp 127.0.0.1:8081
//! curl --data-binary @file http://127.0.0.1:8081/upload
//! ```

use netlet_guest::http::{HttpHandler, Request, Response};

struct Echo;

impl HttpHandler for Echo {
    fn on_request(&mut self, req: &Request, res: &Response) {
        res.write_head(200, &[("Content-Type", "text/plain")]);
        let mut head = format!(
            "{} {} HTTP/{}\r\n",
            req.method(),
            req.url(),
            req.http_version()
        );
        for (name, value) in req.headers() {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        res.write(head);
    }

    fn on_body(&mut self, req: &Request, res: &Response, chunk: Vec<u8>) {
        if !res.write(chunk) {
            req.pause(); // what `req.pipe(res)` does: wait for 'drain'
        }
    }

    fn on_drain(&mut self, req: &Request, _res: &Response) {
        req.resume();
    }

    fn on_body_end(&mut self, _req: &Request, res: &Response) {
        res.end();
    }
}

netlet_guest::export_http!(Echo);
