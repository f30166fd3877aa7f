// Sends, half-closes at once, and reads what the server sends after that.
const net = require('net');

const c = net.connect({ port: +process.argv[2], host: '127.0.0.1', allowHalfOpen: true });
let got = '';
c.on('connect', () => c.end('some text, then FIN'));
c.on('data', (d) => (got += d));
c.on('end', () => console.log('got after our FIN', JSON.stringify(got)));
c.on('close', (hadError) => console.log('close', hadError));
