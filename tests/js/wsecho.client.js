// Drives tests/js/wsecho.js with the `ws` package's client (and raw sockets for what
// that client will not send): messages, fragments both ways, ping / pong, close codes
// from either side, protocol errors (unmasked frame, bad UTF-8, too large), refused
// handshakes, terminate.
const net = require('net');
const WebSocket = require('ws');

const port = +process.argv[2];
const base = `ws://127.0.0.1:${port}`;

function open(path, protocols) {
  return new Promise((resolve) => {
    const ws = new WebSocket(base + path, protocols);
    const tag = path;
    ws.on('open', () => {
      console.log(tag, 'open', JSON.stringify(ws.protocol));
      resolve(ws);
    });
    ws.on('message', (d, isBinary) => console.log(tag, 'message', isBinary, JSON.stringify(isBinary ? d.toString('hex') : d.toString().slice(0, 24)), d.length));
    ws.on('ping', (d) => console.log(tag, 'ping', JSON.stringify(d.toString())));
    ws.on('pong', (d) => console.log(tag, 'pong', JSON.stringify(d.toString())));
    ws.on('unexpected-response', (req, res) => {
      console.log(tag, 'unexpected response', res.statusCode);
      ws.terminate();
      resolve(null);
    });
    ws.on('error', (e) => console.log(tag, 'error', e.message));
    ws.closed = new Promise((done) =>
      ws.on('close', (code, reason) => {
        console.log(tag, 'close', code, JSON.stringify(reason.toString()));
        done();
      }),
    );
  });
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw handshake, then `frames`; prints every byte that comes back. */
function raw(path, headers, frames) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    const got = [];
    c.on('connect', () => {
      c.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headers}\r\n`);
      setTimeout(() => c.write(Buffer.from(frames.replace(/ /g, ''), 'hex')), 100);
    });
    c.on('data', (d) => got.push(d));
    c.on('end', () => console.log(path, 'raw end'));
    c.on('close', () => {
      const all = Buffer.concat(got).toString('latin1');
      const at = all.indexOf('\r\n\r\n');
      console.log(path, 'raw head', JSON.stringify(all.slice(0, at).replace(/Date: [^\r]*\r\n/, '')));
      console.log(path, 'raw rest', Buffer.from(all.slice(at + 4), 'latin1').toString('hex'));
      resolve();
    });
  });
}

const KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

(async () => {
  // Messages, fragments, ping / pong; the client closes with a code.
  let ws = await open('/one', ['chat', 'other']);
  ws.send('hello');
  ws.send(Buffer.from([0, 1, 2, 255]));
  ws.send('fra', { fin: false });
  ws.send('gmen', { fin: false });
  ws.send('ted', { fin: true });
  ws.send('');
  ws.send(Buffer.alloc(40000, 'x'), { binary: false });
  ws.ping('client ping');
  ws.send('ping me');
  ws.send('fragments');
  await wait(300);
  ws.close(4001, 'client bye');
  await ws.closed;
  await wait(100); // the server's close of this connection before the next one (order of the log)

  // The server closes with a code; a close without a code.
  ws = await open('/two');
  ws.send('close 4002 server-bye');
  await ws.closed;
  await wait(100); // the server's close of this connection before the next one (order of the log)
  ws = await open('/three');
  ws.close();
  await ws.closed;
  await wait(100); // the server's close of this connection before the next one (order of the log)

  // Too large (maxPayload 65536): 1009; text that is not UTF-8: 1007.
  ws = await open('/four');
  ws.send(Buffer.alloc(70000, 'y'));
  await ws.closed;
  await wait(100); // the server's close of this connection before the next one (order of the log)
  ws = await open('/five');
  ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
  await ws.closed;
  await wait(100); // the server's close of this connection before the next one (order of the log)

  // What the client package will not send: an unmasked frame (1002).
  await raw('/six', KEY, '81 02 68 69');
  // Refused handshakes: by the handler, a bad version, a bad key.
  await open('/refuse');
  await raw('/seven', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n', '');
  await raw('/eight', 'Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n', '');
  // A masked ping, a close with a reason, by hand: the pong and the echoed close.
  await raw('/nine', KEY, '89 82 01 02 03 04 71 6b  88 84 00 00 00 00 03 e8 6f 6b');

  // The server terminates: 1006 on both sides.
  ws = await open('/last');
  ws.send('terminate');
  await ws.closed;
  await wait(100); // the server's close of this connection before the next one (order of the log)
})();
