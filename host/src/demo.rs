//! The seeds' demo, served by `netlet` with no arguments: the greeting server on TCP
//! 8124, the pipe echo server on TCP 1337 (and over TLS on 1443: `https`'s foundation,
//! with a self-signed certificate made at start), the UDP echo server on 41234, Node's
//! `Hello World` HTTP server on TCP 8080 and the WebSocket chat room on 8081, each an
//! example component embedded in this binary. It is a manifest of built-in handlers,
//! run by the same supervisor as `netlet up` ([`crate::deploy`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::HandlerConfig;
use crate::deploy::Started;
use crate::deploy::manifest::HandlerSpec;
use crate::engine::ComponentSource;

/// An embedded example component.
pub struct Example {
    pub name: &'static str,
    /// Where the demo serves it unless told otherwise.
    pub addr: &'static str,
    pub component: ComponentSource,
}

macro_rules! example {
    ($name:literal, $file:literal, $addr:literal) => {
        Example {
            name: $name,
            addr: $addr,
            component: ComponentSource::Embedded {
                name: $name,
                file: concat!($file, " (embedded)"),
                bytes: include_bytes!(concat!(env!("NETLET_GUEST_DIR"), "/", $file)),
            },
        }
    };
}

/// The seed's greeting server (`net.createServer`, port 8124).
pub const HELLO: Example = example!("hello", "hello.wasm", "127.0.0.1:8124");
/// The seed's `socket.pipe(socket)` echo server (port 1337).
pub const ECHO: Example = example!("echo", "echo.wasm", "127.0.0.1:1337");
/// Where the echo server listens for TLS.
pub const ECHO_TLS_ADDR: &str = "127.0.0.1:1443";
/// The seed's UDP server (`dgram`, port 41234), echoing each datagram.
pub const UDP_ECHO: Example = example!("udp_echo", "udp_echo.wasm", "127.0.0.1:41234");
/// Node's canonical HTTP server (`http.createServer`, port 8080).
pub const HTTP_HELLO: Example = example!("http_hello", "http_hello.wasm", "127.0.0.1:8080");
/// A chat room for browsers: a page at `/`, its WebSocket at `/ws` (port 8081).
pub const WS_CHAT: Example = example!("ws_chat", "ws_chat.wasm", "127.0.0.1:8081");

/// What the demo prints before it starts.
pub const INTRO: &str =
    "netlet demo: the seeds' examples, each a WebAssembly component embedded in this binary";

/// The demo's TLS certificate, made at start: its folder (private to this process).
pub fn certificate_dir() -> PathBuf {
    std::env::temp_dir().join(format!("netlet-demo-{}", std::process::id()))
}

/// Makes a self-signed certificate for `localhost` and 127.0.0.1 in
/// [`certificate_dir`] (the key readable by this user only); returns the certificate's
/// and the key's paths.
pub fn make_certificate() -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = certificate_dir();
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(std::io::Error::other)?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem())?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    Ok((cert, key))
}

/// Writes `bytes` to a new file only this user can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// The demo's handlers: the greeting and echo servers listening on `hello` and `echo`
/// (the echo server also on `echo_tls`, with `certificate` = (cert, key)), the UDP echo
/// server bound to `udp_echo`, the HTTP server listening on `http`, the chat room on
/// `ws_chat`.
pub fn handlers(
    hello: SocketAddr,
    echo: SocketAddr,
    echo_tls: SocketAddr,
    certificate: (PathBuf, PathBuf),
    udp_echo: SocketAddr,
    http: SocketAddr,
    ws_chat: SocketAddr,
) -> Vec<HandlerSpec> {
    let on = |example: Example, tcp: Vec<SocketAddr>, udp: Vec<SocketAddr>| {
        HandlerSpec::builtin(
            example.component,
            HandlerConfig {
                tcp: tcp.into_iter().map(Into::into).collect(),
                udp: udp.into_iter().map(Into::into).collect(),
                ..HandlerConfig::default()
            },
        )
    };
    let mut echo = on(ECHO, vec![echo], vec![]);
    echo.config.tls = vec![echo_tls.into()];
    echo.config.tls_cert = vec![certificate.0];
    echo.config.tls_key = vec![certificate.1];
    vec![
        on(HELLO, vec![hello], vec![]),
        echo,
        on(UDP_ECHO, vec![], vec![udp_echo]),
        on(HTTP_HELLO, vec![http], vec![]),
        on(WS_CHAT, vec![ws_chat], vec![]),
    ]
}

/// What to type to talk to the demo's servers, once they listen.
pub fn announce(started: &[Started<'_>]) -> String {
    let find = |example: &Example| started.iter().find(|s| s.name == example.name);
    let tcp = |example: &Example| {
        find(example)
            .and_then(|s| s.tcp.first())
            .map_or_else(|| example.addr.to_string(), ToString::to_string)
    };
    let udp = find(&UDP_ECHO)
        .and_then(|s| s.udp.first())
        .map_or_else(|| UDP_ECHO.addr.to_string(), ToString::to_string);
    let tls = find(&ECHO)
        .and_then(|s| s.tls.first())
        .map_or_else(|| ECHO_TLS_ADDR.to_string(), ToString::to_string);
    instructions(
        &tcp(&HELLO),
        &tcp(&ECHO),
        &tls,
        &udp,
        &tcp(&HTTP_HELLO),
        &tcp(&WS_CHAT),
    )
}

/// What to type to talk to the demo's servers.
pub fn instructions(
    hello: &str,
    echo: &str,
    echo_tls: &str,
    udp: &str,
    http: &str,
    ws_chat: &str,
) -> String {
    let (udp_host, udp_port) = udp.rsplit_once(':').unwrap_or((udp, "41234"));
    let (hello_host, hello_port) = hello.rsplit_once(':').unwrap_or((hello, "8124"));
    let (echo_host, echo_port) = echo.rsplit_once(':').unwrap_or((echo, "1337"));
    let (tls_host, tls_port) = echo_tls.rsplit_once(':').unwrap_or((echo_tls, "1443"));
    let cert = certificate_dir().join("cert.pem");
    let cert = cert.display();
    format!(
        "\
Try them:
  greeting server (hello):  nc {hello_host} {hello_port}
      node -e \"require('net').connect({hello_port},'{hello_host}',function(){{this.write('hi')}}).on('data',d=>{{console.log(d.toString());}})\"
  echo server (echo):       nc {echo_host} {echo_port}
      node -e \"const s=require('net').connect({echo_port},'{echo_host}');s.on('data',d=>{{console.log(d.toString());s.end()}});s.write('hello')\"
  echo over TLS (echo):     openssl s_client -connect {tls_host}:{tls_port} -CAfile {cert} -quiet
      node -e \"const s=require('tls').connect({{port:{tls_port},host:'{tls_host}',servername:'localhost',ca:require('fs').readFileSync('{cert}')}});s.on('data',d=>{{console.log(d.toString());s.end()}});s.write('hello')\"
      (the host runs TLS with a self-signed certificate made at start, {cert}; the handler is the same echo)
  UDP echo (udp_echo):      echo -n hello | nc -u -w1 {udp_host} {udp_port}
      node -e \"const s=require('dgram').createSocket('udp4');s.on('message',m=>{{console.log(m.toString());s.close()}});s.send('hello',{udp_port},'{udp_host}')\"
  HTTP server (http_hello): curl -i http://{http}/
  WebSocket chat (ws_chat): open http://{ws_chat}/ in two browser tabs
Ctrl-C stops the demo.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instructions_name_the_bound_addresses() {
        let hello: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let echo: SocketAddr = "127.0.0.1:5002".parse().unwrap();
        let udp: SocketAddr = "127.0.0.1:5003".parse().unwrap();
        let tls: SocketAddr = "127.0.0.1:5004".parse().unwrap();
        let http: SocketAddr = "127.0.0.1:5005".parse().unwrap();
        let chat: SocketAddr = "127.0.0.1:5006".parse().unwrap();
        let text = announce(&[
            Started {
                name: "hello",
                tcp: &[hello],
                udp: &[],
                tls: &[],
            },
            Started {
                name: "echo",
                tcp: &[echo],
                udp: &[],
                tls: &[tls],
            },
            Started {
                name: "udp_echo",
                tcp: &[],
                udp: &[udp],
                tls: &[],
            },
            Started {
                name: "http_hello",
                tcp: &[http],
                udp: &[],
                tls: &[],
            },
            Started {
                name: "ws_chat",
                tcp: &[chat],
                udp: &[],
                tls: &[],
            },
        ]);
        assert_eq!(
            text,
            instructions(
                "127.0.0.1:5001",
                "127.0.0.1:5002",
                "127.0.0.1:5004",
                "127.0.0.1:5003",
                "127.0.0.1:5005",
                "127.0.0.1:5006"
            )
        );
        assert!(text.contains("open http://127.0.0.1:5006/ in two browser tabs"));
        assert!(text.contains("curl -i http://127.0.0.1:5005/"));
        assert!(text.contains("nc 127.0.0.1 5001") && text.ends_with("Ctrl-C stops the demo.\n"));
        assert!(
            text.contains("openssl s_client -connect 127.0.0.1:5004"),
            "{text}"
        );
    }

    #[test]
    fn the_demo_is_five_built_in_handlers_with_their_names() {
        let specs = handlers(
            HELLO.addr.parse().unwrap(),
            ECHO.addr.parse().unwrap(),
            ECHO_TLS_ADDR.parse().unwrap(),
            ("c.pem".into(), "k.pem".into()),
            UDP_ECHO.addr.parse().unwrap(),
            HTTP_HELLO.addr.parse().unwrap(),
            WS_CHAT.addr.parse().unwrap(),
        );
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["hello", "echo", "udp_echo", "http_hello", "ws_chat"]
        );
        assert_eq!(specs[3].config.tcp[0].port(), 8080);
        assert_eq!(specs[4].config.tcp[0].port(), 8081);
        assert!(specs.iter().all(|s| !s.from_manifest()));
        assert_eq!(specs[2].config.udp[0].port(), 41234);
        assert_eq!(specs[1].config.tls[0].port(), 1443);
        assert!(specs[1].config.clone().validate().is_ok());
        assert_eq!(specs[0].component.to_string(), "hello.wasm (embedded)");
    }
}
