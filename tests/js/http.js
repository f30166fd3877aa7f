// An HTTP server answering in the ways a client can tell apart: fixed length, chunked,
// no body (HEAD, 204), a request body echoed (Content-Length or chunked, with trailers),
// Connection: close, HTTP/1.0; it logs what it sees of each request.
const http = require('http');

let n = 0;
const server = http.createServer((req, res) => {
  const i = ++n;
  const framing = req.headers['transfer-encoding'] || req.headers['content-length'] || '-';
  console.log('request', i, req.method, req.url, req.httpVersion, framing, req.headers['x-test'] || '-');
  const body = [];
  req.on('data', (c) => body.push(c));
  req.on('end', () => {
    const all = Buffer.concat(body);
    console.log('body', i, all.length, JSON.stringify(all.toString().slice(0, 24)), JSON.stringify(req.trailers));
    switch (req.url) {
      case '/hello':
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('Hello World\n');
        break;
      case '/length':
        res.setHeader('X-Count', String(i));
        res.setHeader('Set-Cookie', ['a=1', 'b=2']);
        console.log('has', res.hasHeader('x-count'), res.getHeader('X-COUNT'), JSON.stringify(res.getHeaderNames()));
        res.end('fixed length');
        break;
      case '/chunked':
        res.statusCode = 201;
        res.statusMessage = 'Made';
        console.log('write', res.write('one,'), res.headersSent);
        res.write(Buffer.from('two,'));
        setTimeout(() => res.end('three', () => console.log('end callback', i)), 20);
        break;
      case '/echo':
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': all.length });
        res.end(all);
        break;
      case '/big':
        res.writeHead(200, [['Content-Type', 'text/plain'], ['X-Big', 'yes']]);
        res.write(Buffer.alloc(300000, 'b'));
        res.end('!');
        break;
      case '/empty':
        res.statusCode = 204;
        res.end();
        break;
      case '/close':
        res.setHeader('Connection', 'close');
        res.end('bye');
        break;
      case '/done':
        // The server closes once this connection has: netlet's server 'close' comes after
        // its last socket's (Node's, when close() was called before, comes first).
        req.socket.last = true;
        res.end('done');
        break;
      default:
        res.writeHead(404, 'Nope');
        res.end();
    }
  });
  res.on('finish', () => console.log('finish', i, res.statusCode, res.writableEnded, res.writableFinished));
});
server.on('connection', (socket) => {
  console.log('connection');
  socket.on('close', () => {
    console.log('socket close');
    if (socket.last) server.close(() => console.log('done'));
  });
});
server.listen(0, '127.0.0.1', () => console.log('ready', server.address().port));
