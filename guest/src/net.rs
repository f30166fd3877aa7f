//! TCP: [`Socket`], [`Server`] and [`connect`], Node's `net.Socket`, `net.Server` and
//! `net.connect`.

use std::any::Any;
use std::cell::{Cell, RefCell, RefMut};
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::bindings::netlet::net::net as raw;
use crate::error::Error;
use crate::ids::IdMap;

/// An address family (Node's `'IPv4'` / `'IPv6'`).
pub use crate::bindings::netlet::net::types::IpFamily;

/// An endpoint: address, family and port, as Node's `socket.address()`.
pub use crate::bindings::netlet::net::types::AddressInfo;

/// Node's `socket.readyState`.
pub use crate::bindings::netlet::net::net::ReadyState;

/// What a TLS socket negotiated ([`Socket::tls`]): protocol, cipher, SNI, ALPN, the
/// verified peer certificate.
pub use crate::bindings::netlet::net::net::TlsInfo;

/// A verified peer certificate's subject and alternative names
/// ([`Socket::peer_certificate`]).
pub use crate::bindings::netlet::net::net::PeerCertificate;

impl fmt::Display for IpFamily {
    /// Node's family strings: `IPv4`, `IPv6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::Ipv4 => "IPv4",
            IpFamily::Ipv6 => "IPv6",
        })
    }
}

impl fmt::Display for ReadyState {
    /// Node's `readyState` strings: `opening`, `open`, `readOnly`, `writeOnly`, `closed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadyState::Opening => "opening",
            ReadyState::Open => "open",
            ReadyState::ReadOnly => "readOnly",
            ReadyState::WriteOnly => "writeOnly",
            ReadyState::Closed => "closed",
        })
    }
}

impl fmt::Display for AddressInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.family {
            IpFamily::Ipv4 => write!(f, "{}:{}", self.address, self.port),
            IpFamily::Ipv6 => write!(f, "[{}]:{}", self.address, self.port),
        }
    }
}

/// A TCP connection, accepted by a server or opened with [`connect`]: Node's `net.Socket`.
///
/// `Socket` is a cheap handle: clone it to keep it (a chat room keeps its clients). Two
/// handles are equal when they name the same connection. After its `close` event the
/// socket is gone: methods do nothing and return `false`, zero or `None`.
#[derive(Clone)]
pub struct Socket(Rc<SocketInner>);

struct SocketInner {
    raw: raw::Socket,
    id: u32,
    server: Option<u32>,
    state: RefCell<Vec<Box<dyn Any>>>,
    /// Set by `destroy`: events still in flight for it are dropped, as in Node.
    destroyed: Cell<bool>,
    /// Where [`Socket::pipe`] sends this socket's bytes.
    piped: RefCell<Option<Weak<SocketInner>>>,
}

impl Socket {
    pub(crate) fn new(raw: raw::Socket, server: Option<u32>) -> Self {
        let id = raw.id();
        Socket(Rc::new(SocketInner {
            raw,
            id,
            server,
            state: RefCell::new(Vec::new()),
            destroyed: Cell::new(false),
            piped: RefCell::new(None),
        }))
    }

    /// The socket's id, unique for the life of the instance.
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// The id of the server that accepted this socket; `None` for a client socket.
    pub fn server_id(&self) -> Option<u32> {
        self.0.server
    }

    /// Node's `socket.write(data)`: queue `data` for sending. Returns `true` while the
    /// queue is under the high-water mark (64 KiB), `false` once it reaches it; then a
    /// `drain` event follows when the queue empties. Also `false` if the socket can no
    /// longer be written (ended, destroyed): use [`Socket::try_write`] to tell why.
    pub fn write(&self, data: impl AsRef<[u8]>) -> bool {
        self.try_write(data).unwrap_or(false)
    }

    /// [`Socket::write`], reporting why a write was refused.
    pub fn try_write(&self, data: impl AsRef<[u8]>) -> Result<bool, Error> {
        self.0
            .raw
            .write(data.as_ref())
            .map_err(|code| Error::from_code(code, "write"))
    }

    /// Node's `socket.pipe(destination, { end })`, carried out by the host: from now on
    /// what this socket reads goes to `dest` (another socket, or this one for an echo)
    /// with no call into the handler per chunk, and where both are plain TCP sockets
    /// without passing through memory at all. Backpressure is Node's: this socket is
    /// read only while `dest`'s queue is under the high-water mark, so a slow reader on
    /// `dest` slows this socket's peer.
    ///
    /// [`NetHandler::on_data`](crate::NetHandler::on_data) is no longer called for this
    /// socket (bytes read before the call are passed on to `dest` too); its `on_end`,
    /// `on_error` and `on_close` still are. With [`PipeOptions::end`], `dest` is ended
    /// after this socket's `on_end`. An error on this socket leaves `dest` alone; when
    /// `dest` closes, this socket is unpiped and paused ([`Socket::resume`] brings its
    /// `on_data` back). Writing to `dest` meanwhile is fine: bytes keep the order they
    /// were handed over in.
    ///
    /// Fails with [`ErrorCode::InvalidState`](crate::ErrorCode::InvalidState) when
    /// either socket is closed, `dest` is ended, or this socket is already piped
    /// elsewhere ([`Socket::unpipe`] first).
    ///
    /// ```no_run
    /// # use netlet_guest::{NetHandler, Socket, net::PipeOptions};
    /// struct Echo;
    /// impl NetHandler for Echo {
    ///     fn on_connection(&mut self, socket: &Socket) {
    ///         let _ = socket.pipe(socket, PipeOptions::default());
    ///     }
    /// }
    /// ```
    pub fn pipe(&self, dest: &Socket, options: PipeOptions) -> Result<(), Error> {
        self.0
            .raw
            .pipe(&dest.0.raw, raw::PipeOptions { end: options.end })
            .map_err(|code| Error::from_code(code, "pipe"))?;
        *self.0.piped.borrow_mut() = Some(Rc::downgrade(&dest.0));
        Ok(())
    }

    /// Node's `socket.unpipe()`: stop moving this socket's bytes (those already moved
    /// still reach the destination). As in Node the socket is then paused:
    /// [`Socket::resume`] brings its `on_data` back.
    pub fn unpipe(&self) {
        self.0.piped.borrow_mut().take();
        self.0.raw.unpipe()
    }

    /// `data` for a piped socket (read before [`Socket::pipe`]) goes on to the
    /// destination, as Node's `pipe` passes on what was read; the data of a socket
    /// that is not piped (or whose destination is gone) comes back for the handler.
    pub(crate) fn pass_on(&self, data: Vec<u8>) -> Option<Vec<u8>> {
        let dest = self.0.piped.borrow().as_ref().and_then(Weak::upgrade);
        match dest {
            Some(dest) if !dest.destroyed.get() => {
                let _ = dest.raw.write(&data);
                None
            }
            Some(_) => {
                self.0.piped.borrow_mut().take();
                Some(data)
            }
            None => Some(data),
        }
    }

    /// Node's `socket.end()`: half-close after every queued byte is sent.
    pub fn end(&self) {
        self.0.raw.end(None)
    }

    /// Node's `socket.end(data)`: write `data`, then half-close.
    pub fn end_with(&self, data: impl AsRef<[u8]>) {
        self.0.raw.end(Some(data.as_ref()))
    }

    /// Node's `socket.destroy()`: close now, discarding queued bytes. No event but
    /// `close` follows.
    pub fn destroy(&self) {
        self.0.destroyed.set(true);
        self.0.raw.destroy()
    }

    /// Node's `socket.resetAndDestroy()`: close with a TCP RST. No event but `close`
    /// follows.
    pub fn reset_and_destroy(&self) {
        self.0.destroyed.set(true);
        self.0.raw.reset_and_destroy()
    }

    /// Node's `socket.destroyed`: `destroy` was called, or the socket has closed.
    pub fn destroyed(&self) -> bool {
        self.0.destroyed.get()
    }

    pub(crate) fn mark_closed(&self) {
        self.0.destroyed.set(true);
    }

    /// Node's `socket.pause()`: no `data` events until [`Socket::resume`]; the peer is
    /// slowed by TCP flow control.
    pub fn pause(&self) {
        self.0.raw.pause()
    }

    /// Node's `socket.resume()`.
    pub fn resume(&self) {
        self.0.raw.resume()
    }

    /// Node's `socket.isPaused()`.
    pub fn is_paused(&self) -> bool {
        self.0.raw.is_paused()
    }

    /// Node's `socket.setNoDelay(noDelay)`: disable (`true`) or enable Nagle's algorithm.
    pub fn set_no_delay(&self, no_delay: bool) -> Result<(), Error> {
        self.0
            .raw
            .set_no_delay(no_delay)
            .map_err(|code| Error::from_code(code, "setNoDelay"))
    }

    /// Node's `socket.setKeepAlive(enable, initialDelay)`.
    pub fn set_keep_alive(&self, enable: bool, initial_delay: Duration) -> Result<(), Error> {
        let ms = u32::try_from(initial_delay.as_millis()).unwrap_or(u32::MAX);
        self.0
            .raw
            .set_keep_alive(enable, ms)
            .map_err(|code| Error::from_code(code, "setKeepAlive"))
    }

    /// Node's `socket.setTimeout(ms)`: a `timeout` event after this long without
    /// activity. A notice only: the socket stays open. `Duration::ZERO` disables it.
    pub fn set_timeout(&self, idle: Duration) {
        let ms = u32::try_from(idle.as_millis()).unwrap_or(u32::MAX);
        self.0.raw.set_timeout(ms)
    }

    /// Node's `remoteAddress` / `remoteFamily` / `remotePort`.
    pub fn remote_address(&self) -> Option<AddressInfo> {
        self.0.raw.remote_address()
    }

    /// Node's `socket.address()`.
    pub fn local_address(&self) -> Option<AddressInfo> {
        self.0.raw.local_address()
    }

    /// Node's `socket.bytesRead`, bytes a [`Socket::pipe`] moved included; after the
    /// close, the final count.
    pub fn bytes_read(&self) -> u64 {
        self.0.raw.bytes_read()
    }

    /// Node's `socket.bytesWritten`, bytes a pipe moved in included; after the close,
    /// the final count.
    pub fn bytes_written(&self) -> u64 {
        self.0.raw.bytes_written()
    }

    /// Node's `socket.bufferSize`: bytes queued and not yet sent.
    pub fn buffer_size(&self) -> u64 {
        self.0.raw.buffer_size()
    }

    /// Node's `socket.readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.0.raw.ready_state()
    }

    /// Node's `socket.encrypted`: the socket came from a TLS listener (`netlet run
    /// --tls`) or was opened with [`connect_tls`]. The host ran the handshake;
    /// handlers that do not care see the same events as on plain TCP.
    pub fn encrypted(&self) -> bool {
        self.0.raw.tls().is_some()
    }

    /// Everything TLS negotiated, in one call; `None` for a plain TCP socket.
    pub fn tls(&self) -> Option<TlsInfo> {
        self.0.raw.tls()
    }

    /// Node's `socket.getProtocol()`: `"TLSv1.3"` or `"TLSv1.2"`; `None` unencrypted.
    pub fn protocol(&self) -> Option<String> {
        self.tls().map(|t| t.protocol)
    }

    /// Node's `socket.getCipher().standardName`, e.g. `"TLS_AES_128_GCM_SHA256"`.
    pub fn cipher(&self) -> Option<String> {
        self.tls().map(|t| t.cipher)
    }

    /// Node's `socket.servername`: the name the client asked for (SNI).
    pub fn servername(&self) -> Option<String> {
        self.tls().and_then(|t| t.servername)
    }

    /// Node's `socket.alpnProtocol`: the protocol agreed by ALPN.
    pub fn alpn_protocol(&self) -> Option<String> {
        self.tls().and_then(|t| t.alpn_protocol)
    }

    /// Node's `socket.getPeerCertificate()`, verified: the server's for a client
    /// socket, the client's on a listener that requires one (`--tls-client-ca`).
    pub fn peer_certificate(&self) -> Option<PeerCertificate> {
        self.tls().and_then(|t| t.peer_certificate)
    }

    /// Per-connection state of type `T`, created with `T::default()` on first use and
    /// dropped after the socket's `close` event. Several types can be kept side by side.
    ///
    /// ```no_run
    /// # use netlet_guest::Socket;
    /// fn on_data(socket: &Socket, data: Vec<u8>) {
    ///     let mut line = socket.state::<Vec<u8>>();
    ///     line.extend_from_slice(&data);
    /// }
    /// ```
    ///
    /// # Panics
    ///
    /// If state of the same socket is borrowed twice at once (as a `RefCell` would).
    pub fn state<T: Default + 'static>(&self) -> RefMut<'_, T> {
        let mut slots = self.0.state.borrow_mut();
        if !slots.iter().any(|slot| slot.is::<T>()) {
            slots.push(Box::new(T::default()));
        }
        RefMut::map(slots, |slots| {
            slots
                .iter_mut()
                .find_map(|slot| slot.downcast_mut::<T>())
                .expect("state slot was just inserted")
        })
    }

    pub(crate) fn clear_state(&self) {
        // Taken out first so a state's Drop may use the socket's state again.
        let slots = std::mem::take(&mut *self.0.state.borrow_mut());
        drop(slots);
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Socket {}

impl std::hash::Hash for Socket {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state)
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").field("id", &self.0.id).finish()
    }
}

/// One event of a socket, as [`NetHandler`](crate::NetHandler) would receive it: what
/// the runtime hands to the code that claimed the socket
/// ([`SocketOwner`](crate::runtime::SocketOwner)), and how a protocol layer hands a
/// connection's later events to whoever took it over (an HTTP upgrade:
/// [`HttpHandler::on_upgraded`](crate::http::HttpHandler::on_upgraded)).
#[derive(Debug)]
pub enum SocketEvent {
    /// Node's `'connect'`: a client socket from [`connect`] is connected (never for an
    /// accepted socket).
    Connect,
    /// Node's `'data'`.
    Data(Vec<u8>),
    /// Node's `'end'`: the peer finished sending.
    End,
    /// Node's `'drain'`.
    Drain,
    /// Node's `'timeout'` (after [`Socket::set_timeout`]).
    Timeout,
    /// Node's `'error'`; `Close` follows.
    Error(Error),
    /// Node's `'close'`; nothing follows.
    Close {
        /// Whether an error closed it.
        had_error: bool,
    },
}

/// A listening TCP server: one the operator configured (`netlet run --tcp ADDR`), handed
/// to [`NetHandler::on_listening`](crate::NetHandler::on_listening), or one from
/// [`listen`]. Node's `net.Server`.
#[derive(Clone)]
pub struct Server(Rc<ServerInner>);

struct ServerInner {
    raw: raw::Server,
    id: u32,
}

impl Server {
    pub(crate) fn new(raw: raw::Server) -> Self {
        let id = raw.id();
        Server(Rc::new(ServerInner { raw, id }))
    }

    /// The server's id, as [`Socket::server_id`] reports it.
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// Node's `server.address()`.
    pub fn address(&self) -> Option<AddressInfo> {
        self.0.raw.address()
    }

    /// Node's `server.getConnections()`.
    pub fn connections(&self) -> u32 {
        self.0.raw.get_connections()
    }

    /// Node's `server.listening`.
    pub fn listening(&self) -> bool {
        self.0.raw.listening()
    }

    /// Node's `server.close()`: stop accepting; `on_server_close` follows once every open
    /// connection has closed.
    ///
    /// Fails with [`ErrorCode::InvalidState`](crate::ErrorCode) in a per-connection
    /// instance (`--isolation connection`), where the listener is not this connection's
    /// to close.
    pub fn close(&self) -> Result<(), Error> {
        self.0
            .raw
            .close()
            .map_err(|code| Error::from_code(code, "close"))
    }
}

impl PartialEq for Server {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Server {}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("id", &self.0.id).finish()
    }
}

/// Options of [`Socket::pipe`]: Node's `readable.pipe(destination, options)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeOptions {
    /// End the destination when this socket's peer ends, once every byte moved has gone
    /// out (Node's `end`, true by default). `false` leaves it open for the handler to
    /// write to and end.
    pub end: bool,
}

impl Default for PipeOptions {
    fn default() -> Self {
        PipeOptions { end: true }
    }
}

/// How a server's accepted sockets start: Node's `net.createServer(options)`, with
/// Node's defaults (all off). A handler states them for the operator's listeners with
/// [`NetHandler::server_options`](crate::NetHandler::server_options), or for one server
/// with [`listen`]. The operator's `--allow-half-open` overrides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerOptions {
    /// Node's `allowHalfOpen`: after the peer's `end`, our side stays open until the
    /// handler ends it (a proxy forwarding the rest of a response needs this). Off: the
    /// host ends our side right after `on_end`.
    pub allow_half_open: bool,
    /// Node's `pauseOnConnect`: accepted sockets start paused; nothing is read until
    /// [`Socket::resume`].
    pub pause_on_connect: bool,
    /// Node's `noDelay`: TCP_NODELAY on accepted sockets.
    pub no_delay: bool,
    /// Node's `keepAlive`: SO_KEEPALIVE on accepted sockets...
    pub keep_alive: bool,
    /// ...with this idle time before the first probe (Node's `keepAliveInitialDelay`;
    /// zero: the system's).
    pub keep_alive_initial_delay: Duration,
}

impl ServerOptions {
    pub(crate) fn raw(&self) -> raw::ServerOptions {
        raw::ServerOptions {
            allow_half_open: self.allow_half_open,
            pause_on_connect: self.pause_on_connect,
            no_delay: self.no_delay,
            keep_alive: self.keep_alive,
            keep_alive_initial_delay_ms: u32::try_from(self.keep_alive_initial_delay.as_millis())
                .unwrap_or(u32::MAX),
        }
    }
}

/// Node's `net.createServer(options)` for the operator's listeners, from now on: how the
/// sockets they accept start. [`NetHandler::server_options`](crate::NetHandler::server_options)
/// is the usual way to say it; this is for options only known in `init` (from its
/// arguments). [`listen`]'s own options take precedence for its server.
pub fn set_server_options(options: ServerOptions) {
    raw::set_server_options(options.raw())
}

/// Node's `server.listen(port[, host])`, for a handler that names its port: the
/// operator's listener the code knows by `port` (`--tcp ADDR`, or `--tcp ADDR=PORT` to
/// bind it elsewhere), or a new listener on `host:port` where `--allow` permits it. Its
/// connections start as `options` say; `on_listening` follows. Call it in
/// [`NetHandler::init`](crate::NetHandler::init) to have the operator's listener from its
/// first connection.
///
/// Fails with [`ErrorCode::AccessDenied`](crate::ErrorCode::AccessDenied) (the host logs
/// which flag to pass) when no listener is configured for `port` and `--allow` does not
/// permit binding it, and [`ErrorCode::AddressInUse`](crate::ErrorCode::AddressInUse)
/// when the handler already listens there.
///
/// ```no_run
/// use netlet_guest::NetHandler;
/// use netlet_guest::net::{self, ServerOptions};
///
/// struct Admin;
///
/// impl NetHandler for Admin {
///     fn init(&mut self, _args: Vec<String>) -> Result<(), String> {
///         let options = ServerOptions { pause_on_connect: true, ..Default::default() };
///         net::listen(9000, Some("127.0.0.1"), options).map_err(|e| e.to_string())?;
///         Ok(())
///     }
/// }
/// # netlet_guest::export_net!(Admin);
/// ```
pub fn listen(port: u16, host: Option<&str>, options: ServerOptions) -> Result<Server, Error> {
    raw::listen(port, host, options.raw())
        .map(Server::new)
        .map_err(|code| {
            let at = match host {
                Some(host) => format!("listen {host}:{port}"),
                None => format!("listen {port}"),
            };
            Error::from_code(code, &at)
        })
}

/// Options of [`connect`], Node's `net.connect(options)`. Build with
/// [`ConnectOptions::new`] and adjust fields as needed.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Resolve the host to this family only.
    pub family: Option<IpFamily>,
    /// Bind to this local address first.
    pub local_address: Option<String>,
    /// Set TCP_NODELAY once connected (Node's `noDelay`, default false).
    pub no_delay: bool,
    /// Enable SO_KEEPALIVE (Node's `keepAlive`, default false).
    pub keep_alive: bool,
    /// Idle time before the first keep-alive probe.
    pub keep_alive_initial_delay: Duration,
    /// Node's `allowHalfOpen` (default false: our side ends right after the peer's `end`).
    pub allow_half_open: bool,
}

/// TLS for [`connect_tls`] (Node's `tls.connect(options)`): the host runs the handshake and
/// verifies the server's certificate against the platform's roots (or the operator's
/// `--tls-ca`); `on_connect` comes once it is done. A certificate that does not verify
/// is an `on_error` ([`ErrorCode::TlsHandshakeFailed`](crate::ErrorCode), the message
/// says why: expired, unknown issuer, name mismatch) then `on_close`, never data.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// The name the certificate must be valid for, sent as SNI (Node's `servername`);
    /// `None`: the connect's host.
    pub servername: Option<String>,
    /// ALPN protocols to offer, most preferred first (Node's `ALPNProtocols`).
    pub alpn_protocols: Vec<String>,
}

impl TlsOptions {
    /// TLS with the defaults: verify the connect's host, no ALPN.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verify (and send as SNI) `name` rather than the host.
    pub fn servername(mut self, name: impl Into<String>) -> Self {
        self.servername = Some(name.into());
        self
    }

    /// Offer `protocol` by ALPN (after those already offered).
    pub fn alpn(mut self, protocol: impl Into<String>) -> Self {
        self.alpn_protocols.push(protocol.into());
        self
    }
}

impl ConnectOptions {
    /// Options to connect to `host:port`, with Node's defaults for the rest.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            family: None,
            local_address: None,
            no_delay: false,
            keep_alive: false,
            keep_alive_initial_delay: Duration::ZERO,
            allow_half_open: false,
        }
    }

    fn raw(&self) -> raw::ConnectOptions {
        raw::ConnectOptions {
            host: self.host.clone(),
            port: self.port,
            family: self.family,
            local_address: self.local_address.clone(),
            no_delay: self.no_delay,
            keep_alive: self.keep_alive,
            keep_alive_initial_delay_ms: u32::try_from(self.keep_alive_initial_delay.as_millis())
                .unwrap_or(u32::MAX),
            allow_half_open: self.allow_half_open,
        }
    }
}

/// Node's `net.connect(options)`: open a client connection.
///
/// The socket is returned at once (state `Opening`); `on_connect` follows, or `on_error`
/// then `on_close`. Writes made before the connection is up are sent once it is. The host
/// must allow the destination (`netlet run --allow HOST:PORT`), or this fails with
/// [`ErrorCode::AccessDenied`](crate::ErrorCode::AccessDenied).
///
/// ```no_run
/// use netlet_guest::net::{ConnectOptions, connect};
///
/// let mut options = ConnectOptions::new("127.0.0.1", 6379);
/// options.no_delay = true;
/// let socket = connect(options)?;
/// socket.write("PING\r\n"); // sent once connected; the reply comes to `on_data`
/// # Ok::<(), netlet_guest::Error>(())
/// ```
pub fn connect(options: ConnectOptions) -> Result<Socket, Error> {
    adopt(raw::connect(&options.raw()), &options)
}

/// Node's `tls.connect(options)`: [`connect`], then a TLS handshake the host runs.
///
/// `on_connect` comes once the handshake is done (Node's `secureConnect`), and the
/// socket's data is the plaintext; [`Socket::tls`] tells what was negotiated. A
/// handshake that fails is `on_error` with
/// [`ErrorCode::TlsHandshakeFailed`](crate::ErrorCode::TlsHandshakeFailed), whose
/// message says why (expired, unknown issuer, name mismatch), then `on_close`: no data.
/// The destination must be allowed (`--allow`) as for [`connect`].
///
/// ```no_run
/// use netlet_guest::net::{ConnectOptions, TlsOptions, connect_tls};
/// let socket = connect_tls(
///     ConnectOptions::new("example.com", 443),
///     TlsOptions::new().alpn("http/1.1"),
/// );
/// ```
pub fn connect_tls(options: ConnectOptions, tls: TlsOptions) -> Result<Socket, Error> {
    let raw_tls = raw::TlsOptions {
        servername: tls.servername,
        alpn_protocols: tls.alpn_protocols,
    };
    adopt(raw::connect_tls(&options.raw(), &raw_tls), &options)
}

fn adopt(
    result: Result<raw::Socket, crate::error::ErrorCode>,
    options: &ConnectOptions,
) -> Result<Socket, Error> {
    match result {
        Ok(raw) => {
            let socket = Socket::new(raw, None);
            adopt_socket(&socket);
            Ok(socket)
        }
        Err(code) => Err(Error::from_code(
            code,
            &format!("connect {}:{}", options.host, options.port),
        )),
    }
}

/// `connect` to `host:port` with default options.
pub fn connect_to(host: &str, port: u16) -> Result<Socket, Error> {
    connect(ConnectOptions::new(host, port))
}

thread_local! {
    /// Every socket the instance has and the host has not closed, by id: the handles
    /// the runtime passes with each event, the same as those [`connect`] returned (so
    /// [`Socket::state`] and [`Socket::destroyed`] are shared).
    static LIVE: RefCell<IdMap<Socket>> = RefCell::new(IdMap::default());
}

/// Keeps `socket` until its `close` event.
pub(crate) fn adopt_socket(socket: &Socket) {
    LIVE.with(|s| s.borrow_mut().insert(socket.id(), socket.clone()));
}

/// The live socket `id` (destroyed or not).
pub(crate) fn live_socket(id: u32) -> Option<Socket> {
    LIVE.with(|s| s.borrow().get(&id).cloned())
}

/// Forgets socket `id` (its `close` came) and returns it.
pub(crate) fn forget_socket(id: u32) -> Option<Socket> {
    LIVE.with(|s| s.borrow_mut().remove(&id))
}
