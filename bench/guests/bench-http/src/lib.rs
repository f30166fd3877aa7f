//! `bench-http`: the HTTP benchmark's large-response handler: `GET /1mib` answers
//! 1 MiB of `x` (`Content-Length`), anything else `Hello World` as `http-hello`.

use netlet_guest::http::{HttpHandler, Request, Response};

struct Big {
    body: Vec<u8>,
}

impl HttpHandler for Big {
    fn on_request(&mut self, req: &Request, res: &Response) {
        res.write_head(200, &[("Content-Type", "text/plain")]);
        if req.url() == "/1mib" {
            res.end_with(&self.body);
        } else {
            res.end_with("Hello World\n");
        }
    }
}

netlet_guest::export_http!(Big {
    body: vec![b'x'; 1 << 20]
});
