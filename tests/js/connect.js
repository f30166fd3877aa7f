// net.connect: a client with Node's events, to the peer the test runs (its port is the
// first argument), then a refused connection.
const net = require('net');

const port = +process.argv[2];
const client = net.connect({ port, host: '127.0.0.1' }, () => {
  console.log('connect callback', client.remotePort === port, client.remoteAddress, client.remoteFamily, client.readyState);
  client.write('hello peer\n');
});
console.log('connecting', client.connecting, client.pending, client.readyState);
client.setEncoding('utf8');
client.on('ready', () => console.log('ready event'));
client.on('data', (d) => {
  console.log('data', JSON.stringify(d));
  client.end();
});
client.on('end', () => console.log('end'));
client.on('close', (hadError) => {
  console.log('close', hadError, client.bytesRead, client.bytesWritten);
  // A port nobody listens on: ECONNREFUSED, then close with hadError.
  const refused = net.createConnection(port + 1, '127.0.0.1');
  refused.on('error', (err) => console.log('error', err.code, err.syscall, err.address, err.port === port + 1));
  refused.on('close', (hadError) => {
    console.log('refused close', hadError);
    console.log('done');
  });
});
