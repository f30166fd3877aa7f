//! HTTP for tests of HTTP handlers: build requests and parse responses, so a test (or a
//! scenario's `request` / `expect-response` steps) never writes raw bytes.
//!
//! ```no_run
//! use netlet::testing::Harness;
//! use netlet::testing::http::{HttpRequest, ResponseReader};
//!
//! let h = Harness::load("target/wasm32-wasip2/release/http_hello.wasm")?;
//! let c = h.connect()?;
//! c.send(HttpRequest::get("/").to_bytes())?;
//! let res = ResponseReader::default().next(&c).expect("a response")?;
//! assert_eq!(res.status, 200);
//! assert_eq!(res.header("content-type"), Some("text/plain"));
//! assert_eq!(res.body, b"Hello World\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;

use super::Conn;

/// A request to send: `HTTP/1.1` with `Host: localhost` unless told otherwise.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: String,
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body chunked (one chunk) instead of with a `Content-Length`.
    pub chunked: bool,
}

impl HttpRequest {
    /// `METHOD TARGET HTTP/1.1`, `Host: localhost`, no body.
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_string(),
            target: target.to_string(),
            version: "HTTP/1.1".to_string(),
            headers: vec![("Host".to_string(), "localhost".to_string())],
            body: Vec::new(),
            chunked: false,
        }
    }

    /// `GET target`.
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }

    /// `POST target` with `body`.
    pub fn post(target: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", target).body(body)
    }

    /// Adds a header field (replacing `Host` if that is the name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if name.eq_ignore_ascii_case("host") {
            self.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        }
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the body chunked.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// An HTTP/1.0 request (no `Host` needed).
    pub fn http10(mut self) -> Self {
        self.version = "HTTP/1.0".to_string();
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} {}\r\n", self.method, self.target, self.version);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        if self.chunked {
            if !has("transfer-encoding") {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
        } else if !self.body.is_empty() && !has("content-length") {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if self.chunked {
            if !self.body.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
                out.extend_from_slice(&self.body);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// A parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// In order, with their original case.
    pub headers: Vec<(String, String)>,
    /// De-chunked.
    pub body: Vec<u8>,
    /// The body came chunked.
    pub chunked: bool,
}

impl HttpResponse {
    /// The first value of header `name`, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses one response at the start of `bytes`: `Ok(None)` if it is not complete
    /// yet, else the response and how many bytes it took. `to_head`: it answers a
    /// `HEAD` (no body). `eof`: the connection has ended, which completes a body read
    /// until close. Informational (1xx) responses other than 101 are skipped.
    pub fn parse(bytes: &[u8], to_head: bool, eof: bool) -> Result<Option<(Self, usize)>, String> {
        let mut start = 0;
        loop {
            let Some(end) = find(&bytes[start..], b"\r\n\r\n") else {
                return Ok(None);
            };
            let head = std::str::from_utf8(&bytes[start..start + end])
                .map_err(|_| "the response head is not UTF-8".to_string())?;
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let mut parts = status_line.splitn(3, ' ');
            let version = parts.next().unwrap_or("").to_string();
            let status: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad status line {status_line:?}"))?;
            let reason = parts.next().unwrap_or("").to_string();
            let mut headers = Vec::new();
            for line in lines {
                let (n, v) = line
                    .split_once(':')
                    .ok_or_else(|| format!("bad header line {line:?}"))?;
                headers.push((n.to_string(), v.trim().to_string()));
            }
            let body_start = start + end + 4;
            let mut res = HttpResponse {
                version,
                status,
                reason,
                headers,
                body: Vec::new(),
                chunked: false,
            };
            if (100..200).contains(&status) && status != 101 {
                start = body_start;
                continue;
            }
            if to_head || status < 200 || status == 204 || status == 304 {
                return Ok(Some((res, body_start)));
            }
            let rest = &bytes[body_start..];
            if res
                .header("transfer-encoding")
                .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
            {
                res.chunked = true;
                let Some((body, used)) = dechunk(rest)? else {
                    return Ok(None);
                };
                res.body = body;
                return Ok(Some((res, body_start + used)));
            }
            if let Some(len) = res.header("content-length") {
                let len: usize = len
                    .parse()
                    .map_err(|_| format!("bad Content-Length {len:?}"))?;
                if rest.len() < len {
                    return Ok(None);
                }
                res.body = rest[..len].to_vec();
                return Ok(Some((res, body_start + len)));
            }
            if !eof {
                return Ok(None);
            }
            res.body = rest.to_vec();
            return Ok(Some((res, bytes.len())));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A chunked body at the start of `bytes`: the body and the bytes used, `None` if
/// incomplete.
fn dechunk(bytes: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find(&bytes[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&bytes[pos..pos + eol]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {line:?}"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailers, then the empty line.
            let Some(end) = find(&bytes[pos..], b"\r\n") else {
                return Ok(None);
            };
            if end == 0 {
                return Ok(Some((body, pos + 2)));
            }
            let Some(end) = find(&bytes[pos..], b"\r\n\r\n") else {
                return Ok(None);
            };
            return Ok(Some((body, pos + end + 4)));
        }
        if bytes.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[pos..pos + size]);
        if &bytes[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".to_string());
        }
        pos += size + 2;
    }
}

/// Reads responses from a harness connection, keeping bytes of the next ones.
#[derive(Default)]
pub struct ResponseReader {
    buf: Vec<u8>,
}

impl ResponseReader {
    /// The next complete response the handler wrote on `conn`, `None` if there is none
    /// (yet). A connection the handler ended completes a body read until close.
    pub fn next(&mut self, conn: &Conn) -> Option<Result<HttpResponse, String>> {
        self.next_with(conn, false)
    }

    /// [`ResponseReader::next`] for the answer to a `HEAD` request.
    pub fn next_with(
        &mut self,
        conn: &Conn,
        to_head: bool,
    ) -> Option<Result<HttpResponse, String>> {
        self.buf.extend(conn.take_output());
        self.parse(to_head, conn.is_ended())
    }

    /// Feeds bytes read elsewhere (a real socket).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Parses the next response from what was pushed.
    pub fn parse(&mut self, to_head: bool, eof: bool) -> Option<Result<HttpResponse, String>> {
        match HttpResponse::parse(&self.buf, to_head, eof) {
            Ok(Some((res, used))) => {
                self.buf.drain(..used);
                Some(Ok(res))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Bytes received and not part of a parsed response.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let req = HttpRequest::post("/x", "hi").header("A", "b").to_bytes();
        assert_eq!(
            req,
            b"POST /x HTTP/1.1\r\nHost: localhost\r\nA: b\r\nContent-Length: 2\r\n\r\nhi"
        );
        let chunked = HttpRequest::post("/x", "hello").chunked().to_bytes();
        assert!(chunked.ends_with(b"5\r\nhello\r\n0\r\n\r\n"));
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let (res, used) = HttpResponse::parse(bytes, false, false).unwrap().unwrap();
        assert_eq!(
            (res.status, res.body.as_slice(), res.chunked),
            (200, &b"abc"[..], true)
        );
        let (res, _) = HttpResponse::parse(&bytes[used..], false, false)
            .unwrap()
            .unwrap();
        assert_eq!(res.status, 204);
        assert_eq!(
            HttpResponse::parse(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                false,
                false
            ),
            Ok(None)
        );
    }
}
