//! The WebSocket layer's limits, [`WsOptions`], settable in code and by the
//! operator's arguments.

use std::time::Duration;

use crate::http::options::{parse_duration, parse_size};

/// Limits of the WebSocket layer. A handler returns its own from
/// [`WsHandler::options`](super::WsHandler::options); the operator can override them with arguments
/// (`-- --max-message-size 1MiB --close-timeout 5s`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsOptions {
    /// The longest message, all fragments together: Node's `ws` `maxPayload`. Default
    /// 16 MiB. Past it the connection fails with 1009.
    pub max_message_size: usize,
    /// Bytes all the instance's connections may hold in messages being assembled.
    /// Default 32 MiB (half the default `--max-memory`). A connection that would pass
    /// it fails with 1013.
    pub max_assembling: usize,
    /// How long the peer has to answer our close frame (or, for a client, the server
    /// to close the connection) before the socket is destroyed. Default 30 s (Node's
    /// `ws` `closeTimeout`).
    pub close_timeout: Duration,
    /// The same, when we fail the connection: a close with 1002, 1003, 1007, 1008,
    /// 1009, 1011 or 1013 (a protocol violation, a message too big, a peer too far
    /// behind). Its unsent backlog is dropped at once, and the socket is destroyed
    /// after this long, as Node's `ws.terminate()`. Default 1 s.
    pub fail_close_timeout: Duration,
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            max_assembling: 32 << 20,
            close_timeout: Duration::from_secs(30),
            fail_close_timeout: Duration::from_secs(1),
        }
    }
}

/// The arguments [`WsOptions::apply_args`] understands.
pub const OPTION_ARGS: &[&str] = &[
    "--max-message-size",
    "--max-assembling",
    "--close-timeout",
    "--fail-close-timeout",
];

impl WsOptions {
    /// Takes the options it knows out of `args` (`--NAME VALUE` or `--NAME=VALUE`;
    /// sizes `1048576` or `1MiB`, durations `500ms`, `5s`) and returns the rest.
    ///
    /// ```
    /// use netlet_guest::ws::WsOptions;
    ///
    /// let mut options = WsOptions::default();
    /// let rest = options.apply_args(vec!["--max-message-size=1MiB".into()]).unwrap();
    /// assert_eq!(options.max_message_size, 1 << 20);
    /// assert!(rest.is_empty());
    /// assert!(options.apply_args(vec!["--close-timeout".into(), "soon".into()]).is_err());
    /// ```
    pub fn apply_args(&mut self, args: Vec<String>) -> Result<Vec<String>, String> {
        let mut rest = Vec::new();
        let mut iter = args.into_iter();
        while let Some(arg) = iter.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if !OPTION_ARGS.contains(&name.as_str()) {
                rest.push(arg);
                continue;
            }
            let value = inline
                .or_else(|| iter.next())
                .ok_or_else(|| format!("{name} needs a value"))?;
            let bad = |what: &str| format!("{name} {value:?}: expected {what}");
            match name.as_str() {
                "--close-timeout" => {
                    self.close_timeout =
                        parse_duration(&value).ok_or_else(|| bad("a duration such as 5s"))?
                }
                "--fail-close-timeout" => {
                    self.fail_close_timeout =
                        parse_duration(&value).ok_or_else(|| bad("a duration such as 1s"))?
                }
                _ => {
                    let n = parse_size(&value)
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("a size such as 1MiB"))?;
                    if name == "--max-message-size" {
                        self.max_message_size = n;
                    } else {
                        self.max_assembling = n;
                    }
                }
            }
        }
        Ok(rest)
    }
}
