// Writes 8 MiB to a slow reader, honouring write() returning false and 'drain'.
const net = require('net');

const TOTAL = 8 * 1024 * 1024;
const CHUNK = 64 * 1024;
const server = net.createServer((socket) => {
  let sent = 0;
  let waited = false;
  function pump() {
    while (sent < TOTAL) {
      // Block n of the stream is all (n & 0xff): the reader checks every byte.
      const chunk = Buffer.alloc(CHUNK, (sent / CHUNK) & 0xff);
      sent += chunk.length;
      if (!socket.write(chunk)) {
        waited = true;
        socket.once('drain', pump);
        return;
      }
    }
    console.log('wrote', sent, 'waited for drain', waited, 'bytesWritten', socket.bytesWritten);
    socket.end();
  }
  pump();
  socket.on('close', (hadError) => {
    console.log('close', hadError);
    console.log('done');
  });
});
server.listen(0, () => console.log('ready', server.address().port));
