//! What a server writes: the response head and the body's framing, as pure functions
//! of the response's state (so they are unit-tested without a socket). The
//! [`Response`](super::Response) handle writes through them.

use std::fmt::Write as _;

use super::parse::Version;

/// The reason phrase of a status code (RFC 9110's, and Node's `STATUS_CODES`).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a Teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "unknown",
    }
}

/// Whether `name` is a header name (an RFC 9110 token).
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be sent as a header value: no CR, LF or other control byte
/// but HTAB (a CR or LF would let a value start a new header: response splitting).
pub fn valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// How the body being written is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Out {
    /// No body may be sent (`HEAD`, 1xx, 204, 304): writes are dropped.
    NoBody,
    /// `Content-Length`: this many bytes are still due.
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0 without a length).
    Close,
}

/// The response's state, shared by every handle of it.
pub(crate) struct ResState {
    pub(crate) status: u16,
    pub(crate) reason: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) head_sent: bool,
    pub(crate) finished: bool,
    pub(crate) continue_sent: bool,
    pub(crate) out: Out,
    /// The request's version; the response is `HTTP/1.1` either way, as Node's.
    pub(crate) version: Version,
    pub(crate) to_head: bool,
    /// The connection closes once this response is written.
    pub(crate) close_after: bool,
    /// `Keep-Alive: timeout=N`, in seconds.
    pub(crate) keep_alive_secs: u64,
    /// The `Content-Length` was not honoured: logged once.
    pub(crate) overrun_logged: bool,
    /// The last write found the socket's queue past its high-water mark: a `drain`
    /// event will come.
    pub(crate) backed_up: bool,
}

impl ResState {
    pub(crate) fn new(
        version: Version,
        to_head: bool,
        keep_alive: bool,
        keep_alive_secs: u64,
    ) -> Self {
        Self {
            status: 200,
            reason: None,
            headers: Vec::new(),
            head_sent: false,
            finished: false,
            continue_sent: false,
            out: Out::Chunked,
            version,
            to_head,
            // The server lets the connection live after this response only if the
            // request asked for keep-alive and no limit ends it.
            close_after: !keep_alive,
            keep_alive_secs,
            overrun_logged: false,
            backed_up: false,
        }
    }

    /// The first value of header `name` (any case) set so far.
    pub(crate) fn find(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Writes the head into `out` and fixes the framing. `known` is the whole body's
    /// length when it is known (`end` with data, before any `write`).
    pub(crate) fn head_into(&mut self, out: &mut Vec<u8>, known: Option<usize>) {
        let status = self.status;
        let no_body_status = status < 200 || status == 204 || status == 304;
        let user_length = self
            .find("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let user_te = self.find("transfer-encoding").map(|v| {
            v.split(',')
                .next_back()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
        });
        let mut add_length = None;
        let mut add_chunked = false;
        let framing = if no_body_status {
            Out::NoBody
        } else if let Some(chunked) = user_te {
            if chunked { Out::Chunked } else { Out::Close }
        } else if let Some(n) = user_length {
            Out::Length(n)
        } else if let Some(n) = known {
            add_length = Some(n);
            Out::Length(n as u64)
        } else if self.to_head {
            // No length to tell; a HEAD response has no body anyway.
            Out::NoBody
        } else if self.version == Version::Http11 {
            add_chunked = true;
            Out::Chunked
        } else {
            Out::Close
        };
        self.out = if self.to_head { Out::NoBody } else { framing };
        if framing == Out::Close {
            self.close_after = true;
        }
        let user_connection = self
            .find("connection")
            .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        if user_connection == Some(true) {
            self.close_after = true;
        }

        out.reserve(
            128 + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>(),
        );
        out.extend_from_slice(b"HTTP/1.1 ");
        let _ = write!(Buf(out), "{status} ");
        out.extend_from_slice(
            self.reason
                .as_deref()
                .unwrap_or(reason_phrase(status))
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if self.find("date").is_none() {
            out.extend_from_slice(b"Date: ");
            super::date::append_now(out);
            out.extend_from_slice(b"\r\n");
        }
        if user_connection.is_none() {
            if self.close_after {
                out.extend_from_slice(b"Connection: close\r\n");
            } else {
                out.extend_from_slice(b"Connection: keep-alive\r\n");
                if self.keep_alive_secs > 0 {
                    let _ = write!(Buf(out), "Keep-Alive: timeout={}\r\n", self.keep_alive_secs);
                }
            }
        }
        if let Some(n) = add_length {
            let _ = write!(Buf(out), "Content-Length: {n}\r\n");
        }
        if add_chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.head_sent = true;
    }

    /// How `len` body bytes are framed: what goes before them, how many of them go
    /// out, what follows. Bytes past a `Content-Length` are dropped (and logged once):
    /// the client would read them as the next response.
    pub(crate) fn frame(&mut self, len: usize) -> (Vec<u8>, usize, &'static [u8]) {
        if len == 0 {
            return (Vec::new(), 0, b"");
        }
        match self.out {
            Out::NoBody => (Vec::new(), 0, b""),
            Out::Close => (Vec::new(), len, b""),
            Out::Length(left) => {
                let n = (len as u64).min(left) as usize;
                self.out = Out::Length(left - n as u64);
                if n < len && !self.overrun_logged {
                    self.overrun_logged = true;
                    eprintln!(
                        "http: a response wrote more than its Content-Length; {} bytes dropped",
                        len - n
                    );
                }
                (Vec::new(), n, b"")
            }
            Out::Chunked => (format!("{len:x}\r\n").into_bytes(), len, b"\r\n"),
        }
    }

    /// Appends `data` framed for the body to `out`.
    #[cfg(test)]
    pub(crate) fn body_into(&mut self, out: &mut Vec<u8>, data: &[u8]) {
        let (prefix, n, suffix) = self.frame(data.len());
        out.extend_from_slice(&prefix);
        out.extend_from_slice(&data[..n]);
        out.extend_from_slice(suffix);
    }

    /// Appends what ends the body (the last chunk) to `out`. A body shorter than its
    /// `Content-Length` cannot be ended: the connection must close instead.
    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) {
        match self.out {
            Out::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
            Out::Length(left) if left > 0 => {
                eprintln!(
                    "http: a response ended {left} bytes short of its Content-Length; closing the connection"
                );
                self.close_after = true;
            }
            _ => {}
        }
        self.finished = true;
    }
}

/// `fmt::Write` into a byte vector.
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `status` if it is a status code (100 to 999), else 500 (logged).
pub(crate) fn checked_status(status: u16) -> u16 {
    if (100..=999).contains(&status) {
        status
    } else {
        eprintln!("http: invalid status code {status}; 500 sent instead");
        500
    }
}

/// Whether `name: value` may be sent, and why not.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !valid_header_name(name) {
        return Err(format!("invalid header name {name:?}"));
    }
    if !valid_header_value(value) {
        return Err(format!(
            "invalid character in the value of header {name} (CR, LF and control bytes are refused)"
        ));
    }
    Ok(())
}

/// What the SDK writes for a request it refuses (Node's `clientError` default):
/// `HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n`, with the error's status.
pub fn error_response(status: u16) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\n\r\n",
        reason_phrase(status)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(st: &mut ResState, known: Option<usize>) -> String {
        let mut out = Vec::new();
        st.head_into(&mut out, known);
        let text = String::from_utf8(out).unwrap();
        // The date changes: blank it.
        text.lines()
            .map(|l| {
                if l.starts_with("Date: ") {
                    "Date: D"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_known_length_is_sent_and_keep_alive_announced() {
        let mut st = ResState::new(Version::Http11, false, true, 5);
        st.headers
            .push(("Content-Type".into(), "text/plain".into()));
        assert_eq!(
            head(&mut st, Some(12)),
            "HTTP/1.1 200 OK\nContent-Type: text/plain\nDate: D\nConnection: keep-alive\nKeep-Alive: timeout=5\nContent-Length: 12\n"
        );
        assert_eq!(st.out, Out::Length(12));
    }

    #[test]
    fn an_unknown_length_is_chunked_and_ends_with_the_last_chunk() {
        let mut st = ResState::new(Version::Http11, false, true, 5);
        let h = head(&mut st, None);
        assert!(h.contains("Transfer-Encoding: chunked"), "{h}");
        let mut out = Vec::new();
        st.body_into(&mut out, b"hello");
        st.body_into(&mut out, b"");
        st.finish_into(&mut out);
        assert_eq!(out, b"5\r\nhello\r\n0\r\n\r\n");
        assert!(!st.close_after);
    }

    #[test]
    fn http10_without_a_length_closes() {
        let mut st = ResState::new(Version::Http10, false, false, 5);
        let h = head(&mut st, None);
        assert!(
            h.contains("Connection: close") && !h.contains("chunked"),
            "{h}"
        );
        assert_eq!(st.out, Out::Close);
        assert!(st.close_after);
        // With keep-alive asked for but no length: close-delimited, so close.
        let mut st = ResState::new(Version::Http10, false, true, 5);
        let h = head(&mut st, None);
        assert!(h.contains("Connection: close"), "{h}");
        let mut st = ResState::new(Version::Http10, false, true, 5);
        let h = head(&mut st, Some(3));
        assert!(
            h.contains("Connection: keep-alive") && h.contains("Content-Length: 3"),
            "{h}"
        );
    }

    #[test]
    fn head_and_204_have_no_body() {
        let mut st = ResState::new(Version::Http11, true, true, 5);
        let h = head(&mut st, Some(12));
        assert!(h.contains("Content-Length: 12"), "{h}");
        let mut out = Vec::new();
        st.body_into(&mut out, b"hello world!");
        st.finish_into(&mut out);
        assert!(out.is_empty());
        let mut st = ResState::new(Version::Http11, false, true, 5);
        st.status = 204;
        let h = head(&mut st, Some(0));
        assert!(
            !h.contains("Content-Length") && !h.contains("chunked"),
            "{h}"
        );
    }

    #[test]
    fn a_content_length_is_honoured() {
        let mut st = ResState::new(Version::Http11, false, true, 5);
        st.headers.push(("Content-Length".into(), "4".into()));
        head(&mut st, None);
        let mut out = Vec::new();
        st.body_into(&mut out, b"abcdef");
        assert_eq!(out, b"abcd");
        let mut st = ResState::new(Version::Http11, false, true, 5);
        st.headers.push(("Content-Length".into(), "4".into()));
        head(&mut st, None);
        let mut out = Vec::new();
        st.body_into(&mut out, b"ab");
        st.finish_into(&mut out);
        assert!(st.close_after, "a short body closes the connection");
    }

    #[test]
    fn connection_close_from_the_handler_is_honoured() {
        let mut st = ResState::new(Version::Http11, false, true, 5);
        st.headers.push(("Connection".into(), "close".into()));
        let h = head(&mut st, Some(0));
        assert!(st.close_after);
        assert_eq!(h.matches("Connection").count(), 1, "{h}");
    }

    #[test]
    fn header_checks() {
        assert!(valid_header_name("X-Ok"));
        assert!(!valid_header_name("X Bad"));
        assert!(!valid_header_name(""));
        assert!(valid_header_value("a\tb c"));
        assert!(!valid_header_value("a\r\nSet-Cookie: x"));
        assert!(!valid_header_value("a\nb"));
    }
}
