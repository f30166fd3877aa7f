//! The Node.js servers the comparison runs beside netlet: their programs, and where the
//! npm packages they need are installed.

use std::path::PathBuf;

use anyhow::ensure;

/// Node's `http` server answering as `http-hello` (and 1 MiB at `/1mib`).
pub const NODE_HTTP: &str = r#"
const http = require('http');
const big = Buffer.alloc(1 << 20, 'x');
const srv = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(req.url === '/1mib' ? big : 'Hello World\n');
});
srv.listen(0, '127.0.0.1', () => console.log('tcp 127.0.0.1:' + srv.address().port));
"#;

/// Node's `ws` echo server.
pub const NODE_WS: &str = r#"
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 << 20 });
wss.on('connection', ws => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on('listening', () => console.log('tcp 127.0.0.1:' + wss.address().port));
"#;

/// Where `scripts/test` installs the Node clients (`tests/clients/package-lock.json`):
/// `<target>/test-clients/node_modules`, or under `$NETLET_TEST_CLIENTS`.
pub fn node_modules() -> anyhow::Result<PathBuf> {
    let clients = match std::env::var_os("NETLET_TEST_CLIENTS") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
            .join("test-clients"),
    };
    let modules = clients.join("node_modules");
    ensure!(
        modules.join("ws").is_dir(),
        "Node's ws is not installed in {}: run scripts/test once (it installs the clients)",
        modules.display()
    );
    Ok(modules)
}
