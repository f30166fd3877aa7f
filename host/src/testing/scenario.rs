//! Scenario files: a component's expected behaviour, step by step, run in the in-memory
//! harness. `netlet test COMPONENT.wasm SCENARIO.toml...` runs them.
//!
//! ```toml
//! description = "the seed's pipe echo server"
//!
//! [handler]                # optional: netlet run's settings, as in a manifest
//! args = []
//! tcp = ["127.0.0.1:8124"]  # default 127.0.0.1:8000; [] for none
//! udp = []                  # default 127.0.0.1:9000; [] for none
//!
//! [[scenario]]
//! name = "greets, then echoes every byte"
//! steps = [
//!   { connect = "c" },
//!   { expect = "Echo server\r\n" },
//!   { send = "hello" },
//!   { expect = "hello" },
//!   { end = true },
//!   { expect-closed = true },
//! ]
//! ```
//!
//! Each scenario runs in a fresh harness. Steps act on the connection named by `conn`,
//! or the latest one. An `expect` compares everything the connection received since the
//! previous `expect` with exactly the bytes given; a failing step stops its scenario and
//! shows what was expected and what came.
//!
//! | step | what it does |
//! | --- | --- |
//! | `connect = "name"` (`listener = N`) | a client connects |
//! | `send = "text"`, `send-hex = "de ad"`, `send-file = "path"` | the client sends |
//! | `end = true`, `reset = true` | the client half-closes, or resets |
//! | `stop-reading = N`, `resume-reading = true` | the client stops reading past N unread bytes, or reads again |
//! | `expect = "text"`, `expect-hex = "…"`, `expect-regex = "…"` | what the client received |
//! | `expect-nothing = true` | nothing was received |
//! | `expect-closed = true`, `expect-open = true`, `expect-ended = true`, `expect-error = true` | the connection's state (`expect-error`: closed after an `error`, or a trap) |
//! | `advance = "1s"` | virtual time moves on; timers and timeouts fire |
//! | `datagram = "text"` (`datagram-hex`, `from`, `to`) | a datagram arrives (default from 127.0.0.1:5000, at the first UDP socket) |
//! | `expect-datagram = "text"` (`expect-datagram-hex`, `to`) | the next datagram the guest sent |
//! | `accept-connect = "name"`, `refuse-connect = true` | answer the guest's oldest outbound connect |
//! | `expect-log = "regex"` | a line the guest printed matches |
//! | `expect-trap = "regex"` | the guest trapped, with a message that matches |
//! | `request = "GET /path"` (`headers = { Name = "value" }`, `body = "..."`) | the client sends an HTTP/1.1 request (`Host: localhost` unless given; `"GET / HTTP/1.0"` for 1.0; a body gets a `Content-Length`) |
//! | `expect-response = 200` (`headers = { name = "value" }`, `body = "..."`) | the next HTTP response received has this status, these header values (any case) and exactly this body (de-chunked) |

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::DeValue;

use super::{Conn, Harness, HarnessBuilder, HarnessError};
use crate::config::HandlerConfig;
use crate::config::document::Document;

/// A scenario file.
#[derive(Debug)]
pub struct ScenarioFile {
    pub description: Option<String>,
    /// The `[handler]` table over the harness's defaults
    /// ([`HarnessBuilder::default_config`]).
    pub handler: HandlerConfig,
    pub scenarios: Vec<Scenario>,
}

/// The file as serde reads it; the `[handler]` table is read apart, through the
/// settings table, as a manifest's are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    #[serde(default)]
    description: Option<String>,
    /// Read by [`handler_settings`]; here only allowed.
    #[serde(default, rename = "handler")]
    _handler: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "scenario")]
    scenarios: Vec<Scenario>,
}

/// One scenario: a name and its steps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub steps: Vec<Step>,
}

/// One step: exactly one action key, plus its modifiers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Step {
    pub conn: Option<String>,
    pub listener: Option<usize>,
    pub from: Option<String>,
    pub to: Option<String>,

    pub connect: Option<String>,
    pub send: Option<String>,
    pub send_hex: Option<String>,
    pub send_file: Option<String>,
    pub end: Option<bool>,
    pub reset: Option<bool>,
    pub stop_reading: Option<usize>,
    pub resume_reading: Option<bool>,
    pub expect: Option<String>,
    pub expect_hex: Option<String>,
    pub expect_regex: Option<String>,
    pub expect_nothing: Option<bool>,
    pub expect_closed: Option<bool>,
    pub expect_open: Option<bool>,
    pub expect_ended: Option<bool>,
    pub expect_error: Option<bool>,
    pub advance: Option<String>,
    pub datagram: Option<String>,
    pub datagram_hex: Option<String>,
    pub expect_datagram: Option<String>,
    pub expect_datagram_hex: Option<String>,
    pub accept_connect: Option<String>,
    pub refuse_connect: Option<bool>,
    pub expect_log: Option<String>,
    pub expect_trap: Option<String>,
    pub request: Option<String>,
    pub expect_response: Option<u16>,
    /// Modifiers of `request` and `expect-response`.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    pub body: Option<String>,
}

/// What one scenario came to.
#[derive(Debug)]
pub struct Outcome {
    pub file: PathBuf,
    pub name: String,
    /// `None` when it passed; otherwise what went wrong, ready to print.
    pub failure: Option<String>,
}

/// Parses a scenario file, naming the file (and line) on error.
pub fn parse(path: &Path) -> Result<ScenarioFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let RawFile {
        description,
        scenarios,
        ..
    } = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if scenarios.is_empty() {
        return Err(format!("{}: no [[scenario]] in the file", path.display()));
    }
    let handler = handler_settings(&path.display().to_string(), &text)?;
    Ok(ScenarioFile {
        description,
        handler,
        scenarios,
    })
}

/// The `[handler]` table of scenario file `text` (named `file` in errors), over the
/// harness's defaults. Its keys are a manifest handler's settings; errors are
/// `FILE:LINE: handler.KEY: what is wrong`.
pub fn handler_settings(file: &str, text: &str) -> Result<HandlerConfig, String> {
    let doc = Document { file, text };
    let table = doc.parse().map_err(|e| e.to_string())?;
    let mut config = HarnessBuilder::default_config();
    let Some(value) = table.get("handler") else {
        return Ok(config);
    };
    let DeValue::Table(handler) = value.get_ref() else {
        return Err(doc
            .error(value.span().start, "handler", "expected a table: [handler]")
            .to_string());
    };
    doc.read_settings("handler", handler, &mut config, &[], |_, _| Ok(()))
        .map_err(|e| e.to_string())?;
    config
        .validate()
        .map_err(|e| doc.error(value.span().start, "handler", e).to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
}

/// Bytes as a quoted, escaped string.
fn show(bytes: &[u8]) -> String {
    let s: String = bytes
        .iter()
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    format!("\"{s}\"")
}

/// Where two byte strings part, for the failure message.
fn diff(expected: &[u8], got: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let mut out = format!(
        "    expected {} ({} bytes)\n    received {} ({} bytes)\n",
        show(expected),
        expected.len(),
        show(got),
        got.len()
    );
    let _ = write!(out, "    first difference at byte {at}");
    out
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("hex {s:?} has an odd number of digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| format!("bad hex {s:?}")))
        .collect()
}

fn addr(s: &str) -> Result<SocketAddr, String> {
    crate::config::parse_listen_addr(s)
}

struct Run<'a> {
    h: Harness,
    conns: HashMap<String, Conn>,
    received: HashMap<String, Vec<u8>>,
    last: Option<String>,
    sent_datagrams: Vec<super::SentDatagram>,
    dir: &'a Path,
}

/// The bytes of a scenario's `request` step.
fn http_request(line: &str, step: &Step) -> Result<Vec<u8>, String> {
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!("request {line:?}: expected \"METHOD /path\""));
    };
    let mut req = super::http::HttpRequest::new(method, target);
    match parts.next() {
        None | Some("HTTP/1.1") => {}
        Some("HTTP/1.0") => req = req.http10(),
        Some(other) => return Err(format!("request {line:?}: unknown version {other}")),
    }
    for (n, v) in step.headers.iter().flatten() {
        req = req.header(n, v);
    }
    if let Some(body) = &step.body {
        req = req.body(body.as_bytes());
    }
    Ok(req.to_bytes())
}

impl Run<'_> {
    /// Parses the next response from what connection `name` received, keeping the rest.
    fn expect_response(&mut self, name: &str, status: u16, step: &Step) -> Result<(), String> {
        let conn = self.conn(name)?;
        let out = conn.take_output();
        let eof = conn.is_ended();
        let buf = self.received.entry(name.to_string()).or_default();
        buf.extend_from_slice(&out);
        let (res, used) = match super::http::HttpResponse::parse(buf, false, eof)? {
            Some(parsed) => parsed,
            None => {
                return Err(format!(
                    "connection {name:?} has no complete HTTP response; received {}",
                    show(buf)
                ));
            }
        };
        buf.drain(..used);
        if res.status != status {
            return Err(format!(
                "connection {name:?}: status {} {}, expected {status}",
                res.status, res.reason
            ));
        }
        for (n, v) in step.headers.iter().flatten() {
            match res.header(n) {
                Some(got) if got == v => {}
                got => {
                    return Err(format!(
                        "connection {name:?}: header {n} is {got:?}, expected {v:?}; headers: {:?}",
                        res.headers
                    ));
                }
            }
        }
        if let Some(body) = &step.body
            && res.body != body.as_bytes()
        {
            return Err(format!(
                "connection {name:?}: the response body differs:\n{}",
                diff(body.as_bytes(), &res.body)
            ));
        }
        Ok(())
    }

    fn conn_name(&self, step: &Step) -> Result<String, String> {
        step.conn
            .clone()
            .or_else(|| self.last.clone())
            .ok_or_else(|| "no connection yet (add a `connect` step first)".to_string())
    }

    fn conn(&self, name: &str) -> Result<&Conn, String> {
        self.conns
            .get(name)
            .ok_or_else(|| format!("no connection named {name:?}"))
    }

    /// Everything connection `name` received since the last `expect`.
    fn drain(&mut self, name: &str) -> Result<Vec<u8>, String> {
        let out = self.conn(name)?.take_output();
        let buf = self.received.entry(name.to_string()).or_default();
        buf.extend_from_slice(&out);
        Ok(std::mem::take(buf))
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        let e = |e: HarnessError| e.to_string();
        if let Some(name) = &step.connect {
            let c = self.h.connect_to(step.listener.unwrap_or(0)).map_err(e)?;
            self.conns.insert(name.clone(), c);
            self.last = Some(name.clone());
        } else if let Some(name) = &step.accept_connect {
            let c = self.h.accept_connect().map_err(e)?;
            self.conns.insert(name.clone(), c);
            self.last = Some(name.clone());
        } else if step.refuse_connect == Some(true) {
            self.h.refuse_connect().map_err(e)?;
        } else if step.send.is_some() || step.send_hex.is_some() || step.send_file.is_some() {
            let data = match (&step.send, &step.send_hex, &step.send_file) {
                (Some(text), _, _) => text.as_bytes().to_vec(),
                (_, Some(h), _) => hex(h)?,
                (_, _, Some(file)) => std::fs::read(self.dir.join(file))
                    .map_err(|err| format!("send-file {file}: {err}"))?,
                _ => unreachable!("one of the three is set"),
            };
            let name = self.conn_name(step)?;
            self.conn(&name)?.send(data).map_err(e)?;
        } else if step.end == Some(true) {
            let name = self.conn_name(step)?;
            self.conn(&name)?.end().map_err(e)?;
        } else if step.reset == Some(true) {
            let name = self.conn_name(step)?;
            self.conn(&name)?.reset().map_err(e)?;
        } else if let Some(window) = step.stop_reading {
            let name = self.conn_name(step)?;
            self.conn(&name)?.stop_reading(window);
        } else if step.resume_reading == Some(true) {
            let name = self.conn_name(step)?;
            self.conn(&name)?.resume_reading().map_err(e)?;
        } else if step.expect.is_some() || step.expect_hex.is_some() {
            let expected = match (&step.expect, &step.expect_hex) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (_, Some(h)) => hex(h)?,
                _ => unreachable!("one of the two is set"),
            };
            let name = self.conn_name(step)?;
            let got = self.drain(&name)?;
            if got != expected {
                return Err(format!(
                    "connection {name:?} did not receive what was expected:\n{}",
                    diff(&expected, &got)
                ));
            }
        } else if let Some(pattern) = &step.expect_regex {
            let re =
                regex::bytes::Regex::new(pattern).map_err(|err| format!("expect-regex: {err}"))?;
            let name = self.conn_name(step)?;
            let got = self.drain(&name)?;
            if !re.is_match(&got) {
                return Err(format!(
                    "connection {name:?} received {} which does not match /{pattern}/",
                    show(&got)
                ));
            }
        } else if step.expect_nothing == Some(true) {
            let name = self.conn_name(step)?;
            let got = self.drain(&name)?;
            if !got.is_empty() {
                return Err(format!(
                    "connection {name:?} received {} where nothing was expected",
                    show(&got)
                ));
            }
        } else if step.expect_closed.is_some()
            || step.expect_open.is_some()
            || step.expect_ended.is_some()
            || step.expect_error.is_some()
        {
            let name = self.conn_name(step)?;
            let c = self.conn(&name)?;
            let check = |want: Option<bool>, have: bool, what: &str| match want {
                Some(want) if want != have => Err(format!(
                    "connection {name:?} is {}{what}",
                    if have { "" } else { "not " }
                )),
                _ => Ok(()),
            };
            check(step.expect_closed, c.is_closed(), "closed")?;
            check(step.expect_open.map(|o| !o), c.is_closed(), "closed")?;
            check(step.expect_ended, c.is_ended(), "ended by the handler")?;
            check(
                step.expect_error,
                c.closed_with_error(),
                "closed with an error",
            )?;
        } else if let Some(d) = &step.advance {
            self.h.advance(duration(d)?).map_err(e)?;
        } else if step.datagram.is_some() || step.datagram_hex.is_some() {
            let data = match (&step.datagram, &step.datagram_hex) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (_, Some(h)) => hex(h)?,
                _ => unreachable!("one of the two is set"),
            };
            let from = addr(step.from.as_deref().unwrap_or("127.0.0.1:5000"))?;
            match &step.to {
                Some(to) => self.h.datagram_to(addr(to)?, from, data).map_err(e)?,
                None => self.h.datagram(from, data).map_err(e)?,
            }
        } else if step.expect_datagram.is_some() || step.expect_datagram_hex.is_some() {
            let expected = match (&step.expect_datagram, &step.expect_datagram_hex) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (_, Some(h)) => hex(h)?,
                _ => unreachable!("one of the two is set"),
            };
            self.sent_datagrams.extend(self.h.take_datagrams());
            if self.sent_datagrams.is_empty() {
                return Err(format!(
                    "no datagram was sent; expected {}",
                    show(&expected)
                ));
            }
            let got = self.sent_datagrams.remove(0);
            if got.data != expected {
                return Err(format!(
                    "the datagram sent to {} differs:\n{}",
                    got.to,
                    diff(&expected, &got.data)
                ));
            }
            if let Some(to) = &step.to {
                let to = addr(to)?;
                if got.to != to {
                    return Err(format!("the datagram went to {}, not {to}", got.to));
                }
            }
        } else if let Some(pattern) = &step.expect_log {
            let re = regex::Regex::new(pattern).map_err(|err| format!("expect-log: {err}"))?;
            let logs = self.h.logs();
            if !logs.iter().any(|l| re.is_match(l)) {
                return Err(format!(
                    "no guest log line matches /{pattern}/; the guest printed:\n    {}",
                    logs.join("\n    ")
                ));
            }
        } else if let Some(pattern) = &step.expect_trap {
            let re = regex::Regex::new(pattern).map_err(|err| format!("expect-trap: {err}"))?;
            let traps = self.h.traps();
            if !traps.iter().any(|t| re.is_match(&t.message)) {
                return Err(format!(
                    "no trap matches /{pattern}/ (traps: {})",
                    if traps.is_empty() {
                        "none".to_string()
                    } else {
                        traps
                            .iter()
                            .map(|t| t.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    }
                ));
            }
        } else if let Some(line) = &step.request {
            let name = self.conn_name(step)?;
            let bytes = http_request(line, step)?;
            self.conn(&name)?.send(bytes).map_err(e)?;
        } else if let Some(status) = step.expect_response {
            let name = self.conn_name(step)?;
            self.expect_response(&name, status, step)?;
        } else {
            return Err(
                "a step with no action (see `netlet test --help` for the step keys)".into(),
            );
        }
        Ok(())
    }
}

/// Runs one scenario on `component`.
fn run_one(
    component: &Path,
    settings: &HandlerConfig,
    scenario: &Scenario,
    dir: &Path,
) -> Result<(), String> {
    let h = Harness::builder()
        .config(settings.clone())
        .load(component)
        .map_err(|e| e.to_string())?;
    let mut run = Run {
        h,
        conns: HashMap::new(),
        received: HashMap::new(),
        last: None,
        sent_datagrams: Vec::new(),
        dir,
    };
    for (i, step) in scenario.steps.iter().enumerate() {
        run.step(step).map_err(|why| {
            let unexpected: Vec<String> = run
                .h
                .traps()
                .into_iter()
                .filter(|_| step.expect_trap.is_none())
                .map(|t| t.message)
                .collect();
            let mut msg = format!("step {} ({}): {why}", i + 1, describe_step(step));
            if !unexpected.is_empty() {
                let _ = write!(msg, "\n    the guest {}", unexpected.join("; "));
                // A Rust guest prints its panic message before it traps.
                let logs = run.h.logs();
                let tail: Vec<&String> = logs.iter().rev().take(3).collect();
                if !tail.is_empty() {
                    let _ = write!(msg, "\n    its last output:");
                    for line in tail.into_iter().rev() {
                        let _ = write!(msg, "\n        {line}");
                    }
                }
            }
            msg
        })?;
    }
    Ok(())
}

fn describe_step(step: &Step) -> &'static str {
    macro_rules! first {
        ($($field:ident => $name:literal),* $(,)?) => {
            $( if step.$field.is_some() { return $name; } )*
        };
    }
    first!(
        connect => "connect", accept_connect => "accept-connect", refuse_connect => "refuse-connect",
        send => "send", send_hex => "send-hex", send_file => "send-file", end => "end", reset => "reset",
        stop_reading => "stop-reading", resume_reading => "resume-reading", expect => "expect",
        expect_hex => "expect-hex", expect_regex => "expect-regex", expect_nothing => "expect-nothing",
        expect_closed => "expect-closed", expect_open => "expect-open", expect_ended => "expect-ended",
        expect_error => "expect-error", advance => "advance", datagram => "datagram",
        datagram_hex => "datagram-hex", expect_datagram => "expect-datagram",
        expect_datagram_hex => "expect-datagram-hex", expect_log => "expect-log", expect_trap => "expect-trap",
        request => "request", expect_response => "expect-response",
    );
    "?"
}

/// Runs every scenario of every file against `component`; one outcome each. A file
/// that cannot be parsed counts as one failed outcome.
pub fn run(component: &Path, files: &[PathBuf]) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for file in files {
        let dir = file.parent().unwrap_or(Path::new("."));
        match parse(file) {
            Err(why) => outcomes.push(Outcome {
                file: file.clone(),
                name: "(file)".into(),
                failure: Some(why),
            }),
            Ok(parsed) => {
                for scenario in &parsed.scenarios {
                    let failure = run_one(component, &parsed.handler, scenario, dir).err();
                    outcomes.push(Outcome {
                        file: file.clone(),
                        name: scenario.name.clone(),
                        failure,
                    });
                }
            }
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::config::Isolation;
    use crate::testing::harness::{DEFAULT_TCP, DEFAULT_UDP};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listeners_are_addresses_with_in_memory_defaults() {
        let c = handler_settings("s.toml", "[[scenario]]\n").unwrap();
        assert_eq!(
            (c.tcp, c.udp),
            (vec![DEFAULT_TCP.into()], vec![DEFAULT_UDP.into()])
        );
        assert_eq!(DEFAULT_TCP, addr("127.0.0.1:8000"));
        assert_eq!(DEFAULT_UDP, addr("127.0.0.1:9000"));

        let c = handler_settings(
            "s.toml",
            "[handler]\ntcp = [\"127.0.0.1:8124\", \"[::1]:1337\"]\nudp = []\n",
        )
        .unwrap();
        assert_eq!(c.tcp, [addr("127.0.0.1:8124"), addr("[::1]:1337")]);
        assert!(c.udp.is_empty());

        let c =
            handler_settings("s.toml", "[handler]\ntcp = []\nudp = \"127.0.0.1:41234\"\n").unwrap();
        assert!(c.tcp.is_empty());
        assert_eq!(c.udp, [addr("127.0.0.1:41234")]);
    }

    #[test]
    fn the_handler_table_takes_the_manifests_keys() {
        let c = handler_settings(
            "s.toml",
            "[handler]\nisolation = \"connection\"\nmax-memory = \"1MiB\"\nidle-timeout = 2\n\
             allow = \"localhost:1\"\nargs = [\"a\"]\nhigh-water-mark = 0\n",
        )
        .unwrap();
        assert_eq!(c.isolation, Isolation::Connection);
        assert_eq!(c.max_memory, 1 << 20);
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.allow.len(), 1);
        assert_eq!(c.args, ["a"]);
        // Validated as everywhere else.
        assert_eq!(c.high_water_mark, 1);
    }

    #[test]
    fn a_bad_handler_key_names_the_file_line_and_key() {
        let e = handler_settings("s.toml", "\n[handler]\ntcp = 1\n").unwrap_err();
        assert_eq!(
            e,
            "s.toml:3: handler.tcp: expected a string or an array of strings, found integer"
        );
        let e = handler_settings("s.toml", "[handler]\nmax_memory = \"1MiB\"\n").unwrap_err();
        assert!(
            e.starts_with("s.toml:2: handler.max_memory: unknown key (did you mean `max-memory`?)"),
            "{e}"
        );
        let e = handler_settings("s.toml", "handler = 1\n").unwrap_err();
        assert_eq!(e, "s.toml:1: handler: expected a table: [handler]");
    }
}
