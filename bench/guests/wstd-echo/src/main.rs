//! `wstd-echo`: a TCP echo server that owns its loop over `wasi:sockets` through wstd,
//! the alternative netlet is compared with. Listens on its first argument (default
//! `127.0.0.1:0`) and prints `listening ADDR`.

use wstd::io;
use wstd::iter::AsyncIterator;
use wstd::net::TcpListener;

#[wstd::main]
async fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(addr.as_str()).await?;
    println!("listening {}", listener.local_addr()?);
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        let stream = stream?;
        wstd::runtime::spawn(async move {
            let _ = io::copy(&stream, &stream).await;
        })
        .detach();
    }
    Ok(())
}
