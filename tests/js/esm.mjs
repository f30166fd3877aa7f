// An ES module, as `import net from 'node:net'` handlers are written: node: imports
// (default and named), timers (setInterval, setImmediate and their clears), a server
// socket's setNoDelay/setKeepAlive, and dgram's option setters (broadcast, TTLs).
import net from 'node:net';
import dgram from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { setImmediate as immediate, clearImmediate } from 'node:timers';
import { Buffer } from 'node:buffer';

function options(done) {
  const u = dgram.createSocket('udp4');
  u.bind(0, '127.0.0.1', () => {
    u.setBroadcast(true);
    u.setBroadcast(false);
    console.log('setTTL returns', u.setTTL(64));
    console.log('setMulticastTTL returns', u.setMulticastTTL(3));
    console.log('setMulticastLoopback returns', u.setMulticastLoopback(true));
    for (const bad of [0, 256]) {
      try {
        u.setTTL(bad);
        console.log('setTTL', bad, 'took');
      } catch (e) {
        console.log('setTTL', bad, e.code, e.syscall);
      }
    }
    try {
      u.setTTL('64');
    } catch (e) {
      console.log('setTTL string', e.code);
    }
    u.close(done);
  });
}

async function emitted() {
  const e = new EventEmitter();
  immediate(() => e.emit('go', 'value', 2));
  const args = await once(e, 'go');
  console.log('once resolved with', JSON.stringify(args));
}

const server = net.createServer((socket) => {
  console.log('setNoDelay returns the socket', socket.setNoDelay(true) === socket);
  console.log('setKeepAlive returns the socket', socket.setKeepAlive(true, 1000) === socket);
  socket.on('data', (d) => {
    console.log('data', d.toString());
    const order = [];
    const cancelled = immediate(() => order.push('cancelled immediate ran'));
    clearImmediate(cancelled);
    immediate(() => order.push('immediate'));
    let ticks = 0;
    const interval = setInterval(() => {
      ticks += 1;
      order.push(`tick ${ticks}`);
      if (ticks === 3) {
        clearInterval(interval);
        // A cleared interval fires no more: wait past two more periods.
        setTimeout(() => {
          socket.end(Buffer.from(`${order.join(', ')}\n`));
        }, 60);
      }
    }, 20);
  });
  socket.on('close', () => {
    console.log('done');
    server.close();
  });
});

options(() => {
  console.log('udp closed');
  emitted().then(() => {
    server.listen(0, '127.0.0.1', () => console.log('ready', server.address().port));
  });
});
