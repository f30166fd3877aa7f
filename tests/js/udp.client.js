// Three peers, two datagrams each, one after the other; each prints its replies.
const dgram = require('dgram');

const port = +process.argv[2];
const peers = [0, 1, 2].map(() => dgram.createSocket('udp4'));
let i = 0;
function next() {
  if (i === 6) {
    peers.forEach((p) => p.close());
    return;
  }
  const n = i++;
  const peer = peers[n % 3];
  peer.once('message', (msg) => {
    console.log(`peer ${n % 3} got`, JSON.stringify(msg.toString()));
    next();
  });
  peer.send(`datagram ${n} from peer ${n % 3}`, port, '127.0.0.1');
}
next();
