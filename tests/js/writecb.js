// write(data, encoding, cb) callbacks, end(cb), finish / close order, byte counts.
const net = require('net');

const server = net.createServer((socket) => {
  socket.once('data', (d) => {
    console.log('data', d.length, 'bytesRead', socket.bytesRead);
    const r1 = socket.write('68656c6c6f20', 'hex', (err) => console.log('cb 1', err));
    const r2 = socket.write(Buffer.from('wor'), (err) => console.log('cb 2', err));
    const r3 = socket.write('bGQh', 'base64', (err) => console.log('cb 3', err));
    const r4 = socket.write('\u00e9\u00ff', 'latin1');
    console.log('returned', r1, r2, r3, r4, 'bytesWritten', socket.bytesWritten);
    socket.end('\n', () => console.log('end callback'));
  });
  socket.on('error', (err) => console.log('error', err.code, err.message));
  socket.on('finish', () => {
    console.log('finish', socket.writableFinished, socket.writableEnded);
    // Writing after end: the callback gets the error, then an 'error' event.
    socket.write('late', (err) => console.log('late cb', err && err.code));
  });
  socket.on('end', () => console.log('end'));
  socket.on('close', (hadError) => {
    console.log('close', hadError, socket.bytesRead, socket.bytesWritten, socket.destroyed);
    console.log('done');
  });
});
server.listen(0, () => console.log('ready', server.address().port));
