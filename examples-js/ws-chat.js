// A chat room on the npm `ws` package's API: GET / serves the page, whose script joins
// the room at /ws (?name=alice, else guest-N). Every text message goes to the others as
// `NAME: TEXT`; everyone sees `* NAME joined` / `* NAME left`; a newcomer first gets
// `* you are NAME (N here)`. Messages are text of at most 4 KiB (binary closes the
// sender with 1003, larger ones with 1009). The same room as examples/ws-chat in Rust,
// and the same checks (examples/ws-chat/tests/ws-chat.toml).
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

// The page of examples/ws-chat/src/index.html.
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>netlet chat</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; }
  header { background: #2d3e50; color: #fff; padding: 10px 16px; }
  header small { opacity: .7; }
  #log { list-style: none; margin: 0; padding: 12px 16px; height: 300px; overflow-y: auto; }
  #log li { margin: 4px 0; }
  #log li.notice { color: #777; font-style: italic; }
  #log li.mine { color: #1a6b3c; }
  form { display: flex; gap: 8px; padding: 0 16px 16px; }
  #text { flex: 1; padding: 6px 8px; font: inherit; }
  button { padding: 6px 14px; font: inherit; }
</style>
</head>
<body>
<header><b>netlet chat</b> <small id="status">connecting...</small></header>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" autofocus><button>Send</button></form>
<script>
  // The name comes from the page's fragment: http://HOST/#alice
  const name = location.hash.slice(1);
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
              '/ws' + (name ? '?name=' + encodeURIComponent(name) : '');
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  function show(text, kind) {
    const li = document.createElement('li');
    li.textContent = text;
    if (kind) li.className = kind;
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }
  const ws = new WebSocket(url);
  ws.onopen = () => { status.textContent = 'connected to ' + url; };
  ws.onmessage = (e) => show(e.data, e.data.startsWith('* ') ? 'notice' : '');
  ws.onclose = (e) => { status.textContent = 'disconnected (' + e.code + ')'; };
  document.getElementById('form').onsubmit = (e) => {
    e.preventDefault();
    const input = document.getElementById('text');
    if (!input.value || ws.readyState !== WebSocket.OPEN) return;
    ws.send(input.value);
    show('me: ' + input.value, 'mine');
    input.value = '';
  };
</script>
</body>
</html>
`;

const server = http.createServer((req, res) => {
  if (req.url === '/' || req.url === '/index.html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found: the room is at / (WebSocket at /ws)\n');
  }
});

const wss = new WebSocketServer({ server, maxPayload: 4096 });
const names = new Map();
let joined = 0;

function broadcast(except, text) {
  for (const client of wss.clients) {
    if (client !== except && client.readyState === WebSocket.OPEN && names.has(client)) client.send(text);
  }
}

wss.on('connection', (ws, req) => {
  const [path, query = ''] = req.url.split('?');
  if (path !== '/ws') {
    ws.close(1008, 'the room is at /ws');
    return;
  }
  joined += 1;
  const asked = new URLSearchParams(query).get('name');
  const name = asked && /^[A-Za-z0-9_-]{1,20}$/.test(asked) ? asked : `guest-${joined}`;
  broadcast(null, `* ${name} joined`);
  names.set(ws, name);
  ws.send(`* you are ${name} (${names.size} here)`);
  ws.on('message', (data, isBinary) => {
    if (isBinary) ws.close(1003, 'text only');
    else broadcast(ws, `${name}: ${data}`);
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    names.delete(ws);
    broadcast(null, `* ${name} left`);
  });
});

server.listen(8081, () => console.log('chat at http://127.0.0.1:8081/'));
