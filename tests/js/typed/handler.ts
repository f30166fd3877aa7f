// Type-checked by tests/js.rs against js/sdk/types/index.d.ts (tsc --strict, with and
// without the DOM library): the shapes a Node handler uses, as a TypeScript user writes them.
import net from 'node:net';
import dgram from 'node:dgram';
import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import { EventEmitter, once } from 'node:events';
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';

const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket: net.Socket) => {
  socket.setEncoding('utf8');
  socket.setNoDelay(true).setKeepAlive(true, 1000).setTimeout(5000);
  socket.on('data', (chunk: string | Buffer) => {
    const ok: boolean = socket.write(chunk, () => console.log('written', socket.bytesWritten));
    if (!ok) socket.pause();
  });
  socket.on('drain', () => socket.resume());
  socket.on('end', () => socket.end(Buffer.from('bye\n', 'utf8')));
  const peer: string | undefined = socket.remoteAddress;
  console.log(peer, socket.remotePort, socket.bytesRead);
});
server.listen(8124, '127.0.0.1', () => console.log(server.address()));

const udp = dgram.createSocket('udp4');
udp.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
  udp.send(msg, rinfo.port, rinfo.address, (err: Error | null) => err && console.error(err));
});
udp.bind(41234);

const web = http.createServer((req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(`${req.method} ${req.url}\n`);
});
const wss = new WebSocketServer({ noServer: true });
web.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
    ws.on('message', (data, isBinary: boolean) => ws.send(data as Buffer, { binary: isBinary }));
  });
});
web.listen(8081);

async function later(): Promise<void> {
  const e = new EventEmitter();
  setImmediate(() => e.emit('go', 1));
  const [n] = await once(e, 'go');
  await sleep(10);
  const t = setInterval(() => clearInterval(t), 5);
  console.log(n, Buffer.concat([Buffer.alloc(2), Buffer.from('ff', 'hex')]).toString('base64'));
}
void later();
