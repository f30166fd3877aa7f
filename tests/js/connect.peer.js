// The server connect.js talks to: answers one line and logs what it saw.
const net = require('net');

const server = net.createServer((s) => {
  s.on('data', (d) => {
    console.log('peer got', JSON.stringify(d.toString()));
    s.write('hello client\n');
  });
  s.on('end', () => {
    console.log('peer saw end');
    server.close();
    console.log('done');
  });
});
server.listen(0, '127.0.0.1', () => console.log('ready', server.address().port));
