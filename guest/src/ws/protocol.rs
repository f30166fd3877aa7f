//! The WebSocket protocol after the handshake (RFC 6455 sections 5 to 7), sans I/O:
//! bytes in, messages and control frames out; frames to send written into a buffer.
//!
//! A [`Protocol`] reads frames as their bytes arrive, in any split: a frame header is
//! at most 14 bytes, a data frame's payload is unmasked and appended to the message
//! being assembled as it comes (never buffered whole first), a control frame's payload
//! is at most 125 bytes. It enforces the RFC strictly and fails the connection (a
//! close frame with the code, then nothing more is read) on the first violation:
//!
//! | violation | code |
//! | --- | --- |
//! | a reserved bit set (no extension is negotiated), a reserved opcode, a fragmented or over-125-byte control frame, a continuation without a message or a new message inside one, an unmasked client frame or a masked server frame, a 64-bit length with its top bit set, a close payload of 1 byte or with a code that may not be sent | 1002 |
//! | text that is not UTF-8, found at its first invalid byte, also across fragments; a close reason that is not UTF-8 | 1007 |
//! | a message longer than the limit (said at the frame header that would pass it) | 1009 |
//!
//! A ping is answered with a pong carrying its payload; a close frame is answered with
//! a close frame echoing its code. Nothing here reads a clock: the close timeout is
//! the caller's ([`super::WebSocket`]).

use std::fmt;

/// Which end of the connection this is: a server reads masked frames and sends
/// unmasked ones; a client the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection.
    Server,
    /// Opened it.
    Client,
}

/// A frame's opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8.
    Close,
    /// 0x9.
    Ping,
    /// 0xA.
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Close codes (RFC 6455 section 7.4.1).
pub mod code {
    /// The purpose is fulfilled.
    pub const NORMAL: u16 = 1000;
    /// Going away (a server shutting down, a page left).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A data type that cannot be accepted.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// No code was in the close frame (never sent).
    pub const NO_STATUS: u16 = 1005;
    /// The connection closed without a close frame (never sent).
    pub const ABNORMAL: u16 = 1006;
    /// Text that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A policy was violated.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server met an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Overloaded: try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;

    /// Whether closing with `code` fails the connection (sends the peer away for what
    /// it did or cannot keep up with), rather than ending it: its unsent backlog is
    /// dropped and the socket goes after [`WsOptions::fail_close_timeout`](crate::ws::WsOptions).
    pub fn fails_connection(code: u16) -> bool {
        matches!(
            code,
            PROTOCOL_ERROR
                | UNSUPPORTED_DATA
                | INVALID_PAYLOAD
                | POLICY_VIOLATION
                | MESSAGE_TOO_BIG
                | INTERNAL_ERROR
                | TRY_AGAIN_LATER
        )
    }
}

/// Whether `code` may be sent in a close frame (and so be received in one): 1000–1003,
/// 1007–1014, 3000–4999 (the registered codes that are not reserved for "no code"
/// (1005), "abnormal" (1006), 1004 and 1015; and the codes for libraries and
/// applications). The same set as Node's `ws`.
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A protocol violation: the close code the connection fails with and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1002, 1007 or 1009 (see the module's table), or 1013 when the instance's budget
    /// for messages being assembled is spent.
    pub code: u16,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (close code {})", self.reason, self.code)
    }
}

impl std::error::Error for Violation {}

const fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

/// What [`Protocol::receive`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A whole text message (UTF-8 checked).
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping (a pong with its payload is already queued).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame: its code (1005 when it had none) and reason. Our close
    /// frame is queued (unless we sent one first); nothing more is read.
    Close(u16, String),
    /// The peer broke the protocol: a close frame with the code is queued and nothing
    /// more is read.
    Violation(Violation),
}

/// An incremental UTF-8 validator: bytes may arrive split anywhere, and the first
/// invalid byte is reported at once (not at the end of the message).
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8 {
    /// Continuation bytes still due for the current character.
    need: u8,
    /// The range the next continuation byte must be in (overlong forms, surrogates
    /// and code points past U+10FFFF are excluded by narrowing it).
    lo: u8,
    hi: u8,
}

impl Utf8 {
    /// Checks the next bytes; false at the first byte that cannot be UTF-8 whatever
    /// follows.
    pub fn push(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.need == 0 {
                match std::str::from_utf8(bytes) {
                    Ok(_) => return true,
                    Err(e) if e.error_len().is_some() => return false,
                    // A character cut at the end: check its start bytewise.
                    Err(e) => bytes = &bytes[e.valid_up_to()..],
                }
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            if self.need > 0 {
                if b < self.lo || b > self.hi {
                    return false;
                }
                self.need -= 1;
                self.lo = 0x80;
                self.hi = 0xBF;
                continue;
            }
            let (need, lo, hi) = match b {
                0x00..=0x7F => continue,
                0xC2..=0xDF => (1, 0x80, 0xBF),
                0xE0 => (2, 0xA0, 0xBF),
                0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
                0xED => (2, 0x80, 0x9F),
                0xF0 => (3, 0x90, 0xBF),
                0xF1..=0xF3 => (3, 0x80, 0xBF),
                0xF4 => (3, 0x80, 0x8F),
                _ => return false,
            };
            self.need = need;
            self.lo = lo;
            self.hi = hi;
        }
        true
    }

    /// Whether the bytes so far end on a whole character.
    pub fn complete(&self) -> bool {
        self.need == 0
    }
}

/// The limits a [`Protocol`] enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest message (all its fragments), in bytes: 1009 past it.
    pub max_message_size: usize,
}

/// A frame being read: its header, and how much payload is still due.
#[derive(Clone, Copy, Debug)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes of this frame read so far (the mask's phase).
    read: u64,
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// Our close frame is sent; the peer's is awaited (frames before it are read).
    CloseSent,
    /// The peer's close frame arrived, or it broke the protocol: nothing more is read.
    Done,
}

/// The protocol state machine of one connection. See the module's documentation.
pub struct Protocol {
    role: Role,
    limits: Limits,
    header: [u8; 14],
    header_len: usize,
    frame: Option<Frame>,
    control: Vec<u8>,
    /// The data message being assembled, and its kind (`Text` or `Binary`).
    message: Vec<u8>,
    message_kind: Option<OpCode>,
    utf8: Utf8,
    state: State,
    close_sent: bool,
    /// A fragmented message being sent: the next frame is a continuation.
    sending_fragmented: bool,
    /// Frames to send that the protocol made itself (pongs, close replies).
    out: Vec<u8>,
}

impl Protocol {
    /// A connection in the open state.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            header: [0; 14],
            header_len: 0,
            frame: None,
            control: Vec::new(),
            message: Vec::new(),
            message_kind: None,
            utf8: Utf8::default(),
            state: State::Open,
            close_sent: false,
            sending_fragmented: false,
            out: Vec::new(),
        }
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether our close frame has been queued.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether nothing more will be read: the peer's close frame arrived, or it broke
    /// the protocol.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes of memory held for a message being assembled (its buffer's capacity,
    /// reserved when a frame's header arrives).
    pub fn buffered(&self) -> usize {
        self.message.capacity()
    }

    /// Frames the protocol queued itself (pongs, close frames), to send before
    /// anything else is written.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether [`Protocol::take_output`] has something.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Reads `data`, appending what it completes to `events`. After the peer's close
    /// frame or a violation, the rest is ignored.
    pub fn receive(&mut self, mut data: &[u8], events: &mut Vec<Incoming>) {
        while !data.is_empty() && self.state != State::Done {
            let result = match self.frame {
                None => self.read_header(&mut data),
                Some(_) => self.read_payload(&mut data, events),
            };
            if let Err(v) = result {
                self.abort(v, events);
            }
        }
        // A frame with an empty payload is complete at its header.
        if self.state != State::Done
            && let Some(f) = self.frame
            && f.remaining == 0
            && let Err(v) = self.finish_frame(events)
        {
            self.abort(v, events);
        }
    }

    /// Fails the connection with `v` (a close frame with its code is queued unless one
    /// was sent; nothing more is read), and reports it in `events`. The protocol does
    /// this itself on a violation; the caller may too (a budget of its own spent).
    pub fn abort(&mut self, v: Violation, events: &mut Vec<Incoming>) {
        if !self.close_sent {
            self.write_close(v.code, v.reason);
        }
        self.state = State::Done;
        self.frame = None;
        self.message = Vec::new();
        self.control = Vec::new();
        events.push(Incoming::Violation(v));
    }

    fn read_header(&mut self, data: &mut &[u8]) -> Result<(), Violation> {
        let want = |h: &[u8], have: usize| -> usize {
            if have < 2 {
                return 2;
            }
            let ext = match h[1] & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            2 + ext + if h[1] & 0x80 != 0 { 4 } else { 0 }
        };
        loop {
            let need = want(&self.header, self.header_len);
            if self.header_len >= need {
                break;
            }
            if data.is_empty() {
                return Ok(());
            }
            let n = (need - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            *data = &data[n..];
        }
        let h = self.header;
        let len = self.header_len;
        self.header_len = 0;
        if h[0] & 0x70 != 0 {
            return Err(violation(
                1002,
                "a reserved bit is set and no extension was negotiated",
            ));
        }
        let fin = h[0] & 0x80 != 0;
        let opcode = OpCode::from_bits(h[0] & 0x0F).ok_or(violation(1002, "a reserved opcode"))?;
        let masked = h[1] & 0x80 != 0;
        let (payload_len, at) = match h[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let n = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if n >> 63 != 0 {
                    return Err(violation(
                        1002,
                        "a 64-bit length with its most significant bit set",
                    ));
                }
                (n, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = masked.then(|| [h[at], h[at + 1], h[at + 2], h[at + 3]]);
        debug_assert_eq!(at + if masked { 4 } else { 0 }, len);
        match (self.role, masked) {
            (Role::Server, false) => {
                return Err(violation(1002, "a client frame that is not masked"));
            }
            (Role::Client, true) => return Err(violation(1002, "a server frame that is masked")),
            _ => {}
        }
        if opcode.is_control() {
            if !fin {
                return Err(violation(1002, "a fragmented control frame"));
            }
            if payload_len > 125 {
                return Err(violation(1002, "a control frame longer than 125 bytes"));
            }
            self.control.clear();
        } else {
            match (opcode, self.message_kind) {
                (OpCode::Continuation, None) => {
                    return Err(violation(
                        1002,
                        "a continuation frame with no message to continue",
                    ));
                }
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(violation(1002, "a new message inside a fragmented one"));
                }
                (_, Some(_)) => {}
                (kind, None) => {
                    self.message_kind = Some(kind);
                    self.utf8 = Utf8::default();
                }
            }
            let total = (self.message.len() as u64).saturating_add(payload_len);
            if total > self.limits.max_message_size as u64 {
                return Err(violation(1009, "a message longer than the limit"));
            }
            // Room for the frame at once (no doubling past the limit); the caller
            // charges the capacity (`buffered`) to its budget.
            self.message.reserve_exact(payload_len as usize);
        }
        self.frame = Some(Frame {
            opcode,
            fin,
            mask,
            remaining: payload_len,
            read: 0,
        });
        Ok(())
    }

    fn read_payload(
        &mut self,
        data: &mut &[u8],
        events: &mut Vec<Incoming>,
    ) -> Result<(), Violation> {
        let mut f = self.frame.expect("a frame is being read");
        let n = (f.remaining.min(data.len() as u64)) as usize;
        let (chunk, rest) = data.split_at(n);
        *data = rest;
        let target = if f.opcode.is_control() {
            &mut self.control
        } else {
            &mut self.message
        };
        let start = target.len();
        target.extend_from_slice(chunk);
        if let Some(mask) = f.mask {
            apply_mask(&mut target[start..], mask, f.read as usize);
        }
        if self.message_kind == Some(OpCode::Text)
            && !f.opcode.is_control()
            && !self.utf8.push(&self.message[start..])
        {
            return Err(violation(1007, "a text message that is not UTF-8"));
        }
        f.read += n as u64;
        f.remaining -= n as u64;
        self.frame = Some(f);
        if f.remaining == 0 {
            self.finish_frame(events)?;
        }
        Ok(())
    }

    fn finish_frame(&mut self, events: &mut Vec<Incoming>) -> Result<(), Violation> {
        let f = self.frame.take().expect("a frame is being read");
        match f.opcode {
            OpCode::Ping => {
                let payload = std::mem::take(&mut self.control);
                if !self.close_sent {
                    let mask = self.out_mask();
                    encode_frame(&mut self.out, OpCode::Pong, true, &payload, mask);
                }
                events.push(Incoming::Ping(payload));
            }
            OpCode::Pong => events.push(Incoming::Pong(std::mem::take(&mut self.control))),
            OpCode::Close => {
                let payload = std::mem::take(&mut self.control);
                let (code, reason) = match payload.len() {
                    0 => (code::NO_STATUS, String::new()),
                    1 => return Err(violation(1002, "a close frame with a 1-byte payload")),
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        if !valid_close_code(code) {
                            return Err(violation(1002, "a close frame with an invalid code"));
                        }
                        let reason = String::from_utf8(payload[2..].to_vec())
                            .map_err(|_| violation(1007, "a close reason that is not UTF-8"))?;
                        (code, reason)
                    }
                };
                if !self.close_sent {
                    // Echo the code (RFC 6455 section 5.5.1).
                    let echo = if code == code::NO_STATUS {
                        None
                    } else {
                        Some(code)
                    };
                    self.write_close_payload(echo, "");
                }
                self.state = State::Done;
                self.message = Vec::new();
                events.push(Incoming::Close(code, reason));
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !f.fin {
                    return Ok(());
                }
                let kind = self.message_kind.take();
                let message = std::mem::take(&mut self.message);
                if kind == Some(OpCode::Text) {
                    if !self.utf8.complete() {
                        return Err(violation(
                            1007,
                            "a text message that ends inside a character",
                        ));
                    }
                    let text = String::from_utf8(message)
                        .map_err(|_| violation(1007, "a text message that is not UTF-8"))?;
                    events.push(Incoming::Text(text));
                } else {
                    events.push(Incoming::Binary(message));
                }
            }
        }
        Ok(())
    }

    /// The masking key for a frame we send: none for a server, a fresh one for a
    /// client.
    fn out_mask(&self) -> Option<[u8; 4]> {
        (self.role == Role::Client).then(mask_key)
    }

    fn write_close(&mut self, code: u16, reason: &str) {
        self.write_close_payload(Some(code), reason);
    }

    fn write_close_payload(&mut self, code: Option<u16>, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(code) = code {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(truncate_reason(reason).as_bytes());
        }
        let mask = self.out_mask();
        encode_frame(&mut self.out, OpCode::Close, true, &payload, mask);
        self.close_sent = true;
        if self.state == State::Open {
            self.state = State::CloseSent;
        }
    }

    /// Queues our close frame (after checking the code may be sent); the peer's close
    /// frame is then awaited.
    pub fn close(&mut self, code: Option<u16>, reason: &str) -> Result<(), SendError> {
        if self.close_sent {
            return Err(SendError::Closing);
        }
        if let Some(c) = code
            && !valid_close_code(c)
        {
            return Err(SendError::InvalidCloseCode(c));
        }
        if code.is_none() && !reason.is_empty() {
            return Err(SendError::InvalidCloseCode(code::NO_STATUS));
        }
        if reason.len() > 123 {
            return Err(SendError::ReasonTooLong);
        }
        self.write_close_payload(code, reason);
        Ok(())
    }

    /// Writes the header of a data frame of `len` bytes into `out`: the first frame of
    /// a message (`kind` is `Text` or `Binary`), or a continuation if a fragmented
    /// message is being sent; `fin` ends the message. Returns the masking key the
    /// payload must be masked with (a client's).
    pub fn data_header(
        &mut self,
        out: &mut Vec<u8>,
        kind: OpCode,
        len: usize,
        fin: bool,
    ) -> Result<Option<[u8; 4]>, SendError> {
        if self.close_sent {
            return Err(SendError::Closing);
        }
        let opcode = if self.sending_fragmented {
            OpCode::Continuation
        } else {
            kind
        };
        self.sending_fragmented = !fin;
        let mask = self.out_mask();
        write_header(out, opcode, fin, len as u64, mask);
        Ok(mask)
    }

    /// Writes a ping or pong frame into `out`.
    pub fn control_frame(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), SendError> {
        if self.close_sent {
            return Err(SendError::Closing);
        }
        if payload.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        let mask = self.out_mask();
        encode_frame(out, opcode, true, payload, mask);
        Ok(())
    }
}

/// Why a frame could not be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The close handshake has begun (or the connection is closed): nothing but the
    /// close frame may be sent.
    Closing,
    /// A close code that may not be sent (see [`valid_close_code`]), or a reason
    /// without a code.
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    ReasonTooLong,
    /// A ping or pong payload over 125 bytes.
    ControlTooLong,
    /// The connection is not open yet (a client still in its handshake).
    NotOpen,
    /// The connection is closed (or its socket ended): nothing was sent or queued.
    Closed,
    /// The instance's memory (`--max-memory`) cannot hold the message: it was not
    /// sent, and the connection goes on.
    OutOfMemory,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closing => f.write_str("the WebSocket is closing or closed"),
            SendError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            SendError::ReasonTooLong => f.write_str("a close reason is at most 123 bytes"),
            SendError::ControlTooLong => f.write_str("a ping or pong payload is at most 125 bytes"),
            SendError::NotOpen => f.write_str("the WebSocket is not open yet"),
            SendError::Closed => f.write_str("the WebSocket is closed"),
            SendError::OutOfMemory => {
                f.write_str("the instance's memory cannot hold the message (--max-memory)")
            }
        }
    }
}

impl std::error::Error for SendError {}

/// At most 123 bytes of `reason`, cut on a character boundary.
fn truncate_reason(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Writes a frame header: FIN, opcode, the shortest length form, the mask.
pub fn write_header(out: &mut Vec<u8>, opcode: OpCode, fin: bool, len: u64, mask: Option<[u8; 4]>) {
    out.push(if fin { 0x80 } else { 0 } | opcode.bits());
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
}

/// Writes a whole frame (header and payload, masked if `mask` is given).
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    write_header(out, opcode, fin, payload.len() as u64, mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut out[start..], k, 0);
    }
}

/// XORs `data` with the masking key, starting at byte `phase` of the frame's payload.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], phase: usize) {
    let mut k = [0u8; 8];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[(phase + i) % 4];
    }
    let word = u64::from_ne_bytes(k);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i];
    }
}

/// A fresh masking key (also the client's handshake nonce source): from std's
/// randomly seeded SipHash over a counter, so keys are unpredictable to the peer.
pub(crate) fn mask_key() -> [u8; 4] {
    let v = random_u64();
    (v as u32).to_ne_bytes()
}

pub(crate) fn random_u64() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: (std::collections::hash_map::RandomState, Cell<u64>) =
            (std::collections::hash_map::RandomState::new(), Cell::new(0));
    }
    STATE.with(|(seed, counter)| {
        counter.set(counter.get().wrapping_add(1));
        let mut h = seed.build_hasher();
        h.write_u64(counter.get());
        h.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_message_size: 1 << 20,
    };

    /// A client frame (masked) as a peer would send it to a server.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key, 0);
        out
    }

    fn server() -> Protocol {
        Protocol::new(Role::Server, LIMITS)
    }

    fn run(p: &mut Protocol, bytes: &[u8]) -> Vec<Incoming> {
        let mut ev = Vec::new();
        p.receive(bytes, &mut ev);
        ev
    }

    fn bytewise(p: &mut Protocol, bytes: &[u8]) -> Vec<Incoming> {
        let mut ev = Vec::new();
        for b in bytes {
            p.receive(std::slice::from_ref(b), &mut ev);
        }
        ev
    }

    fn violation_code(ev: &[Incoming]) -> Option<u16> {
        ev.iter().find_map(|e| match e {
            Incoming::Violation(v) => Some(v.code),
            _ => None,
        })
    }

    /// The close frame a server queued: its code.
    fn queued_close(p: &mut Protocol) -> Option<u16> {
        let out = p.take_output();
        let at = out.windows(2).rposition(|w| w[0] == 0x88)?;
        let len = out[at + 1] as usize;
        (len >= 2).then(|| u16::from_be_bytes([out[at + 2], out[at + 3]]))
    }

    #[test]
    fn rfc_examples_single_and_fragmented_text() {
        // RFC 6455 section 5.7: a masked "Hello", then "Hel" + "lo".
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(run(&mut server(), &hello), [Incoming::Text("Hello".into())]);
        assert_eq!(
            bytewise(&mut server(), &hello),
            [Incoming::Text("Hello".into())]
        );
        let mut frags = client_frame(0x01, b"Hel");
        frags.extend(client_frame(0x80, b"lo"));
        assert_eq!(
            bytewise(&mut server(), &frags),
            [Incoming::Text("Hello".into())]
        );
        // Unmasked, as a client reads it.
        let mut c = Protocol::new(Role::Client, LIMITS);
        assert_eq!(
            run(&mut c, &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']),
            [Incoming::Text("Hello".into())]
        );
    }

    #[test]
    fn lengths_of_7_16_and_64_bits() {
        for len in [0, 125, 126, 65535, 65536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = client_frame(0x82, &payload);
            let mut p = server();
            let ev = run(&mut p, &frame);
            assert_eq!(ev, [Incoming::Binary(payload.clone())], "{len}");
            // Our encoder uses the same forms.
            let mut out = Vec::new();
            encode_frame(&mut out, OpCode::Binary, true, &payload, None);
            let expect_header = match len {
                0..=125 => 2,
                126..=65535 => 4,
                _ => 10,
            };
            assert_eq!(out.len(), expect_header + len);
            let mut c = Protocol::new(Role::Client, LIMITS);
            assert_eq!(run(&mut c, &out), [Incoming::Binary(payload)]);
        }
    }

    #[test]
    fn a_ping_inside_a_fragmented_message_is_answered_with_its_payload() {
        let mut p = server();
        let mut bytes = client_frame(0x01, b"frag");
        bytes.extend(client_frame(0x89, b"are you there"));
        bytes.extend(client_frame(0x00, b"men"));
        bytes.extend(client_frame(0x8A, b"unsolicited"));
        bytes.extend(client_frame(0x80, b"ts"));
        let ev = bytewise(&mut p, &bytes);
        assert_eq!(
            ev,
            [
                Incoming::Ping(b"are you there".to_vec()),
                Incoming::Pong(b"unsolicited".to_vec()),
                Incoming::Text("fragments".into()),
            ]
        );
        let mut c = Protocol::new(Role::Client, LIMITS);
        assert_eq!(
            run(&mut c, &p.take_output()),
            [Incoming::Pong(b"are you there".to_vec())]
        );
    }

    #[test]
    fn the_close_handshake_echoes_the_code() {
        let mut p = server();
        let mut payload = 4001u16.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        let ev = run(&mut p, &client_frame(0x88, &payload));
        assert_eq!(ev, [Incoming::Close(4001, "bye ✓".into())]);
        assert!(p.done() && p.close_sent());
        assert_eq!(queued_close(&mut p), Some(4001));
        // Nothing is read after it.
        assert!(run(&mut p, &client_frame(0x81, b"late")).is_empty());
        // An empty close frame is 1005 and answered with an empty one.
        let mut p = server();
        assert_eq!(
            run(&mut p, &client_frame(0x88, b"")),
            [Incoming::Close(1005, String::new())]
        );
        assert_eq!(p.take_output(), [0x88, 0x00]);
        // Our close first: the peer's reply completes it, and no second frame is sent.
        let mut p = server();
        p.close(Some(1000), "done").unwrap();
        assert_eq!(queued_close(&mut p), Some(1000));
        assert_eq!(p.close(Some(1000), ""), Err(SendError::Closing));
        let mut out = Vec::new();
        assert_eq!(
            p.data_header(&mut out, OpCode::Text, 1, true),
            Err(SendError::Closing)
        );
        // Data before the reply is still read.
        let mut bytes = client_frame(0x81, b"in flight");
        bytes.extend(client_frame(0x88, &1000u16.to_be_bytes()));
        assert_eq!(
            run(&mut p, &bytes),
            [
                Incoming::Text("in flight".into()),
                Incoming::Close(1000, String::new())
            ]
        );
        assert!(p.take_output().is_empty());
    }

    #[test]
    fn closing_with_a_code_that_may_not_be_sent_is_refused() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(
                server().close(Some(code), ""),
                Err(SendError::InvalidCloseCode(code))
            );
        }
        assert_eq!(
            server().close(Some(1000), &"x".repeat(124)),
            Err(SendError::ReasonTooLong)
        );
        assert!(server().close(Some(4999), "ok").is_ok());
        assert!(server().close(None, "").is_ok());
    }

    #[test]
    fn every_violation_gets_its_code() {
        let close = |code: u16| {
            let mut v = code.to_be_bytes().to_vec();
            v.extend_from_slice(b"r");
            v
        };
        let unmasked_text = vec![0x81, 0x02, b'h', b'i'];
        let mut huge = vec![0x82, 0xFF];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("rsv1", client_frame(0xC1, b"x"), 1002),
            ("rsv2", client_frame(0xA1, b"x"), 1002),
            ("rsv3", client_frame(0x91, b"x"), 1002),
            ("opcode 3", client_frame(0x83, b""), 1002),
            ("opcode 7", client_frame(0x87, b""), 1002),
            ("opcode B", client_frame(0x8B, b""), 1002),
            ("opcode F", client_frame(0x8F, b""), 1002),
            ("fragmented ping", client_frame(0x09, b"x"), 1002),
            ("long ping", client_frame(0x89, &[0; 126]), 1002),
            ("long close", client_frame(0x88, &[3; 126]), 1002),
            ("bare continuation", client_frame(0x80, b"x"), 1002),
            ("unmasked", unmasked_text, 1002),
            ("64-bit top bit", huge, 1002),
            ("close 1 byte", client_frame(0x88, &[3]), 1002),
            ("close 1005", client_frame(0x88, &close(1005)), 1002),
            ("close 1006", client_frame(0x88, &close(1006)), 1002),
            ("close 999", client_frame(0x88, &close(999)), 1002),
            ("close 1015", client_frame(0x88, &close(1015)), 1002),
            ("close 5000", client_frame(0x88, &close(5000)), 1002),
            (
                "close reason",
                client_frame(0x88, &[0x03, 0xE8, 0xFF]),
                1007,
            ),
            ("bad utf-8", client_frame(0x81, &[b'a', 0xC0, 0xAF]), 1007),
            ("surrogate", client_frame(0x81, &[0xED, 0xA0, 0x80]), 1007),
            (
                "past 10FFFF",
                client_frame(0x81, &[0xF4, 0x90, 0x80, 0x80]),
                1007,
            ),
            (
                "cut at the end",
                client_frame(0x81, &[b'a', 0xE2, 0x82]),
                1007,
            ),
            (
                "too long",
                client_frame(0x82, &vec![0; (1 << 20) + 1]),
                1009,
            ),
        ];
        for (name, bytes, code) in cases {
            let mut p = server();
            let ev = run(&mut p, &bytes);
            assert_eq!(violation_code(&ev), Some(code), "{name}: {ev:?}");
            assert!(p.done(), "{name}");
            assert_eq!(queued_close(&mut p), Some(code), "{name}");
            let mut p = server();
            assert_eq!(
                violation_code(&bytewise(&mut p, &bytes)),
                Some(code),
                "{name} bytewise"
            );
        }
        // A new message inside a fragmented one; a masked frame to a client.
        let mut bytes = client_frame(0x01, b"a");
        bytes.extend(client_frame(0x81, b"b"));
        assert_eq!(violation_code(&run(&mut server(), &bytes)), Some(1002));
        let mut c = Protocol::new(Role::Client, LIMITS);
        assert_eq!(
            violation_code(&run(&mut c, &client_frame(0x81, b"x"))),
            Some(1002)
        );
    }

    #[test]
    fn invalid_utf8_fails_at_its_first_byte_across_fragments() {
        // The message's first fragment ends inside a character; the second breaks it.
        // The violation comes at the bad byte, before the (never sent) final frame.
        let mut p = server();
        let mut ev = Vec::new();
        p.receive(&client_frame(0x01, &[b'o', b'k', 0xE2]), &mut ev);
        assert!(ev.is_empty());
        p.receive(&client_frame(0x00, &[0x28]), &mut ev);
        assert_eq!(violation_code(&ev), Some(1007));
        // Fail fast inside one large frame: the header promises 1000 bytes, the bad
        // byte is the 3rd.
        let mut p = server();
        let payload = {
            let mut v = vec![b'a'; 1000];
            v[2] = 0xFF;
            v
        };
        let frame = client_frame(0x81, &payload);
        let mut ev = Vec::new();
        p.receive(&frame[..2 + 8 + 3], &mut ev);
        assert_eq!(violation_code(&ev), Some(1007));
        // Valid text split in every place.
        let text = "aé€😀z".as_bytes();
        for cut in 0..text.len() {
            let mut bytes = client_frame(0x01, &text[..cut]);
            bytes.extend(client_frame(0x80, &text[cut..]));
            assert_eq!(
                run(&mut server(), &bytes),
                [Incoming::Text("aé€😀z".into())],
                "{cut}"
            );
        }
    }

    #[test]
    fn the_size_limit_counts_every_fragment() {
        let limits = Limits {
            max_message_size: 10,
        };
        let mut p = Protocol::new(Role::Server, limits);
        let mut bytes = client_frame(0x02, b"123456");
        bytes.extend(client_frame(0x80, b"12345"));
        assert_eq!(violation_code(&run(&mut p, &bytes)), Some(1009));
        let mut p = Protocol::new(Role::Server, limits);
        let mut bytes = client_frame(0x02, b"12345");
        bytes.extend(client_frame(0x80, b"12345"));
        assert_eq!(
            run(&mut p, &bytes),
            [Incoming::Binary(b"1234512345".to_vec())]
        );
    }

    #[test]
    fn utf8_validator_agrees_with_std() {
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let len = (seed % 9) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (seed >> 33) as u8;
                    // Mostly the interesting range.
                    if r & 1 == 0 { 0x80 | (r >> 2) } else { r }
                })
                .collect();
            let whole = std::str::from_utf8(&bytes).is_ok();
            let mut v = Utf8::default();
            let ok = bytes.iter().all(|b| v.push(std::slice::from_ref(b))) && v.complete();
            assert_eq!(ok, whole, "{bytes:x?}");
        }
    }

    #[test]
    fn client_frames_are_masked_and_fragments_continue() {
        let mut c = Protocol::new(Role::Client, LIMITS);
        let mut out = Vec::new();
        let mask = c.data_header(&mut out, OpCode::Text, 3, false).unwrap();
        let start = out.len();
        out.extend_from_slice(b"abc");
        apply_mask(&mut out[start..], mask.unwrap(), 0);
        let mask = c.data_header(&mut out, OpCode::Text, 2, true).unwrap();
        let start = out.len();
        out.extend_from_slice(b"de");
        apply_mask(&mut out[start..], mask.unwrap(), 0);
        assert_eq!(out[0], 0x01);
        let mut s = server();
        assert_eq!(run(&mut s, &out), [Incoming::Text("abcde".into())]);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 99u64;
        for round in 0..2000 {
            let mut p = if round % 2 == 0 {
                server()
            } else {
                Protocol::new(
                    Role::Client,
                    Limits {
                        max_message_size: 4096,
                    },
                )
            };
            let mut ev = Vec::new();
            for _ in 0..8 {
                let len = (seed % 40) as usize;
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (seed >> 33) as u8
                    })
                    .collect();
                p.receive(&bytes, &mut ev);
                assert!(p.buffered() <= (1 << 20));
            }
        }
    }
}
