// Drives tests/js/pipes.js: one connection (or pair) per form of pipe, one after the
// other, each step waiting for what the previous one should have brought.
const net = require('net');

const port = +process.argv[2];

function open(first) {
  const c = net.connect(port, '127.0.0.1');
  c.text = '';
  c.waiters = [];
  c.ended = new Promise((resolve) => c.on('end', resolve));
  c.closed = new Promise((resolve) => c.on('close', resolve));
  c.on('error', (err) => console.log('client error', err.code));
  c.on('data', (d) => {
    c.text += d.toString('latin1');
    c.waiters = c.waiters.filter(([s, resolve]) => (c.text.includes(s) ? (resolve(), false) : true));
  });
  c.until = (s) => (c.text.includes(s) ? Promise.resolve() : new Promise((resolve) => c.waiters.push([s, resolve])));
  c.write(first);
  return c;
}

// The server's side closes about when the client's does: its log lines for one form come
// before the next form's connection.
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

async function main() {
  // Bytes read before the pipe come back first.
  let c = open('before\nEARLY');
  await c.until('[before]EARLY');
  c.write('more');
  await c.until('more');
  c.end();
  await c.ended;
  await c.closed;
  await settle();
  console.log('before:', JSON.stringify(c.text));

  // Two connections piped into each other; an end goes across.
  const a = open('pair-a\n');
  await settle();
  const b = open('pair-b\n');
  await a.until('go\n');
  a.write('ping');
  await b.until('ping');
  b.write('pong');
  await a.until('pong');
  a.end();
  await b.ended;
  b.end();
  await Promise.all([a.closed, b.closed]);
  await settle();
  console.log('pair:', JSON.stringify(a.text), JSON.stringify(b.text));

  // A data listener after the pipe.
  c = open('listen\n');
  await c.until('piped\n');
  c.write('one');
  await c.until('one');
  await c.until('listening\n');
  c.write('two');
  await c.until('two');
  c.end();
  await c.ended;
  await c.closed;
  await settle();
  console.log('listen: got all', ['piped\n', 'one', 'listening\n', 'two'].every((s) => c.text.includes(s)));

  // unpipe: the echo stops, the data comes to the handler.
  c = open('unpipe\n');
  c.write('one');
  await c.until('one');
  await c.until('unpiped\n');
  c.write('two');
  await c.until('bye\n');
  await c.ended;
  c.end();
  await c.closed;
  await settle();
  console.log('unpipe:', JSON.stringify(c.text));

  // { end: false }: the handler writes after the source's end.
  c = open('keep\n');
  c.write('abc');
  await c.until('abc');
  c.end();
  await c.ended;
  await c.closed;
  await settle();
  console.log('keep:', JSON.stringify(c.text));

  // The destination goes: its source is unpiped and paused, then ended by the handler.
  const src = open('gone-src\n');
  await settle();
  const dest = open('gone-dest\n');
  await dest.until('ready\n');
  src.write('x');
  await dest.until('x');
  dest.resetAndDestroy();
  await dest.closed;
  await src.until('dest gone\n');
  await src.ended;
  src.end();
  await src.closed;
  await settle();
  console.log('gone:', JSON.stringify(src.text), JSON.stringify(dest.text));
}

main().then(
  () => console.log('done'),
  (err) => {
    console.log('client failed', err);
    process.exit(1);
  },
);
