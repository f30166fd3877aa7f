// A UDP echo server several peers write to.
const dgram = require('dgram');

const server = dgram.createSocket('udp4');
let count = 0;
server.on('message', (msg, rinfo) => {
  count++;
  console.log('message', JSON.stringify(msg.toString()), rinfo.family, rinfo.size, typeof rinfo.port);
  server.send(`echo ${msg}`, rinfo.port, rinfo.address, (err, bytes) => {
    console.log('sent', err, bytes);
    if (count === 6) server.close(() => console.log('done'));
  });
});
server.on('listening', () => {
  const a = server.address();
  console.log('ready', a.port, a.family, a.address);
});
server.on('close', () => console.log('close event'));
server.bind(0, '127.0.0.1');
