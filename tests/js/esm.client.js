// Sends one message, prints what the timers did, then ends.
const net = require('net');

const c = net.connect(+process.argv[2], '127.0.0.1', () => c.write('go'));
c.setEncoding('utf8');
let got = '';
c.on('data', (d) => (got += d));
c.on('end', () => {
  console.log('got', JSON.stringify(got));
  c.end();
});
c.on('close', (hadError) => console.log('close', hadError));
