// socket.pipe in its forms, each on a connection whose first line names it: bytes read
// before the pipe go first, a pipe between two connections (each way, end passed on),
// a 'data' listener added to a piped socket, unpipe, { end: false }, and a destination
// that closes (its source is unpiped and paused). Under netlet the host moves the bytes
// where it can; what the client sees and what the server logs must be Node's.
const net = require('net');

const waiting = {}; // pair name -> the first socket of a pair, until the second comes
const log = (...args) => console.log(...args);

function start(socket, mode) {
  switch (mode) {
    case 'before': {
      // Paused with bytes read: they are echoed first, then what the pipe moves.
      socket.write('[before]');
      socket.pipe(socket);
      break;
    }
    case 'pair-a':
    case 'pair-b': {
      const other = waiting.pair;
      if (!other) {
        waiting.pair = socket;
        return;
      }
      delete waiting.pair;
      const [a, b] = mode === 'pair-b' ? [other, socket] : [socket, other];
      a.pipe(b);
      b.pipe(a);
      a.on('end', () => log('pair: a ended'));
      b.on('end', () => log('pair: b ended'));
      let closed = 0;
      const close = () => {
        if (++closed === 2) log('pair: closed; a', a.bytesRead, a.bytesWritten, 'b', b.bytesRead, b.bytesWritten);
      };
      a.on('close', close);
      b.on('close', close);
      a.write('go\n');
      break;
    }
    case 'listen': {
      socket.pipe(socket);
      socket.write('piped\n');
      // A listener after the pipe: the data keeps going through, and is seen too.
      setTimeout(() => {
        socket.on('data', (d) => log('listen: saw', JSON.stringify(d.toString())));
        socket.write('listening\n');
      }, 200);
      socket.on('end', () => log('listen: end'));
      break;
    }
    case 'unpipe': {
      socket.pipe(socket);
      socket.on('unpipe', (src) => log('unpipe: event, from itself', src === socket));
      setTimeout(() => {
        socket.unpipe(socket);
        log('unpipe: paused', socket.isPaused(), socket.readableFlowing);
        socket.on('data', (d) => {
          log('unpipe: data', JSON.stringify(d.toString()));
          socket.end('bye\n');
        });
        socket.resume();
        socket.write('unpiped\n');
      }, 300);
      break;
    }
    case 'keep': {
      socket.pipe(socket, { end: false });
      socket.on('end', () => {
        log('keep: end, writable', socket.writable);
        socket.end('tail\n');
      });
      break;
    }
    case 'gone-src':
    case 'gone-dest': {
      const other = waiting.gone;
      if (!other) {
        waiting.gone = socket;
        return;
      }
      delete waiting.gone;
      const [src, dest] = mode === 'gone-dest' ? [other, socket] : [socket, other];
      src.pipe(dest);
      // Read (and dropped), so that its reset is seen.
      dest.resume();
      dest.on('error', (err) => log('gone: dest error', err.code));
      dest.on('unpipe', (s) => log('gone: unpipe event', s === src));
      src.on('pause', () => log('gone: src pause event'));
      dest.on('close', () => {
        log('gone: dest closed; src paused', src.isPaused(), src.readableFlowing);
        src.end('dest gone\n');
        src.resume();
      });
      src.on('close', () => {
        log('gone: src closed');
        // The last form: the server goes, and says so.
        server.close(() => log('done'));
      });
      dest.write('ready\n');
      break;
    }
    default:
      socket.destroy();
  }
}

// Half-open, so that { end: false } leaves the socket writable after its 'end'.
const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  let head = '';
  const first = (d) => {
    head += d.toString('latin1');
    const nl = head.indexOf('\n');
    if (nl < 0) return;
    socket.removeListener('data', first);
    socket.pause();
    const mode = head.slice(0, nl);
    const rest = head.slice(nl + 1);
    log('mode', mode);
    if (rest.length > 0) socket.unshift(Buffer.from(rest, 'latin1'));
    start(socket, mode);
  };
  socket.on('data', first);
});
server.listen(0, '127.0.0.1', () => log('ready', server.address().port));
