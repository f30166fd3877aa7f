//! The opening handshake (RFC 6455 section 4): checking a client's upgrade request and
//! writing the `101` answer, writing a client's request and checking the server's
//! answer. SHA-1 and base64, which the handshake needs and nothing else does, are here
//! too (a few dozen lines each, tested against their RFCs' vectors).

use std::fmt::Write as _;

use crate::http::Head;
use crate::http::reason_phrase;

/// The GUID RFC 6455 appends to `Sec-WebSocket-Key` before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
///
/// ```
/// // RFC 6455 section 1.3's example.
/// let accept = netlet_guest::ws::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut input = Vec::with_capacity(key.len() + GUID.len());
    input.extend_from_slice(key.trim().as_bytes());
    input.extend_from_slice(GUID.as_bytes());
    base64_encode(&sha1(&input))
}

/// Why an upgrade request is refused: the status to answer (400, or 426 for a version
/// other than 13) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `400 Bad Request` or `426 Upgrade Required`.
    pub status: u16,
    /// What was wrong, for the answer's body and the log.
    pub reason: &'static str,
}

impl Refusal {
    const fn bad(reason: &'static str) -> Self {
        Self {
            status: 400,
            reason,
        }
    }

    /// The HTTP answer: the status, `Connection: close`, and for 426 the version this
    /// server speaks (`Sec-WebSocket-Version: 13`).
    pub fn response(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nConnection: close\r\nContent-Type: text/plain\r\n",
            self.status,
            reason_phrase(self.status)
        );
        if self.status == 426 {
            out.push_str("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        }
        let body = format!("{}\n", self.reason);
        let _ = write!(out, "Content-Length: {}\r\n\r\n{body}", body.len());
        out.into_bytes()
    }
}

/// Whether a request asks for a WebSocket (`Upgrade: websocket`, any case). The rest
/// is checked by [`check_request`].
pub fn is_websocket_request(head: &Head) -> bool {
    head.has_token("upgrade", "websocket")
}

/// A valid opening handshake's key and offered subprotocols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// `Sec-WebSocket-Protocol` tokens, in the client's order of preference.
    pub protocols: Vec<String>,
}

/// Checks a request against RFC 6455 section 4.2.1: `GET`, HTTP/1.1, `Upgrade:
/// websocket`, `Connection: upgrade`, one `Sec-WebSocket-Key` that is 16 bytes in
/// base64, `Sec-WebSocket-Version: 13` (else 426 naming 13).
pub fn check_request(head: &Head) -> Result<Offer, Refusal> {
    if head.method() != "GET" {
        return Err(Refusal::bad("a WebSocket handshake must be a GET"));
    }
    if head.version() != crate::http::Version::Http11 {
        return Err(Refusal::bad("a WebSocket handshake needs HTTP/1.1"));
    }
    if !is_websocket_request(head) {
        return Err(Refusal::bad("Upgrade: websocket is missing"));
    }
    if !head.has_token("connection", "upgrade") {
        return Err(Refusal::bad("Connection: upgrade is missing"));
    }
    let versions: Vec<&str> = head.header_values("sec-websocket-version").collect();
    if versions.len() != 1 || versions[0].trim() != "13" {
        return Err(Refusal {
            status: 426,
            reason: "unsupported Sec-WebSocket-Version (this server speaks 13)",
        });
    }
    let keys: Vec<&str> = head.header_values("sec-websocket-key").collect();
    let key = match keys.as_slice() {
        [key] => key.trim(),
        [] => return Err(Refusal::bad("Sec-WebSocket-Key is missing")),
        _ => return Err(Refusal::bad("more than one Sec-WebSocket-Key")),
    };
    if base64_decode(key).is_none_or(|k| k.len() != 16) {
        return Err(Refusal::bad("Sec-WebSocket-Key is not 16 bytes in base64"));
    }
    let protocols = head
        .header_values("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Offer {
        key: key.to_string(),
        protocols,
    })
}

/// The `101 Switching Protocols` answer, with the chosen subprotocol if any.
pub fn accept_response(key: &str, protocol: Option<&str>) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(p) = protocol {
        let _ = write!(out, "Sec-WebSocket-Protocol: {p}\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A client's opening request for `path` on `host` (the `Host` header as given).
pub fn client_request(
    host: &str,
    path: &str,
    key: &str,
    protocols: &[String],
    headers: &[(String, String)],
) -> Vec<u8> {
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        let _ = write!(out, "Sec-WebSocket-Protocol: {}\r\n", protocols.join(", "));
    }
    for (n, v) in headers {
        let _ = write!(out, "{n}: {v}\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Checks a server's answer to a client's request (RFC 6455 section 4.1): `101`,
/// `Upgrade: websocket`, `Connection: upgrade`, the right `Sec-WebSocket-Accept`, and
/// a subprotocol only if it was offered. Returns the chosen subprotocol.
pub fn check_response(
    head: &Head,
    key: &str,
    offered: &[String],
) -> Result<Option<String>, String> {
    if head.status() != 101 {
        return Err(format!(
            "the server answered {} {} instead of 101",
            head.status(),
            head.target()
        ));
    }
    if !head.has_token("upgrade", "websocket") {
        return Err("the answer lacks Upgrade: websocket".into());
    }
    if !head.has_token("connection", "upgrade") {
        return Err("the answer lacks Connection: upgrade".into());
    }
    if head.header("sec-websocket-accept").map(str::trim) != Some(accept_key(key).as_str()) {
        return Err("the answer's Sec-WebSocket-Accept does not match the key".into());
    }
    if head.header("sec-websocket-extensions").is_some() {
        return Err("the server chose an extension that was not offered".into());
    }
    match head.header("sec-websocket-protocol").map(str::trim) {
        None => Ok(None),
        Some(p) if offered.iter().any(|o| o == p) => Ok(Some(p.to_string())),
        Some(p) => Err(format!("the server chose subprotocol {p:?}, not offered")),
    }
}

/// SHA-1 (FIPS 180-4). Only for the handshake, where RFC 6455 requires it; it is not
/// a secure hash.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    let mut w = [0u32; 80];
    for block in msg.chunks_exact(64) {
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (RFC 4648, standard alphabet, padded).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 decoding, strict: standard alphabet, padded to a multiple of four, no
/// whitespace, zero bits in the padding. `None` if `text` is not that.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        if decoded[3 - pad..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{Event, Kind, Limits, Parser};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn head(text: &str) -> Head {
        let mut p = Parser::new(Kind::Request, Limits::default());
        p.push(text.as_bytes().to_vec());
        match p.next_event() {
            Ok(Some(Event::Head(h))) => h,
            other => panic!("not a head: {other:?}"),
        }
    }

    #[test]
    fn sha1_matches_fips_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn base64_matches_rfc4648_and_round_trips() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), coded);
            assert_eq!(base64_decode(coded).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg=", "Zg", "Z===", "Zh==", "Zm9v Yg==", "Zg==Zg==", "****"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_rfc_example_key_gives_the_rfc_accept() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";

    #[test]
    fn a_good_request_is_accepted_with_its_protocols() {
        let offer = check_request(&head(GOOD)).unwrap();
        assert_eq!(offer.protocols, ["chat", "superchat"]);
        let res = String::from_utf8(accept_response(&offer.key, Some("chat"))).unwrap();
        assert!(res.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(res.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(res.contains("Sec-WebSocket-Protocol: chat\r\n"));
    }

    #[test]
    fn bad_requests_are_400_and_a_wrong_version_426() {
        let cases = [
            (GOOD.replace("GET", "POST"), 400),
            (GOOD.replace("HTTP/1.1", "HTTP/1.0"), 400),
            (
                GOOD.replace("Upgrade: websocket\r\n", "Upgrade: h2c\r\n"),
                400,
            ),
            (GOOD.replace("keep-alive, Upgrade", "keep-alive"), 400),
            (GOOD.replace("Version: 13", "Version: 8"), 426),
            (GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""), 426),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
                400,
            ),
            (
                GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                400,
            ),
            (
                GOOD.replace(
                    "Sec-WebSocket-Version",
                    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version",
                ),
                400,
            ),
        ];
        for (text, status) in cases {
            let refusal = check_request(&head(&text)).unwrap_err();
            assert_eq!(refusal.status, status, "{text}");
            let res = String::from_utf8(refusal.response()).unwrap();
            assert!(res.contains("Connection: close"), "{res}");
            assert_eq!(res.contains("Sec-WebSocket-Version: 13"), status == 426);
        }
    }

    #[test]
    fn a_client_checks_the_servers_answer() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let parse = |text: &str| {
            let mut p = Parser::new(Kind::Response, Limits::default());
            p.push(text.as_bytes().to_vec());
            match p.next_event() {
                Ok(Some(Event::Head(h))) => h,
                other => panic!("not a head: {other:?}"),
            }
        };
        let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check_response(&parse(good), key, &[]), Ok(None));
        let with_p = good.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        assert_eq!(
            check_response(&parse(&with_p), key, &["chat".into()]),
            Ok(Some("chat".into()))
        );
        assert!(check_response(&parse(&with_p), key, &[]).is_err());
        assert!(check_response(&parse(&good.replace("s3pP", "s3pQ")), key, &[]).is_err());
        assert!(
            check_response(
                &parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
                key,
                &[]
            )
            .is_err()
        );
        let req = String::from_utf8(client_request("h:1", "/p", key, &["a".into()], &[])).unwrap();
        assert!(req.starts_with("GET /p HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(req.contains("Sec-WebSocket-Protocol: a\r\n"));
    }
}
