// WebSocket echo on the ws package's API: the WebSocket row.
const http = require('http');
const { WebSocketServer } = require('ws');
const server = http.createServer();
const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
server.listen(+(process.argv[2] || 7004), '127.0.0.1', () => console.log('listening', server.address().port));
