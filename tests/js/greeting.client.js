// Reads the greeting, sends two messages (one reply each), then ends.
const net = require('net');

const c = net.connect(+process.argv[2], '127.0.0.1');
let got = '';
let step = 0;
c.setEncoding('utf8');
c.on('data', (d) => {
  got += d;
  if (step === 0 && got.endsWith('\n')) {
    console.log('greeting', JSON.stringify(got));
    got = '';
    step = 1;
    c.write('one');
  } else if (step === 1 && got === '你好') {
    console.log('reply 1', got);
    got = '';
    step = 2;
    c.write('two');
  } else if (step === 2 && got === '你好') {
    console.log('reply 2', got);
    got = '';
    c.end();
  }
});
c.on('end', () => console.log('end, left', JSON.stringify(got)));
c.on('close', (hadError) => console.log('close', hadError));
