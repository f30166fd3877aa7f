//! [`WebSocket`]: one connection after its handshake, a [`Protocol`] driven by the
//! socket's events, with an outgoing queue in the guest that feeds the socket as it
//! drains (so a large message never lands in the host's write queue at once) and the
//! close timeout.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::protocol::{Incoming, Limits, OpCode, Protocol, Role, SendError, Violation, apply_mask};
use super::{Message, WsError, WsEvent, WsOptions};
use crate::http::Head;
use crate::net::{ReadyState, Socket, SocketEvent};
use crate::timers::{self, TimerId};

/// How much of a large payload is handed to the socket per write.
const PIECE: usize = 64 * 1024;
/// Payloads up to this size are copied behind their header and written in one call.
const INLINE: usize = 16 * 1024;
/// Backpressure: [`WebSocket::send_text`] and friends return false once this much is
/// buffered (in the guest's queue and the socket's), as a socket's write does.
const HIGH_WATER: u64 = 64 * 1024;

thread_local! {
    /// Every open WebSocket, by socket id.
    static SOCKETS: RefCell<HashMap<u32, WebSocket>> = RefCell::new(HashMap::new());
    /// Close timers, and whose.
    static CLOSE_TIMERS: RefCell<HashMap<u32, WebSocket>> = RefCell::new(HashMap::new());
    /// Bytes of messages being assembled, over every connection of the instance.
    static ASSEMBLING: Cell<usize> = const { Cell::new(0) };
}

/// The WebSocket on socket `id`, if there is one.
pub fn get(id: u32) -> Option<WebSocket> {
    SOCKETS.with(|s| s.borrow().get(&id).cloned())
}

/// A close timer fired: if it is one of ours, the socket is destroyed and true returned.
pub(crate) fn close_timer_fired(timer: TimerId) -> bool {
    let Some(ws) = CLOSE_TIMERS.with(|t| t.borrow_mut().remove(&timer.0)) else {
        return false;
    };
    ws.0.st.borrow_mut().close_timer = None;
    ws.0.socket.destroy();
    true
}

/// Bytes held by messages being assembled in this instance (all connections).
pub fn assembling() -> usize {
    ASSEMBLING.with(Cell::get)
}

/// A piece of output waiting in the guest.
struct Chunk {
    data: Vec<u8>,
    pos: usize,
}

struct State {
    proto: Protocol,
    /// A client becomes open once the server's answer is checked.
    open: bool,
    queue: VecDeque<Chunk>,
    queued: usize,
    /// The socket's write returned false: wait for its drain.
    socket_full: bool,
    /// A send returned false: `Drain` is owed once everything is out.
    want_drain: bool,
    /// End the socket once the queue is empty (after the close handshake).
    end_when_flushed: bool,
    ended: bool,
    /// The host no longer takes writes on the socket (it ended or closed, its `close`
    /// event not yet handled): sends fail at once and nothing is queued.
    broken: bool,
    close_timer: Option<TimerId>,
    /// The code and reason the connection closed with: the peer's close frame, or the
    /// violation we failed it with.
    close: Option<(u16, String)>,
    closed: bool,
    /// Bytes charged to the instance's assembling budget.
    charged: usize,
    paused_by_user: bool,
    paused_for_output: bool,
    protocol: Option<String>,
    head: Option<Head>,
}

pub(crate) struct Inner {
    socket: Socket,
    path: String,
    options: WsOptions,
    st: RefCell<State>,
}

/// A WebSocket connection: Node's `ws` `WebSocket`, on a server (accepted after the
/// handshake) or a client ([`connect`](super::connect)). A cheap handle: clone it to
/// keep it; two handles are equal when they name the same connection.
///
/// Sending never blocks: a message is queued in the guest and handed to the socket as
/// it drains; [`WebSocket::send_text`] and friends return false once
/// [`WebSocket::buffered_amount`] passes 64 KiB, and the handler's `on_drain` follows
/// when everything is out.
#[derive(Clone)]
pub struct WebSocket(pub(crate) Rc<Inner>);

impl PartialEq for WebSocket {
    fn eq(&self, other: &Self) -> bool {
        self.0.socket == other.0.socket
    }
}

impl Eq for WebSocket {}

impl std::hash::Hash for WebSocket {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.socket.hash(state)
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("id", &self.id())
            .field("path", &self.0.path)
            .finish()
    }
}

/// Node's `ws.readyState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsState {
    /// A client waiting for the server's answer.
    Connecting,
    /// Messages flow.
    Open,
    /// A close frame was sent or received.
    Closing,
    /// The connection is closed.
    Closed,
}

impl WebSocket {
    pub(crate) fn new(
        socket: Socket,
        role: Role,
        path: String,
        options: WsOptions,
        head: Option<Head>,
        protocol: Option<String>,
        open: bool,
    ) -> Self {
        let limits = Limits {
            max_message_size: options.max_message_size,
        };
        let ws = WebSocket(Rc::new(Inner {
            socket,
            path,
            options,
            st: RefCell::new(State {
                proto: Protocol::new(role, limits),
                open,
                queue: VecDeque::new(),
                queued: 0,
                socket_full: false,
                want_drain: false,
                end_when_flushed: false,
                ended: false,
                broken: false,
                close_timer: None,
                close: None,
                closed: false,
                charged: 0,
                paused_by_user: false,
                paused_for_output: false,
                protocol,
                head,
            }),
        }));
        SOCKETS.with(|s| s.borrow_mut().insert(ws.id(), ws.clone()));
        ws
    }

    /// The socket's id (unique in the instance).
    pub fn id(&self) -> u32 {
        self.0.socket.id()
    }

    /// The underlying TCP socket (its addresses, `set_no_delay`, ...). Write to it
    /// only through the WebSocket.
    pub fn socket(&self) -> &Socket {
        &self.0.socket
    }

    /// The request target of the handshake (`/chat?room=1`).
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Whether this end opened the connection ([`connect`](super::connect)).
    pub fn is_client(&self) -> bool {
        self.0.st.borrow().proto.role() == Role::Client
    }

    /// Node's `ws.protocol`: the subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<String> {
        self.0.st.borrow().protocol.clone()
    }

    /// A header of the handshake: of the client's request on a server, of the
    /// server's answer on a client. Any case; the first value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.0
            .st
            .borrow()
            .head
            .as_ref()
            .and_then(|h| h.header(name).map(str::to_string))
    }

    /// Node's `ws.readyState`.
    pub fn ready_state(&self) -> WsState {
        let st = self.0.st.borrow();
        if st.closed || self.0.socket.ready_state() == ReadyState::Closed {
            WsState::Closed
        } else if !st.open {
            WsState::Connecting
        } else if st.proto.close_sent() || st.proto.done() {
            WsState::Closing
        } else {
            WsState::Open
        }
    }

    /// Node's `ws.bufferedAmount`: bytes sent and not yet handed to the kernel (in the
    /// guest's queue and the socket's).
    pub fn buffered_amount(&self) -> u64 {
        self.0.st.borrow().queued as u64 + self.0.socket.buffer_size()
    }

    /// Bytes waiting in the guest because the socket's own queue is full (the peer is
    /// not reading fast enough): what this connection costs the instance's memory. A
    /// reader that keeps up has none, however much is sent to it in one call; unlike
    /// [`WebSocket::buffered_amount`] it asks nothing of the host.
    pub fn backlog(&self) -> u64 {
        self.0.st.borrow().queued as u64
    }

    /// Sends a text message. Returns false once [`WebSocket::buffered_amount`] is past
    /// 64 KiB (the message is still sent; `on_drain` follows) or when the connection is
    /// closing (then nothing is sent: see [`WebSocket::try_send`]).
    pub fn send_text(&self, text: impl Into<String>) -> bool {
        self.try_send(Message::Text(text.into())).unwrap_or(false)
    }

    /// Sends a binary message; see [`WebSocket::send_text`].
    pub fn send_binary(&self, data: impl Into<Vec<u8>>) -> bool {
        self.try_send(Message::Binary(data.into())).unwrap_or(false)
    }

    /// Sends a message, saying why it could not be.
    pub fn try_send(&self, message: Message) -> Result<bool, SendError> {
        match message {
            Message::Text(t) => self.send_frame(OpCode::Text, t.into_bytes(), true),
            Message::Binary(b) => self.send_frame(OpCode::Binary, b, true),
        }
    }

    /// Sends a text message from borrowed text: everything it allocates is the SDK's,
    /// reserved fallibly, so a message the instance's memory cannot hold fails with
    /// [`SendError::OutOfMemory`] and nothing else happens. A broadcast sends one text
    /// to every member this way without a copy per member.
    pub fn try_send_str(&self, text: &str) -> Result<bool, SendError> {
        self.send_borrowed(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message from borrowed bytes; see [`WebSocket::try_send_str`].
    pub fn try_send_bytes(&self, data: &[u8]) -> Result<bool, SendError> {
        self.send_borrowed(OpCode::Binary, data)
    }

    fn send_borrowed(&self, kind: OpCode, data: &[u8]) -> Result<bool, SendError> {
        if data.len() <= INLINE || self.is_client() {
            // Copied behind its header in `send_frame`'s own (fallible) buffer.
            return self.send_frame_from(kind, data, true);
        }
        let mut owned = Vec::new();
        owned
            .try_reserve_exact(data.len())
            .map_err(|_| SendError::OutOfMemory)?;
        owned.extend_from_slice(data);
        self.send_frame(kind, owned, true)
    }

    /// Sends one fragment of a message (Node's `ws.send(data, { fin })`): the first
    /// call's `binary` says the message's type, later ones continue it, and `fin: true`
    /// ends it. Pings and pongs may be sent between fragments; another message may not
    /// begin until this one ends. The text of a text message must be UTF-8 once
    /// joined (a fragment may end inside a character).
    pub fn send_fragment(
        &self,
        binary: bool,
        data: impl Into<Vec<u8>>,
        fin: bool,
    ) -> Result<bool, SendError> {
        let kind = if binary { OpCode::Binary } else { OpCode::Text };
        self.send_frame(kind, data.into(), fin)
    }

    /// A frame whose payload is copied behind its header (small, or masked).
    fn send_frame_from(&self, kind: OpCode, payload: &[u8], fin: bool) -> Result<bool, SendError> {
        let mut st = self.0.st.borrow_mut();
        if !st.open {
            return Err(SendError::NotOpen);
        }
        if st.broken || st.closed {
            return Err(SendError::Closed);
        }
        let mut head = Vec::new();
        head.try_reserve_exact(14 + payload.len())
            .map_err(|_| SendError::OutOfMemory)?;
        st.queue
            .try_reserve(1)
            .map_err(|_| SendError::OutOfMemory)?;
        let mask = st.proto.data_header(&mut head, kind, payload.len(), fin)?;
        let start = head.len();
        head.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut head[start..], key, 0);
        }
        self.write(&mut st, head)?;
        Ok(self.under_water(&mut st))
    }

    fn send_frame(&self, kind: OpCode, payload: Vec<u8>, fin: bool) -> Result<bool, SendError> {
        let inline = payload.len() <= INLINE || self.is_client();
        if inline {
            return self.send_frame_from(kind, &payload, fin);
        }
        let mut st = self.0.st.borrow_mut();
        if !st.open {
            return Err(SendError::NotOpen);
        }
        if st.broken || st.closed {
            return Err(SendError::Closed);
        }
        // Everything this send allocates is reserved first, fallibly: a send the
        // instance's memory cannot hold fails alone, and the protocol's state is
        // untouched by it. A large payload is queued as it is, behind its header.
        let mut head = Vec::new();
        head.try_reserve_exact(14)
            .map_err(|_| SendError::OutOfMemory)?;
        st.queue
            .try_reserve(2)
            .map_err(|_| SendError::OutOfMemory)?;
        st.proto.data_header(&mut head, kind, payload.len(), fin)?;
        self.write(&mut st, head)?;
        self.write(&mut st, payload)?;
        Ok(self.under_water(&mut st))
    }

    /// Node's `ws.ping(data)`: a ping (at most 125 bytes); the peer's pong comes to
    /// `on_pong`.
    pub fn ping(&self, payload: impl AsRef<[u8]>) -> Result<(), SendError> {
        self.control(OpCode::Ping, payload.as_ref())
    }

    /// Node's `ws.pong(data)`: an unsolicited pong (pings are answered by the SDK).
    pub fn pong(&self, payload: impl AsRef<[u8]>) -> Result<(), SendError> {
        self.control(OpCode::Pong, payload.as_ref())
    }

    fn control(&self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        let mut st = self.0.st.borrow_mut();
        if !st.open {
            return Err(SendError::NotOpen);
        }
        if st.broken || st.closed {
            return Err(SendError::Closed);
        }
        let mut out = Vec::new();
        out.try_reserve_exact(14 + payload.len())
            .map_err(|_| SendError::OutOfMemory)?;
        st.queue
            .try_reserve(1)
            .map_err(|_| SendError::OutOfMemory)?;
        st.proto.control_frame(&mut out, opcode, payload)?;
        self.write(&mut st, out)
    }

    /// Node's `ws.close(code, reason)`: starts the closing handshake. The code must be
    /// one that may be sent (1000–1003, 1007–1014, 3000–4999), the reason at most 123
    /// bytes. The peer's close frame is awaited for the close timeout (30 s by
    /// default), then the socket is destroyed; `on_close` follows either way.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SendError> {
        self.close_with(Some(code), reason)
    }

    /// A close frame without a code (the peer sees 1005).
    pub fn close_without_code(&self) -> Result<(), SendError> {
        self.close_with(None, "")
    }

    fn close_with(&self, code: Option<u16>, reason: &str) -> Result<(), SendError> {
        let mut st = self.0.st.borrow_mut();
        if !st.open {
            // Node's `ws.close()` while connecting: give up the connection.
            drop(st);
            self.0.socket.destroy();
            return Ok(());
        }
        if st.broken || st.closed {
            return Err(SendError::Closed);
        }
        st.proto.close(code, reason)?;
        let failing = code.is_some_and(super::code::fails_connection);
        if failing {
            // The peer is being sent away (too slow, too big, against the rules): what
            // it has not read yet is dropped, so that the close frame does not wait
            // behind it and the memory goes now. A frame already partly handed to the
            // socket is finished, so the peer still sees a well-formed close.
            self.drop_backlog(&mut st);
        }
        let out = st.proto.take_output();
        // Our close frame cannot go out (the socket is gone): the close is done.
        let _ = self.write(&mut st, out);
        let timeout = if failing {
            self.0.options.fail_close_timeout
        } else {
            self.0.options.close_timeout
        };
        self.start_close_timer(&mut st, timeout);
        Ok(())
    }

    /// Drops the queued output but the rest of a frame already begun on the socket.
    fn drop_backlog(&self, st: &mut State) {
        let begun = st.queue.pop_front().filter(|c| c.pos > 0);
        st.queue.clear();
        st.queued = 0;
        if let Some(chunk) = begun {
            st.queued = chunk.data.len() - chunk.pos;
            st.queue.push_back(chunk);
        }
        // Memory goes back once the queue is this small again.
        st.queue.shrink_to(4);
    }

    /// Node's `ws.terminate()`: destroys the socket at once; `on_close` follows with
    /// 1006 (unless a close frame had arrived).
    pub fn terminate(&self) {
        self.0.socket.destroy();
    }

    /// Node's `ws.pause()`: no more messages until [`WebSocket::resume`]; the peer is
    /// slowed by TCP flow control.
    pub fn pause(&self) {
        self.0.st.borrow_mut().paused_by_user = true;
        self.0.socket.pause();
    }

    /// Node's `ws.resume()`.
    pub fn resume(&self) {
        let mut st = self.0.st.borrow_mut();
        st.paused_by_user = false;
        if !st.paused_for_output {
            self.0.socket.resume();
        }
    }

    /// Node's `ws.isPaused`.
    pub fn is_paused(&self) -> bool {
        self.0.st.borrow().paused_by_user
    }

    fn under_water(&self, st: &mut State) -> bool {
        let below = st.queue.is_empty() && !st.socket_full
            || (st.queued as u64) + self.0.socket.buffer_size() < HIGH_WATER;
        if !below {
            st.want_drain = true;
        }
        below
    }

    fn start_close_timer(&self, st: &mut State, timeout: std::time::Duration) {
        if st.close_timer.is_none() && !st.closed {
            let t = timers::set_timeout(timeout);
            st.close_timer = Some(t);
            CLOSE_TIMERS.with(|m| m.borrow_mut().insert(t.0, self.clone()));
        }
    }

    /// Queues bytes behind what is waiting, or writes them at once if nothing is.
    /// Fails when the host no longer takes writes on the socket (then nothing more is
    /// queued, and what was is dropped), or the queue cannot grow.
    fn write(&self, st: &mut State, data: Vec<u8>) -> Result<(), SendError> {
        if st.broken {
            return Err(SendError::Closed);
        }
        if data.is_empty() || st.ended {
            return Ok(());
        }
        if st.queue.is_empty() && !st.socket_full && data.len() <= PIECE {
            match self.0.socket.try_write(&data) {
                Ok(true) => {}
                Ok(false) => st.socket_full = true,
                Err(_) => {
                    self.broke(st);
                    return Err(SendError::Closed);
                }
            }
            return Ok(());
        }
        st.queue
            .try_reserve(1)
            .map_err(|_| SendError::OutOfMemory)?;
        st.queued += data.len();
        st.queue.push_back(Chunk { data, pos: 0 });
        self.pump(st);
        if st.broken {
            return Err(SendError::Closed);
        }
        Ok(())
    }

    /// The host refused a write: the socket ended or closed under us (its `close` is
    /// on its way). Nothing more is queued, and what was is freed now.
    fn broke(&self, st: &mut State) {
        st.broken = true;
        st.queue = VecDeque::new();
        st.queued = 0;
    }

    /// Hands queued bytes to the socket until it is full; ends it once all is out if
    /// the closing handshake is over.
    fn pump(&self, st: &mut State) {
        while !st.socket_full {
            let Some(chunk) = st.queue.front_mut() else {
                break;
            };
            let end = (chunk.pos + PIECE).min(chunk.data.len());
            let Ok(ok) = self.0.socket.try_write(&chunk.data[chunk.pos..end]) else {
                self.broke(st);
                return;
            };
            st.queued -= end - chunk.pos;
            chunk.pos = end;
            if chunk.pos == chunk.data.len() {
                st.queue.pop_front();
            }
            if !ok {
                st.socket_full = true;
            }
        }
        if st.queue.is_empty() && st.end_when_flushed && !st.ended {
            st.ended = true;
            self.0.socket.end();
        }
    }

    /// The client's handshake succeeded: messages may flow.
    pub(crate) fn set_open(&self, head: Head, protocol: Option<String>) {
        let mut st = self.0.st.borrow_mut();
        st.open = true;
        st.head = Some(head);
        st.protocol = protocol;
    }

    /// Handles an event of the socket; returns what the handler should see.
    pub(crate) fn on_socket_event(&self, event: SocketEvent) -> Vec<WsEvent> {
        let mut out = Vec::new();
        let mut st = self.0.st.borrow_mut();
        match event {
            SocketEvent::Data(data) => {
                if st.closed || !st.open {
                    return out;
                }
                let mut incoming = Vec::new();
                st.proto.receive(&data, &mut incoming);
                self.charge(&mut st, &mut incoming);
                let replies = st.proto.take_output();
                // A reply the socket no longer takes: its `close` follows.
                let _ = self.write(&mut st, replies);
                for ev in incoming {
                    match ev {
                        Incoming::Text(t) => out.push(WsEvent::Message(Message::Text(t))),
                        Incoming::Binary(b) => out.push(WsEvent::Message(Message::Binary(b))),
                        Incoming::Ping(p) => out.push(WsEvent::Ping(p)),
                        Incoming::Pong(p) => out.push(WsEvent::Pong(p)),
                        Incoming::Close(code, reason) => {
                            st.close.get_or_insert((code, reason));
                            self.after_close_frame(&mut st);
                        }
                        Incoming::Violation(v) => {
                            st.close.get_or_insert((v.code, v.reason.to_string()));
                            out.push(WsEvent::Error(WsError::Protocol(v)));
                            // Fail the connection: our close frame, then the socket
                            // ends (RFC 6455 section 7.1.7).
                            st.end_when_flushed = true;
                            self.drop_backlog(&mut st);
                            self.pump(&mut st);
                            let timeout = self.0.options.fail_close_timeout;
                            self.start_close_timer(&mut st, timeout);
                        }
                    }
                }
                // Replies the peer does not read must not pile up: stop reading it
                // until they are out.
                if !st.queue.is_empty() && !st.paused_for_output {
                    st.paused_for_output = true;
                    self.0.socket.pause();
                }
            }
            SocketEvent::Drain => {
                st.socket_full = false;
                self.pump(&mut st);
                if st.queue.is_empty() && !st.socket_full {
                    if st.paused_for_output {
                        st.paused_for_output = false;
                        if !st.paused_by_user {
                            self.0.socket.resume();
                        }
                    }
                    if st.want_drain && st.open && !st.closed {
                        st.want_drain = false;
                        out.push(WsEvent::Drain);
                    }
                }
            }
            SocketEvent::End | SocketEvent::Timeout => {}
            SocketEvent::Error(e) => out.push(WsEvent::Error(WsError::Socket(e))),
            SocketEvent::Close { .. } => {
                if st.closed {
                    return out;
                }
                st.closed = true;
                if let Some(t) = st.close_timer.take() {
                    timers::clear(t);
                    CLOSE_TIMERS.with(|m| m.borrow_mut().remove(&t.0));
                }
                ASSEMBLING.with(|a| a.set(a.get() - st.charged));
                st.charged = 0;
                st.queue = VecDeque::new();
                st.queued = 0;
                SOCKETS.with(|s| s.borrow_mut().remove(&self.id()));
                let (code, reason) = st
                    .close
                    .take()
                    .unwrap_or((super::code::ABNORMAL, String::new()));
                out.push(WsEvent::Close { code, reason });
            }
        }
        out
    }

    /// The peer's close frame arrived (our reply is queued): a server closes the TCP
    /// connection once it is out; a client waits for the server to, for the close
    /// timeout.
    fn after_close_frame(&self, st: &mut State) {
        if st.proto.role() == Role::Server {
            st.end_when_flushed = true;
            self.pump(st);
        }
        let timeout = self.0.options.close_timeout;
        self.start_close_timer(st, timeout);
    }

    /// Keeps the instance-wide count of bytes being assembled, failing this connection
    /// (1013) if it would pass the instance's budget.
    fn charge(&self, st: &mut State, incoming: &mut Vec<Incoming>) {
        let now = st.proto.buffered();
        let total = ASSEMBLING.with(|a| {
            let t = a.get() - st.charged + now;
            a.set(t);
            t
        });
        st.charged = now;
        if total > self.0.options.max_assembling && now > 0 {
            st.proto.abort(
                Violation {
                    code: super::code::TRY_AGAIN_LATER,
                    reason: "the server's memory for incoming messages is spent",
                },
                incoming,
            );
            ASSEMBLING.with(|a| a.set(a.get() - st.charged));
            st.charged = 0;
        }
    }
}

/// Delivers `ev` of `ws` to a [`super::WsHandler`].
pub(crate) fn deliver<H: super::WsHandler + ?Sized>(h: &mut H, ws: &WebSocket, ev: WsEvent) {
    match ev {
        WsEvent::Open => h.on_open(ws),
        WsEvent::Message(m) => h.on_message(ws, m),
        WsEvent::Ping(p) => h.on_ping(ws, &p),
        WsEvent::Pong(p) => h.on_pong(ws, &p),
        WsEvent::Drain => h.on_drain(ws),
        WsEvent::Error(e) => h.on_error(ws, &e),
        WsEvent::Close { code, reason } => h.on_close(ws, code, &reason),
    }
}
