// socket.setTimeout: an idle socket gets 'timeout' (a notice), and the handler ends it.
const net = require('net');

const server = net.createServer((socket) => {
  const start = Date.now();
  socket.setTimeout(300, () => console.log('timeout callback'));
  console.log('timeout set', socket.timeout);
  socket.on('data', (d) => console.log('data', d.toString()));
  socket.on('timeout', () => {
    const idle = Date.now() - start;
    console.log('timeout event, waited long enough', idle >= 250);
    socket.end('idle too long\n');
  });
  socket.on('close', () => console.log('done'));
});
server.listen(0, () => console.log('ready', server.address().port));
