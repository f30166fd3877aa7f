// Sends 5 bytes, reads until the server's FIN, then ends.
const net = require('net');

const c = net.connect(+process.argv[2], '127.0.0.1', () => c.write('12345'));
const got = [];
c.on('data', (d) => got.push(d));
c.on('end', () => {
  console.log('got', JSON.stringify(Buffer.concat(got).toString('latin1')));
  c.end();
});
c.on('close', (hadError) => console.log('close', hadError));
