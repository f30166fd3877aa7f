// A WebSocket server on the `ws` package's API ({ noServer: true } and handleUpgrade on
// http's 'upgrade'): it echoes messages and, on request, pings, closes with a code,
// sends fragments or terminates; it logs every event it sees.
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('use a WebSocket');
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 65536 });
server.on('upgrade', (req, socket, head) => {
  console.log('upgrade', req.url, req.headers['sec-websocket-protocol'] || '-', head.length);
  if (req.url === '/refuse') {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
wss.on('headers', (headers, req) => console.log('headers', headers.length, req.url));

let n = 0;
wss.on('connection', (ws, req) => {
  const id = ++n;
  console.log('connection', id, req.url, JSON.stringify(ws.protocol), ws.readyState, ws.readyState === WebSocket.OPEN);
  ws.on('message', (data, isBinary) => {
    const shown = isBinary ? data.toString('hex').slice(0, 24) : data.toString().slice(0, 24);
    console.log('message', id, isBinary, data.length, JSON.stringify(shown), Buffer.isBuffer(data));
    const text = isBinary ? '' : data.toString();
    if (text === 'ping me') {
      ws.ping('p1');
    } else if (text.startsWith('close ')) {
      const [, code, reason] = text.split(' ');
      ws.close(+code, reason);
      console.log('after close', ws.readyState);
      ws.send('too late', (err) => console.log('send after close', err && err.message));
    } else if (text === 'fragments') {
      ws.send('frag', { fin: false });
      ws.send('ment', { fin: false });
      ws.send('ed', { fin: true });
    } else if (text === 'terminate') {
      ws.terminate();
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('ping', (d) => console.log('ping', id, JSON.stringify(d.toString())));
  ws.on('pong', (d) => console.log('pong', id, JSON.stringify(d.toString())));
  ws.on('error', (e) => console.log('error', id, e.code, e.message));
  ws.on('close', (code, reason) => {
    console.log('close', id, code, JSON.stringify(reason.toString()), ws.readyState);
    if (req.url === '/last') server.close(() => console.log('done'));
  });
});
server.listen(0, '127.0.0.1', () => console.log('ready', server.address().port));
