'use strict';
// Node's `http` server on the SDK's `net` sockets, as Node has it: the protocol is code
// on a socket, claiming nothing from the host that `net` does not. createServer, Server
// ('request', 'upgrade', 'checkContinue', 'clientError', keep-alive with its timeout,
// close / closeIdleConnections / closeAllConnections), IncomingMessage (method, url,
// headers, rawHeaders, body by 'data' / 'end' with Content-Length or chunked encoding)
// and ServerResponse (statusCode, setHeader & co, writeHead, write, end, chunked bodies,
// 'finish' / 'close', backpressure with 'drain'). Requests on one connection are
// answered in order: the next is parsed once the current response has finished.
//
// What Node puts in a response head is reproduced field for field (Date, Connection,
// Keep-Alive, then Content-Length or Transfer-Encoding), so a client sees the same bytes.

const EventEmitter = require('./events.js');
const { Buffer } = require('./buffer.js');
const { StringDecoder } = require('./string_decoder.js');
const net = require('./net.js');
const { nodeError, invalidArgType } = require('./errors.js');
const runtime = require('./runtime.js');

const STATUS_CODES = {
  100: 'Continue', 101: 'Switching Protocols', 102: 'Processing', 103: 'Early Hints',
  200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'Non-Authoritative Information',
  204: 'No Content', 205: 'Reset Content', 206: 'Partial Content', 207: 'Multi-Status',
  208: 'Already Reported', 226: 'IM Used', 300: 'Multiple Choices', 301: 'Moved Permanently',
  302: 'Found', 303: 'See Other', 304: 'Not Modified', 305: 'Use Proxy',
  307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request',
  401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 407: 'Proxy Authentication Required',
  408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required',
  412: 'Precondition Failed', 413: 'Payload Too Large', 414: 'URI Too Long',
  415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 417: 'Expectation Failed',
  418: "I'm a Teapot", 421: 'Misdirected Request', 422: 'Unprocessable Entity', 423: 'Locked',
  424: 'Failed Dependency', 425: 'Too Early', 426: 'Upgrade Required',
  428: 'Precondition Required', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
  506: 'Variant Also Negotiates', 507: 'Insufficient Storage', 508: 'Loop Detected',
  509: 'Bandwidth Limit Exceeded', 510: 'Not Extended', 511: 'Network Authentication Required',
};

const METHODS = (
  'ACL BIND CHECKOUT CONNECT COPY DELETE GET HEAD LINK LOCK M-SEARCH MERGE MKACTIVITY ' +
  'MKCALENDAR MKCOL MOVE NOTIFY OPTIONS PATCH POST PROPFIND PROPPATCH PURGE PUT QUERY ' +
  'REBIND REPORT SEARCH SOURCE SUBSCRIBE TRACE UNBIND UNLINK UNLOCK UNSUBSCRIBE'
).split(' ');

// Node's llhttp limit on a request's head (--max-http-header-size).
const MAX_HEADER_SIZE = 16 * 1024;
const CRLF = '\r\n';
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

// The Date field, made once a second as Node does (formatting it is not free).
let dateSecond = -1;
let dateText = '';
function utcDate() {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

function httpError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

// ----- IncomingMessage --------------------------------------------------------------

/** A request: its head, and its body as a readable stream ('data', 'end'). */
class IncomingMessage extends EventEmitter {
  constructor(socket) {
    super();
    this.socket = socket;
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.httpVersion = '1.1';
    this.complete = false;
    this.rawHeaders = [];
    this.rawTrailers = [];
    this.headers = {};
    this.trailers = {};
    this.method = null;
    this.url = '';
    this.aborted = false;
    this.upgrade = false;
    this._buffered = [];
    this._flowing = null;
    this._ended = false; // the body's last byte has arrived
    this._endEmitted = false;
    this._decoder = null;
    this._dumped = false;
    this.readableEnded = false;
    this.destroyed = false;
  }

  get connection() {
    return this.socket;
  }

  on(event, listener) {
    super.on(event, listener);
    if (event === 'data' && this._flowing !== false) this.resume();
    return this;
  }

  addListener(event, listener) {
    return this.on(event, listener);
  }

  setEncoding(encoding) {
    this._decoder = new StringDecoder(encoding);
    return this;
  }

  pause() {
    this._flowing = false;
    return this;
  }

  resume() {
    if (this._flowing !== true) {
      this._flowing = true;
      runtime.nextTick(() => this._flow());
    }
    return this;
  }

  isPaused() {
    return this._flowing === false;
  }

  setTimeout(ms, cb) {
    this.socket.setTimeout(ms, cb);
    return this;
  }

  destroy(err) {
    if (!this.destroyed) {
      this.destroyed = true;
      if (this.socket) this.socket.destroy(err);
    }
    return this;
  }

  async *[Symbol.asyncIterator]() {
    const chunks = [];
    let done = false;
    let wake = null;
    this.on('data', (c) => {
      chunks.push(c);
      if (wake) wake();
    });
    this.on('end', () => {
      done = true;
      if (wake) wake();
    });
    for (;;) {
      if (chunks.length) yield chunks.shift();
      else if (done) return;
      else await new Promise((r) => (wake = r));
      wake = null;
    }
  }

  _push(chunk) {
    if (this._dumped) return;
    this._buffered.push(chunk);
    if (this._flowing === true) this._flow();
  }

  _pushEnd() {
    this._ended = true;
    this.complete = true;
    if (this._flowing === true || this._dumped) this._flow();
  }

  _flow() {
    while (this._flowing === true && this._buffered.length > 0) {
      const chunk = this._buffered.shift();
      this.emit('data', this._decoder ? this._decoder.write(chunk) : chunk);
    }
    if ((this._flowing === true || this._dumped) && this._ended && this._buffered.length === 0 && !this._endEmitted) {
      this._endEmitted = true;
      this.readableEnded = true;
      runtime.nextTick(() => this.emit('end'));
    }
  }

  /** The response finished before the body was read: what is left is thrown away. */
  _dump() {
    if (!this._dumped) {
      this._dumped = true;
      this._buffered.length = 0;
    }
  }
}

function addHeader(msg, name, value) {
  msg.rawHeaders.push(name, value);
  const key = name.toLowerCase();
  const have = msg.headers[key];
  if (have === undefined) {
    msg.headers[key] = key === 'set-cookie' ? [value] : value;
  } else if (key === 'set-cookie') {
    have.push(value);
  } else if (
    // Node keeps the first of these and drops repeats.
    !['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization',
      'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location',
      'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires'].includes(key)
  ) {
    msg.headers[key] = have + (key === 'cookie' ? '; ' : ', ') + value;
  }
}

// ----- ServerResponse ---------------------------------------------------------------

/** A response: its head, then its body written as it comes (chunked) or in one piece. */
class ServerResponse extends EventEmitter {
  constructor(req, conn) {
    super();
    this.req = req;
    this._conn = conn;
    this.socket = conn.socket;
    this.statusCode = 200;
    this.statusMessage = undefined;
    this.sendDate = true;
    this.headersSent = false;
    this.finished = false;
    this.writableEnded = false;
    this.writableFinished = false;
    this.destroyed = false;
    this.chunkedEncoding = false;
    this.shouldKeepAlive = conn.keepAliveFor(req);
    this.useChunkedEncodingByDefault = true;
    this._headers = new Map(); // lower-case name -> [name, value]
    this._head = null; // the head, once made
    this._hasBody = req.method !== 'HEAD';
    this._contentLength = null;
  }

  get connection() {
    return this.socket;
  }

  get writableLength() {
    return this.socket ? this.socket.writableLength : 0;
  }

  get writableNeedDrain() {
    return this.socket ? this.socket.writableNeedDrain : false;
  }

  setHeader(name, value) {
    if (this._head !== null) throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot set headers after they are sent to the client');
    checkHeader(name, value);
    this._headers.set(name.toLowerCase(), [name, value]);
    return this;
  }

  appendHeader(name, value) {
    const have = this.getHeader(name);
    if (have === undefined) return this.setHeader(name, value);
    const list = [].concat(have, value);
    return this.setHeader(name, list);
  }

  getHeader(name) {
    const h = this._headers.get(String(name).toLowerCase());
    return h === undefined ? undefined : h[1];
  }

  getHeaders() {
    const out = Object.create(null);
    for (const [key, [, value]] of this._headers) out[key] = value;
    return out;
  }

  getHeaderNames() {
    return [...this._headers.keys()];
  }

  getRawHeaderNames() {
    return [...this._headers.values()].map(([name]) => name);
  }

  hasHeader(name) {
    return this._headers.has(String(name).toLowerCase());
  }

  removeHeader(name) {
    if (this._head !== null) throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot remove headers after they are sent to the client');
    this._headers.delete(String(name).toLowerCase());
  }

  writeHead(statusCode, reason, headers) {
    if (this._head !== null) throw nodeError(Error, 'ERR_HTTP_HEADERS_SENT', 'Cannot write headers after they are sent to the client');
    if (typeof reason !== 'string') {
      headers = reason;
      reason = undefined;
    }
    statusCode |= 0;
    if (statusCode < 100 || statusCode > 999) {
      const err = new RangeError(`Invalid status code: ${statusCode}`);
      err.code = 'ERR_HTTP_INVALID_STATUS_CODE';
      throw err;
    }
    this.statusCode = statusCode;
    if (reason !== undefined) this.statusMessage = reason;
    let fields = [...this._headers.values()];
    if (Array.isArray(headers)) {
      // [[name, value], ...] or [name, value, name, value, ...]
      const pairs = Array.isArray(headers[0]) ? headers : [];
      if (pairs.length === 0) for (let i = 0; i + 1 < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
      for (const [name, value] of pairs) {
        checkHeader(name, value);
        fields.push([name, value]);
      }
    } else if (headers) {
      const given = new Set();
      for (const name of Object.keys(headers)) {
        checkHeader(name, headers[name]);
        given.add(name.toLowerCase());
      }
      fields = fields.filter(([name]) => !given.has(name.toLowerCase()));
      for (const name of Object.keys(headers)) fields.push([name, headers[name]]);
    }
    this._makeHead(fields);
    return this;
  }

  flushHeaders() {
    if (this._head === null) this._makeHead([...this._headers.values()]);
    this._send('');
  }

  /** The head: the handler's fields, then what Node adds, as Node orders them. */
  _makeHead(fields) {
    const status = this.statusCode;
    const message = this.statusMessage || STATUS_CODES[status] || 'unknown';
    this.statusMessage = message;
    let head = `HTTP/1.1 ${status} ${message}${CRLF}`;
    let date = false;
    let connection = false;
    let length = false;
    let encoding = false;
    for (const [name, value] of fields) {
      const key = name.toLowerCase();
      const values = Array.isArray(value) ? value : [value];
      for (const v of values) head += `${name}: ${v}${CRLF}`;
      if (key === 'date') date = true;
      else if (key === 'connection') {
        connection = true;
        if (/(^|,)\s*close\s*(,|$)/i.test(values.join(','))) this.shouldKeepAlive = false;
      } else if (key === 'content-length') length = true;
      else if (key === 'transfer-encoding') {
        encoding = true;
        if (/chunked\s*$/i.test(values.join(','))) this.chunkedEncoding = true;
      }
    }
    if (this.sendDate && !date) head += `Date: ${utcDate()}${CRLF}`;
    const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) this._hasBody = false;
    if (!length && !encoding && !noBody) {
      if (this._hasBody && this._contentLength !== null) {
        length = true;
      } else if (this._hasBody && !this._conn.http10(this.req) && this.useChunkedEncodingByDefault) {
        this.chunkedEncoding = true;
      } else if (this._hasBody || this.req.method === 'HEAD') {
        if (this.req.method !== 'HEAD') this.shouldKeepAlive = false; // the end of the body is the close
      }
    }
    if (!connection) {
      if (this.shouldKeepAlive) {
        head += `Connection: keep-alive${CRLF}`;
        const server = this._conn.server;
        if (server.keepAliveTimeout) head += `Keep-Alive: timeout=${Math.floor(server.keepAliveTimeout / 1000)}${CRLF}`;
      } else {
        head += `Connection: close${CRLF}`;
      }
    }
    if (length && this._contentLength !== null && !fields.some(([n]) => n.toLowerCase() === 'content-length')) {
      head += `Content-Length: ${this._contentLength}${CRLF}`;
    }
    if (this.chunkedEncoding && !encoding) head += `Transfer-Encoding: chunked${CRLF}`;
    this._head = head + CRLF;
  }

  _send(data, cb) {
    let out = data;
    if (!this.headersSent) {
      this.headersSent = true;
      out = typeof data === 'string' ? this._head + data : Buffer.concat([Buffer.from(this._head, 'latin1'), data]);
    }
    if (out.length === 0 && cb === undefined) return true;
    return this.socket ? this.socket.write(out, cb) : false;
  }

  _bodyChunk(chunk, encoding) {
    if (typeof chunk === 'string') return Buffer.from(chunk, encoding || 'utf8');
    if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    throw invalidArgType('chunk', 'of type string or an instance of Buffer or Uint8Array', chunk);
  }

  write(chunk, encoding, cb) {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.writableEnded) {
      const err = nodeError(Error, 'ERR_STREAM_WRITE_AFTER_END', 'write after end');
      runtime.nextTick(() => {
        if (cb) cb(err);
        this.emit('error', err);
      });
      return false;
    }
    if (chunk === null) throw nodeError(Error, 'ERR_STREAM_NULL_VALUES', 'May not write null values to stream');
    const body = this._bodyChunk(chunk, encoding);
    if (this._head === null) this._makeHead([...this._headers.values()]);
    if (!this._hasBody) {
      if (cb) runtime.nextTick(cb);
      return true;
    }
    if (body.length === 0) {
      const ok = this._send(Buffer.alloc(0));
      if (cb) runtime.nextTick(cb);
      return ok;
    }
    if (this.chunkedEncoding) {
      const framed = Buffer.concat([Buffer.from(body.length.toString(16) + CRLF, 'latin1'), body, Buffer.from(CRLF, 'latin1')]);
      return this._send(framed, cb);
    }
    return this._send(body, cb);
  }

  end(chunk, encoding, cb) {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.writableEnded) {
      if (cb) runtime.nextTick(cb);
      return this;
    }
    let body = null;
    if (chunk !== undefined && chunk !== null) body = this._bodyChunk(chunk, encoding);
    if (this._head === null) {
      // Everything is known: the length goes in the head, no chunked framing.
      if (this._hasBody) this._contentLength = body === null ? 0 : body.length;
      this._makeHead([...this._headers.values()]);
    }
    this.writableEnded = true;
    this.finished = true;
    if (cb) this.once('finish', cb);
    let out = [];
    if (body !== null && body.length > 0 && this._hasBody) {
      if (this.chunkedEncoding) out.push(Buffer.from(body.length.toString(16) + CRLF, 'latin1'), body, Buffer.from(CRLF, 'latin1'));
      else out.push(body);
    }
    if (this.chunkedEncoding && this._hasBody) out.push(Buffer.from('0' + CRLF + CRLF, 'latin1'));
    const last = out.length === 0 ? Buffer.alloc(0) : out.length === 1 ? out[0] : Buffer.concat(out);
    const done = () => {
      if (this.writableFinished) return;
      this.writableFinished = true;
      this.emit('finish');
      this._conn.responseDone(this);
    };
    if (!this.socket || this.socket.destroyed) {
      runtime.nextTick(done);
    } else if (!this.headersSent || last.length > 0) {
      this._send(last, done);
    } else {
      runtime.nextTick(done);
    }
    return this;
  }

  setTimeout(ms, cb) {
    if (this.socket) this.socket.setTimeout(ms, cb);
    return this;
  }

  writeContinue(cb) {
    if (this.socket) this.socket.write(`HTTP/1.1 100 Continue${CRLF}${CRLF}`, cb);
  }

  destroy(err) {
    if (!this.destroyed) {
      this.destroyed = true;
      if (this.socket) this.socket.destroy(err);
    }
    return this;
  }

  cork() {}

  uncork() {}
}

function checkHeader(name, value) {
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    const err = new TypeError(`Header name must be a valid HTTP token ["${name}"]`);
    err.code = 'ERR_INVALID_HTTP_TOKEN';
    throw err;
  }
  if (value === undefined) {
    const err = new TypeError(`Invalid value "undefined" for header "${name}"`);
    err.code = 'ERR_HTTP_INVALID_HEADER_VALUE';
    throw err;
  }
  for (const v of Array.isArray(value) ? value : [value]) {
    if (BAD_VALUE.test(String(v))) {
      const err = new TypeError(`Invalid character in header content ["${name}"]`);
      err.code = 'ERR_INVALID_CHAR';
      throw err;
    }
  }
}

// ----- one connection: parse requests, answer them in order -------------------------

const HEAD = 0; // reading a request's head
const BODY = 1; // a body with a length
const CHUNK_SIZE = 2; // a chunked body: the size line
const CHUNK_DATA = 3;
const CHUNK_CRLF = 4;
const TRAILERS = 5;
const WAIT = 6; // a request is being answered; the next waits
const GONE = 7; // upgraded, or closing

class Connection {
  constructor(server, socket) {
    this.server = server;
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.state = HEAD;
    this.req = null;
    this.res = null;
    this.remaining = 0;
    this.peerEnded = false;
    this.idleTimer = null;
    this.idleAt = 0; // when the connection has been idle too long (0: not idle)
    this.idleTimerAt = 0; // when the timer fires
    this.onIdle = () => this.onIdleTimer();
    this.onData = (chunk) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.parse();
    };
    socket.on('data', this.onData);
    this.onEnd = () => {
      this.peerEnded = true;
      if (this.req && !this.req.complete) {
        this.req.aborted = true;
        this.req.emit('aborted');
      }
      if (this.res === null) socket.end();
    };
    this.onDrain = () => {
      if (this.res) this.res.emit('drain');
    };
    this.onError = (err) => {
      if (server.listenerCount('clientError') > 0 && this.res === null) server.emit('clientError', err, socket);
    };
    this.onClose = () => {
      this.clearIdle();
      if (this.idleTimer !== null) {
        clearTimeout(this.idleTimer);
        this.idleTimer = null;
      }
      server._conns.delete(this);
      this.state = GONE;
      const { req, res } = this;
      if (req) {
        if (!req.complete) req.aborted = true;
        req.destroyed = true;
        runtime.nextTick(() => req.emit('close'));
      }
      if (res && !res.writableFinished) {
        res.destroyed = true;
        runtime.nextTick(() => res.emit('close'));
      }
    };
    socket.on('end', this.onEnd);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    server._conns.add(this);
    this.armIdle(server.headersTimeout || 0);
  }

  http10(req) {
    return req.httpVersionMajor === 1 && req.httpVersionMinor === 0;
  }

  keepAliveFor(req) {
    const conn = String(req.headers.connection || '').toLowerCase();
    if (this.server._httpClosing) return false;
    if (this.http10(req)) return /(^|,)\s*keep-alive\s*(,|$)/.test(conn);
    return !/(^|,)\s*close\s*(,|$)/.test(conn);
  }

  // The idle (keep-alive, headers) time-out is a deadline, and one timer checks it: a
  // kept-alive connection re-arms it for every request, and a timer set and cleared
  // each time costs more than the rest of a small request.
  armIdle(ms) {
    if (!(ms > 0)) {
      this.clearIdle();
      return;
    }
    this.idleAt = Date.now() + ms;
    if (this.idleTimer !== null && this.idleTimerAt > this.idleAt) {
      // Armed for later than this deadline (a longer time-out before).
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (this.idleTimer === null) {
      this.idleTimer = setTimeout(this.onIdle, ms);
      this.idleTimerAt = this.idleAt;
    }
  }

  clearIdle() {
    this.idleAt = 0;
  }

  onIdleTimer() {
    this.idleTimer = null;
    if (this.idleAt === 0 || this.state === GONE) return;
    const left = this.idleAt - Date.now();
    if (left > 0) {
      this.idleTimer = setTimeout(this.onIdle, left);
      this.idleTimerAt = this.idleAt;
      return;
    }
    this.idleAt = 0;
    if (this.res === null) this.socket.destroy();
  }

  get idle() {
    return this.res === null && this.state === HEAD && this.buf.length === 0;
  }

  fail(code, status) {
    const err = httpError(code, code === 'HPE_HEADER_OVERFLOW' ? 'Header overflow' : 'Parse Error');
    err.bytesParsed = 0;
    err.rawPacket = this.buf;
    this.state = GONE;
    this.socket.removeListener('data', this.onData);
    if (this.server.listenerCount('clientError') > 0) {
      this.server.emit('clientError', err, this.socket);
    } else if (this.socket.writable) {
      this.socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}${CRLF}Connection: close${CRLF}${CRLF}`);
      this.socket.destroySoon();
    } else {
      this.socket.destroy();
    }
  }

  parse() {
    for (;;) {
      switch (this.state) {
        case HEAD: {
          const end = this.buf.indexOf('\r\n\r\n');
          if (end < 0) {
            // Blank lines before a request are allowed (RFC 9112 2.2).
            while (this.buf.length >= 2 && this.buf[0] === 13 && this.buf[1] === 10) this.buf = this.buf.subarray(2);
            if (this.buf.length > MAX_HEADER_SIZE) this.fail('HPE_HEADER_OVERFLOW', 431);
            return;
          }
          if (end > MAX_HEADER_SIZE) return this.fail('HPE_HEADER_OVERFLOW', 431);
          const head = this.buf.toString('latin1', 0, end);
          this.buf = this.buf.subarray(end + 4);
          if (!this.startRequest(head.replace(/^(\r\n)+/, ''))) return;
          break;
        }
        case BODY: {
          if (this.buf.length === 0) return;
          const n = Math.min(this.remaining, this.buf.length);
          const chunk = this.buf.subarray(0, n);
          this.buf = this.buf.subarray(n);
          this.remaining -= n;
          this.req._push(chunk);
          if (this.remaining === 0) this.bodyDone();
          break;
        }
        case CHUNK_SIZE: {
          const eol = this.buf.indexOf('\r\n');
          if (eol < 0) {
            if (this.buf.length > 1024) return this.fail('HPE_INVALID_CHUNK_SIZE', 400);
            return;
          }
          const line = this.buf.toString('latin1', 0, eol).split(';')[0].trim();
          this.buf = this.buf.subarray(eol + 2);
          if (!/^[0-9a-fA-F]{1,12}$/.test(line)) return this.fail('HPE_INVALID_CHUNK_SIZE', 400);
          this.remaining = parseInt(line, 16);
          this.state = this.remaining === 0 ? TRAILERS : CHUNK_DATA;
          break;
        }
        case CHUNK_DATA: {
          if (this.buf.length === 0) return;
          const n = Math.min(this.remaining, this.buf.length);
          const chunk = this.buf.subarray(0, n);
          this.buf = this.buf.subarray(n);
          this.remaining -= n;
          this.req._push(chunk);
          if (this.remaining === 0) this.state = CHUNK_CRLF;
          break;
        }
        case CHUNK_CRLF: {
          if (this.buf.length < 2) return;
          if (this.buf[0] !== 13 || this.buf[1] !== 10) return this.fail('HPE_STRICT', 400);
          this.buf = this.buf.subarray(2);
          this.state = CHUNK_SIZE;
          break;
        }
        case TRAILERS: {
          const eol = this.buf.indexOf('\r\n');
          if (eol < 0) {
            if (this.buf.length > MAX_HEADER_SIZE) return this.fail('HPE_HEADER_OVERFLOW', 431);
            return;
          }
          const line = this.buf.toString('latin1', 0, eol);
          this.buf = this.buf.subarray(eol + 2);
          if (line === '') {
            this.bodyDone();
          } else {
            const colon = line.indexOf(':');
            if (colon > 0) {
              const name = line.slice(0, colon);
              const value = line.slice(colon + 1).trim();
              this.req.rawTrailers.push(name, value);
              this.req.trailers[name.toLowerCase()] = value;
            }
          }
          break;
        }
        default:
          return;
      }
    }
  }

  /** Parses a head and hands the request over; false when parsing must stop. */
  startRequest(head) {
    const lines = head.split('\r\n');
    const m = /^([A-Z-]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(lines[0]);
    if (m === null || !METHODS.includes(m[1])) {
      this.fail(m === null ? 'HPE_INVALID_METHOD' : 'HPE_INVALID_METHOD', 400);
      return false;
    }
    const req = new IncomingMessage(this.socket);
    req.method = m[1];
    req.url = m[2];
    req.httpVersionMajor = +m[3];
    req.httpVersionMinor = +m[4];
    req.httpVersion = `${m[3]}.${m[4]}`;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) {
        this.fail('HPE_INVALID_HEADER_TOKEN', 400);
        return false;
      }
      addHeader(req, line.slice(0, colon), line.slice(colon + 1).trim());
    }
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    if (cl !== undefined && !/^\d+$/.test(cl)) {
      this.fail('HPE_INVALID_CONTENT_LENGTH', 400);
      return false;
    }
    if (te !== undefined && cl !== undefined) {
      this.fail('HPE_UNEXPECTED_CONTENT_LENGTH', 400);
      return false;
    }
    this.clearIdle();
    this.req = req;
    const server = this.server;
    const upgrade =
      req.headers.upgrade !== undefined && /(^|,)\s*upgrade\s*(,|$)/i.test(String(req.headers.connection || ''));
    if ((upgrade && server.listenerCount('upgrade') > 0) || req.method === 'CONNECT') {
      // The socket is the handler's from here, with the bytes after the head.
      req.upgrade = true;
      this.state = GONE;
      for (const [event, fn] of [['data', this.onData], ['end', this.onEnd], ['drain', this.onDrain], ['error', this.onError], ['close', this.onClose]]) {
        this.socket.removeListener(event, fn);
      }
      server._conns.delete(this);
      const rest = this.buf;
      this.buf = Buffer.alloc(0);
      req.complete = true;
      const event = req.method === 'CONNECT' ? 'connect' : 'upgrade';
      if (server.listenerCount(event) > 0) server.emit(event, req, this.socket, rest);
      else this.socket.destroy();
      return false;
    }
    if (te !== undefined) {
      if (!/(^|,)\s*chunked\s*$/i.test(te)) {
        this.fail('HPE_INVALID_TRANSFER_ENCODING', 400);
        return false;
      }
      this.state = CHUNK_SIZE;
    } else if (cl !== undefined && +cl > 0) {
      this.remaining = +cl;
      this.state = BODY;
    } else {
      this.state = WAIT;
      req._ended = true;
      req.complete = true;
    }
    const res = new ServerResponse(req, this);
    this.res = res;
    if (server.requireHostHeader !== false && req.httpVersionMinor === 1 && req.headers.host === undefined) {
      // Node answers it itself; the handler never sees the request.
      res.writeHead(400, ['Connection', 'close']);
      res.end();
      return this.state !== WAIT;
    }
    const expect = req.headers.expect;
    if (expect !== undefined && /^100-continue$/i.test(expect)) {
      if (server.listenerCount('checkContinue') > 0) server.emit('checkContinue', req, res);
      else {
        res.writeContinue();
        server.emit('request', req, res);
      }
    } else if (expect !== undefined) {
      if (server.listenerCount('checkExpectation') > 0) server.emit('checkExpectation', req, res);
      else {
        res.writeHead(417);
        res.end();
      }
    } else {
      server.emit('request', req, res);
    }
    return this.state !== WAIT;
  }

  bodyDone() {
    this.state = WAIT;
    this.req._pushEnd();
  }

  /** The response is out: the next request, or the end of the connection. */
  responseDone(res) {
    if (this.res !== res) return;
    const req = this.req;
    if (!req.complete) {
      // The body was not read to its end: Node reads on and throws it away, then
      // closes (it cannot know where the next request starts without reading it).
      req._dump();
      res.shouldKeepAlive = false;
    } else if (!req._endEmitted) {
      req._dump();
      req._flow();
    }
    runtime.nextTick(() => {
      res.emit('close');
      if (!req.destroyed) {
        req.destroyed = true;
        req.emit('close');
      }
    });
    this.res = null;
    this.req = null;
    if (!res.shouldKeepAlive || this.peerEnded || this.server._httpClosing) {
      this.state = GONE;
      this.socket.removeListener('data', this.onData);
      this.socket.end();
      return;
    }
    this.state = HEAD;
    this.armIdle(this.server.keepAliveTimeout);
    if (this.buf.length > 0) runtime.nextTick(() => this.parse());
  }
}

// ----- Server -----------------------------------------------------------------------

class Server extends net.Server {
  constructor(options, requestListener) {
    if (typeof options === 'function') {
      requestListener = options;
      options = {};
    }
    options = options || {};
    // Half-open: a client's FIN must not cut a response short (Node's http does the same).
    super({ allowHalfOpen: true, noDelay: options.noDelay !== false, keepAlive: !!options.keepAlive });
    this._conns = new Set();
    this.timeout = 0;
    this.keepAliveTimeout = 5000;
    this.headersTimeout = 60000;
    this.requestTimeout = 300000;
    this.maxHeadersCount = null;
    this.requireHostHeader = options.requireHostHeader !== false;
    if (options.keepAliveTimeout !== undefined) this.keepAliveTimeout = options.keepAliveTimeout;
    if (requestListener) this.on('request', requestListener);
    this.on('connection', (socket) => new Connection(this, socket));
  }

  setTimeout(ms, cb) {
    this.timeout = ms;
    if (cb) this.on('timeout', cb);
    return this;
  }

  close(cb) {
    this._httpClosing = true;
    this.closeIdleConnections();
    return super.close(cb);
  }

  closeIdleConnections() {
    for (const c of [...this._conns]) if (c.idle) c.socket.destroy();
  }

  closeAllConnections() {
    for (const c of [...this._conns]) c.socket.destroy();
  }
}

function createServer(options, requestListener) {
  return new Server(options, requestListener);
}

function notProvided(name) {
  return () => {
    throw nodeError(Error, 'ERR_NOT_SUPPORTED', `http.${name} (an HTTP client) is not in netlet's JavaScript SDK`);
  };
}

module.exports = {
  METHODS,
  STATUS_CODES,
  Server,
  IncomingMessage,
  ServerResponse,
  createServer,
  maxHeaderSize: MAX_HEADER_SIZE,
  request: notProvided('request'),
  get: notProvided('get'),
  validateHeaderName(name) {
    checkHeader(name, '');
  },
  validateHeaderValue(name, value) {
    checkHeader('x', value);
  },
};
