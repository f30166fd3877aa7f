//! `sse`: server-sent events. `GET /` opens a `text/event-stream`; one timer ticks
//! every second (`-- --every 250ms` to change it) and each open stream gets
//! `id: N` / `data: tick N`. A client that goes away is dropped from the list when its
//! connection closes. Any other path is a 404.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p sse
//! netlet run target/wasm32-wasip2/release/sse.wasm --tcp 127.0.0.1:8082
//! curl -N http://127.0.0.1:8082/
//! ```
//!
//! In a browser: `new EventSource('http://127.0.0.1:8082/').onmessage = e => console.log(e.data)`.

use std::time::Duration;

use netlet_guest::TimerId;
use netlet_guest::http::{HttpHandler, Request, Response};
use netlet_guest::timers;

#[derive(Default)]
struct Sse {
    streams: Vec<Response>,
    ticks: u64,
    timer: Option<TimerId>,
}

impl HttpHandler for Sse {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let mut every = Duration::from_secs(1);
        if let [flag, value] = args.as_slice()
            && flag == "--every"
        {
            let ms = value
                .strip_suffix("ms")
                .map(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| {
                    value
                        .strip_suffix('s')
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|s| s * 1000)
                });
            every = Duration::from_millis(
                ms.ok_or(format!("--every {value:?}: expected e.g. 250ms or 2s"))?,
            );
        } else if !args.is_empty() {
            return Err(format!(
                "unknown arguments {args:?} (expected --every DURATION)"
            ));
        }
        self.timer = Some(timers::set_interval(every));
        Ok(())
    }

    fn on_request(&mut self, req: &Request, res: &Response) {
        if req.url() != "/" {
            res.write_head(404, &[("Content-Type", "text/plain")]);
            res.end_with("not found: the stream is at /\n");
            return;
        }
        res.write_head(
            200,
            &[
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
            ],
        );
        // A comment line: sends the head now, so the client sees the stream open.
        res.write(": connected\n\n");
        self.streams.push(res.clone());
    }

    fn on_close(&mut self, _req: &Request, res: &Response) {
        self.streams.retain(|s| s.id() != res.id());
    }

    fn on_timer(&mut self, timer: TimerId) {
        if Some(timer) != self.timer {
            return;
        }
        self.ticks += 1;
        let event = format!("id: {0}\ndata: tick {0}\n\n", self.ticks);
        for stream in &self.streams {
            // A client that does not keep up misses ticks instead of growing a queue.
            if stream.socket().buffer_size() < 64 * 1024 {
                stream.write(&event);
            }
        }
    }
}

netlet_guest::export_http!(Sse::default());
