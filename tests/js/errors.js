// Exceptions escaping handler code. The mode is the first argument (netlet run -- MODE):
// "start" throws at start half of the time (the instance's own Math.random()).
const net = require('net');

const mode = process.argv[2] || 'serve';
if (mode === 'start' && Math.random() < 0.5) {
  throw new Error('boom at start');
}

function fail(kind) {
  throw new Error(`boom in ${kind}`);
}

const server = net.createServer((socket) => {
  socket.write('hello\n');
  socket.on('data', (d) => {
    const cmd = d.toString().trim();
    if (cmd === 'throw') fail('data');
    if (cmd === 'timer') setTimeout(() => fail('timer'), 10);
    if (cmd === 'string') throw 'a string, not an Error';
    if (cmd === 'error-event') socket.emit('error', new Error('an error event nobody listens to'));
    socket.write(`ok ${cmd}\n`);
  });
});
server.listen(0, () => console.log('ready', server.address().port));
