//! The server's limits and timeouts (Node's `http.createServer` options), and reading
//! them from the handler's arguments so an operator can change them without a rebuild.

use std::time::Duration;

/// Node's server limits and timeouts, with Node's defaults. A handler returns its own
/// from [`HttpHandler::options`](super::HttpHandler::options); the operator can
/// override each with an argument (`netlet run h.wasm -- --keep-alive-timeout 2s`), see
/// [`ServerOptions::apply_args`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Bytes of a request head (request line, header fields, the empty line), and of a
    /// chunked body's trailers: Node's `maxHeaderSize`, 16 KiB. Past it: 431 and close.
    /// Also how many bytes of pipelined requests are read ahead while a response is
    /// being written (then the socket is paused).
    pub max_header_size: usize,
    /// Header fields in one request: Node's `maxHeadersCount`, 2000. Past it: 431 (Node
    /// drops the extra fields instead).
    pub max_headers_count: usize,
    /// The whole head must arrive within this, counted from the connection (first
    /// request) or from the request's first byte: Node's `headersTimeout`, 60 s. Past
    /// it: 408 and close, so a client sending a byte at a time (slowloris) is cut.
    /// Zero disables it.
    pub headers_timeout: Duration,
    /// The whole request (head and body) must arrive within this: Node's
    /// `requestTimeout`, 300 s. Past it: 408 and close. Zero disables it.
    pub request_timeout: Duration,
    /// An idle keep-alive connection (no request under way) is closed after this:
    /// Node's `keepAliveTimeout`, 5 s. Zero disables it.
    pub keep_alive_timeout: Duration,
    /// Requests served on one connection; the last response carries `Connection:
    /// close`. Node's `maxRequestsPerSocket`; 0 (the default) is no limit.
    pub max_requests_per_socket: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_header_size: 16 * 1024,
            max_headers_count: 2000,
            headers_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            keep_alive_timeout: Duration::from_secs(5),
            max_requests_per_socket: 0,
        }
    }
}

/// The arguments [`ServerOptions::apply_args`] understands.
pub const OPTION_ARGS: &[&str] = &[
    "--max-header-size",
    "--max-headers-count",
    "--headers-timeout",
    "--request-timeout",
    "--keep-alive-timeout",
    "--max-requests-per-socket",
];

impl ServerOptions {
    /// Takes the options it knows out of `args` (`--NAME VALUE` or `--NAME=VALUE`, names
    /// in [`OPTION_ARGS`]; sizes as `16384` or `16KiB`, durations as `500ms`, `2s`, `1m`
    /// or bare milliseconds as Node's) and returns the other arguments, in order.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netlet_guest::http::ServerOptions;
    ///
    /// let mut options = ServerOptions::default();
    /// let args = ["--keep-alive-timeout", "2s", "--max-header-size=8KiB", "mine"];
    /// let rest = options.apply_args(args.map(String::from).to_vec()).unwrap();
    /// assert_eq!(options.keep_alive_timeout, Duration::from_secs(2));
    /// assert_eq!(options.max_header_size, 8192);
    /// assert_eq!(rest, ["mine"]);
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
            let value = match inline.or_else(|| iter.next()) {
                Some(v) => v,
                None => return Err(format!("{name} needs a value")),
            };
            let bad = |what: &str| format!("{name} {value:?}: expected {what}");
            match name.as_str() {
                "--max-header-size" => {
                    self.max_header_size = parse_size(&value)
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("a size such as 16384 or 16KiB"))?
                }
                "--max-headers-count" => {
                    self.max_headers_count = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("a count"))?
                }
                "--max-requests-per-socket" => {
                    self.max_requests_per_socket =
                        value.parse().map_err(|_| bad("a count (0: no limit)"))?
                }
                _ => {
                    let d = parse_duration(&value)
                        .ok_or_else(|| bad("a duration such as 500ms, 5s or 1m"))?;
                    match name.as_str() {
                        "--headers-timeout" => self.headers_timeout = d,
                        "--request-timeout" => self.request_timeout = d,
                        _ => self.keep_alive_timeout = d,
                    }
                }
            }
        }
        Ok(rest)
    }

    /// How often timeouts are checked: a quarter of the shortest one, between 10 ms and
    /// a second (a timeout fires within that much after it is due).
    pub(crate) fn check_interval(&self) -> Duration {
        [
            self.headers_timeout,
            self.request_timeout,
            self.keep_alive_timeout,
        ]
        .into_iter()
        .filter(|d| !d.is_zero())
        .min()
        .map_or(Duration::from_secs(1), |d| d / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

pub(crate) fn parse_size(s: &str) -> Option<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits.parse().ok()?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "" | "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_override_and_the_rest_is_kept() {
        let mut o = ServerOptions::default();
        let rest = o
            .apply_args(args(&[
                "mine",
                "--keep-alive-timeout",
                "2s",
                "--headers-timeout=500ms",
                "--max-header-size",
                "8KiB",
                "--max-requests-per-socket=3",
                "--other",
            ]))
            .unwrap();
        assert_eq!(rest, args(&["mine", "--other"]));
        assert_eq!(o.keep_alive_timeout, Duration::from_secs(2));
        assert_eq!(o.headers_timeout, Duration::from_millis(500));
        assert_eq!(o.max_header_size, 8192);
        assert_eq!(o.max_requests_per_socket, 3);
        assert_eq!(o.check_interval(), Duration::from_millis(125));
        assert!(o.apply_args(args(&["--headers-timeout", "soon"])).is_err());
        assert!(o.apply_args(args(&["--request-timeout"])).is_err());
        assert_eq!(
            ServerOptions::default().check_interval(),
            Duration::from_secs(1)
        );
    }
}
