// UDP echo: the UDP row.
const dgram = require('dgram');
const socket = dgram.createSocket('udp4');
socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
socket.bind(+(process.argv[2] || 7002), '127.0.0.1', () => console.log('listening', socket.address().port));
