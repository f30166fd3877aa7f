//! RESP2 as Redis reads and writes it: requests in multibulk form
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what client libraries send) or inline form
//! (`GET k\r\n`, what `telnet`/`nc` users type), and the reply encodings.
//!
//! The [`Parser`] is sans-I/O and resumable: it is handed one connection's unread bytes,
//! starting at the first byte of the command being read, and remembers how far it got.
//! A command that arrives a byte at a time is therefore scanned once in total, not once
//! per byte, so a slow or hostile client costs linear work. It never copies a multibulk
//! argument: arguments are byte ranges into the connection's buffer.
//!
//! Where Redis is lenient (it does not check that a bulk's trailing two bytes are
//! `\r\n`; it reads the `*`/`$` lines up to `\r`) this parser is lenient the same way, so
//! a request gets the reply it would get from Redis.

use memchr::memchr;

use crate::memory;

/// Redis's reply when it is out of memory (`shared.oomerr`).
pub const OOM: &[u8] = b"OOM command not allowed when used memory > 'maxmemory'.";

/// Argument lists and inline buffers larger than these are given back to the heap after
/// their command, so a connection keeps no more than an ordinary command needs.
const KEEP_ARGS: usize = 1024;
const KEEP_INLINE: usize = 4096;

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline command waiting for its newline,
/// and the longest `*N` / `$N` line.
pub const INLINE_MAX: usize = 64 * 1024;

/// A request Redis refuses with a protocol error, or one this instance has no memory to
/// read; the connection is closed after the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    OutOfMemory,
    TooBigInline,
    UnbalancedQuotes,
    TooBigMultibulkCount,
    InvalidMultibulkLength,
    TooBigBulkCount,
    ExpectedDollar(u8),
    InvalidBulkLength,
}

impl ProtocolError {
    /// Redis's error reply, without the leading `-` and trailing CRLF.
    pub fn reply(self) -> Vec<u8> {
        let text = match self {
            ProtocolError::OutOfMemory => return OOM.to_vec(),
            ProtocolError::TooBigInline => "too big inline request",
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request",
            ProtocolError::TooBigMultibulkCount => "too big mbulk count string",
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length",
            ProtocolError::TooBigBulkCount => "too big bulk count string",
            ProtocolError::InvalidBulkLength => "invalid bulk length",
            ProtocolError::ExpectedDollar(got) => {
                let mut reply = b"ERR Protocol error: expected '$', got '".to_vec();
                reply.push(got);
                reply.push(b'\'');
                return reply;
            }
        };
        format!("ERR Protocol error: {text}").into_bytes()
    }
}

/// What [`Parser::parse`] found at the start of the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command of this many bytes; [`Parser::args`] gives its arguments.
    Command(usize),
    /// A command with no arguments (`*0\r\n`, a blank line), this many bytes long: Redis
    /// skips it without a reply.
    Empty(usize),
    /// More bytes are needed.
    Incomplete,
    /// A protocol error: reply with it, then close.
    Error(ProtocolError),
}

/// Where the parser stopped in the command being read. Offsets are from the command's
/// first byte, so the caller may move the buffer's unread bytes to its front.
#[derive(Clone, Copy, Debug, Default)]
enum State {
    /// Nothing of the next command read yet.
    #[default]
    Start,
    /// An inline command; the first `scanned` bytes hold no newline.
    Inline { scanned: usize },
    /// The `*N` line; bytes before `scanned` hold no `\r`.
    Count { scanned: usize },
    /// `left` arguments to go; the next one's `$N` line starts at `at`.
    Header {
        left: usize,
        at: usize,
        scanned: usize,
    },
    /// `left` arguments to go; the current one's `len` bytes start at `at`.
    Body { left: usize, at: usize, len: usize },
}

/// A resumable RESP2 request parser for one connection.
#[derive(Debug)]
pub struct Parser {
    /// The largest request accepted, in bytes as received (the handler's `--max-request`).
    max_request: usize,
    state: State,
    /// The current command's arguments: ranges of the command's bytes (multibulk), or of
    /// `inline` (an inline command, whose quoting and escapes are resolved). 32-bit
    /// offsets: a request is at most `max_request` (< 4 GiB) bytes, and an argument
    /// costs 8 bytes here for at least 6 bytes received.
    ranges: Vec<(u32, u32)>,
    inline: Vec<u8>,
    from_inline: bool,
}

/// The arguments of a parsed command.
pub struct Args<'a> {
    base: &'a [u8],
    ranges: &'a [(u32, u32)],
}

impl<'a> Args<'a> {
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Argument `i`; the command name is argument 0.
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (from, to) = self.ranges[i];
        &self.base[from as usize..to as usize]
    }

    /// Arguments `from..`.
    pub fn from(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let base = self.base;
        self.ranges[from..]
            .iter()
            .map(move |&(a, b)| &base[a as usize..b as usize])
    }
}

impl Parser {
    /// A parser for requests of at most `max_request` bytes (at most `u32::MAX`).
    pub fn new(max_request: usize) -> Self {
        Parser {
            max_request: max_request.min(u32::MAX as usize),
            state: State::Start,
            ranges: Vec::new(),
            inline: Vec::new(),
            from_inline: false,
        }
    }

    /// How many bytes, from the command's first byte, the command being read is known
    /// to need: the end of the argument it is reading. The caller can make room for
    /// them at once rather than grow its buffer step by step.
    pub fn wanted(&self) -> usize {
        match self.state {
            State::Body { at, len, .. } => at + len + 2,
            _ => 0,
        }
    }

    /// The arguments of the command [`Parser::parse`] just returned, given the same bytes.
    pub fn args<'a>(&'a self, command: &'a [u8]) -> Args<'a> {
        Args {
            base: if self.from_inline {
                &self.inline
            } else {
                command
            },
            ranges: &self.ranges,
        }
    }

    /// Reads the command at the start of `buf` (the connection's unread bytes, from the
    /// first byte of the command; on `Incomplete`, the next call must pass the same bytes
    /// and more).
    pub fn parse(&mut self, buf: &[u8]) -> Parsed {
        loop {
            match self.state {
                State::Start => {
                    let Some(&first) = buf.first() else {
                        return Parsed::Incomplete;
                    };
                    self.ranges.clear();
                    if self.ranges.capacity() > KEEP_ARGS {
                        self.ranges = Vec::new();
                    }
                    if self.inline.capacity() > KEEP_INLINE {
                        self.inline = Vec::new();
                    }
                    self.from_inline = false;
                    self.state = if first == b'*' {
                        State::Count { scanned: 1 }
                    } else {
                        State::Inline { scanned: 0 }
                    };
                }
                State::Inline { scanned } => return self.inline(buf, scanned),
                State::Count { scanned } => {
                    let cr = match find_cr(buf, scanned) {
                        Ok(cr) => cr,
                        Err(scanned) => {
                            if buf.len() > INLINE_MAX {
                                return self.fail(ProtocolError::TooBigMultibulkCount);
                            }
                            self.state = State::Count { scanned };
                            return Parsed::Incomplete;
                        }
                    };
                    let count = match string2ll(&buf[1..cr]) {
                        Some(n) if n <= i64::from(i32::MAX) => n,
                        _ => return self.fail(ProtocolError::InvalidMultibulkLength),
                    };
                    if count <= 0 {
                        self.state = State::Start;
                        return Parsed::Empty(cr + 2);
                    }
                    // Each argument takes at least 6 bytes (`$0\r\n\r\n`): more than fit
                    // in the request limit cannot be a request we accept.
                    let count = count as usize;
                    if count > self.max_request / 6 + 1 {
                        return self.fail(ProtocolError::InvalidMultibulkLength);
                    }
                    self.state = State::Header {
                        left: count,
                        at: cr + 2,
                        scanned: cr + 2,
                    };
                }
                State::Header { left, at, scanned } => {
                    let cr = match find_cr(buf, scanned.max(at)) {
                        Ok(cr) => cr,
                        Err(scanned) => {
                            if buf.len() - at > INLINE_MAX {
                                return self.fail(ProtocolError::TooBigBulkCount);
                            }
                            self.state = State::Header { left, at, scanned };
                            return Parsed::Incomplete;
                        }
                    };
                    if buf[at] != b'$' {
                        return self.fail(ProtocolError::ExpectedDollar(buf[at]));
                    }
                    let body = cr + 2;
                    let len = match string2ll(&buf[at + 1..cr]) {
                        Some(n) if n >= 0 && (n as u64) <= self.max_request as u64 => n as usize,
                        _ => return self.fail(ProtocolError::InvalidBulkLength),
                    };
                    // The request limit covers the whole command as received.
                    if body + len + 2 > self.max_request {
                        return self.fail(ProtocolError::InvalidBulkLength);
                    }
                    self.state = State::Body {
                        left,
                        at: body,
                        len,
                    };
                }
                State::Body { left, at, len } => {
                    if buf.len() < at + len + 2 {
                        return Parsed::Incomplete;
                    }
                    if self.ranges.len() == self.ranges.capacity() {
                        let more = self.ranges.len().max(4).min(left);
                        let ranges = &mut self.ranges;
                        if memory::fallible(|| ranges.try_reserve_exact(more)).is_err() {
                            return self.fail(ProtocolError::OutOfMemory);
                        }
                    }
                    // Offsets fit: the whole command is at most `max_request` bytes.
                    self.ranges.push((at as u32, (at + len) as u32));
                    let next = at + len + 2;
                    if left == 1 {
                        self.state = State::Start;
                        return Parsed::Command(next);
                    }
                    self.state = State::Header {
                        left: left - 1,
                        at: next,
                        scanned: next,
                    };
                }
            }
        }
    }

    fn fail(&mut self, error: ProtocolError) -> Parsed {
        self.state = State::Start;
        self.ranges.clear();
        Parsed::Error(error)
    }

    /// An inline command. Unlike Redis, which takes a longer line if it happens to
    /// arrive whole, a line is at most 64 KiB (or `max_request`) however it arrives:
    /// its arguments cost several times its length to hold.
    fn inline(&mut self, buf: &[u8], scanned: usize) -> Parsed {
        let limit = INLINE_MAX.min(self.max_request);
        let Some(nl) = memchr(b'\n', &buf[scanned..limit.min(buf.len())]).map(|i| scanned + i)
        else {
            if buf.len() > limit {
                return self.fail(ProtocolError::TooBigInline);
            }
            self.state = State::Inline { scanned: buf.len() };
            return Parsed::Incomplete;
        };
        let mut line = &buf[..nl];
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        self.state = State::Start;
        self.inline.clear();
        self.ranges.clear();
        if split_args(line, &mut self.inline, &mut self.ranges).is_err() {
            return self.fail(ProtocolError::UnbalancedQuotes);
        }
        if self.ranges.is_empty() {
            return Parsed::Empty(nl + 1);
        }
        self.from_inline = true;
        Parsed::Command(nl + 1)
    }
}

/// The first `\r` at or after `from` that has a byte after it (Redis reads `*N\r` and
/// `$N\r` lines and skips the byte after the `\r`). `Err(resume)`: none yet; search
/// again from `resume`.
fn find_cr(buf: &[u8], from: usize) -> Result<usize, usize> {
    match memchr(b'\r', &buf[from.min(buf.len())..]) {
        Some(i) if from + i + 1 < buf.len() => Ok(from + i),
        Some(i) => Err(from + i),
        None => Err(buf.len()),
    }
}

/// Redis's `string2ll`: a decimal 64-bit integer, strictly (no sign `+`, no leading
/// zeros or spaces, at most 20 characters).
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis's `sdssplitargs`: splits an inline command into arguments, with `"..."`
/// (C escapes and `\xHH`) and `'...'` (only `\'`) quoting. A closing quote must be
/// followed by a space or the end. Like Redis (which reads the line as a C string), a
/// NUL byte ends the line.
fn split_args(line: &[u8], out: &mut Vec<u8>, ranges: &mut Vec<(u32, u32)>) -> Result<(), ()> {
    let line = &line[..memchr(0, line).unwrap_or(line.len())];
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(());
        }
        let start = out.len();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && hex(at(p + 2)).is_some()
                    && hex(at(p + 3)).is_some()
                {
                    out.push(hex(at(p + 2)).unwrap_or(0) * 16 + hex(at(p + 3)).unwrap_or(0));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    out.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(());
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(());
                } else {
                    out.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(());
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(());
                } else {
                    out.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => out.push(other),
                }
            }
            p += 1;
        }
        // A line is at most 64 KiB.
        ranges.push((start as u32, out.len() as u32));
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

// Replies.

/// `+text`.
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-text`; CR and LF become spaces, as Redis makes them, so the reply stays one line.
pub fn error(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'-');
    out.extend(
        text.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `:n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `$len` and the bytes.
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    decimal(out, data.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The null bulk string, `$-1`.
pub fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `*n`, followed by `n` replies.
pub fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    decimal(out, n as i64);
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, as Redis writes integers.
pub fn decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}
