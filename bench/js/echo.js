// TCP echo, as the seed's pipe server: the ping-pong and stream rows.
const net = require('net');
const server = net.createServer((socket) => socket.pipe(socket));
server.listen(+(process.argv[2] || 7001), '127.0.0.1', () => console.log('listening', server.address().port));
