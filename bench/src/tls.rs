//! TLS in the comparison: a certificate made for the run, the native reference (a
//! tokio-rustls echo, the same rustls and *ring* netlet uses), Node's
//! `tls.createServer` echo, and the two TLS loads: streaming, and full handshakes per
//! second (connect, handshake, 32 B echo, close; no session resumption, for any server).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::load::Outcome;

/// A self-signed certificate for `localhost` (and its key) in the run's own folder.
pub fn make_certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let (cert, key) = (dir.join("bench-cert.pem"), dir.join("bench-key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    Ok((cert, key))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Serves a TLS echo (tokio-rustls: handshake, then `read`/`write_all`) on `addr` until
/// killed; prints `tls ADDR`.
pub fn serve_native(
    threads: usize,
    addr: SocketAddr,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<()> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
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
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("tls {}", listener.local_addr()?);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            // As netlet does for TLS: whole records need no Nagle.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
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
                let _ = stream.shutdown().await;
            });
        }
    })
}

/// Node's TLS echo: `tls.createServer({cert, key}, s => s.pipe(s))`; prints `tls ADDR`.
pub const NODE_TLS_ECHO: &str = r#"
const tls = require('tls'), fs = require('fs');
const [cert, key] = process.argv.slice(1);
const srv = tls.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)},
  s => { s.on('error', () => {}); s.pipe(s); });
srv.on('tlsClientError', () => {});
srv.listen(0, '127.0.0.1', () => console.log('tls 127.0.0.1:' + srv.address().port));
"#;

/// A client that trusts `cert` and never resumes a session (every connection is a full
/// handshake).
pub fn connector(cert: &Path) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert)? {
        roots.add(c?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn connect(
    addr: SocketAddr,
    tls: &TlsConnector,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost")?;
    tls.connect(name, tcp).await.context("TLS handshake")
}

fn byte(conn: u64, i: u64) -> u8 {
    (conn.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)) % 251) as u8
}

/// TLS streaming: `conns` connections write `chunk`-byte chunks while reading the echo
/// (every byte checked), for `duration`. Rate: echoed bytes per second.
pub async fn stream(
    addr: SocketAddr,
    cert: &Path,
    conns: usize,
    chunk: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let tls = connector(cert)?;
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let local = tokio::task::LocalSet::new();
    let totals = local
        .run_until(async {
            let mut tasks = Vec::new();
            for c in 0..conns as u64 {
                let tls = tls.clone();
                tasks.push(tokio::task::spawn_local(async move {
                    let s = connect(addr, &tls).await?;
                    let (mut r, mut w) = tokio::io::split(s);
                    let writer = tokio::task::spawn_local(async move {
                        let mut buf = vec![0; chunk];
                        let mut at = 0u64;
                        while Instant::now() < deadline {
                            for (i, b) in buf.iter_mut().enumerate() {
                                *b = byte(c, at + i as u64);
                            }
                            w.write_all(&buf).await?;
                            at += chunk as u64;
                        }
                        w.shutdown().await?;
                        anyhow::Ok(at)
                    });
                    let mut buf = vec![0; 64 * 1024];
                    let mut at = 0u64;
                    loop {
                        let n = match r.read(&mut buf).await {
                            Ok(n) => n,
                            // A server that closes without close_notify ends the stream too.
                            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                            Err(e) => return Err(e).context("reading the TLS stream"),
                        };
                        if n == 0 {
                            break;
                        }
                        for (i, b) in buf[..n].iter().enumerate() {
                            ensure!(
                                *b == byte(c, at + i as u64),
                                "TLS stream: connection {c} byte mismatch near offset {at}"
                            );
                        }
                        at += n as u64;
                    }
                    let written = writer.await.context("writer panicked")??;
                    ensure!(at == written, "TLS stream: wrote {written}, {at} came back");
                    anyhow::Ok(at)
                }));
            }
            let mut totals = Vec::new();
            for t in tasks {
                totals.push(t.await.context("a connection panicked")??);
            }
            anyhow::Ok(totals)
        })
        .await?;
    Ok(Outcome {
        rate: totals.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64(),
        ..Outcome::default()
    })
}

/// TLS handshakes: `concurrency` loops of connect, full handshake, 32 B echo, close.
/// Rate: connections per second.
pub async fn churn(
    addr: SocketAddr,
    cert: &Path,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let tls = connector(cert)?;
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let local = tokio::task::LocalSet::new();
    let mut latencies: Vec<u32> = local
        .run_until(async {
            let mut tasks = Vec::new();
            for c in 0..concurrency as u64 {
                let tls = tls.clone();
                tasks.push(tokio::task::spawn_local(async move {
                    let mut lat = Vec::new();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let mut s = connect(addr, &tls).await?;
                        let msg: Vec<u8> = (0..32).map(|i| byte(c, n + i)).collect();
                        s.write_all(&msg).await?;
                        let mut back = [0u8; 32];
                        s.read_exact(&mut back)
                            .await
                            .context("reading a TLS echo")?;
                        ensure!(back[..] == msg[..], "TLS churn: different bytes back");
                        drop(s);
                        lat.push(t.elapsed().as_micros() as u32);
                        n += 1;
                    }
                    anyhow::Ok(lat)
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.context("a loop panicked")??);
            }
            anyhow::Ok(all)
        })
        .await?;
    let secs = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        (!latencies.is_empty())
            .then(|| f64::from(latencies[((latencies.len() - 1) as f64 * p) as usize]))
    };
    Ok(Outcome {
        rate: latencies.len() as f64 / secs,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        lost: None,
    })
}
