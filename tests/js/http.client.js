// Drives tests/js/http.js: raw requests on one kept-alive connection, one at a time
// (bytes as received, the Date header's value replaced), Node's own http client with a
// keep-alive agent, HTTP/1.0, a malformed request; then /done.
const net = require('net');
const http = require('http');

const port = +process.argv[2];

function show(buf) {
  return JSON.stringify(buf.toString('latin1').replace(/Date: [^\r]*\r\n/, 'Date: DATE\r\n').replace(/b{1000,}/, (m) => `b*${m.length}`));
}

/** A response is whole: its head, then its framing's end. */
function complete(buf, head) {
  const s = buf.toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const h = s.slice(0, end);
  const rest = s.length - end - 4;
  if (head || / (204|304) /.test(h.split('\r\n')[0])) return true;
  const len = /content-length: (\d+)/i.exec(h);
  if (len) return rest >= +len[1];
  if (/transfer-encoding: chunked/i.test(h)) return s.endsWith('\r\n0\r\n\r\n');
  return false;
}

function raw(requests) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let i = 0;
    const next = () => {
      if (i === requests.length) return;
      const r = requests[i++];
      buf = Buffer.alloc(0);
      for (const part of [].concat(r.send)) c.write(part);
      r.done = false;
      c.current = r;
    };
    c.on('connect', next);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = c.current;
      if (r && !r.done && complete(buf, r.head)) {
        r.done = true;
        console.log('response', show(buf));
        next();
      }
    });
    c.on('end', () => {
      if (c.current && !c.current.done) console.log('response at end', show(buf));
      console.log('server ended');
    });
    c.on('close', () => resolve());
  });
}

function nodeClient() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = (opts, body) =>
    new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, agent, ...opts }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const h = { ...res.headers };
          delete h.date;
          console.log('node client', res.statusCode, res.statusMessage, JSON.stringify(h), JSON.stringify(Buffer.concat(chunks).toString().slice(0, 40)), req.reusedSocket);
          resolve();
        });
      });
      if (body) for (const b of body) req.write(b);
      req.end();
    });
  return one({ path: '/hello' })
    .then(() => one({ path: '/echo', method: 'POST' }, ['chunk-a ', 'chunk-b']))
    .then(() => one({ path: '/chunked' }))
    .then(() => one({ path: '/big' }))
    .then(() => agent.destroy());
}

// Between connections: the previous one's close is logged before the next connects.
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

(async () => {
  await raw([
    { send: 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n' },
    { send: 'HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n', head: true },
    { send: 'GET /length HTTP/1.1\r\nHost: x\r\nX-Test: a\r\nX-Test: b\r\n\r\n' },
    { send: ['POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', '6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n'] },
    { send: ['POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello', ' there'] },
    { send: 'GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n' },
    { send: 'GET /empty HTTP/1.1\r\nHost: x\r\n\r\n' },
    { send: 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n' },
    { send: 'GET /close HTTP/1.1\r\nHost: x\r\n\r\n' },
  ]);
  await settle();
  await nodeClient();
  await settle();
  await raw([{ send: 'GET /hello HTTP/1.0\r\n\r\n' }]);
  await settle();
  await raw([{ send: 'GET /hello HTTP/1.1\r\n\r\n' }]);
  await settle();
  await raw([{ send: 'BOGUS\r\n\r\n' }]);
  await settle();
  await raw([{ send: 'GET /done HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' }]);
})();
