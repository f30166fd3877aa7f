// A greeting on connect: time to the greeting and memory per connection, the
// --isolation connection rows.
const net = require('net');
const server = net.createServer((socket) => {
  socket.write('hello\n');
  socket.on('data', (d) => socket.write(d));
});
server.listen(+(process.argv[2] || 7005), '127.0.0.1', () => console.log('listening', server.address().port));
