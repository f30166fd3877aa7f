// allowHalfOpen: the peer's end does not end our side; we answer after it, then end.
const net = require('net');

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => (got += d));
  socket.on('end', () => {
    console.log('end', JSON.stringify(got), socket.writable, socket.readyState);
    setTimeout(() => {
      console.log('writing after end', socket.write(`you sent ${got.length} chars\n`));
      socket.end('bye\n', () => console.log('end callback'));
    }, 50);
  });
  socket.on('finish', () => console.log('finish'));
  socket.on('close', (hadError) => {
    console.log('close', hadError);
    console.log('done');
  });
});
server.listen(0, () => console.log('ready', server.address().port));
