//! The seeds' demo, served by `netlet` with no arguments: the greeting server on TCP
//! 8124, the pipe echo server on TCP 1337, the UDP echo server on 41234 and Node's
//! `Hello World` HTTP server on TCP 8080 and the WebSocket chat room on 8081, each an
//! example component embedded in this binary. It is a manifest of built-in handlers,
//! run by the same supervisor as `netlet up` ([`crate::deploy`]).

use std::net::SocketAddr;

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
/// The seed's UDP server (`dgram`, port 41234), echoing each datagram.
pub const UDP_ECHO: Example = example!("udp_echo", "udp_echo.wasm", "127.0.0.1:41234");
/// Node's canonical HTTP server (`http.createServer`, port 8080).
pub const HTTP_HELLO: Example = example!("http_hello", "http_hello.wasm", "127.0.0.1:8080");

/// A chat room for browsers: a page at `/`, its WebSocket at `/ws` (port 8081).
pub const WS_CHAT: Example = example!("ws_chat", "ws_chat.wasm", "127.0.0.1:8081");

/// What the demo prints before it starts.
pub const INTRO: &str =
    "netlet demo: the seeds' examples, each a WebAssembly component embedded in this binary";

/// The demo's handlers: the greeting and echo servers listening on `hello` and `echo`,
/// the UDP echo server bound to `udp_echo`, the HTTP server listening on `http`, the
/// chat room on `ws_chat`.
pub fn handlers(
    hello: SocketAddr,
    echo: SocketAddr,
    udp_echo: SocketAddr,
    http: SocketAddr,
    ws_chat: SocketAddr,
) -> Vec<HandlerSpec> {
    let on = |example: Example, tcp: Vec<SocketAddr>, udp: Vec<SocketAddr>| {
        HandlerSpec::builtin(
            example.component,
            HandlerConfig {
                tcp,
                udp,
                ..HandlerConfig::default()
            },
        )
    };
    vec![
        on(HELLO, vec![hello], vec![]),
        on(ECHO, vec![echo], vec![]),
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
    instructions(
        &tcp(&HELLO),
        &tcp(&ECHO),
        &udp,
        &tcp(&HTTP_HELLO),
        &tcp(&WS_CHAT),
    )
}

/// What to type to talk to the demo's servers.
pub fn instructions(hello: &str, echo: &str, udp: &str, http: &str, ws_chat: &str) -> String {
    let (udp_host, udp_port) = udp.rsplit_once(':').unwrap_or((udp, "41234"));
    let (hello_host, hello_port) = hello.rsplit_once(':').unwrap_or((hello, "8124"));
    let (echo_host, echo_port) = echo.rsplit_once(':').unwrap_or((echo, "1337"));
    format!(
        "\
Try them:
  greeting server (hello):  nc {hello_host} {hello_port}
      node -e \"require('net').connect({hello_port},'{hello_host}',function(){{this.write('hi')}}).on('data',d=>{{console.log(d.toString());}})\"
  echo server (echo):       nc {echo_host} {echo_port}
      node -e \"const s=require('net').connect({echo_port},'{echo_host}');s.on('data',d=>{{console.log(d.toString());s.end()}});s.write('hello')\"
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
        let http: SocketAddr = "127.0.0.1:5004".parse().unwrap();
        let chat: SocketAddr = "127.0.0.1:5005".parse().unwrap();
        let text = announce(&[
            Started {
                name: "hello",
                tcp: &[hello],
                udp: &[],
            },
            Started {
                name: "echo",
                tcp: &[echo],
                udp: &[],
            },
            Started {
                name: "udp_echo",
                tcp: &[],
                udp: &[udp],
            },
            Started {
                name: "http_hello",
                tcp: &[http],
                udp: &[],
            },
            Started {
                name: "ws_chat",
                tcp: &[chat],
                udp: &[],
            },
        ]);
        assert_eq!(
            text,
            instructions(
                "127.0.0.1:5001",
                "127.0.0.1:5002",
                "127.0.0.1:5003",
                "127.0.0.1:5004",
                "127.0.0.1:5005"
            )
        );
        assert!(text.contains("curl -i http://127.0.0.1:5004/"));
        assert!(text.contains("open http://127.0.0.1:5005/ in two browser tabs"));
        assert!(text.contains("nc 127.0.0.1 5001") && text.ends_with("Ctrl-C stops the demo.\n"));
    }

    #[test]
    fn the_demo_is_five_built_in_handlers_with_their_names() {
        let specs = handlers(
            HELLO.addr.parse().unwrap(),
            ECHO.addr.parse().unwrap(),
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
        assert_eq!(specs[0].component.to_string(), "hello.wasm (embedded)");
    }
}
