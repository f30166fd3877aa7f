// Measures a swap under load: one connection echoing (max round trip), new connections
// every 5 ms (refused / which code), for a bounded time.
const net = require('net');
const port = +process.argv[2], dur = +process.argv[3];
let rt = [], maxRt = 0, ok = 0, failed = 0, echoBanners = 0, helloBanners = 0;
const a = net.connect(port, '127.0.0.1');
let buf = Buffer.alloc(0), sent = 0, gotBanner = false;
const msg = Buffer.alloc(64, 'x');
function ping() { sent = process.hrtime.bigint(); a.write(msg); }
a.on('data', d => {
  buf = Buffer.concat([buf, d]);
  if (!gotBanner) { if (buf.length < 13) return; buf = buf.subarray(13); gotBanner = true; ping(); return; }
  while (buf.length >= 64) { buf = buf.subarray(64); const t = Number(process.hrtime.bigint() - sent) / 1e6; rt.push(t); if (t > maxRt) maxRt = t; ping(); }
});
a.on('error', e => { console.log('A error', e.message); process.exit(1); });
const iv = setInterval(() => {
  const c = net.connect(port, '127.0.0.1');
  let b = Buffer.alloc(0);
  c.on('data', d => { b = Buffer.concat([b, d]); if (b.length >= 13) { ok++; if (b.subarray(0, 4).toString() === 'Echo') echoBanners++; else helloBanners++; c.destroy(); } });
  c.on('error', () => { failed++; });
}, 5);
setTimeout(() => {
  clearInterval(iv);
  rt.sort((x, y) => x - y);
  console.log(JSON.stringify({ pings: rt.length, p50_ms: rt[rt.length >> 1].toFixed(3), p99_ms: rt[Math.floor(rt.length * 0.99)].toFixed(3), max_ms: maxRt.toFixed(2), new_ok: ok, new_failed: failed, echo: echoBanners, hello: helloBanners }));
  process.exit(0);
}, dur * 1000);
