'use strict';
// The server side of the npm `ws` package (version 8's API), written for netlet's SDK on
// `http`'s 'upgrade' event and `net` sockets: WebSocketServer ({ server }, { noServer }
// with handleUpgrade, { port }; path, verifyClient, handleProtocols, clientTracking,
// maxPayload, 'connection' / 'headers' / 'wsClientError' / 'close') and WebSocket
// (send with fragments, ping / pong, close codes and reasons, terminate, pause / resume,
// 'message' (data, isBinary), 'ping', 'pong', 'close' (code, reason), 'error').
// No permessage-deflate (the package's server default) and no client (`new WebSocket(url)`).
//
// The behaviour a peer sees follows the package: the handshake's answers and refusals,
// the echo of a close frame, the server ending the TCP connection once both close frames
// are through, protocol errors closing with the package's codes (1002, 1007, 1009).

const EventEmitter = require('./events.js');
const { Buffer } = require('./buffer.js');
const http = require('./http.js');
const runtime = require('./runtime.js');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const CLOSE_TIMEOUT = 30 * 1000;
const EMPTY = Buffer.alloc(0);

// ----- SHA-1 and base64 for Sec-WebSocket-Accept --------------------------------------

function sha1(bytes) {
  const n = bytes.length;
  const words = new Uint32Array((((n + 8) >> 6) + 1) * 16);
  for (let i = 0; i < n; i++) words[i >> 2] |= bytes[i] << (24 - (i & 3) * 8);
  words[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
  words[words.length - 1] = n * 8;
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const w = new Uint32Array(80);
  for (let off = 0; off < words.length; off += 16) {
    for (let t = 0; t < 16; t++) w[t] = words[off + t];
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let t = 0; t < 80; t++) {
      let f, k;
      if (t < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
      else if (t < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
      else if (t < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
      else { f = b ^ c ^ d; k = 0xca62c1d6; }
      const tmp = (((a << 5) | (a >>> 27)) + f + e + k + w[t]) >>> 0;
      e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = tmp;
    }
    h0 = (h0 + a) >>> 0; h1 = (h1 + b) >>> 0; h2 = (h2 + c) >>> 0; h3 = (h3 + d) >>> 0; h4 = (h4 + e) >>> 0;
  }
  const out = Buffer.alloc(20);
  [h0, h1, h2, h3, h4].forEach((h, i) => out.writeUInt32BE(h, i * 4));
  return out;
}

function acceptKey(key) {
  return sha1(Buffer.from(key + GUID, 'latin1')).toString('base64');
}

// ----- validation ---------------------------------------------------------------------

function isValidStatusCode(code) {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

function isValidUTF8(buf) {
  const len = buf.length;
  let i = 0;
  while (i < len) {
    const b = buf[i];
    if (b < 0x80) {
      i++;
    } else if ((b & 0xe0) === 0xc0) {
      if (i + 1 >= len || (buf[i + 1] & 0xc0) !== 0x80 || (b & 0xfe) === 0xc0) return false;
      i += 2;
    } else if ((b & 0xf0) === 0xe0) {
      if (i + 2 >= len || (buf[i + 1] & 0xc0) !== 0x80 || (buf[i + 2] & 0xc0) !== 0x80 ||
        (b === 0xe0 && (buf[i + 1] & 0xe0) === 0x80) || (b === 0xed && (buf[i + 1] & 0xe0) === 0xa0)) return false;
      i += 3;
    } else if ((b & 0xf8) === 0xf0) {
      if (i + 3 >= len || (buf[i + 1] & 0xc0) !== 0x80 || (buf[i + 2] & 0xc0) !== 0x80 || (buf[i + 3] & 0xc0) !== 0x80 ||
        (b === 0xf0 && (buf[i + 1] & 0xf0) === 0x80) || (b === 0xf4 && buf[i + 1] > 0x8f) || b > 0xf4) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

function frameError(Ctor, message, prefix, status, code) {
  const err = new Ctor(prefix ? `Invalid WebSocket frame: ${message}` : message);
  err.code = code;
  err.statusCode = status;
  return err;
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(typeof data === 'number' ? String(data) : data);
}

// ----- frames out ---------------------------------------------------------------------

const maskBytes = new Uint8Array(4);
const maskWord = new Uint32Array(maskBytes.buffer);

/** The payload of `len` bytes at `start` in `buf`, unmasked with the 4 bytes at `at`:
 * copied natively, then XORed a 32-bit word at a time (the interpreter's cost is per
 * loop turn, not per byte). */
function unmask(buf, at, start, len) {
  const payload = Buffer.allocUnsafe(len); // its own memory: word-aligned
  if (len === 0) return payload;
  payload.set(new Uint8Array(buf.buffer, buf.byteOffset + start, len));
  for (let i = 0; i < 4; i++) maskBytes[i] = buf[at + i];
  const words = len >>> 2;
  if (words > 0) {
    const m = maskWord[0];
    const w = new Uint32Array(payload.buffer, payload.byteOffset, words);
    for (let i = 0; i < words; i++) w[i] ^= m;
  }
  for (let i = words << 2; i < len; i++) payload[i] ^= maskBytes[i & 3];
  return payload;
}

/** A frame as the server sends it: unmasked. */
function frame(opcode, fin, payload) {
  const len = payload.length;
  const headLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headLen + len);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) {
    out[1] = len;
  } else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  out.set(payload, headLen);
  return out;
}

// ----- WebSocket ----------------------------------------------------------------------

class WebSocket extends EventEmitter {
  constructor(address) {
    super();
    if (address !== null && address !== undefined) {
      throw new Error("netlet's JavaScript SDK has the ws package's server side only: new WebSocket(url) is not available");
    }
    this._readyState = CONNECTING;
    this._socket = null;
    this._protocol = '';
    this._binaryType = 'nodebuffer';
    this._closeCode = 1006;
    this._closeMessage = EMPTY;
    this._closeFrameSent = false;
    this._closeFrameReceived = false;
    this._closeTimer = null;
    this._errored = false; // a protocol error: the rest of the input is ignored
    this._errorEmitted = false;
    this._paused = false;
    this._autoPong = true;
    this._maxPayload = 0;
    this._skipUTF8 = false;
    this._sendFirstFragment = true;
    this._bufferedAfterClose = 0;
    // receiving
    this._in = EMPTY;
    this._fragments = [];
    this._fragmentsLength = 0;
    this._fragmentOpcode = 0;
    this._receiverEnded = false;
  }

  get readyState() {
    return this._readyState;
  }

  get protocol() {
    return this._protocol;
  }

  get extensions() {
    return '';
  }

  get url() {
    return undefined;
  }

  get isPaused() {
    return this._paused;
  }

  get binaryType() {
    return this._binaryType;
  }

  set binaryType(type) {
    if (['nodebuffer', 'arraybuffer', 'fragments'].includes(type)) this._binaryType = type;
  }

  get bufferedAmount() {
    if (this._socket === null) return this._bufferedAfterClose;
    return this._socket.writableLength + this._bufferedAfterClose;
  }

  _setSocket(socket, head, options) {
    this._socket = socket;
    this._maxPayload = options.maxPayload | 0 || 0;
    if (options.maxPayload > 0x7fffffff) this._maxPayload = options.maxPayload;
    this._autoPong = options.autoPong !== false;
    this._skipUTF8 = !!options.skipUTF8Validation;
    socket.setTimeout(0);
    socket.setNoDelay();
    this._onData = (chunk) => this._receive(chunk);
    this._onClose = () => this._socketClosed();
    this._onEnd = () => {
      this._readyState = CLOSING;
      this._receiverEnded = true;
      socket.end();
    };
    this._onError = () => {
      this._readyState = CLOSING;
      socket.destroy();
    };
    socket.on('close', this._onClose);
    socket.on('data', this._onData);
    socket.on('end', this._onEnd);
    socket.on('error', this._onError);
    this._readyState = OPEN;
    if (head && head.length > 0) this._receive(head);
  }

  // ----- receiving ----------------------------------------------------------------------

  _receive(chunk) {
    if (this._errored || this._receiverEnded) return;
    this._in = this._in.length === 0 ? chunk : Buffer.concat([this._in, chunk]);
    while (!this._errored && !this._receiverEnded) {
      const buf = this._in;
      if (buf.length < 2) return;
      const b0 = buf[0];
      const b1 = buf[1];
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x30) !== 0) return this._fail(frameError(RangeError, 'RSV2 and RSV3 must be clear', true, 1002, 'WS_ERR_UNEXPECTED_RSV_2_3'));
      if ((b0 & 0x40) !== 0) return this._fail(frameError(RangeError, 'RSV1 must be clear', true, 1002, 'WS_ERR_UNEXPECTED_RSV_1'));
      const control = opcode >= 8;
      if (opcode === 0) {
        if (this._fragmentOpcode === 0) return this._fail(frameError(RangeError, 'invalid opcode 0', true, 1002, 'WS_ERR_INVALID_OPCODE'));
      } else if (opcode === 1 || opcode === 2) {
        if (this._fragmentOpcode !== 0) return this._fail(frameError(RangeError, `invalid opcode ${opcode}`, true, 1002, 'WS_ERR_INVALID_OPCODE'));
      } else if (opcode === 8 || opcode === 9 || opcode === 10) {
        if (!fin) return this._fail(frameError(RangeError, 'FIN must be set', true, 1002, 'WS_ERR_EXPECTED_FIN'));
        if ((b1 & 0x7f) > 125) return this._fail(frameError(RangeError, `invalid payload length ${b1 & 0x7f}`, true, 1002, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'));
      } else {
        return this._fail(frameError(RangeError, `invalid opcode ${opcode}`, true, 1002, 'WS_ERR_INVALID_OPCODE'));
      }
      if ((b1 & 0x80) === 0) return this._fail(frameError(RangeError, 'MASK must be set', true, 1002, 'WS_ERR_EXPECTED_MASK'));
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        const high = buf.readUInt32BE(2);
        if (high > 0x1fffff) return this._fail(frameError(RangeError, 'Unsupported WebSocket frame: payload length > 2^53 - 1', false, 1009, 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'));
        len = high * 0x100000000 + buf.readUInt32BE(6);
        at = 10;
      }
      if (!control && this._maxPayload > 0 && this._fragmentsLength + len > this._maxPayload) {
        return this._fail(frameError(RangeError, 'Max payload size exceeded', false, 1009, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'));
      }
      if (buf.length < at + 4 + len) return;
      const start = at + 4;
      const payload = unmask(buf, at, start, len);
      this._in = buf.subarray(start + len);
      if (control) this._control(opcode, payload);
      else this._dataFrame(opcode, fin, payload);
    }
  }

  _dataFrame(opcode, fin, payload) {
    if (opcode !== 0) this._fragmentOpcode = opcode;
    if (payload.length > 0) {
      this._fragments.push(payload);
      this._fragmentsLength += payload.length;
    }
    if (!fin) return;
    const binary = this._fragmentOpcode === 2;
    const parts = this._fragments;
    const total = this._fragmentsLength;
    this._fragments = [];
    this._fragmentsLength = 0;
    this._fragmentOpcode = 0;
    if (binary) {
      let data;
      if (this._binaryType === 'fragments') data = parts;
      else {
        const all = parts.length === 1 ? parts[0] : Buffer.concat(parts, total);
        data = this._binaryType === 'arraybuffer' ? all.buffer.slice(all.byteOffset, all.byteOffset + all.length) : all;
      }
      this.emit('message', data, true);
    } else {
      const all = parts.length === 1 ? parts[0] : Buffer.concat(parts, total);
      if (!this._skipUTF8 && !isValidUTF8(all)) {
        return this._fail(frameError(Error, 'invalid UTF-8 sequence', true, 1007, 'WS_ERR_INVALID_UTF8'));
      }
      this.emit('message', all, false);
    }
  }

  _control(opcode, payload) {
    if (opcode === 8) {
      let code = 1005;
      let reason = EMPTY;
      if (payload.length === 1) {
        return this._fail(frameError(RangeError, 'invalid payload length 1', true, 1002, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'));
      }
      if (payload.length >= 2) {
        code = payload.readUInt16BE(0);
        if (!isValidStatusCode(code)) return this._fail(frameError(RangeError, `invalid status code ${code}`, true, 1002, 'WS_ERR_INVALID_CLOSE_CODE'));
        reason = payload.subarray(2);
        if (!this._skipUTF8 && !isValidUTF8(reason)) return this._fail(frameError(Error, 'invalid UTF-8 sequence', true, 1007, 'WS_ERR_INVALID_UTF8'));
      }
      // Nothing after a close frame is read.
      this._receiverEnded = true;
      if (this._paused) this._socket.resume();
      this._closeFrameReceived = true;
      this._closeMessage = reason;
      this._closeCode = code;
      if (code === 1005) this.close();
      else this.close(code, reason);
    } else if (opcode === 9) {
      if (this._autoPong) this.pong(payload, false, () => {});
      this.emit('ping', payload);
    } else {
      this.emit('pong', payload);
    }
  }

  _fail(err) {
    this._errored = true;
    this._in = EMPTY;
    if (this._paused) runtime.nextTick(() => this._socket && this._socket.resume());
    this.close(err.statusCode);
    if (!this._errorEmitted) {
      this._errorEmitted = true;
      this.emit('error', err);
    }
  }

  _socketClosed() {
    const socket = this._socket;
    socket.removeListener('close', this._onClose);
    socket.removeListener('data', this._onData);
    socket.removeListener('end', this._onEnd);
    this._readyState = CLOSING;
    if (this._closeTimer !== null) {
      clearTimeout(this._closeTimer);
      this._closeTimer = null;
    }
    this._readyState = CLOSED;
    this.emit('close', this._closeCode, this._closeMessage);
  }

  // ----- sending ------------------------------------------------------------------------

  _notOpen(data, cb) {
    if (data) this._bufferedAfterClose += toBuffer(data).length;
    if (cb) {
      const err = new Error(`WebSocket is not open: readyState ${this._readyState} (${STATES[this._readyState]})`);
      runtime.nextTick(() => cb(err));
    }
  }

  send(data, options, cb) {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (typeof data === 'number') data = String(data);
    if (this._readyState !== OPEN) return this._notOpen(data, cb);
    const opts = { binary: typeof data !== 'string', fin: true, ...options };
    const payload = data === undefined ? EMPTY : toBuffer(data);
    const opcode = this._sendFirstFragment ? (opts.binary ? 2 : 1) : 0;
    this._sendFirstFragment = opts.fin;
    this._socket.write(frame(opcode, opts.fin, payload), cb);
  }

  ping(data, mask, cb) {
    this._controlOut(9, data, mask, cb);
  }

  pong(data, mask, cb) {
    this._controlOut(10, data, mask, cb);
  }

  _controlOut(opcode, data, mask, cb) {
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
    }
    if (typeof data === 'number') data = String(data);
    if (this._readyState !== OPEN) return this._notOpen(data, cb);
    const payload = data === undefined ? EMPTY : toBuffer(data);
    if (payload.length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    this._socket.write(frame(opcode, true, payload), cb);
  }

  close(code, data) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CLOSING) {
      if (this._closeFrameSent && (this._closeFrameReceived || this._errored)) this._socket.end();
      return;
    }
    let payload;
    if (code === undefined) {
      payload = EMPTY;
    } else if (typeof code !== 'number' || !isValidStatusCode(code)) {
      throw new TypeError('First argument must be a valid error code number');
    } else {
      const reason = data === undefined ? EMPTY : toBuffer(data);
      if (reason.length > 123) throw new RangeError('The message must not be greater than 123 bytes');
      payload = Buffer.allocUnsafe(2 + reason.length);
      payload.writeUInt16BE(code, 0);
      payload.set(reason, 2);
    }
    this._readyState = CLOSING;
    this._socket.write(frame(8, true, payload), (err) => {
      if (err) return;
      this._closeFrameSent = true;
      if (this._closeFrameReceived || this._errored) this._socket.end();
    });
    const socket = this._socket;
    this._closeTimer = setTimeout(() => socket.destroy(), CLOSE_TIMEOUT);
  }

  terminate() {
    if (this._readyState === CLOSED) return;
    this._readyState = CLOSING;
    this._socket.destroy();
  }

  pause() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = true;
    this._socket.pause();
  }

  resume() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = false;
    if (!this._receiverEnded) this._socket.resume();
  }

  // The browser-style handlers (`ws.onmessage = ...`) over the events.
  addEventListener(type, listener) {
    const wrap = {
      message: (data, isBinary) => listener.call(this, { type, data: isBinary ? data : data.toString(), target: this }),
      close: (code, reason) => listener.call(this, { type, code, reason: reason.toString(), wasClean: this._closeFrameReceived && this._closeFrameSent, target: this }),
      error: (error) => listener.call(this, { type, error, message: error.message, target: this }),
      open: () => listener.call(this, { type, target: this }),
    }[type];
    if (wrap) {
      wrap.listener = listener;
      this.on(type, wrap);
    }
  }

  removeEventListener(type, listener) {
    for (const l of this.rawListeners(type)) if (l.listener === listener) return void this.removeListener(type, l);
  }
}

for (const [i, name] of STATES.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}
for (const type of ['open', 'message', 'close', 'error']) {
  Object.defineProperty(WebSocket.prototype, `on${type}`, {
    enumerable: true,
    get() {
      const l = this.rawListeners(type).find((x) => x.onProperty);
      return l ? l.listener : null;
    },
    set(fn) {
      for (const l of this.rawListeners(type)) if (l.onProperty) this.removeListener(type, l);
      if (typeof fn !== 'function') return;
      this.addEventListener(type, fn);
      const added = this.rawListeners(type);
      added[added.length - 1].onProperty = true;
    },
  });
}

// ----- WebSocketServer ----------------------------------------------------------------

const RUNNING = 0;
const SERVER_CLOSING = 1;
const SERVER_CLOSED = 2;

function abortHandshake(socket, code, message, headers) {
  message = message || http.STATUS_CODES[code];
  const fields = {
    Connection: 'close',
    'Content-Type': 'text/html',
    'Content-Length': Buffer.byteLength(message),
    ...headers,
  };
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\n` +
      Object.keys(fields).map((h) => `${h}: ${fields[h]}`).join('\r\n') +
      '\r\n\r\n' +
      message,
  );
}

function refuse(server, req, socket, code, message, headers) {
  if (server.listenerCount('wsClientError') > 0) server.emit('wsClientError', new Error(message), socket, req);
  else abortHandshake(socket, code, message, headers);
}

function parseProtocols(header) {
  const set = new Set();
  for (const part of header.split(',')) {
    const p = part.trim();
    if (!TOKEN.test(p) || set.has(p)) throw new SyntaxError('Invalid Sec-WebSocket-Protocol header');
    set.add(p);
  }
  return set;
}

class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    options = {
      allowSynchronousEvents: true,
      autoPong: true,
      maxPayload: 100 * 1024 * 1024,
      skipUTF8Validation: false,
      perMessageDeflate: false,
      handleProtocols: null,
      clientTracking: true,
      verifyClient: null,
      noServer: false,
      backlog: null,
      server: null,
      host: null,
      path: null,
      port: null,
      ...options,
    };
    if (
      (options.port == null && !options.server && !options.noServer) ||
      (options.port != null && (options.server || options.noServer)) ||
      (options.server && options.noServer)
    ) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    if (options.perMessageDeflate) {
      throw new Error("netlet's ws has no permessage-deflate: leave perMessageDeflate false (the package's default)");
    }
    this._server = null;
    if (options.port != null) {
      this._server = http.createServer((req, res) => {
        const body = http.STATUS_CODES[426];
        res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
        res.end(body);
      });
      this._server.listen(options.port, options.host || undefined, callback);
      this._ownServer = true;
    } else if (options.server) {
      this._server = options.server;
    }
    if (this._server !== null) {
      const listeners = {
        listening: () => this.emit('listening'),
        error: (err) => this.emit('error', err),
        upgrade: (req, socket, head) => this.handleUpgrade(req, socket, head, (ws) => this.emit('connection', ws, req)),
      };
      for (const [event, fn] of Object.entries(listeners)) this._server.on(event, fn);
      this._removeListeners = () => {
        for (const [event, fn] of Object.entries(listeners)) this._server.removeListener(event, fn);
      };
    }
    if (options.clientTracking) {
      this.clients = new Set();
      this._shouldEmitClose = false;
    }
    this.options = options;
    this._state = RUNNING;
  }

  address() {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    return this._server ? this._server.address() : null;
  }

  shouldHandle(req) {
    if (this.options.path) {
      const q = req.url.indexOf('?');
      const pathname = q !== -1 ? req.url.slice(0, q) : req.url;
      if (pathname !== this.options.path) return false;
    }
    return true;
  }

  handleUpgrade(req, socket, head, cb) {
    const onError = () => socket.destroy();
    socket.on('error', onError);
    const key = req.headers['sec-websocket-key'];
    const upgrade = req.headers.upgrade;
    const version = +req.headers['sec-websocket-version'];
    if (req.method !== 'GET') return refuse(this, req, socket, 405, 'Invalid HTTP method');
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return refuse(this, req, socket, 400, 'Invalid Upgrade header');
    if (key === undefined || !KEY.test(key)) return refuse(this, req, socket, 400, 'Missing or invalid Sec-WebSocket-Key header');
    if (version !== 13 && version !== 8) {
      return refuse(this, req, socket, 400, 'Missing or invalid Sec-WebSocket-Version header', { 'Sec-WebSocket-Version': '13, 8' });
    }
    if (!this.shouldHandle(req)) return abortHandshake(socket, 400);
    let protocols = new Set();
    const offered = req.headers['sec-websocket-protocol'];
    if (offered !== undefined) {
      try {
        protocols = parseProtocols(offered);
      } catch {
        return refuse(this, req, socket, 400, 'Invalid Sec-WebSocket-Protocol header');
      }
    }
    const complete = () => this._completeUpgrade(protocols, key, req, socket, head, cb, onError);
    const verify = this.options.verifyClient;
    if (verify) {
      const info = {
        origin: req.headers[version === 8 ? 'sec-websocket-origin' : 'origin'],
        secure: false,
        req,
      };
      if (verify.length === 2) {
        verify(info, (verified, code, message, headers) => {
          if (!verified) return abortHandshake(socket, code || 401, message, headers);
          complete();
        });
        return;
      }
      if (!verify(info)) return abortHandshake(socket, 401);
    }
    complete();
  }

  _completeUpgrade(protocols, key, req, socket, head, cb, onError) {
    if (!socket.readable || !socket.writable) return socket.destroy();
    if (socket._netletWebSocket) {
      throw new Error('server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration');
    }
    if (this._state > RUNNING) return abortHandshake(socket, 503);
    const headers = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKey(key)}`];
    const ws = new WebSocket(null);
    if (protocols.size) {
      const protocol = this.options.handleProtocols ? this.options.handleProtocols(protocols, req) : protocols.values().next().value;
      if (protocol) {
        headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
        ws._protocol = protocol;
      }
    }
    this.emit('headers', headers, req);
    socket.write(headers.concat('\r\n').join('\r\n'));
    socket.removeListener('error', onError);
    socket._netletWebSocket = ws;
    ws._setSocket(socket, head, this.options);
    if (this.clients) {
      this.clients.add(ws);
      ws.on('close', () => {
        this.clients.delete(ws);
        if (this._shouldEmitClose && !this.clients.size) runtime.nextTick(() => this._emitClose());
      });
    }
    cb(ws, req);
  }

  _emitClose() {
    this._state = SERVER_CLOSED;
    this.emit('close');
  }

  close(cb) {
    if (this._state === SERVER_CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      runtime.nextTick(() => this._emitClose());
      return;
    }
    if (cb) this.once('close', cb);
    if (this._state === SERVER_CLOSING) return;
    this._state = SERVER_CLOSING;
    if (this._removeListeners) this._removeListeners();
    const server = this._server;
    this._server = null;
    if (this._ownServer) {
      server.close(() => this._emitClose());
      return;
    }
    if (this.clients && this.clients.size) this._shouldEmitClose = true;
    else runtime.nextTick(() => this._emitClose());
  }
}

WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.createWebSocketStream = () => {
  throw new Error("createWebSocketStream is not in netlet's ws");
};

module.exports = WebSocket;
