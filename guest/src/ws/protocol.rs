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
//! the caller's ([`super::WebSocket`]). The bytes of a frame are the codec's
//! ([`super::frame`]), text is checked by [`super::utf8`], close codes are
//! [`super::code`]'s: this is the connection's state alone.
//!
//! ```
//! use netlet_guest::ws::frame::{OpCode, encode_frame};
//! use netlet_guest::ws::protocol::{Incoming, Limits, Protocol, Role};
//!
//! let mut server = Protocol::new(Role::Server, Limits { max_message_size: 1 << 20 });
//! // A client's masked ping, then the first half of a text message.
//! let mut bytes = Vec::new();
//! encode_frame(&mut bytes, OpCode::Ping, true, b"hi", Some([1, 2, 3, 4]));
//! encode_frame(&mut bytes, OpCode::Text, false, b"hel", Some([5, 6, 7, 8]));
//! let mut events = Vec::new();
//! server.receive(&bytes, &mut events);
//! assert_eq!(events, [Incoming::Ping(b"hi".to_vec())]);
//! // The pong is queued for the caller to send.
//! assert_eq!(server.take_output(), [0x8A, 0x02, b'h', b'i']);
//!
//! let mut rest = Vec::new();
//! encode_frame(&mut rest, OpCode::Continuation, true, b"lo", Some([9, 9, 9, 9]));
//! server.receive(&rest, &mut events);
//! assert_eq!(events[1], Incoming::Text("hello".into()));
//!
//! // An unmasked client frame breaks the protocol: a close frame with 1002 is queued.
//! let mut bad = Vec::new();
//! encode_frame(&mut bad, OpCode::Text, true, b"x", None);
//! server.receive(&bad, &mut events);
//! assert!(matches!(&events[2], Incoming::Violation(v) if v.code == 1002));
//! assert!(server.done());
//! ```

use std::fmt;

use super::code::{self, close_payload, valid_close_code};
use super::frame::{HeaderReader, OpCode, apply_mask, encode_frame, mask_key, write_header};
use super::utf8::Utf8;

/// Which end of the connection this is: a server reads masked frames and sends
/// unmasked ones; a client the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection.
    Server,
    /// Opened it.
    Client,
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
    header: HeaderReader,
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
            header: HeaderReader::default(),
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
        let Some(h) = self.header.read(data) else {
            return Ok(());
        };
        if h.rsv != 0 {
            return Err(violation(
                1002,
                "a reserved bit is set and no extension was negotiated",
            ));
        }
        let fin = h.fin;
        let opcode = OpCode::from_bits(h.opcode).ok_or(violation(1002, "a reserved opcode"))?;
        if h.len >> 63 != 0 {
            return Err(violation(
                1002,
                "a 64-bit length with its most significant bit set",
            ));
        }
        let (mask, payload_len, masked) = (h.mask, h.len, h.mask.is_some());
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
        let payload = close_payload(code, reason);
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
