// Sends once at 100 ms (the server's idle timer restarts), then stays silent.
const net = require('net');

const c = net.connect(+process.argv[2], '127.0.0.1');
const start = Date.now();
c.on('connect', () => setTimeout(() => c.write('ping'), 100));
c.on('data', (d) => console.log('got', JSON.stringify(d.toString()), 'after >= 350 ms', Date.now() - start >= 350));
c.on('end', () => {
  console.log('end');
  c.end();
});
c.on('close', (hadError) => console.log('close', hadError));
