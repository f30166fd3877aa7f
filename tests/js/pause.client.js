// Sends one line, then (once the server says it paused) a second one, then ends.
const net = require('net');

const c = net.connect(+process.argv[2], '127.0.0.1', () => c.write('first'));
c.on('data', (d) => {
  console.log('got', JSON.stringify(d.toString()));
  c.end('second');
});
c.on('close', (hadError) => console.log('close', hadError));
