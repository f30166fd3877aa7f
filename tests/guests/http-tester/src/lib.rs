//! `http-tester`: a test-only HTTP handler and client.
//!
//! As a server: `GET /panic` starts a response (head and `partial`, sent) and panics
//! 50 ms later in a timer, so the instance traps mid-response; a request with `Upgrade: echo` is taken over
//! (`101 Switching Protocols`, then every byte after the head, and every later byte,
//! is echoed back uppercased until the client ends); any other request gets
//! `ok METHOD URL`, at once, or for `/wait-body` once the body has arrived.
//!
//! As a client: given arguments `HOST:PORT REQUEST...` (or `https://HOST:PORT` for
//! HTTPS), it makes the requests one after another with `netlet_guest::http::request`
//! (each once the previous one ended):
//! `GET /path`, `HEAD /path`, or `POST /path BODY` (the body written in two pieces, so
//! it goes chunked). For each it prints `response METHOD PATH STATUS socket=ID
//! body="BODY"`, or `error METHOD PATH MESSAGE`; then `done`.

use std::collections::VecDeque;
use std::time::Duration;

use netlet_guest::http::{
    self, ClientRequest, HttpHandler, Request, RequestOptions, Response, ResponseEvent,
};
use netlet_guest::{Socket, SocketEvent, TimerId, timers};

#[derive(Default)]
struct Tester {
    host: String,
    port: u16,
    https: bool,
    queue: VecDeque<String>,
    status: u16,
    body: Vec<u8>,
    panic_at: Option<TimerId>,
}

impl Tester {
    fn next(&mut self) -> Result<(), String> {
        let Some(line) = self.queue.pop_front() else {
            println!("done");
            return Ok(());
        };
        let mut parts = line.splitn(3, ' ');
        let method = parts.next().unwrap_or("GET");
        let path = parts.next().unwrap_or("/");
        let options = if self.https {
            RequestOptions::https(method, &self.host, self.port, path)
        } else {
            RequestOptions::new(method, &self.host, self.port, path)
        }
        .header("X-Client", "netlet");
        let req = http::request(options).map_err(|e| format!("request {line}: {e}"))?;
        match parts.next() {
            Some(body) => {
                let (a, b) = body.split_at(body.len() / 2);
                req.write(a);
                req.end_with(b);
            }
            None => req.end(),
        }
        self.status = 0;
        self.body.clear();
        Ok(())
    }
}

impl HttpHandler for Tester {
    fn init(&mut self, args: Vec<String>) -> Result<(), String> {
        let Some(addr) = args.first() else {
            return Ok(());
        };
        let (https, addr) = match addr.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, addr.as_str()),
        };
        self.https = https;
        let (host, port) = addr.rsplit_once(':').ok_or("HOST:PORT")?;
        self.host = host.to_string();
        self.port = port.parse().map_err(|_| "bad port")?;
        self.queue = args[1..].iter().cloned().collect();
        self.next()
    }

    fn on_request(&mut self, req: &Request, res: &Response) {
        if req.url() == "/panic" {
            res.write_head(200, &[("Content-Type", "text/plain")]);
            res.write("partial");
            self.panic_at = Some(timers::set_timeout(Duration::from_millis(50)));
            return;
        }
        if req.url() != "/wait-body" {
            res.end_with(format!("ok {} {}", req.method(), req.url()));
        }
    }

    fn on_body_end(&mut self, req: &Request, res: &Response) {
        if req.url() == "/wait-body" {
            res.end_with(format!("ok {} {}", req.method(), req.url()));
        }
    }

    fn on_timer(&mut self, timer: TimerId) {
        if Some(timer) == self.panic_at {
            panic!("http-tester: panicking mid-response");
        }
    }

    fn wants_upgrade(&mut self, req: &Request) -> bool {
        req.header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("echo"))
    }

    fn on_upgrade(&mut self, _req: &Request, socket: &Socket, head: Vec<u8>) {
        socket.write(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        );
        if !head.is_empty() {
            socket.write(head.to_ascii_uppercase());
        }
    }

    fn on_upgraded(&mut self, socket: &Socket, event: SocketEvent) {
        match event {
            SocketEvent::Data(data) => {
                socket.write(data.to_ascii_uppercase());
            }
            SocketEvent::End => println!("upgraded socket ended"),
            SocketEvent::Close { .. } => println!("upgraded socket closed"),
            _ => {}
        }
    }

    fn on_response(&mut self, req: &ClientRequest, event: ResponseEvent) {
        match event {
            ResponseEvent::Response(res) => self.status = res.status(),
            ResponseEvent::Data(chunk) => self.body.extend(chunk),
            ResponseEvent::End => {
                println!(
                    "response {} {} {} socket={} body={:?}",
                    req.method(),
                    req.path(),
                    self.status,
                    req.socket().id(),
                    String::from_utf8_lossy(&self.body)
                );
                if let Err(e) = self.next() {
                    println!("error {e}");
                }
            }
            ResponseEvent::Drain => {}
            ResponseEvent::Error(e) => {
                println!("error {} {} {e}", req.method(), req.path());
                if let Err(e) = self.next() {
                    println!("error {e}");
                }
            }
        }
    }
}

netlet_guest::export_http!(Tester::default());
