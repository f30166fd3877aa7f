//! [`Response`]: the handle a handler writes a response through, Node's
//! `http.ServerResponse`. What it writes is framed by [`super::encode`]; when it ends,
//! the server is told to move the connection on ([`super::exchange::schedule`]).

use std::rc::Rc;

use super::encode::{ResState, check_header, checked_status, valid_header_value};
use super::exchange::{Exchange, schedule};
use crate::net::Socket;

/// The response to one request: Node's `http.ServerResponse`.
///
/// A cheap handle: clone it to answer later (from a timer, after the body arrived).
/// The head is sent with the first `write` or `end`, so headers may be set until
/// then. A body whose whole length is known when the head goes out (`end_with` before
/// any `write`) gets a `Content-Length`; otherwise it is chunked (close-delimited for
/// an HTTP/1.0 client).
#[derive(Clone)]
pub struct Response(pub(crate) Rc<Exchange>);

impl Response {
    fn state(&self) -> std::cell::RefMut<'_, ResState> {
        self.0.res.borrow_mut()
    }

    /// The id of the request this answers ([`Request::id`](super::Request::id)).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The connection: Node's `res.socket`.
    pub fn socket(&self) -> &Socket {
        &self.0.socket
    }

    /// Node's `res.statusCode = status` (default 200), before the head is sent.
    pub fn set_status(&self, status: u16) {
        let mut st = self.state();
        if !st.head_sent {
            st.status = checked_status(status);
        }
    }

    /// The status code (set, or sent).
    pub fn status(&self) -> u16 {
        self.state().status
    }

    /// Node's `res.statusMessage`: a reason phrase other than the standard one.
    pub fn set_status_message(&self, reason: &str) {
        let mut st = self.state();
        if !st.head_sent && valid_header_value(reason) {
            st.reason = Some(reason.to_string());
        }
    }

    /// Node's `res.setHeader(name, value)`: replaces every field of that name (any
    /// case). An invalid name or value (a CR or LF in it) is not set, and logged: see
    /// [`Response::try_set_header`].
    pub fn set_header(&self, name: &str, value: &str) {
        if let Err(e) = self.try_set_header(name, value) {
            eprintln!("http: {e}");
        }
    }

    /// [`Response::set_header`], saying why a header was refused (invalid characters,
    /// or the head is already sent).
    pub fn try_set_header(&self, name: &str, value: &str) -> Result<(), String> {
        check_header(name, value)?;
        let mut st = self.state();
        if st.head_sent {
            return Err(format!("cannot set {name}: the head is already sent"));
        }
        st.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        st.headers.push((name.to_string(), value.to_string()));
        Ok(())
    }

    /// Node's `res.appendHeader(name, value)`: adds a field, keeping those of the same
    /// name (`Set-Cookie`). Refused as [`Response::set_header`] refuses.
    pub fn append_header(&self, name: &str, value: &str) {
        let result = check_header(name, value).and_then(|()| {
            let mut st = self.state();
            if st.head_sent {
                return Err(format!("cannot set {name}: the head is already sent"));
            }
            st.headers.push((name.to_string(), value.to_string()));
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("http: {e}");
        }
    }

    /// Node's `res.getHeader(name)`: the first value set.
    pub fn get_header(&self, name: &str) -> Option<String> {
        self.state().find(name).map(str::to_string)
    }

    /// Node's `res.removeHeader(name)`.
    pub fn remove_header(&self, name: &str) {
        let mut st = self.state();
        if !st.head_sent {
            st.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
    }

    /// Node's `res.writeHead(status, headers)`: the status and more headers (added to
    /// those set, replacing any of the same name). The head itself goes out with the
    /// first `write` or `end`, so the whole response can leave in one packet.
    pub fn write_head(&self, status: u16, headers: &[(&str, &str)]) {
        self.set_status(status);
        for (name, value) in headers {
            self.set_header(name, value);
        }
    }

    /// Node's `res.headersSent`.
    pub fn headers_sent(&self) -> bool {
        self.state().head_sent
    }

    /// Node's `res.writableEnded`: `end` was called.
    pub fn finished(&self) -> bool {
        self.state().finished
    }

    /// Node's `res.writeContinue()`: sends `100 Continue` (for a request with `Expect:
    /// 100-continue`), once, before the head.
    pub fn write_continue(&self) {
        let mut st = self.state();
        if st.head_sent || st.continue_sent || st.finished {
            return;
        }
        st.continue_sent = true;
        drop(st);
        self.0.socket.write(b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    /// Node's `res.write(chunk)`: sends a piece of the body (and the head first, if it
    /// is not sent). Returns Node's backpressure boolean: `false` once the socket's
    /// queue is past its high-water mark; [`HttpHandler::on_drain`] follows when it
    /// empties. `false` too after `end`.
    ///
    /// [`HttpHandler::on_drain`]: super::HttpHandler::on_drain
    pub fn write(&self, chunk: impl AsRef<[u8]>) -> bool {
        let mut st = self.state();
        if st.finished {
            return false;
        }
        let mut out = Vec::new();
        if !st.head_sent {
            st.head_into(&mut out, None);
        }
        self.send(st, out, chunk.as_ref(), false)
    }

    /// Node's `res.end()`: the response is complete.
    pub fn end(&self) {
        self.end_with([]);
    }

    /// Node's `res.end(data)`: writes `data`, then completes the response. Before any
    /// `write`, the response gets `Content-Length: data.len()` (unless it has a length
    /// or a transfer coding already) and leaves in one write with its head.
    pub fn end_with(&self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        let mut st = self.state();
        if st.finished {
            return;
        }
        let mut out = Vec::new();
        if !st.head_sent {
            st.head_into(&mut out, Some(data.len()));
        }
        self.send(st, out, data, true);
        schedule(self.0.socket.id());
    }

    /// Writes `out` (a head, or nothing), then `data` framed, then (`finish`) the body's
    /// end, ending the socket if the response closes it. A small body goes in one write
    /// with what precedes it; a large one in pieces of [`PIECE`] bytes, which are not
    /// copied into one buffer first, and which the host can allocate without fresh
    /// pages each time.
    fn send(
        &self,
        mut st: std::cell::RefMut<'_, ResState>,
        mut out: Vec<u8>,
        data: &[u8],
        finish: bool,
    ) -> bool {
        let (prefix, n, suffix) = st.frame(data.len());
        out.extend_from_slice(&prefix);
        let body = &data[..n];
        let mut tail = Vec::new();
        let large = body.len() > PIECE;
        if !large {
            out.extend_from_slice(body);
            out.extend_from_slice(suffix);
        } else {
            tail.extend_from_slice(suffix);
        }
        if finish {
            st.finish_into(if large { &mut tail } else { &mut out });
        }
        let close = finish && st.close_after;
        drop(st);
        let socket = &self.0.socket;
        let mut ok = !socket.destroyed();
        if !out.is_empty() {
            if close && !large {
                socket.end_with(out);
                return false;
            }
            ok = socket.write(out);
        }
        if large {
            for piece in body.chunks(PIECE) {
                ok = socket.write(piece);
            }
            if !tail.is_empty() {
                ok = socket.write(tail);
            }
        }
        if close {
            socket.end();
        }
        self.state().backed_up = !ok;
        ok
    }
}

/// The largest piece of a body written in one host call.
const PIECE: usize = 64 * 1024;
