// Sends text, binary and a large chunk, then half-closes; prints what came back.
const net = require('net');
const crypto = require('crypto');

const chunks = [Buffer.from('hello'), Buffer.from([0, 1, 0xff, 0x80, 13, 10]), Buffer.alloc(200000, 'x')];
const c = net.connect(+process.argv[2], '127.0.0.1');
const got = [];
c.on('connect', () => {
  console.log('connect');
  for (const chunk of chunks) c.write(chunk);
  c.end();
});
c.on('data', (d) => got.push(d));
c.on('end', () => {
  const all = Buffer.concat(got);
  console.log('banner', JSON.stringify(all.subarray(0, 13).toString()));
  const body = all.subarray(13);
  console.log('body', body.length, crypto.createHash('sha256').update(body).digest('hex'));
  console.log('end');
});
c.on('close', (hadError) => console.log('close', hadError));
