// WebSocket echo load: N connections (the ws package's client), each sending a binary
// message of SIZE bytes and waiting for its echo, again and again, for SECONDS; prints
// messages/s and p50 / p99 round trips. Every echo is checked.
// node wsload.js URL CONNS SIZE SECONDS
const WebSocket = require('ws');
const [url, conns = 32, size = 64, seconds = 5] = process.argv.slice(2);
const payload = Buffer.alloc(+size, 7);
const samples = [];
let count = 0;
let open = 0;
const until = () => start + seconds * 1000;
let start = 0;
const sockets = [];
for (let i = 0; i < +conns; i++) {
  const ws = new WebSocket(url);
  sockets.push(ws);
  ws.on('open', () => {
    if (++open === +conns) {
      start = Date.now();
      for (const s of sockets) send(s);
    }
  });
  ws.on('message', (data) => {
    if (!data.equals(payload)) throw new Error('echo differs');
    const t = process.hrtime.bigint();
    samples.push(Number(t - ws.sent) / 1000);
    count++;
    if (Date.now() < until()) send(ws);
    else ws.terminate();
  });
  ws.on('error', (e) => {
    console.error('error', e.message);
    process.exit(1);
  });
}
function send(ws) {
  ws.sent = process.hrtime.bigint();
  ws.send(payload);
}
process.on('exit', () => {
  samples.sort((a, b) => a - b);
  const q = (p) => samples[Math.floor((samples.length - 1) * p)] || 0;
  const secs = (Date.now() - start) / 1000;
  console.log(`${Math.round(count / secs)} msg/s p50 ${q(0.5).toFixed(0)} us p99 ${q(0.99).toFixed(0)} us`);
});
