//! The client: Node's `http.request` over [`net::connect`](crate::net::connect) (and
//! `https.request` over [`net::connect_tls`](crate::net::connect_tls) when the options
//! carry [`TlsOptions`]), with a keep-alive pool of idle connections per host, port and
//! TLS name (Node's global agent, `keepAlive: true` since Node 19). The client claims
//! the connections it opens ([`runtime::claim_socket`]); the response arrives as
//! [`ResponseEvent`]s in the callback given to [`request`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::parse::{Event, Head, Kind, Limits, Parser, Version};
use crate::error::{Error, ErrorCode};
use crate::net::{self, ConnectOptions, Socket, SocketEvent, TlsOptions};
use crate::runtime::{self, SocketOwner};

/// How long an idle pooled connection is kept (a second under Node's default server
/// `keepAliveTimeout`, so the server is not the one to close it under a new request).
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Idle connections kept per host and port (Node's `maxFreeSockets`).
const MAX_IDLE: usize = 256;

/// Options of [`request`]: Node's `http.request(options)`.
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Host name or address (also the `Host` header, with the port).
    pub host: String,
    /// Port.
    pub port: u16,
    /// The request target: `/path?query`.
    pub path: String,
    /// Header fields, in order.
    pub headers: Vec<(String, String)>,
    /// Reuse an idle connection to the same host and port, and keep this one for the
    /// next request (Node's agent `keepAlive`, default true).
    pub keep_alive: bool,
    /// HTTPS (Node's `https.request`): TLS run by the host, the server's certificate
    /// verified against the platform's roots or the operator's `--tls-ca`. `None`:
    /// plain HTTP.
    pub tls: Option<TlsOptions>,
}

impl RequestOptions {
    /// `method` `path` on `host:port`, keep-alive, no headers.
    pub fn new(method: &str, host: &str, port: u16, path: &str) -> Self {
        Self {
            method: method.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
            headers: Vec::new(),
            keep_alive: true,
            tls: None,
        }
    }

    /// Node's `https.request`: the same request over TLS, the certificate verified for
    /// `host` (offering ALPN `http/1.1`).
    pub fn https(method: &str, host: &str, port: u16, path: &str) -> Self {
        Self::new(method, host, port, path).tls(TlsOptions::new().alpn("http/1.1"))
    }

    /// Over TLS with these options (a `servername` other than the host, ALPN).
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// What happens to a [`ClientRequest`], delivered to the callback given to [`request`].
#[derive(Debug)]
pub enum ResponseEvent {
    /// The response's head (Node's `http.request` callback).
    Response(IncomingResponse),
    /// A piece of the body (Node's `res.on('data')`).
    Data(Vec<u8>),
    /// The body is complete (`res.on('end')`); nothing follows.
    End,
    /// The request body's queue emptied after [`ClientRequest::write`] returned false.
    Drain,
    /// The request failed (Node's `req.on('error')`): refused, reset, a malformed
    /// response. Nothing follows.
    Error(Error),
}

/// A response's head: Node's `http.IncomingMessage` on a client.
#[derive(Clone, Debug)]
pub struct IncomingResponse(Head);

impl IncomingResponse {
    /// Node's `res.statusCode`.
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// Node's `res.statusMessage`.
    pub fn status_message(&self) -> &str {
        self.0.target()
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.0.version()
    }

    /// Every header field, in order (Node's `rawHeaders` as pairs).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.headers()
    }

    /// The first value of header `name`, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.header(name)
    }
}

/// The callback a request's events go to.
type OnResponse = Box<dyn FnMut(&ClientRequest, ResponseEvent)>;

struct ReqInner {
    id: u64,
    socket: Socket,
    options: RequestOptions,
    head_sent: bool,
    /// Bytes of a `Content-Length` body still due; `None` when chunked.
    length_left: Option<u64>,
    ended: bool,
    done: bool,
    /// Taken out while it runs (it may use the request), dropped once nothing follows.
    on_event: Option<OnResponse>,
}

/// A request in flight: Node's `http.ClientRequest`. A cheap handle; equal handles
/// name the same request.
#[derive(Clone)]
pub struct ClientRequest(Rc<RefCell<ReqInner>>);

impl PartialEq for ClientRequest {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0.borrow();
        f.debug_struct("ClientRequest")
            .field("id", &r.id)
            .field("method", &r.options.method)
            .field("path", &r.options.path)
            .finish()
    }
}

/// Which idle connections a request may reuse: same host and port, and the same TLS
/// name (`None` for plain HTTP), so a plain connection never carries an HTTPS request.
type PoolKey = (String, u16, Option<String>);

/// A connection the client opened and claimed: the runtime hands it every event of
/// its socket.
struct ClientConn {
    /// This connection, for the pool to keep when it goes idle.
    me: Weak<ClientConn>,
    socket: Socket,
    key: PoolKey,
    state: RefCell<ConnState>,
}

struct ConnState {
    parser: Parser,
    current: Option<ClientRequest>,
    /// Whether the response lets the connection be reused.
    reusable: bool,
}

thread_local! {
    /// Idle connections, most recently used last.
    static IDLE: RefCell<HashMap<PoolKey, Vec<Rc<ClientConn>>>> = RefCell::new(HashMap::new());
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Node's `http.request(options, callback)`: starts a request. Write a body with
/// [`ClientRequest::write`], then [`ClientRequest::end`] (a request without a body
/// still needs `end`). What happens to it comes to `on_event`: the response's head,
/// its body in pieces, its end, or an error; nothing follows `End` or `Error`. The
/// destination must be allowed (`--allow HOST:PORT`), or this fails with
/// `access-denied`.
///
/// The callback cannot borrow the handler (it runs later, from the runtime): keep
/// what it shares with the handler in an `Rc<RefCell<..>>`, or move it in.
///
/// ```no_run
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use netlet_guest::http::{self, RequestOptions, ResponseEvent};
///
/// let body = Rc::new(RefCell::new(Vec::new()));
/// let seen = body.clone();
/// let req = http::request(
///     RequestOptions::new("POST", "127.0.0.1", 8080, "/echo"),
///     move |_req, event| match event {
///         ResponseEvent::Response(head) => println!("status {}", head.status()),
///         ResponseEvent::Data(chunk) => seen.borrow_mut().extend(chunk),
///         ResponseEvent::End => println!("{} bytes", seen.borrow().len()),
///         ResponseEvent::Error(e) => println!("failed: {e}"),
///         ResponseEvent::Drain => {}
///     },
/// )?;
/// req.end_with("hello");
/// # Ok::<(), netlet_guest::Error>(())
/// ```
pub fn request(
    options: RequestOptions,
    on_event: impl FnMut(&ClientRequest, ResponseEvent) + 'static,
) -> Result<ClientRequest, Error> {
    for (name, value) in &options.headers {
        if !super::encode::valid_header_name(name) || !super::encode::valid_header_value(value) {
            return Err(Error::other(
                ErrorCode::InvalidArgument,
                format!("invalid header {name:?}"),
            ));
        }
    }
    if options.path.bytes().any(|b| b <= b' ' || b == 0x7f) || options.path.is_empty() {
        return Err(Error::other(
            ErrorCode::InvalidArgument,
            format!("invalid request path {:?}", options.path),
        ));
    }
    let tls_name = options
        .tls
        .as_ref()
        .map(|t| t.servername.clone().unwrap_or_else(|| options.host.clone()));
    let key = (options.host.clone(), options.port, tls_name);
    let reused = if options.keep_alive {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = idle.get_mut(&key)?;
            while let Some(conn) = list.pop() {
                if !conn.socket.destroyed() {
                    return Some(conn);
                }
            }
            None
        })
    } else {
        None
    };
    let conn = match reused {
        Some(conn) => {
            conn.socket.set_timeout(Duration::ZERO);
            conn
        }
        None => {
            let connect = ConnectOptions::new(options.host.clone(), options.port);
            let socket = match &options.tls {
                Some(tls) => net::connect_tls(connect, tls.clone())?,
                None => net::connect(connect)?,
            };
            let conn = Rc::new_cyclic(|me| ClientConn {
                me: me.clone(),
                socket,
                key,
                state: RefCell::new(ConnState {
                    parser: Parser::new(Kind::Response, Limits::default()),
                    current: None,
                    reusable: false,
                }),
            });
            runtime::claim_socket(&conn.socket, conn.clone());
            conn
        }
    };
    let id = NEXT_ID.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let to_head = options.method.eq_ignore_ascii_case("HEAD");
    let req = ClientRequest(Rc::new(RefCell::new(ReqInner {
        id,
        socket: conn.socket.clone(),
        options,
        head_sent: false,
        length_left: None,
        ended: false,
        done: false,
        on_event: Some(Box::new(on_event)),
    })));
    let mut st = conn.state.borrow_mut();
    st.current = Some(req.clone());
    st.reusable = false;
    st.parser.expect_head_response(to_head);
    Ok(req)
}

/// `GET path` on `host:port`, ended at once; see [`request`].
pub fn get(
    host: &str,
    port: u16,
    path: &str,
    on_event: impl FnMut(&ClientRequest, ResponseEvent) + 'static,
) -> Result<ClientRequest, Error> {
    let req = request(RequestOptions::new("GET", host, port, path), on_event)?;
    req.end();
    Ok(req)
}

impl ClientRequest {
    /// A number unique to this request within the instance.
    pub fn id(&self) -> u64 {
        self.0.borrow().id
    }

    /// The connection it uses (a pooled one is reused by later requests).
    pub fn socket(&self) -> Socket {
        self.0.borrow().socket.clone()
    }

    /// Node's `req.method`.
    pub fn method(&self) -> String {
        self.0.borrow().options.method.clone()
    }

    /// Node's `req.path`.
    pub fn path(&self) -> String {
        self.0.borrow().options.path.clone()
    }

    fn head(r: &mut ReqInner, out: &mut Vec<u8>, known: Option<usize>) {
        let o = &r.options;
        let _ = write!(Str(out), "{} {} HTTP/1.1\r\n", o.method, o.path);
        let has = |name: &str| o.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !has("host") {
            let _ = write!(Str(out), "Host: {}:{}\r\n", o.host, o.port);
        }
        for (n, v) in &o.headers {
            let _ = write!(Str(out), "{n}: {v}\r\n");
        }
        if !has("connection") {
            out.extend_from_slice(if o.keep_alive {
                b"Connection: keep-alive\r\n"
            } else {
                b"Connection: close\r\n"
            });
        }
        let user_length = o
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok());
        r.length_left = if let Some(n) = user_length {
            Some(n)
        } else if has("transfer-encoding") {
            None
        } else if let Some(n) = known {
            let bodiless = ["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
                .iter()
                .any(|m| o.method.eq_ignore_ascii_case(m));
            if n > 0 || !bodiless {
                let _ = write!(Str(out), "Content-Length: {n}\r\n");
            }
            Some(n as u64)
        } else {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            None
        };
        out.extend_from_slice(b"\r\n");
        r.head_sent = true;
    }

    fn frame(r: &mut ReqInner, out: &mut Vec<u8>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match &mut r.length_left {
            Some(left) => {
                let n = (data.len() as u64).min(*left) as usize;
                out.extend_from_slice(&data[..n]);
                *left -= n as u64;
            }
            None => {
                let _ = write!(Str(out), "{:x}\r\n", data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Node's `req.write(chunk)`: a piece of the body (chunked unless a
    /// `Content-Length` was given). Returns the socket's backpressure boolean;
    /// [`ResponseEvent::Drain`] follows a `false`.
    pub fn write(&self, chunk: impl AsRef<[u8]>) -> bool {
        let mut r = self.0.borrow_mut();
        if r.ended {
            return false;
        }
        let mut out = Vec::new();
        if !r.head_sent {
            Self::head(&mut r, &mut out, None);
        }
        Self::frame(&mut r, &mut out, chunk.as_ref());
        r.socket.write(out)
    }

    /// Node's `req.end()`: the request is complete.
    pub fn end(&self) {
        self.end_with([]);
    }

    /// Node's `req.end(data)`: the last piece, then complete. Before any `write`, the
    /// body gets a `Content-Length`.
    pub fn end_with(&self, data: impl AsRef<[u8]>) {
        let mut r = self.0.borrow_mut();
        if r.ended {
            return;
        }
        let data = data.as_ref();
        let mut out = Vec::new();
        if !r.head_sent {
            Self::head(&mut r, &mut out, Some(data.len()));
        }
        Self::frame(&mut r, &mut out, data);
        if r.length_left.is_none() {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        r.ended = true;
        r.socket.write(out);
    }

    /// Node's `req.destroy()`: abandons the request and closes its connection.
    pub fn destroy(&self) {
        let socket = {
            let mut r = self.0.borrow_mut();
            r.done = true;
            r.ended = true;
            r.socket.clone()
        };
        socket.destroy();
    }
}

struct Str<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Str<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl ClientRequest {
    /// Hands `event` to the request's callback, outside every borrow (the callback may
    /// use this request, or start another); after `End` or `Error` the callback is
    /// dropped, and with it what it holds.
    fn deliver(&self, event: ResponseEvent) {
        let last = matches!(event, ResponseEvent::End | ResponseEvent::Error(_));
        let Some(mut on_event) = self.0.borrow_mut().on_event.take() else {
            return;
        };
        on_event(self, event);
        if !last {
            self.0.borrow_mut().on_event.get_or_insert(on_event);
        }
    }
}

impl SocketOwner for ClientConn {
    fn on_socket_event(&self, _socket: &Socket, event: SocketEvent) {
        // Collected first, delivered once the connection's state is no longer borrowed.
        for (req, event) in self.handle(event) {
            req.deliver(event);
        }
    }
}

impl ClientConn {
    /// Moves the connection on with an event of its socket; returns what to tell
    /// which request.
    fn handle(&self, event: SocketEvent) -> Vec<(ClientRequest, ResponseEvent)> {
        let mut out = Vec::new();
        let mut st = self.state.borrow_mut();
        let fail = |st: &mut ConnState, out: &mut Vec<_>, e: Error| {
            if let Some(req) = st.current.take() {
                let done = std::mem::replace(&mut req.0.borrow_mut().done, true);
                if !done {
                    out.push((req, ResponseEvent::Error(e)));
                }
            }
        };
        match event {
            // Connected: the queued request goes out; nothing to tell.
            SocketEvent::Connect => {}
            SocketEvent::Data(data) => {
                st.parser.push(data);
                loop {
                    match st.parser.next_event() {
                        Ok(None) => break,
                        Ok(Some(Event::Head(head))) => {
                            let status = head.status();
                            if (100..200).contains(&status) && status != 101 {
                                continue;
                            }
                            st.reusable = head.keep_alive() && status != 101;
                            if let Some(req) = &st.current {
                                out.push((
                                    req.clone(),
                                    ResponseEvent::Response(IncomingResponse(head)),
                                ));
                            }
                        }
                        Ok(Some(Event::Body(chunk))) => {
                            if let Some(req) = &st.current {
                                out.push((req.clone(), ResponseEvent::Data(chunk)));
                            }
                        }
                        Ok(Some(Event::End)) => {
                            let Some(req) = st.current.take() else {
                                continue;
                            };
                            let (keep, ended) = {
                                let mut r = req.0.borrow_mut();
                                r.done = true;
                                (r.options.keep_alive, r.ended)
                            };
                            out.push((req, ResponseEvent::End));
                            if keep && ended && st.reusable && st.parser.buffered() == 0 {
                                self.pool();
                            } else {
                                self.socket.end();
                            }
                            break;
                        }
                        Err(e) => {
                            self.socket.destroy();
                            fail(
                                &mut st,
                                &mut out,
                                Error::other(ErrorCode::Unknown, format!("parse error: {e}")),
                            );
                            break;
                        }
                    }
                }
            }
            SocketEvent::End => match st.parser.finish() {
                Ok(true) => {
                    if let Some(req) = st.current.take() {
                        req.0.borrow_mut().done = true;
                        out.push((req, ResponseEvent::End));
                    }
                }
                _ => fail(&mut st, &mut out, hang_up()),
            },
            SocketEvent::Drain => {
                if let Some(req) = &st.current {
                    out.push((req.clone(), ResponseEvent::Drain));
                }
            }
            SocketEvent::Timeout => {
                if st.current.is_none() {
                    self.socket.destroy();
                }
            }
            SocketEvent::Error(e) => fail(&mut st, &mut out, e),
            SocketEvent::Close { .. } => {
                fail(&mut st, &mut out, hang_up());
                let id = self.socket.id();
                IDLE.with(|idle| {
                    if let Some(list) = idle.borrow_mut().get_mut(&self.key) {
                        list.retain(|c| c.socket.id() != id);
                    }
                });
            }
        }
        out
    }

    /// Keeps the connection for the next request to the same place, or ends it when
    /// the pool is full.
    fn pool(&self) {
        let pooled = IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = idle.entry(self.key.clone()).or_default();
            match self.me.upgrade() {
                Some(conn) if list.len() < MAX_IDLE => {
                    list.push(conn);
                    true
                }
                _ => false,
            }
        });
        if pooled {
            self.socket.set_timeout(IDLE_TIMEOUT);
        } else {
            self.socket.end();
        }
    }
}

/// Node's error for a connection that closed before the response completed.
fn hang_up() -> Error {
    Error::other(ErrorCode::ConnectionReset, "socket hang up".to_string())
}
