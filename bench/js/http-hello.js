// The seed's Hello World: the HTTP row.
const http = require('http');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('Hello World\n');
});
server.listen(+(process.argv[2] || 7003), '127.0.0.1', () => console.log('listening', server.address().port));
