// pause() stops 'data' until resume(); the bytes wait; isPaused and readableFlowing follow.
const net = require('net');

const server = net.createServer((socket) => {
  let chunks = 0;
  console.log('flowing before', socket.readableFlowing, socket.isPaused());
  socket.on('data', (d) => {
    chunks++;
    console.log('data', JSON.stringify(d.toString()), 'paused', socket.isPaused());
    if (chunks === 1) {
      socket.pause();
      console.log('paused', socket.isPaused(), socket.readableFlowing);
      socket.write('paused\n');
      setTimeout(() => {
        console.log('resuming');
        socket.resume();
      }, 300);
    }
  });
  socket.on('pause', () => console.log('pause event'));
  socket.on('resume', () => console.log('resume event'));
  socket.on('end', () => console.log('end'));
  socket.on('close', () => console.log('done'));
});
server.listen(0, () => console.log('ready', server.address().port));
