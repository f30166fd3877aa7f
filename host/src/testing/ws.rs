//! WebSocket for tests of WebSocket handlers: a client that does the handshake on a
//! harness connection, sends masked frames (whole, fragmented, or deliberately wrong)
//! and reads the handler's frames back, so a test never writes frame bytes by hand.
//! [`encode_frame`] and [`FrameReader`] work on real sockets too.
//!
//! ```no_run
//! use netlet::testing::Harness;
//! use netlet::testing::ws::{Frame, WsClient};
//!
//! let h = Harness::load("target/wasm32-wasip2/release/ws_echo.wasm")?;
//! let c = h.connect()?;
//! let mut ws = WsClient::handshake(&c, "/")?;
//! ws.send_text(&c, "hello")?;
//! assert_eq!(ws.next(&c)?, Some(Frame::text("hello")));
//! ws.close(&c, 1000, "done")?;
//! assert_eq!(ws.next(&c)?.and_then(|f| f.close_code()), Some(1000));
//! assert!(c.is_ended());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::Conn;
use super::http::HttpResponse;

/// The key the client sends (RFC 6455's example nonce), and the accept value a server
/// must answer with.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`KEY`].
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcodes.
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A frame as read off the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// The three reserved bits (RSV1..3), as the top bits of the first byte.
    pub rsv: u8,
    pub opcode: u8,
    /// Whether the frame came masked (a server's never should).
    pub masked: bool,
    /// Unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A final, unmasked text frame.
    pub fn text(text: &str) -> Self {
        Self::new(op::TEXT, text.as_bytes())
    }

    /// A final, unmasked binary frame.
    pub fn binary(data: &[u8]) -> Self {
        Self::new(op::BINARY, data)
    }

    /// A final, unmasked frame.
    pub fn new(opcode: u8, payload: &[u8]) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            masked: false,
            payload: payload.to_vec(),
        }
    }

    /// A close frame's code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == op::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// A close frame's reason.
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }

    /// The payload as text (lossy).
    pub fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A frame's bytes: FIN, the reserved bits given (`rsv`, 0 normally), the opcode, the
/// shortest length form, masked with `mask` if given.
pub fn encode_frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    encode_frame_rsv(opcode, fin, 0, payload, mask)
}

/// [`encode_frame`] with reserved bits (`0x40`, `0x20`, `0x10`) set, to test a
/// server's refusal.
pub fn encode_frame_rsv(
    opcode: u8,
    fin: bool,
    rsv: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (rsv & 0x70) | (opcode & 0x0F));
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let start = out.len() + if mask.is_some() { 4 } else { 0 };
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    out
}

/// A close frame's payload: the code, then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(reason.as_bytes());
    v
}

/// Reads frames from bytes as they come (any split).
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Appends bytes read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if there is one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?), 10),
            126 | 127 => return None,
            n => (u64::from(n), 2),
        };
        let key = if masked {
            let k: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
            at += 4;
            Some(k)
        } else {
            None
        };
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        if b.len() < end {
            return None;
        }
        let mut payload = b[at..end].to_vec();
        if let Some(k) = key {
            for (i, x) in payload.iter_mut().enumerate() {
                *x ^= k[i % 4];
            }
        }
        let frame = Frame {
            fin: b[0] & 0x80 != 0,
            rsv: b[0] & 0x70,
            opcode: b[0] & 0x0F,
            masked,
            payload,
        };
        self.buf.drain(..end);
        Some(frame)
    }

    /// Bytes received and not part of a whole frame.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

/// A WebSocket client on a harness connection: masks what it sends (a fixed key per
/// frame, so tests are deterministic), reads what the handler writes.
pub struct WsClient {
    reader: FrameReader,
    /// The handshake's answer.
    pub response: HttpResponse,
    mask: [u8; 4],
}

/// The opening request for `path`, with [`KEY`] and the subprotocols offered.
pub fn handshake_request(path: &str, protocols: &[&str]) -> Vec<u8> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        req.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

impl WsClient {
    /// Sends the opening handshake for `path` and checks the answer: `101`, `Upgrade:
    /// websocket`, the right `Sec-WebSocket-Accept`. An error carries what came back.
    pub fn handshake(conn: &Conn, path: &str) -> Result<WsClient, String> {
        Self::handshake_with(conn, path, &[])
    }

    /// [`WsClient::handshake`] offering subprotocols (see
    /// [`WsClient::protocol`] for the chosen one).
    pub fn handshake_with(conn: &Conn, path: &str, protocols: &[&str]) -> Result<WsClient, String> {
        conn.send(handshake_request(path, protocols))
            .map_err(|e| e.to_string())?;
        let out = conn.take_output();
        let (response, used) = HttpResponse::parse(&out, false, true)?.ok_or_else(|| {
            format!(
                "no answer to the handshake: {:?}",
                String::from_utf8_lossy(&out)
            )
        })?;
        if response.status != 101 {
            return Err(format!(
                "answered {} instead of 101: {:?}",
                response.status,
                String::from_utf8_lossy(&out)
            ));
        }
        if response.header("sec-websocket-accept") != Some(ACCEPT)
            || !response
                .header("upgrade")
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        {
            return Err(format!("a wrong 101: {:?}", response.headers));
        }
        let mut reader = FrameReader::default();
        reader.push(&out[used..]);
        Ok(WsClient {
            reader,
            response,
            mask: [0x12, 0x34, 0x56, 0x78],
        })
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.response.header("sec-websocket-protocol")
    }

    /// Sends a masked frame.
    pub fn send_frame(
        &mut self,
        conn: &Conn,
        opcode: u8,
        fin: bool,
        payload: &[u8],
    ) -> Result<(), String> {
        self.send_raw(conn, &encode_frame(opcode, fin, payload, Some(self.mask)))
    }

    /// Sends bytes as they are (a frame broken on purpose).
    pub fn send_raw(&mut self, conn: &Conn, bytes: &[u8]) -> Result<(), String> {
        conn.send(bytes).map_err(|e| e.to_string())
    }

    /// Sends a text message in one frame.
    pub fn send_text(&mut self, conn: &Conn, text: &str) -> Result<(), String> {
        self.send_frame(conn, op::TEXT, true, text.as_bytes())
    }

    /// Sends a binary message in one frame.
    pub fn send_binary(&mut self, conn: &Conn, data: &[u8]) -> Result<(), String> {
        self.send_frame(conn, op::BINARY, true, data)
    }

    /// Sends a ping.
    pub fn ping(&mut self, conn: &Conn, payload: &[u8]) -> Result<(), String> {
        self.send_frame(conn, op::PING, true, payload)
    }

    /// Sends a close frame with `code` and `reason`.
    pub fn close(&mut self, conn: &Conn, code: u16, reason: &str) -> Result<(), String> {
        self.send_frame(conn, op::CLOSE, true, &close_payload(code, reason))
    }

    /// The next frame the handler wrote, `None` if there is none yet. A masked frame
    /// from a server is an error.
    pub fn next(&mut self, conn: &Conn) -> Result<Option<Frame>, String> {
        self.reader.push(&conn.take_output());
        match self.reader.next_frame() {
            Some(f) if f.masked => Err(format!("a server frame is masked: {f:?}")),
            other => Ok(other),
        }
    }

    /// Every whole frame the handler wrote so far.
    pub fn frames(&mut self, conn: &Conn) -> Result<Vec<Frame>, String> {
        let mut out = Vec::new();
        while let Some(f) = self.next(conn)? {
            out.push(f);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_every_length_form() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut r = FrameReader::default();
            let bytes = encode_frame(op::BINARY, true, &payload, Some([1, 2, 3, 4]));
            for chunk in bytes.chunks(7) {
                assert!(r.leftover().len() < bytes.len());
                r.push(chunk);
            }
            let f = r.next_frame().unwrap();
            assert!(f.masked && f.fin);
            assert_eq!(f.payload, payload);
            assert!(r.next_frame().is_none());
        }
        let f = Frame::new(op::CLOSE, &close_payload(1002, "bad"));
        assert_eq!(
            (f.close_code(), f.close_reason().as_str()),
            (Some(1002), "bad")
        );
    }
}
