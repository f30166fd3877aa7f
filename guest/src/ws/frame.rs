//! The frame codec (RFC 6455 section 5.2): a frame header's bytes to its fields and
//! back, and the payload mask. No rule of the protocol is here: a header with reserved
//! bits or a reserved opcode decodes as it is, and [`super::protocol`] refuses it.
//! Pure functions of bytes, used by the SDK's connections and by `netlet-bench`'s
//! WebSocket load generator.
//!
//! ```
//! use netlet_guest::ws::frame::{FrameHeader, OpCode, apply_mask, encode_frame};
//!
//! // A client's masked "Hello" (RFC 6455 section 5.7).
//! let mut bytes = Vec::new();
//! encode_frame(&mut bytes, OpCode::Text, true, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
//! assert_eq!(bytes[..2], [0x81, 0x85]);
//! let (header, at) = FrameHeader::decode(&bytes).unwrap();
//! assert_eq!((header.opcode, header.len, at), (0x1, 5, 6));
//! let mut payload = bytes[at..].to_vec();
//! apply_mask(&mut payload, header.mask.unwrap(), 0);
//! assert_eq!(payload, b"Hello");
//! ```

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
    /// The opcode of a header's four bits; `None` for a reserved one.
    pub fn from_bits(bits: u8) -> Option<Self> {
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

    /// The opcode's four bits.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether it is a control frame's (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// The longest header: 2 bytes, a 64-bit length, a masking key.
pub const MAX_HEADER: usize = 14;

/// A frame header's fields, as they were on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame ends its message.
    pub fin: bool,
    /// The three reserved bits (RSV1..3) in place (`0x70` of the first byte).
    pub rsv: u8,
    /// The opcode's four bits (see [`OpCode::from_bits`]).
    pub opcode: u8,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload's length (a 64-bit length keeps its top bit, which the RFC forbids).
    pub len: u64,
}

/// The length of a header, told by its second byte: 2, plus 2 or 8 for an extended
/// length, plus 4 for a masking key.
pub fn header_len(second: u8) -> usize {
    let ext = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if second & 0x80 != 0 { 4 } else { 0 }
}

impl FrameHeader {
    /// Decodes the header at the start of `bytes`: the header and its length in bytes,
    /// or `None` while more bytes are needed.
    pub fn decode(bytes: &[u8]) -> Option<(FrameHeader, usize)> {
        let (&b0, &b1) = (bytes.first()?, bytes.get(1)?);
        let n = header_len(b1);
        let h = bytes.get(..n)?;
        let (len, at) = match b1 & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => (
                u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
                10,
            ),
            n => (u64::from(n), 2),
        };
        let mask = (b1 & 0x80 != 0).then(|| [h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: b0 & 0x70,
            opcode: b0 & 0x0F,
            mask,
            len,
        };
        Some((header, n))
    }
}

/// Reads one header from bytes arriving in any split, keeping at most
/// [`MAX_HEADER`] bytes.
#[derive(Clone, Debug, Default)]
pub struct HeaderReader {
    buf: [u8; MAX_HEADER],
    len: usize,
}

impl HeaderReader {
    /// Takes from the front of `data` what the header still needs; returns the header
    /// once it is whole (the reader is then empty for the next one).
    pub fn read(&mut self, data: &mut &[u8]) -> Option<FrameHeader> {
        loop {
            let need = if self.len < 2 {
                2
            } else {
                header_len(self.buf[1])
            };
            if self.len >= need {
                break;
            }
            if data.is_empty() {
                return None;
            }
            let n = (need - self.len).min(data.len());
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            *data = &data[n..];
        }
        let (header, _) = FrameHeader::decode(&self.buf[..self.len])?;
        self.len = 0;
        Some(header)
    }
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

/// XORs `data` with the masking key, starting at byte `phase` of the frame's payload
/// (masking and unmasking are the same).
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

/// A fresh masking key: from std's randomly seeded SipHash over a counter, so keys are
/// unpredictable to the peer.
pub(crate) fn mask_key() -> [u8; 4] {
    let v = random_u64();
    (v as u32).to_ne_bytes()
}

/// 64 unpredictable bits (masking keys, the client's handshake nonce).
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

    #[test]
    fn headers_round_trip_in_every_length_form_and_any_split() {
        for len in [0u64, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                write_header(&mut out, OpCode::Binary, false, len, mask);
                let expect = match len {
                    0..=125 => 2,
                    126..=65535 => 4,
                    _ => 10,
                } + if mask.is_some() { 4 } else { 0 };
                assert_eq!(out.len(), expect, "{len}");
                assert_eq!(header_len(out[1]), expect);
                let whole = FrameHeader {
                    fin: false,
                    rsv: 0,
                    opcode: 0x2,
                    mask,
                    len,
                };
                assert_eq!(FrameHeader::decode(&out), Some((whole, expect)));
                assert_eq!(FrameHeader::decode(&out[..expect - 1]), None);
                // Byte by byte through a reader, with the next frame's bytes behind.
                out.push(0xFF);
                let mut reader = HeaderReader::default();
                let mut got = None;
                let mut rest: &[u8] = &[];
                for i in 0..out.len() {
                    let mut piece = &out[i..=i];
                    if let Some(h) = reader.read(&mut piece) {
                        got = Some(h);
                        rest = &out[i + 1..];
                        break;
                    }
                }
                assert_eq!(got, Some(whole));
                assert_eq!(rest, [0xFF]);
            }
        }
    }

    #[test]
    fn reserved_bits_and_opcodes_decode_as_they_are() {
        let (h, _) = FrameHeader::decode(&[0x80 | 0x40 | 0x3, 0x00]).unwrap();
        assert_eq!((h.fin, h.rsv, h.opcode), (true, 0x40, 0x3));
        assert_eq!(OpCode::from_bits(0x3), None);
        for op in [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ] {
            assert_eq!(OpCode::from_bits(op.bits()), Some(op));
        }
    }

    #[test]
    fn masking_twice_gives_the_payload_back_at_any_phase() {
        let payload: Vec<u8> = (0..=255).collect();
        let key = [0xde, 0xad, 0xbe, 0xef];
        let mut whole = payload.clone();
        apply_mask(&mut whole, key, 0);
        for (i, b) in whole.iter().enumerate() {
            assert_eq!(*b, payload[i] ^ key[i % 4]);
        }
        // Masked in two pieces, the second at its phase.
        let mut split = payload.clone();
        let (a, b) = split.split_at_mut(13);
        apply_mask(a, key, 0);
        apply_mask(b, key, 13);
        assert_eq!(split, whole);
        apply_mask(&mut split, key, 0);
        assert_eq!(split, payload);
    }
}
