// dgram send in every argument form, to the peer the test runs (port: first argument).
const dgram = require('dgram');

const port = +process.argv[2];
const s = dgram.createSocket('udp4');
const log = (what) => (err, bytes) => console.log(what, err, bytes);
s.on('listening', () => console.log('listening', s.address().family));
s.send(Buffer.from('1 buffer'), port, '127.0.0.1', log('form 1'));
s.send(Buffer.from('xx2 offsetxx'), 2, 8, port, '127.0.0.1', log('form 2'));
s.send([Buffer.from('3 '), 'list', new Uint8Array([33])], port, '127.0.0.1', log('form 3'));
s.send('4 string, default address', port, log('form 4'));
s.send(new Uint8Array(Buffer.from('5 typed array')), port, '127.0.0.1');
setTimeout(() => {
  s.connect(port, '127.0.0.1', () => {
    console.log('connected', s.remoteAddress().port === port);
    s.send('6 connected');
    s.send('7 connected, callback', log('form 7'));
    s.send(Buffer.from('..8 connected, slice..'), 2, 19, log('form 8'));
    try {
      s.send('9', port, '127.0.0.1');
    } catch (e) {
      console.log('threw', e.code);
    }
    setTimeout(() => {
      s.close(() => {
        console.log('closed');
        console.log('done');
      });
    }, 100);
  });
}, 100);
