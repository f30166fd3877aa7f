//! The client: Node's `new WebSocket('ws://host:port/path')` over [`net::connect`]
//! (`wss://` over [`net::connect_tls`]), so the `--allow` policy applies. The
//! handshake's answer is read with the SDK's HTTP parser and checked
//! ([`super::handshake::check_response`]). The client claims its socket
//! ([`runtime::claim_socket`]); its events come to the callback given to [`connect`].

use std::cell::RefCell;
use std::rc::Rc;

use super::event::{WsError, WsEvent};
use super::frame::random_u64;
use super::handshake;
use super::options::WsOptions;
use super::protocol::Role;
use super::socket::WebSocket;
use crate::error::{Error, ErrorCode};
use crate::http::parse::{Event, Kind, Limits, Parser};
use crate::net::{self, Socket, SocketEvent};
use crate::runtime::{self, SocketOwner};

/// Options of [`connect_with`].
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// `ws://host[:port][/path]` or `wss://host[:port][/path]` (TLS run by the host,
    /// the certificate verified against the platform's roots or `--tls-ca`).
    pub url: String,
    /// Subprotocols to offer (`Sec-WebSocket-Protocol`), in order of preference.
    pub protocols: Vec<String>,
    /// More header fields for the handshake request (`Origin`, `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Limits (the message size applies to what the server sends).
    pub options: WsOptions,
    /// For `wss://`: TLS options (a `servername` to verify other than the URL's host;
    /// ALPN). `None`: verify the URL's host, offer ALPN `http/1.1`.
    pub tls: Option<net::TlsOptions>,
}

impl ConnectOptions {
    /// Options for `url`, no subprotocol, default limits.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            ..Self::default()
        }
    }
}

/// The handshake while it is under way.
struct Handshake {
    parser: Parser,
    key: String,
    offered: Vec<String>,
}

/// The callback a client's events go to.
type OnEvent = Box<dyn FnMut(&WebSocket, WsEvent)>;

/// A client connection, which claims its socket: the runtime hands it every event.
struct Client {
    ws: WebSocket,
    handshake: RefCell<Option<Handshake>>,
    on_event: RefCell<OnEvent>,
}

/// A WebSocket URL's parts.
#[derive(Debug, PartialEq)]
struct Url {
    secure: bool,
    host: String,
    port: u16,
    path: String,
}

/// Splits `ws[s]://host[:port][/path]` into its parts (the port defaults to 80 or 443).
fn parse_url(url: &str) -> Result<Url, Error> {
    let bad = |why: &str| Error::other(ErrorCode::InvalidArgument, format!("{url:?}: {why}"));
    let (secure, rest) = if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else {
        return Err(bad("not a ws:// or wss:// URL"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        None if secure => 443,
        None => 80,
        Some(p) => p.parse().map_err(|_| bad("a bad port"))?,
    };
    if host.is_empty() || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("a bad host or path"));
    }
    Ok(Url {
        secure,
        host,
        port,
        path,
    })
}

/// Node's `new WebSocket(url)`: connects to a `ws://` or `wss://` URL. The handle is
/// returned at once (state `Connecting`); its events come to `on_event`: `Open`, or
/// `Error` then `Close`; then messages, pings, pongs, `Drain`, and `Close` last. The
/// destination must be allowed (`--allow HOST:PORT`), or this fails with
/// `access-denied`.
///
/// The callback cannot borrow the handler (it runs later, from the runtime): keep what
/// it shares with the handler in an `Rc<RefCell<..>>`, or move it in. To serve a
/// client's events with a [`WsHandler`](super::WsHandler), give it one:
/// `move |ws, event| event.deliver(&mut my_handler, ws)`.
///
/// ```no_run
/// use netlet_guest::ws::{self, Message, WsEvent};
///
/// ws::connect("ws://127.0.0.1:8081/ws", |ws, event| match event {
///     WsEvent::Open => {
///         ws.send_text("hello");
///     }
///     WsEvent::Message(Message::Text(text)) => println!("got {text}"),
///     WsEvent::Close { code, .. } => println!("closed with {code}"),
///     _ => {}
/// })?;
/// # Ok::<(), netlet_guest::Error>(())
/// ```
pub fn connect(
    url: &str,
    on_event: impl FnMut(&WebSocket, WsEvent) + 'static,
) -> Result<WebSocket, Error> {
    connect_with(ConnectOptions::new(url), on_event)
}

/// [`connect`] with subprotocols, headers and limits.
pub fn connect_with(
    options: ConnectOptions,
    on_event: impl FnMut(&WebSocket, WsEvent) + 'static,
) -> Result<WebSocket, Error> {
    let Url {
        secure,
        host,
        port,
        path,
    } = parse_url(&options.url)?;
    for (n, v) in &options.headers {
        if !crate::http::valid_header_name(n) || !crate::http::valid_header_value(v) {
            return Err(Error::other(
                ErrorCode::InvalidArgument,
                format!("invalid header {n:?}"),
            ));
        }
    }
    let mut opts = net::ConnectOptions::new(host.clone(), port);
    opts.no_delay = true;
    let socket = if secure {
        let tls = (options.tls.clone()).unwrap_or_else(|| net::TlsOptions::new().alpn("http/1.1"));
        net::connect_tls(opts, tls)?
    } else {
        net::connect(opts)?
    };
    let nonce: Vec<u8> = random_u64()
        .to_ne_bytes()
        .into_iter()
        .chain(random_u64().to_ne_bytes())
        .collect();
    let key = handshake::base64_encode(&nonce);
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    socket.write(handshake::client_request(
        &host_header,
        &path,
        &key,
        &options.protocols,
        &options.headers,
    ));
    let ws = WebSocket::new(
        socket.clone(),
        Role::Client,
        path,
        options.options,
        None,
        None,
        false,
    );
    let client = Rc::new(Client {
        ws: ws.clone(),
        handshake: RefCell::new(Some(Handshake {
            parser: Parser::new(Kind::Response, Limits::default()),
            key,
            offered: options.protocols,
        })),
        on_event: RefCell::new(Box::new(on_event)),
    });
    runtime::claim_socket(&socket, client);
    Ok(ws)
}

impl SocketOwner for Client {
    fn on_socket_event(&self, _socket: &Socket, event: SocketEvent) {
        // Taken out first: the arms put it back while it is still under way.
        let handshake = self.handshake.borrow_mut().take();
        let events = match handshake {
            None => self.ws.on_socket_event(event),
            Some(handshake) => self.handshake_event(handshake, event),
        };
        // One event at a time for a socket: the callback is never called re-entrantly.
        let mut on_event = self.on_event.borrow_mut();
        for event in events {
            on_event(&self.ws, event);
        }
    }
}

impl Client {
    /// An event of the socket while the server's answer is awaited; returns what the
    /// callback should see.
    fn handshake_event(&self, mut p: Handshake, event: SocketEvent) -> Vec<WsEvent> {
        let ws = &self.ws;
        let mut out = Vec::new();
        match event {
            SocketEvent::Data(data) => {
                p.parser.push(data);
                match p.parser.next_event() {
                    Ok(None) => {
                        *self.handshake.borrow_mut() = Some(p);
                    }
                    Ok(Some(Event::Head(head))) => {
                        match handshake::check_response(&head, &p.key, &p.offered) {
                            Ok(protocol) => {
                                let rest = p.parser.take_rest();
                                ws.set_open(head, protocol);
                                out.push(WsEvent::Open);
                                if !rest.is_empty() {
                                    out.extend(ws.on_socket_event(SocketEvent::Data(rest)));
                                }
                            }
                            Err(why) => {
                                ws.socket().destroy();
                                out.push(WsEvent::Error(WsError::Handshake(why)));
                            }
                        }
                    }
                    Ok(Some(_)) => {}
                    Err(e) => {
                        ws.socket().destroy();
                        out.push(WsEvent::Error(WsError::Handshake(e.to_string())));
                    }
                }
            }
            SocketEvent::Error(e) => {
                out.push(WsEvent::Error(WsError::Socket(e)));
                *self.handshake.borrow_mut() = Some(p);
            }
            SocketEvent::Close { had_error } => {
                // Closed before the handshake finished: Node's `close` with 1006.
                out.extend(ws.on_socket_event(SocketEvent::Close { had_error }));
            }
            SocketEvent::End => {
                out.push(WsEvent::Error(WsError::Handshake(
                    "the server closed the connection before answering".into(),
                )));
                ws.socket().destroy();
            }
            SocketEvent::Connect | SocketEvent::Drain | SocketEvent::Timeout => {
                *self.handshake.borrow_mut() = Some(p);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(secure: bool, host: &str, port: u16, path: &str) -> Url {
        Url {
            secure,
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("ws://127.0.0.1:8081/ws?x=1").unwrap(),
            url(false, "127.0.0.1", 8081, "/ws?x=1")
        );
        assert_eq!(
            parse_url("ws://example.org").unwrap(),
            url(false, "example.org", 80, "/")
        );
        assert_eq!(
            parse_url("ws://[::1]:9/a").unwrap(),
            url(false, "::1", 9, "/a")
        );
        assert_eq!(parse_url("ws://h?q").unwrap(), url(false, "h", 80, "/?q"));
        assert_eq!(parse_url("wss://h/x").unwrap(), url(true, "h", 443, "/x"));
        assert_eq!(
            parse_url("wss://localhost:8443").unwrap(),
            url(true, "localhost", 8443, "/")
        );
        assert!(parse_url("http://h/").is_err());
        assert!(parse_url("ws://h:x/").is_err());
        assert!(parse_url("ws:///").is_err());
        assert!(parse_url("wss://").is_err());
    }
}
