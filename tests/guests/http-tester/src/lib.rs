//! `http-tester`: a test-only HTTP handler and client.
//!
//! As a server: `GET /panic` starts a response (head and `partial`, sent) and panics
//! 50 ms later in a timer, so the instance traps mid-response; a request with `Upgrade: echo` is taken over
//! (`101 Switching Protocols`, then every byte after the head, and every later byte,
//! is echoed back uppercased until the client ends); `GET /fetch/HOST:PORT/PATH`
//! fetches `PATH` there with the guest's client and answers `fetched STATUS BODY` from
//! the client's callback (a gateway); any other request gets `ok METHOD URL`, at once,
//! or for `/wait-body` once the body has arrived.
//!
//! As a client: given arguments `HOST:PORT REQUEST...` (or `https://HOST:PORT` for
//! HTTPS), it makes the requests one after another with `netlet_guest::http::request`
//! (each from the previous one's callback, once it ended):
//! `GET /path`, `HEAD /path`, or `POST /path BODY` (the body written in two pieces, so
//! it goes chunked). For each it prints `response METHOD PATH STATUS socket=ID
//! body="BODY"`, or `error METHOD PATH MESSAGE`; then `done`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use netlet_guest::http::{
    self, ClientRequest, HttpHandler, Request, RequestOptions, Response, ResponseEvent,
};
use netlet_guest::{Socket, SocketEvent, TimerId, timers};

#[derive(Default)]
struct Tester {
    panic_at: Option<TimerId>,
}

/// The client's requests, made one after another: shared by the callbacks of its
/// requests, which start the next.
#[derive(Default)]
struct Client {
    host: String,
    port: u16,
    https: bool,
    queue: VecDeque<String>,
    status: u16,
    body: Vec<u8>,
}

/// Starts the client's next request, or prints `done`.
fn next(client: &Rc<RefCell<Client>>) -> Result<(), String> {
    let (line, options) = {
        let mut c = client.borrow_mut();
        let Some(line) = c.queue.pop_front() else {
            println!("done");
            return Ok(());
        };
        let mut parts = line.splitn(3, ' ');
        let method = parts.next().unwrap_or("GET");
        let path = parts.next().unwrap_or("/");
        let options = if c.https {
            RequestOptions::https(method, &c.host, c.port, path)
        } else {
            RequestOptions::new(method, &c.host, c.port, path)
        }
        .header("X-Client", "netlet");
        c.status = 0;
        c.body.clear();
        (line.clone(), options)
    };
    let shared = client.clone();
    let req = http::request(options, move |req, event| on_response(&shared, req, event))
        .map_err(|e| format!("request {line}: {e}"))?;
    match line.splitn(3, ' ').nth(2) {
        Some(body) => {
            let (a, b) = body.split_at(body.len() / 2);
            req.write(a);
            req.end_with(b);
        }
        None => req.end(),
    }
    Ok(())
}

fn on_response(client: &Rc<RefCell<Client>>, req: &ClientRequest, event: ResponseEvent) {
    match event {
        ResponseEvent::Response(res) => client.borrow_mut().status = res.status(),
        ResponseEvent::Data(chunk) => client.borrow_mut().body.extend(chunk),
        ResponseEvent::End => {
            {
                let c = client.borrow();
                println!(
                    "response {} {} {} socket={} body={:?}",
                    req.method(),
                    req.path(),
                    c.status,
                    req.socket().id(),
                    String::from_utf8_lossy(&c.body)
                );
            }
            if let Err(e) = next(client) {
                println!("error {e}");
            }
        }
        ResponseEvent::Drain => {}
        ResponseEvent::Error(e) => {
            println!("error {} {} {e}", req.method(), req.path());
            if let Err(e) = next(client) {
                println!("error {e}");
            }
        }
    }
}

/// Answers `res` with what `HOST:PORT/PATH` answers, from the client's callback.
fn fetch(target: &str, res: &Response) {
    let (addr, path) = target.split_once('/').unwrap_or((target, ""));
    let Some((host, port)) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
    else {
        res.set_status(400);
        return res.end();
    };
    let (answer, mut status, mut body) = (res.clone(), 0, Vec::new());
    let result = http::get(
        &host,
        port,
        &format!("/{path}"),
        move |_, event| match event {
            ResponseEvent::Response(head) => status = head.status(),
            ResponseEvent::Data(chunk) => body.extend(chunk),
            ResponseEvent::End => answer.end_with(format!(
                "fetched {status} {}",
                String::from_utf8_lossy(&body)
            )),
            ResponseEvent::Error(e) => {
                answer.set_status(502);
                answer.end_with(format!("fetch failed: {e}"));
            }
            ResponseEvent::Drain => {}
        },
    );
    if let Err(e) = result {
        res.set_status(502);
        res.end_with(format!("fetch refused: {e}"));
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
        let (host, port) = addr.rsplit_once(':').ok_or("HOST:PORT")?;
        let client = Client {
            host: host.to_string(),
            port: port.parse().map_err(|_| "bad port")?,
            https,
            queue: args[1..].iter().cloned().collect(),
            ..Client::default()
        };
        next(&Rc::new(RefCell::new(client)))
    }

    fn on_request(&mut self, req: &Request, res: &Response) {
        if let Some(target) = req.url().strip_prefix("/fetch/") {
            return fetch(target, res);
        }
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
}

netlet_guest::export_http!(Tester::default());
