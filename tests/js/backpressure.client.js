// A slow reader: pauses after every 256 KiB for 20 ms; checks every byte.
const net = require('net');

const c = net.connect(+process.argv[2], '127.0.0.1');
let total = 0;
let sinceStop = 0;
let bad = 0;
c.on('data', (d) => {
  for (let i = 0; i < d.length; i++) {
    if (d[i] !== ((total + i) >>> 16 & 0xff)) bad++;
  }
  total += d.length;
  sinceStop += d.length;
  if (sinceStop >= 256 * 1024) {
    sinceStop = 0;
    c.pause();
    setTimeout(() => c.resume(), 20);
  }
});
c.on('end', () => console.log('received', total, 'bad bytes', bad));
c.on('close', (hadError) => console.log('close', hadError));
