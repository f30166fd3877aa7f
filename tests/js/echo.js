// Echo with pipe, as the seed's server on 1337, on the port it is given.
const net = require('net');

const server = net.createServer((socket) => {
  console.log('connection', socket.remoteFamily, typeof socket.remotePort, socket.readyState);
  socket.write('Echo server\r\n');
  socket.pipe(socket);
  socket.on('end', () => console.log('end', socket.readyState));
  socket.on('finish', () => console.log('finish'));
  socket.on('close', (hadError) => {
    console.log('close', hadError, socket.bytesRead, socket.bytesWritten, socket.readyState);
    server.close(() => console.log('done'));
  });
});
server.on('listening', () => console.log('listening event'));
server.listen(0, '127.0.0.1', () => console.log('ready', server.address().port, server.address().family));
