// Receives dgramsend.js's datagrams and prints them in order.
const dgram = require('dgram');

const s = dgram.createSocket('udp4');
let n = 0;
s.on('message', (m, r) => {
  console.log('got', JSON.stringify(m.toString()), r.size);
  if (++n === 8) {
    s.close();
    console.log('done');
  }
});
s.bind(0, '127.0.0.1', () => console.log('ready', s.address().port));
