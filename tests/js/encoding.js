// setEncoding: characters split across reads still arrive whole; other encodings too.
const net = require('net');

const server = net.createServer((socket) => {
  let mode = null;
  socket.on('data', (d) => {
    if (mode === null) {
      // The first chunk names the encoding.
      mode = d.toString();
      socket.setEncoding(mode);
      console.log('encoding', mode, socket.readableEncoding);
      socket.write('ok');
      return;
    }
    console.log(typeof d, JSON.stringify(d));
    if (typeof d === 'string' && d.includes('.')) socket.end();
  });
  socket.on('close', () => console.log('done'));
});
server.listen(0, () => console.log('ready', server.address().port));
