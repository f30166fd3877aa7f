// Sends UTF-8 split inside characters, a piece at a time.
const net = require('net');

const c = net.connect(+process.argv[2], '127.0.0.1');
c.setNoDelay(true);
const text = Buffer.from('héllo wörld ✓ 𝄞.');
const pieces = [text.subarray(0, 2), text.subarray(2, 9), text.subarray(9, 15), text.subarray(15, 17), text.subarray(17)];
c.on('connect', () => c.write('utf8'));
c.once('data', (d) => {
  console.log('server said', d.toString());
  let i = 0;
  const next = () => {
    if (i < pieces.length) {
      c.write(pieces[i++]);
      setTimeout(next, 60);
    }
  };
  next();
});
c.on('end', () => console.log('end'));
c.on('close', (hadError) => console.log('close', hadError));
