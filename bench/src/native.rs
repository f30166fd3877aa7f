//! The reference server: a plain tokio echo (`read` then `write_all` per connection,
//! a `recv_from`/`send_to` loop for UDP), on one thread or on a multi-thread runtime.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves TCP and UDP echo on `tcp` / `udp` until killed; prints `tcp ADDR`, `udp ADDR`.
pub fn serve(threads: usize, tcp: SocketAddr, udp: SocketAddr) -> anyhow::Result<()> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(tcp).await?;
        let socket = tokio::net::UdpSocket::bind(udp).await?;
        println!("tcp {}", listener.local_addr()?);
        println!("udp {}", socket.local_addr()?);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                if let Ok((n, from)) = socket.recv_from(&mut buf).await {
                    let _ = socket.send_to(&buf[..n], from).await;
                }
            }
        });
        loop {
            // A failed accept (out of file descriptors, an aborted handshake) must not
            // end the reference server mid-run.
            let Ok((mut stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    })
}

/// Node's echo servers, the system of the seeds: `net.createServer(s => s.pipe(s))` and
/// a `dgram` echo.
pub const NODE_ECHO: &str = r#"
const net = require('net'), dgram = require('dgram');
const srv = net.createServer(s => { s.on('error', () => {}); s.pipe(s); });
srv.listen(0, '127.0.0.1', () => {
  console.log('tcp 127.0.0.1:' + srv.address().port);
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(m, r.port, r.address));
  u.bind(0, '127.0.0.1', () => console.log('udp 127.0.0.1:' + u.address().port));
});
"#;
