//! The seeds' demo, served by `netlet` with no arguments: the greeting server on TCP
//! 8124, the pipe echo server on TCP 1337, the UDP echo server on 41234 and Node's
//! `Hello World` HTTP server on 8080, each an example component embedded in this
//! binary.

/// An embedded example component.
pub struct Example {
    pub name: &'static str,
    pub wasm: &'static [u8],
}

macro_rules! example {
    ($name:literal, $file:literal) => {
        Example {
            name: $name,
            wasm: include_bytes!(concat!(env!("NETLET_GUEST_DIR"), "/", $file)),
        }
    };
}

/// The seed's greeting server (`net.createServer`, port 8124).
pub const HELLO: Example = example!("hello", "hello.wasm");
/// The seed's `socket.pipe(socket)` echo server (port 1337).
pub const ECHO: Example = example!("echo", "echo.wasm");
/// The seed's UDP server (`dgram`, port 41234), echoing each datagram.
pub const UDP_ECHO: Example = example!("udp_echo", "udp_echo.wasm");
/// Node's canonical HTTP server (`http.createServer`, port 8080).
pub const HTTP_HELLO: Example = example!("http_hello", "http_hello.wasm");

/// What to type to talk to the demo's servers.
pub fn instructions(hello: &str, echo: &str, udp: &str, http: &str) -> String {
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
Ctrl-C stops the demo.
"
    )
}
