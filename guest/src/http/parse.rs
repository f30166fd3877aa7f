//! Sans-I/O HTTP/1.1 message parsing: bytes in, heads and body chunks out.
//!
//! A [`Parser`] reads one message after another from the bytes pushed into it: a head
//! (the request or status line and the header fields, parsed by `httparse`), then the
//! body as its framing says (RFC 9112 section 6: `Content-Length`, `chunked`, or until
//! the connection closes), then the next head. It does no I/O and reads no clock, so a
//! handler drives it from `on_data` and a unit test from byte strings.
//!
//! It is strict where leniency lets two parties disagree on where a message ends
//! (request smuggling): a request with both `Transfer-Encoding` and `Content-Length`,
//! differing `Content-Length`s, a transfer coding whose last coding is not `chunked`, a
//! bad chunk size, obs-fold, a bare LF, or whitespace before a header's colon is an
//! error, and the connection must close. It never reads a body the framing does not
//! delimit. What it buffers is bounded: a head larger than the limit is an error
//! (431) as soon as that many bytes are waiting, and chunk-size lines and trailers have
//! limits too.
//!
//! ```
//! use netlet_guest::http::parse::{Event, Kind, Limits, Parser};
//!
//! let mut parser = Parser::new(Kind::Request, Limits::default());
//! // Bytes arrive in any split: a head, then a chunked body.
//! parser.push(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Enc".to_vec());
//! assert!(parser.next_event().unwrap().is_none());
//! parser.push(b"oding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec());
//! let Some(Event::Head(head)) = parser.next_event().unwrap() else { panic!() };
//! assert_eq!((head.method(), head.target()), ("POST", "/up"));
//! assert!(matches!(parser.next_event().unwrap(), Some(Event::Body(b)) if b == b"hello"));
//! assert!(matches!(parser.next_event().unwrap(), Some(Event::End)));
//!
//! // Two lengths that disagree: refused, never guessed.
//! let mut parser = Parser::new(Kind::Request, Limits::default());
//! parser.push(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec());
//! assert_eq!(parser.next_event().unwrap_err().status(), 400);
//! ```

use std::fmt;
use std::mem;

/// A protocol version: HTTP/1.0 or HTTP/1.1 (anything else is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl Version {
    /// `"1.0"` or `"1.1"`, as Node's `req.httpVersion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/{}", self.as_str())
    }
}

/// Why a message was refused: the status a server answers with, Node's error code
/// (`HPE_...` as llhttp names them, `ERR_HTTP_REQUEST_TIMEOUT`) and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: u16,
    code: &'static str,
    message: &'static str,
}

impl Error {
    pub(crate) const fn new(status: u16, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
        }
    }

    const fn bad(code: &'static str, message: &'static str) -> Self {
        Self::new(400, code, message)
    }

    /// The status a server answers with: 400, 431 (head too large or too many header
    /// fields), 505 (an HTTP version other than 1.0 and 1.1), 408 (a timeout), 413 (a
    /// collected body over its limit).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Node's `err.code` for it, e.g. `HPE_HEADER_OVERFLOW`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What was wrong, e.g. `Transfer-Encoding and Content-Length together`.
    pub fn message(&self) -> &'static str {
        self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

const HEADER_OVERFLOW: Error = Error::new(
    431,
    "HPE_HEADER_OVERFLOW",
    "the head is larger than the header size limit",
);
const TOO_MANY_HEADERS: Error = Error::new(
    431,
    "HPE_HEADER_OVERFLOW",
    "more header fields than the limit",
);
const BARE_LF: Error = Error::bad("HPE_LF_EXPECTED", "a bare LF where CRLF is required");

/// Limits on what one message head may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the head: start line, header fields, the empty line (and of a chunked
    /// body's trailer section). Node's `maxHeaderSize`, 16 KiB.
    pub max_header_size: usize,
    /// Header fields in one head. Node's `maxHeadersCount`, 2000.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_size: 16 * 1024,
            max_headers: 2000,
        }
    }
}

/// The longest chunk-size line (size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// How a message's body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// A parsed message head: a request's method, target and version, or a response's
/// status and reason, and the header fields in order with their original case.
///
/// Header values are text: taken as UTF-8 when they are, else byte for byte as
/// Latin-1 (what Node does for every value), so no byte is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    text: String,
    method: (u32, u32),
    target: (u32, u32),
    status: u16,
    version: Version,
    headers: Vec<((u32, u32), (u32, u32))>,
    framing: Framing,
}

/// Appends `bytes` to `text` (as UTF-8 if valid, else as Latin-1); returns its range.
fn push_text(text: &mut String, bytes: &[u8]) -> (u32, u32) {
    let start = text.len() as u32;
    match std::str::from_utf8(bytes) {
        Ok(s) => text.push_str(s),
        Err(_) => text.extend(bytes.iter().map(|&b| char::from(b))),
    }
    (start, text.len() as u32)
}

impl Head {
    fn slice(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// The request's method (`GET`); empty for a response.
    pub fn method(&self) -> &str {
        self.slice(self.method)
    }

    /// The request target as sent (`/path?query`); for a response, its reason phrase.
    pub fn target(&self) -> &str {
        self.slice(self.target)
    }

    /// A response's status code; 0 for a request.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// How the body that follows is delimited.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Every header field, in order, with the name's original case (Node's `rawHeaders`
    /// as pairs).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|&(name, value)| (self.slice(name), self.slice(value)))
    }

    /// How many header fields there are.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|&&(n, _)| self.slice(n).eq_ignore_ascii_case(name))
            .map(|&(_, v)| self.slice(v))
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a comma-separated header (`Connection`, `Transfer-Encoding`) lists
    /// `token` (any case) in any of its fields.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after this message: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.has_token("connection", "close"),
            Version::Http10 => {
                self.has_token("connection", "keep-alive") && !self.has_token("connection", "close")
            }
        }
    }

    /// Whether the request asks to switch protocols (`Connection: upgrade` with an
    /// `Upgrade` header), or is a `CONNECT`.
    pub fn is_upgrade(&self) -> bool {
        self.method().eq_ignore_ascii_case("CONNECT")
            || (self.has_token("connection", "upgrade") && self.header("upgrade").is_some())
    }
}

/// Every `Content-Length` value of the head, which must all be the same number.
fn content_length<'a>(values: impl Iterator<Item = &'a str>) -> Result<Option<u64>, Error> {
    const BAD: Error = Error::bad("HPE_INVALID_CONTENT_LENGTH", "an invalid Content-Length");
    const DIFFERENT: Error = Error::bad(
        "HPE_UNEXPECTED_CONTENT_LENGTH",
        "Content-Length values that differ",
    );
    let mut found = None;
    for value in values {
        for part in value.split(',') {
            let part = part.trim_matches([' ', '\t']);
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BAD);
            }
            let n: u64 = part.parse().map_err(|_| BAD)?;
            match found {
                Some(m) if m != n => return Err(DIFFERENT),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// Whether the `Transfer-Encoding` fields end in `chunked`, which appears once, last.
fn chunked_last<'a>(values: impl Iterator<Item = &'a str>) -> Result<bool, Error> {
    const TWICE: Error = Error::bad(
        "HPE_INVALID_TRANSFER_ENCODING",
        "chunked applied more than once",
    );
    let mut codings = 0;
    let mut last_chunked = false;
    for value in values {
        for coding in value.split(',') {
            let coding = coding.trim_matches([' ', '\t']);
            if coding.is_empty() {
                continue;
            }
            if last_chunked {
                // `chunked` must be the final coding: anything after it is not.
                return Err(if coding.eq_ignore_ascii_case("chunked") {
                    TWICE
                } else {
                    NOT_CHUNKED
                });
            }
            codings += 1;
            last_chunked = coding.eq_ignore_ascii_case("chunked");
        }
    }
    if codings == 0 {
        return Err(NOT_CHUNKED);
    }
    Ok(last_chunked)
}

const NOT_CHUNKED: Error = Error::bad(
    "HPE_INVALID_TRANSFER_ENCODING",
    "a Transfer-Encoding whose final coding is not chunked",
);

/// A request's framing (RFC 9112 section 6.3), refusing every ambiguous case.
fn request_framing(head: &Head) -> Result<Framing, Error> {
    let has_te = head.header("transfer-encoding").is_some();
    let length = content_length(head.header_values("content-length"))?;
    if has_te {
        if length.is_some() {
            return Err(Error::bad(
                "HPE_UNEXPECTED_CONTENT_LENGTH",
                "Transfer-Encoding and Content-Length together",
            ));
        }
        if head.version == Version::Http10 {
            return Err(Error::bad(
                "HPE_INVALID_TRANSFER_ENCODING",
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if !chunked_last(head.header_values("transfer-encoding"))? {
            return Err(NOT_CHUNKED);
        }
        return Ok(Framing::Chunked);
    }
    Ok(match length {
        Some(0) | None => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

/// A response's framing, given whether it answers a `HEAD`.
fn response_framing(head: &Head, to_head: bool) -> Result<Framing, Error> {
    let status = head.status;
    if to_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    if head.header("transfer-encoding").is_some() {
        // RFC 9112 6.3: Transfer-Encoding overrides Content-Length; a final coding
        // other than chunked reads until the server closes.
        return Ok(
            match chunked_last(head.header_values("transfer-encoding")) {
                Ok(true) => Framing::Chunked,
                Ok(false) | Err(_) => Framing::UntilClose,
            },
        );
    }
    Ok(
        match content_length(head.header_values("content-length"))? {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        },
    )
}

/// What the parser found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A message head. Its body (possibly empty) follows, then [`Event::End`].
    Head(Head),
    /// A piece of the body, de-chunked.
    Body(Vec<u8>),
    /// The message is complete; a chunked body's trailer fields are in
    /// [`Parser::take_trailers`].
    End,
}

/// Which kind of message the parser reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Requests (a server).
    Request,
    /// Responses (a client).
    Response,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    UntilClose,
    /// The head's body is empty: [`Event::End`] comes next.
    Ending,
    /// An error was returned: nothing more is read.
    Failed,
}

/// The parser: push bytes with [`Parser::push`], take events with [`Parser::next_event`].
pub struct Parser {
    kind: Kind,
    limits: Limits,
    buf: Vec<u8>,
    pos: usize,
    /// Where the search for the end of the head (or trailers) resumes.
    scan: usize,
    state: State,
    /// For a client: the response being read answers a `HEAD`.
    to_head: bool,
    trailers: Vec<(String, String)>,
}

impl Parser {
    /// A parser for requests (`Kind::Request`) or responses.
    pub fn new(kind: Kind, limits: Limits) -> Self {
        Self {
            kind,
            limits,
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            state: State::Head,
            to_head: false,
            trailers: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Appends bytes read from the peer.
    pub fn push(&mut self, data: Vec<u8>) {
        if self.pos >= self.buf.len() {
            // Nothing is waiting: keep the caller's buffer as ours (no copy).
            self.buf = data;
            self.pos = 0;
            self.scan = 0;
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            // `scan` may lag behind `pos` (a body was read past it).
            self.scan = self.scan.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(&data);
    }

    /// Bytes pushed and not yet returned as events.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether the parser waits for a new message's head (none has begun arriving, or
    /// one has only partly).
    pub fn at_head(&self) -> bool {
        self.state == State::Head
    }

    /// Whether a message is being read (its head is parsed, not its whole body).
    pub fn in_body(&self) -> bool {
        !matches!(self.state, State::Head | State::Failed)
    }

    /// For a client: the next response answers a `HEAD` request (it has no body).
    pub fn expect_head_response(&mut self, to_head: bool) {
        self.to_head = to_head;
    }

    /// Everything buffered and not parsed: for an upgrade, the bytes after the head.
    pub fn take_rest(&mut self) -> Vec<u8> {
        let rest = if self.pos == 0 {
            mem::take(&mut self.buf)
        } else {
            self.buf.split_off(self.pos)
        };
        self.buf.clear();
        self.pos = 0;
        self.scan = 0;
        rest
    }

    /// The trailer fields of the chunked body that just ended.
    pub fn take_trailers(&mut self) -> Vec<(String, String)> {
        mem::take(&mut self.trailers)
    }

    /// The peer closed its side. A body read until close ends here (`Ok(true)`); a
    /// message cut short is an error; between messages it is `Ok(false)`.
    pub fn finish(&mut self) -> Result<bool, Error> {
        match self.state {
            State::UntilClose => {
                self.state = State::Head;
                Ok(true)
            }
            State::Head if self.buffered() == 0 => Ok(false),
            State::Failed => Ok(false),
            _ => {
                self.state = State::Failed;
                Err(Error::bad(
                    "HPE_INVALID_EOF_STATE",
                    "the connection ended inside a message",
                ))
            }
        }
    }

    /// The next event, `Ok(None)` when more bytes are needed. After an error the
    /// parser stays failed.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        let result = self.step();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self) -> Result<Option<Event>, Error> {
        match self.state {
            State::Failed => Ok(None),
            State::Head => self.head(),
            State::Ending => {
                self.state = State::Head;
                Ok(Some(Event::End))
            }
            State::Length(0) => {
                self.state = State::Head;
                Ok(Some(Event::End))
            }
            State::Length(left) => {
                let n = (self.buffered() as u64).min(left) as usize;
                if n == 0 {
                    return Ok(None);
                }
                self.state = State::Length(left - n as u64);
                Ok(Some(Event::Body(self.take(n))))
            }
            State::UntilClose => {
                let n = self.buffered();
                if n == 0 {
                    return Ok(None);
                }
                Ok(Some(Event::Body(self.take(n))))
            }
            State::ChunkSize => self.chunk_size(),
            State::ChunkData(left) => {
                let n = (self.buffered() as u64).min(left) as usize;
                if n == 0 {
                    return Ok(None);
                }
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::ChunkDataEnd
                } else {
                    State::ChunkData(left)
                };
                Ok(Some(Event::Body(self.take(n))))
            }
            State::ChunkDataEnd => {
                if self.buffered() < 2 {
                    if self.buffered() == 1 && self.buf[self.pos] != b'\r' {
                        return Err(BAD_CHUNK_END);
                    }
                    return Ok(None);
                }
                if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                    return Err(BAD_CHUNK_END);
                }
                self.pos += 2;
                self.state = State::ChunkSize;
                self.step()
            }
            State::Trailers => self.trailer_section(),
        }
    }

    /// `n` bytes from the buffer, without copying when they are all of it.
    fn take(&mut self, n: usize) -> Vec<u8> {
        if self.pos == 0 && n == self.buf.len() {
            self.scan = 0;
            return mem::take(&mut self.buf);
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        out
    }

    /// Finds the end of a head (or trailer section) starting at `self.pos`: the index
    /// just past its empty line. Every LF must follow a CR.
    fn find_head_end(&mut self, limit: usize, too_large: Error) -> Result<Option<usize>, Error> {
        let start = self.pos;
        let from = self.scan.max(start);
        let window = &self.buf[from..];
        for (offset, &b) in window.iter().enumerate() {
            if b != b'\n' {
                continue;
            }
            let i = from + offset;
            if i == start || self.buf[i - 1] != b'\r' {
                return Err(BARE_LF);
            }
            // A preceding CRLF makes this the empty line that ends the head.
            if i >= start + 3 && self.buf[i - 2] == b'\n' {
                let end = i + 1;
                if end - start > limit {
                    return Err(too_large);
                }
                return Ok(Some(end));
            }
        }
        self.scan = self.buf.len();
        if self.buffered() > limit {
            return Err(too_large);
        }
        Ok(None)
    }

    fn head(&mut self) -> Result<Option<Event>, Error> {
        if self.kind == Kind::Request {
            // RFC 9112 2.2: ignore empty lines before a request line.
            while self.buf[self.pos..].starts_with(b"\r\n") {
                self.pos += 2;
            }
        }
        if self.buffered() == 0 {
            return Ok(None);
        }
        let Some(end) = self.find_head_end(self.limits.max_header_size, HEADER_OVERFLOW)? else {
            return Ok(None);
        };
        let head = self.parse_head(end)?;
        self.pos = end;
        self.scan = end;
        self.state = match head.framing {
            Framing::Empty => State::Ending,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Ok(Some(Event::Head(head)))
    }

    fn parse_head(&self, end: usize) -> Result<Head, Error> {
        let bytes = &self.buf[self.pos..end];
        let mut small = [httparse::EMPTY_HEADER; 64];
        match self.parse_with(bytes, &mut small) {
            Err(e) if e == TOO_MANY_HEADERS && self.limits.max_headers > small.len() => {
                let mut large = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
                self.parse_with(bytes, &mut large)
            }
            other => other,
        }
    }

    fn parse_with<'b>(
        &self,
        bytes: &'b [u8],
        headers: &mut [httparse::Header<'b>],
    ) -> Result<Head, Error> {
        let limit = self.limits.max_headers.min(headers.len());
        let headers = &mut headers[..limit];
        let mut text = String::with_capacity(bytes.len());
        let mut head = Head {
            text: String::new(),
            method: (0, 0),
            target: (0, 0),
            status: 0,
            version: Version::Http11,
            headers: Vec::new(),
            framing: Framing::Empty,
        };
        let (version, fields) = match self.kind {
            Kind::Request => {
                let mut req = httparse::Request::new(headers);
                match req.parse(bytes) {
                    Ok(httparse::Status::Complete(_)) => {}
                    Ok(httparse::Status::Partial) => {
                        return Err(Error::bad("HPE_INVALID_CONSTANT", "an incomplete head"));
                    }
                    Err(e) => return Err(head_error(e)),
                }
                head.method = push_text(&mut text, req.method.unwrap_or("").as_bytes());
                head.target = push_text(&mut text, req.path.unwrap_or("").as_bytes());
                (req.version, &*req.headers)
            }
            Kind::Response => {
                let mut res = httparse::Response::new(headers);
                match res.parse(bytes) {
                    Ok(httparse::Status::Complete(_)) => {}
                    Ok(httparse::Status::Partial) => {
                        return Err(Error::bad("HPE_INVALID_CONSTANT", "an incomplete head"));
                    }
                    Err(e) => return Err(head_error(e)),
                }
                head.status = res.code.unwrap_or(0);
                head.target = push_text(&mut text, res.reason.unwrap_or("").as_bytes());
                (res.version, &*res.headers)
            }
        };
        head.version = match version {
            Some(0) => Version::Http10,
            Some(1) => Version::Http11,
            _ => return Err(VERSION),
        };
        head.headers.reserve_exact(fields.len());
        for field in fields {
            let name = push_text(&mut text, field.name.as_bytes());
            let value = push_text(&mut text, field.value);
            head.headers.push((name, value));
        }
        head.text = text;
        head.framing = match self.kind {
            Kind::Request => {
                if head.version == Version::Http11 {
                    // RFC 9112 3.2: exactly one Host in an HTTP/1.1 request.
                    match head.header_values("host").count() {
                        1 => {}
                        0 => return Err(Error::bad("HPE_MISSING_HOST", "no Host header")),
                        _ => return Err(Error::bad("HPE_DUPLICATE_HOST", "two Host headers")),
                    }
                }
                request_framing(&head)?
            }
            Kind::Response => response_framing(&head, self.to_head)?,
        };
        Ok(head)
    }

    fn chunk_size(&mut self) -> Result<Option<Event>, Error> {
        let line_end = self.buf[self.pos..]
            .iter()
            .take(MAX_CHUNK_LINE + 1)
            .position(|&b| b == b'\n');
        let Some(offset) = line_end else {
            if self.buffered() > MAX_CHUNK_LINE {
                return Err(BAD_CHUNK_SIZE);
            }
            return Ok(None);
        };
        let line = &self.buf[self.pos..self.pos + offset];
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(BARE_LF);
        };
        let size = parse_chunk_size(line)?;
        self.pos += offset + 1;
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::ChunkData(size)
        };
        self.step()
    }

    fn trailer_section(&mut self) -> Result<Option<Event>, Error> {
        if self.buffered() < 2 {
            if self.buffered() == 1 && self.buf[self.pos] == b'\n' {
                return Err(BARE_LF);
            }
            return Ok(None);
        }
        if self.buf[self.pos..].starts_with(b"\r\n") {
            self.pos += 2;
            self.state = State::Head;
            return Ok(Some(Event::End));
        }
        let Some(end) = self.find_head_end(self.limits.max_header_size, HEADER_OVERFLOW)? else {
            return Ok(None);
        };
        let mut fields = vec![httparse::EMPTY_HEADER; self.limits.max_headers.min(256)];
        match httparse::parse_headers(&self.buf[self.pos..end], &mut fields) {
            Ok(httparse::Status::Complete((_, parsed))) => {
                let mut text = String::new();
                self.trailers = parsed
                    .iter()
                    .map(|f| {
                        text.clear();
                        push_text(&mut text, f.value);
                        (f.name.to_string(), text.clone())
                    })
                    .collect();
            }
            Ok(httparse::Status::Partial) => {
                return Err(Error::bad("HPE_INVALID_CONSTANT", "incomplete trailers"));
            }
            Err(e) => return Err(head_error(e)),
        }
        self.pos = end;
        self.scan = end;
        self.state = State::Head;
        Ok(Some(Event::End))
    }
}

const VERSION: Error = Error::new(
    505,
    "HPE_INVALID_VERSION",
    "an HTTP version other than 1.0 or 1.1",
);
const BAD_CHUNK_SIZE: Error = Error::bad("HPE_INVALID_CHUNK_SIZE", "an invalid chunk size");
const BAD_CHUNK_END: Error = Error::bad("HPE_STRICT", "chunk data not followed by CRLF");

fn head_error(e: httparse::Error) -> Error {
    match e {
        httparse::Error::HeaderName => Error::bad(
            "HPE_INVALID_HEADER_TOKEN",
            "an invalid header name (whitespace before the colon, obs-fold, a bad byte)",
        ),
        httparse::Error::HeaderValue => {
            Error::bad("HPE_INVALID_HEADER_TOKEN", "an invalid header value")
        }
        httparse::Error::NewLine => Error::bad("HPE_LF_EXPECTED", "an invalid line ending"),
        httparse::Error::Status => Error::bad("HPE_INVALID_STATUS", "an invalid status line"),
        httparse::Error::Token => Error::bad(
            "HPE_INVALID_METHOD",
            "an invalid method, target or request line",
        ),
        httparse::Error::TooManyHeaders => TOO_MANY_HEADERS,
        httparse::Error::Version => VERSION,
    }
}

/// A chunk-size line without its CRLF: 1 to 16 hex digits, optional whitespace, then
/// optional extensions (`;name=value`), which are ignored but must hold no control
/// characters.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(BAD_CHUNK_SIZE);
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
        size = size.checked_mul(16).ok_or(BAD_CHUNK_SIZE)? | d;
    }
    let rest = &line[digits..];
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    if rest.is_empty() {
        return Ok(size);
    }
    if rest[0] != b';' || rest.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(BAD_CHUNK_SIZE);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        Parser::new(Kind::Request, Limits::default())
    }

    /// Every event from `input` pushed at once, or the error.
    fn events(input: &[u8]) -> Result<Vec<Event>, Error> {
        let mut p = parser();
        p.push(input.to_vec());
        let mut out = Vec::new();
        while let Some(ev) = p.next_event()? {
            out.push(ev);
        }
        Ok(out)
    }

    /// The same, one byte at a time: the result must not depend on how bytes arrive.
    fn events_bytewise(input: &[u8]) -> Result<Vec<Event>, Error> {
        let mut p = parser();
        let mut out = Vec::new();
        for &b in input {
            p.push(vec![b]);
            while let Some(ev) = p.next_event()? {
                out.push(ev);
            }
        }
        Ok(out)
    }

    /// Heads and bodies (body pieces joined) of every message.
    fn messages(events: Vec<Event>) -> Vec<(String, String, Vec<u8>)> {
        let mut out: Vec<(String, String, Vec<u8>)> = Vec::new();
        for ev in events {
            match ev {
                Event::Head(h) => out.push((h.method().into(), h.target().into(), Vec::new())),
                Event::Body(b) => out.last_mut().unwrap().2.extend(b),
                Event::End => {}
            }
        }
        out
    }

    fn rejects(input: &str, status: u16) {
        for result in [events(input.as_bytes()), events_bytewise(input.as_bytes())] {
            match result {
                Err(e) => assert_eq!(e.status(), status, "{input:?}: {e}"),
                Ok(evs) => panic!("{input:?} was accepted: {evs:?}"),
            }
        }
    }

    #[test]
    fn a_simple_request() {
        let evs = events(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: Yes\r\n\r\n").unwrap();
        assert_eq!(evs.len(), 2);
        let Event::Head(h) = &evs[0] else { panic!() };
        assert_eq!(h.method(), "GET");
        assert_eq!(h.target(), "/a?b=1");
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(
            h.headers().collect::<Vec<_>>(),
            [("Host", "x"), ("X-Mixed-Case", "Yes")]
        );
        assert_eq!(h.header("x-mixed-case"), Some("Yes"));
        assert!(h.keep_alive());
        assert_eq!(evs[1], Event::End);
    }

    #[test]
    fn bodies_by_length_and_chunked_whole_or_bytewise() {
        let input = b"POST /l HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n";
        let want = vec![
            ("POST".to_string(), "/l".to_string(), b"hello".to_vec()),
            (
                "POST".to_string(),
                "/c".to_string(),
                b"abc0123456789abcdef".to_vec(),
            ),
            ("GET".to_string(), "/n".to_string(), Vec::new()),
        ];
        assert_eq!(messages(events(input).unwrap()), want);
        assert_eq!(messages(events_bytewise(input).unwrap()), want);
    }

    #[test]
    fn trailers_are_kept() {
        let mut p = parser();
        p.push(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n\r\n"
                .to_vec(),
        );
        assert!(matches!(p.next_event(), Ok(Some(Event::Head(_)))));
        assert_eq!(p.next_event(), Ok(Some(Event::End)));
        assert_eq!(
            p.take_trailers(),
            [("A".into(), "1".into()), ("B".into(), "2".into())]
        );
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &str| match &events(s.as_bytes()).unwrap()[0] {
            Event::Head(h) => h.keep_alive(),
            _ => panic!(),
        };
        assert!(ka("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn smuggling_attempts_are_refused() {
        // Both framings.
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        );
        // Differing lengths, in two fields or one list.
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
        );
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd",
            400,
        );
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            400,
        );
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
            400,
        );
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
            400,
        );
        // A final coding that is not chunked; chunked twice; TE in HTTP/1.0.
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
        );
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            400,
        );
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        );
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            400,
        );
        rejects(
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        );
        // Bad chunk sizes.
        for size in ["zz", "-1", " 1", "0x1", "11111111111111111", "1\x01", ""] {
            rejects(
                &format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\na\r\n0\r\n\r\n"
                ),
                400,
            );
        }
        // Chunk data longer than its size.
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
            400,
        );
        // obs-fold, whitespace before the colon, bare LF in the head and in a chunk line.
        rejects("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", 400);
        rejects("GET / HTTP/1.1\r\nHost: x\r\nA : b\r\n\r\n", 400);
        rejects("GET / HTTP/1.1\nHost: x\r\n\r\n", 400);
        rejects("GET / HTTP/1.1\r\nHost: x\n\r\n", 400);
        rejects("GET / HTTP/1.1\r\nHost: x\r\n\n", 400);
        rejects(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n",
            400,
        );
        // A bare CR, a missing Host, two Hosts, a bad version.
        rejects("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400);
        rejects("GET / HTTP/1.1\r\n\r\n", 400);
        rejects("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
        rejects("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
        rejects("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    }

    #[test]
    fn identical_duplicate_lengths_are_one_length() {
        let evs = events(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        )
        .unwrap();
        assert_eq!(messages(evs)[0].2, b"ok");
    }

    #[test]
    fn the_head_size_limit_is_431_before_the_head_ends() {
        let mut p = Parser::new(
            Kind::Request,
            Limits {
                max_header_size: 100,
                max_headers: 10,
            },
        );
        p.push(b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec());
        assert_eq!(p.next_event(), Ok(None));
        p.push(vec![b'a'; 100]);
        assert_eq!(p.next_event().unwrap_err().status(), 431);
        // Too many fields, within the size.
        let mut p = Parser::new(
            Kind::Request,
            Limits {
                max_header_size: 1000,
                max_headers: 3,
            },
        );
        p.push(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".to_vec());
        assert_eq!(p.next_event().unwrap_err().status(), 431);
        // Above the stack array's 64 fields, below the limit.
        let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..100 {
            many.push_str(&format!("H{i}: {i}\r\n"));
        }
        many.push_str("\r\n");
        let Event::Head(h) = &events(many.as_bytes()).unwrap()[0] else {
            panic!()
        };
        assert_eq!(h.header_count(), 101);
        assert_eq!(h.header("h99"), Some("99"));
    }

    #[test]
    fn non_utf8_values_are_latin1() {
        let Event::Head(h) =
            &events(b"GET / HTTP/1.1\r\nHost: x\r\nA: caf\xe9\r\n\r\n").unwrap()[0]
        else {
            panic!()
        };
        assert_eq!(h.header("a"), Some("caf\u{e9}"));
    }

    #[test]
    fn responses_frame_by_status_method_and_close() {
        let read = |input: &[u8], to_head: bool, eof: bool| {
            let mut p = Parser::new(Kind::Response, Limits::default());
            p.expect_head_response(to_head);
            p.push(input.to_vec());
            let mut out = Vec::new();
            while let Some(ev) = p.next_event().unwrap() {
                out.push(ev);
            }
            if eof && p.finish().unwrap() {
                out.push(Event::End);
            }
            out
        };
        let evs = read(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            true,
            false,
        );
        assert_eq!(evs.len(), 2);
        let evs = read(b"HTTP/1.0 200 OK\r\n\r\nuntil close", false, true);
        assert_eq!(evs[1], Event::Body(b"until close".to_vec()));
        assert_eq!(evs[2], Event::End);
        let evs = read(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            false,
            false,
        );
        assert_eq!(evs.len(), 4);
    }

    /// Random bytes, and random mutations of valid requests, in random pieces: the
    /// parser never panics, and what it holds stays under its limits.
    #[test]
    fn hostile_input_never_panics_and_stays_bounded() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        let alphabet =
            b"\r\n :;,0123456789abcdefABCDEF-\t\x00\x7fHTTP/1.GETPOSTchunkedContent-Length";
        let limits = Limits {
            max_header_size: 512,
            max_headers: 8,
        };
        for round in 0..2000 {
            let mut input = if round % 2 == 0 {
                (0..rand() % 2000)
                    .map(|_| alphabet[(rand() % alphabet.len() as u64) as usize])
                    .collect::<Vec<u8>>()
            } else {
                let mut v = valid.to_vec();
                for _ in 0..1 + rand() % 4 {
                    let at = (rand() % v.len() as u64) as usize;
                    v[at] = alphabet[(rand() % alphabet.len() as u64) as usize];
                }
                v
            };
            input.extend(std::iter::repeat_n(b'x', (rand() % 3) as usize * 300));
            // Responses too (a client reads what a hostile server sends).
            let kind = if round % 4 == 3 {
                Kind::Response
            } else {
                Kind::Request
            };
            if kind == Kind::Response {
                input.splice(
                    0..0,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
                        .iter()
                        .copied(),
                );
            }
            let mut p = Parser::new(kind, limits);
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + (rand() % 64) as usize;
                let (piece, more) = rest.split_at(n.min(rest.len()));
                rest = more;
                p.push(piece.to_vec());
                loop {
                    match p.next_event() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            assert!([400, 431, 505].contains(&e.status()), "{e}");
                            assert!(p.next_event() == Ok(None), "a failed parser stays failed");
                            break;
                        }
                    }
                }
                if p.at_head() {
                    assert!(p.buffered() <= limits.max_header_size + 64);
                }
                if p.state == State::Failed {
                    break;
                }
            }
            let _ = p.finish();
        }
    }

    #[test]
    fn the_rest_after_a_head_is_handed_over() {
        let mut p = parser();
        p.push(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
                .to_vec(),
        );
        let Ok(Some(Event::Head(h))) = p.next_event() else {
            panic!()
        };
        assert!(h.is_upgrade());
        assert_eq!(p.take_rest(), b"\x81\x05hello");
    }
}
