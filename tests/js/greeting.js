// The seed's greeting server, on the port it is given, logging what it sees.
const net = require('net');

const server = net.createServer(function (socket) {
  socket.on('data', function (data) {
    console.log('data', JSON.stringify(data.toString()));
    socket.write('你好');
  });
  socket.on('end', function () {
    console.log('连接断开');
  });
  socket.on('close', function () {
    console.log('done');
  });
  socket.write('欢迎光临《深入浅出Node.js》示例：\n');
});
server.listen(0, function () {
  console.log('ready', server.address().port);
  console.log('server bound');
});
