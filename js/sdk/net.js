'use strict';
// Node's `net` on netlet's `net` interface: Server (listen, connection, close, address,
// getConnections, maxConnections, drop) and Socket (Node's stream-like API: data / end /
// finish / close, write with encodings and callbacks, end, destroy, pause / resume,
// setEncoding, setTimeout, setNoDelay, setKeepAlive, addresses, byte counts, readyState,
// backpressure with `write` returning false and `drain`, allowHalfOpen, pipe), and
// net.connect / createConnection under the operator's `--allow`.
//
// The host owns the sockets: a write is queued and sent when the handler returns from
// its batch; `drain`, `connect`, `end`, `close` come back as events.

const EventEmitter = require('./events.js');
const { Buffer, FastBuffer } = require('./buffer.js');
const { StringDecoder } = require('./string_decoder.js');
const runtime = require('./runtime.js');
const { systemError, witCode, nodeError, invalidArgType, validatePort } = require('./errors.js');

const witNet = runtime.wit.net;

// Node's readable high-water mark for sockets: bytes a socket nobody reads from holds
// before it stops reading.
const READABLE_HWM = 16 * 1024;
// The host's write queue mark (`write` returns false past it).
const WRITABLE_HWM = 64 * 1024;

const servers = new Map(); // host server id -> Server
const sockets = new Map(); // host socket id -> Socket

// ----- listeners: which host listener a `server.listen(port)` gets -------------------
//
// `server.listen(port)` asks the host (WIT `net.listen`): it gets the operator's listener
// known by that port (`netlet run --tcp ADDR`, or `--tcp ADDR=PORT` to serve the code's
// port elsewhere), or one the host binds where `--allow` permits, or an error the host
// also logs naming the flags. A `listening` event for the server follows. This is the one
// place that knows how a listen call becomes a host listener.

function claimListener(server, port, host) {
  let handle;
  try {
    handle = witNet.listen(port, host, server._options());
  } catch (e) {
    const code = witCode(e);
    const where = `${host || '0.0.0.0'}:${port}`;
    const detail =
      code === 'access-denied'
        ? `permission denied ${where} (netlet run --tcp ${host ? where : port} gives the handler ` +
          `this port; --tcp ADDR=${port} serves it elsewhere)`
        : code === 'address-in-use'
          ? `address already in use ${where}`
          : where;
    const err = systemError(code, `listen ${systemError(code, '').code}: ${detail}`, {
      syscall: 'listen',
      address: host || '0.0.0.0',
      port,
    });
    server._listenRequested = false;
    runtime.nextTick(() => server.emit('error', err));
    return;
  }
  server._attach(handle);
}

// Operator listeners the code did not claim are announced too: their handles are dropped
// (the listener stays the host's) and connections they take are refused.

function addressInfo(a) {
  if (!a) return null;
  return { address: a.address, family: a.family === 'ipv6' ? 'IPv6' : 'IPv4', port: a.port };
}

// ----- host events -------------------------------------------------------------------

function dispatch(ev) {
  const v = ev.val;
  switch (ev.tag) {
    case 'data': {
      const s = sockets.get(v.socket);
      if (s) s._onData(v.data);
      break;
    }
    case 'connection': {
      const server = servers.get(v.server);
      if (server === undefined) v.socket[Symbol.dispose]();
      else server._onConnection(v.socket);
      break;
    }
    case 'listening': {
      const server = servers.get(v.id());
      if (server === undefined || server._handle !== v) v[Symbol.dispose]();
      if (server !== undefined && !server._closing) server.emit('listening');
      break;
    }
    case 'connect': {
      const s = sockets.get(v);
      if (s) s._onConnect();
      break;
    }
    case 'end': {
      const s = sockets.get(v);
      if (s) s._onEnd();
      break;
    }
    case 'drain': {
      const s = sockets.get(v);
      if (s) s._onDrain();
      break;
    }
    case 'timeout': {
      const s = sockets.get(v);
      if (s) s.emit('timeout');
      break;
    }
    case 'error': {
      const s = sockets.get(v.socket);
      if (s) s._onError(systemError(v.error.code, v.error.message));
      break;
    }
    case 'close': {
      const s = sockets.get(v.socket);
      if (s) s._onClose(v.hadError);
      break;
    }
    case 'server-close': {
      const server = servers.get(v);
      if (server) server._onClose();
      break;
    }
    case 'server-error': {
      const server = servers.get(v.server);
      if (server) server.emit('error', systemError(v.error.code, v.error.message));
      break;
    }
    case 'drop': {
      const server = servers.get(v.server);
      if (server) server.emit('drop', dropInfo(v.localAddress, v.remoteAddress));
      break;
    }
  }
}

// Node's 'finish' comes once the bytes before the FIN are handed to the kernel. The host
// sends a batch's writes after the batch, so a socket that ended is checked on the next
// turn (one zero timer for all of them), and again on later turns while bytes remain.
const finishWaiters = new Set();
let finishTimer = 0;

function armFinishCheck() {
  if (finishTimer !== 0) return;
  finishTimer = runtime.startHostTimer(0, false, () => {
    finishTimer = 0;
    for (const socket of [...finishWaiters]) {
      if (socket._closed || socket._finished) {
        finishWaiters.delete(socket);
      } else if (socket._needDrain) {
        // 'drain' reschedules it.
        finishWaiters.delete(socket);
      } else if (socket.bufferSize === 0) {
        finishWaiters.delete(socket);
        socket._emitFinish();
      }
    }
    if (finishWaiters.size) armFinishCheck();
  });
}

function dropInfo(local, remote) {
  const l = addressInfo(local) || {};
  const r = addressInfo(remote) || {};
  return {
    localAddress: l.address,
    localPort: l.port,
    localFamily: l.family,
    remoteAddress: r.address,
    remotePort: r.port,
    remoteFamily: r.family,
  };
}

runtime.register('net', dispatch);

runtime.onExit(() => {
  for (const socket of [...sockets.values()]) {
    if (socket._handle !== null) {
      socket._handle.destroy();
      socket._handle[Symbol.dispose]();
    }
  }
  sockets.clear();
  const serving = servers.size > 0;
  servers.clear();
  return serving;
});

// ----- Server ------------------------------------------------------------------------

class Server extends EventEmitter {
  constructor(options, connectionListener) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    } else if (options === undefined || options === null) {
      options = {};
    } else if (typeof options !== 'object') {
      throw invalidArgType('options', 'of type object', options);
    }
    this.allowHalfOpen = options.allowHalfOpen === true;
    this.pauseOnConnect = !!options.pauseOnConnect;
    this.noDelay = options.noDelay === true;
    this.keepAlive = options.keepAlive === true;
    this.keepAliveInitialDelay = ~~(options.keepAliveInitialDelay / 1000) * 1000 || 0;
    this.maxConnections = undefined;
    this._connections = 0;
    this._handle = null;
    this._id = 0;
    this._listenRequested = false;
    this._closing = false;
    this._address = null;
    if (typeof connectionListener === 'function') this.on('connection', connectionListener);
  }

  listen(...args) {
    let cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    let port = 0;
    let host;
    const first = args[0];
    if (first !== null && typeof first === 'object') {
      if (first.path !== undefined) {
        throw nodeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'listen on a path (Unix socket) is not supported in netlet');
      }
      if (first.port !== undefined) port = validatePort(first.port, 'options.port');
      host = first.host;
    } else if (typeof first === 'string' && !/^\s*\d+\s*$/.test(first)) {
      throw nodeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'listen on a path (Unix socket) is not supported in netlet');
    } else {
      if (first !== undefined && first !== null) port = validatePort(first, 'options.port');
      if (typeof args[1] === 'string') host = args[1];
    }
    if (this._listenRequested || this._handle) {
      throw nodeError(Error, 'ERR_SERVER_ALREADY_LISTEN', 'Listen method has been called more than once without closing.');
    }
    this._listenRequested = true;
    this._closing = false;
    if (cb) this.once('listening', cb);
    runtime.whenStarted(() => {
      if (!this._closing) claimListener(this, port, host);
    });
    return this;
  }

  _attach(handle) {
    this._handle = handle;
    this._id = handle.id();
    this._address = addressInfo(handle.address());
    servers.set(this._id, this);
  }

  /** How the host starts this server's sockets (WIT server-options). */
  _options() {
    return {
      allowHalfOpen: this.allowHalfOpen,
      pauseOnConnect: this.pauseOnConnect,
      noDelay: this.noDelay,
      keepAlive: this.keepAlive,
      keepAliveInitialDelayMs: this.keepAliveInitialDelay >>> 0,
    };
  }

  get listening() {
    return this._handle !== null;
  }

  address() {
    if (this._handle === null) return null;
    return this._address ? { ...this._address } : null;
  }

  _onConnection(handle) {
    const socket = new Socket({ handle, allowHalfOpen: this.allowHalfOpen, pauseOnConnect: this.pauseOnConnect });
    if (this.maxConnections !== undefined && this._connections >= this.maxConnections) {
      const info = dropInfo(handle.localAddress(), handle.remoteAddress());
      socket.destroy();
      this.emit('drop', info);
      return;
    }
    this._connections++;
    socket.server = this;
    socket._server = this;
    // noDelay, keepAlive, pauseOnConnect and allowHalfOpen the host applied at accept.
    this.emit('connection', socket);
  }

  _connectionClosed() {
    this._connections--;
    if (this._closing && this._connections === 0 && this._handle === null && !this._closeEmitted) {
      // A server the host could not close (a per-connection instance) drains here.
      this._closeEmitted = true;
      runtime.nextTick(() => this.emit('close'));
    }
  }

  close(cb) {
    if (typeof cb === 'function') {
      if (this._handle === null && !this._listenRequested) {
        this.once('close', () => cb(nodeError(Error, 'ERR_SERVER_NOT_RUNNING', 'Server is not running.')));
      } else {
        this.once('close', cb);
      }
    }
    this._closing = true;
    this._closeEmitted = false;
    const handle = this._handle;
    this._listenRequested = false;
    if (handle !== null) {
      this._handle = null;
      let refused = false;
      try {
        handle.close();
      } catch (e) {
        witCode(e);
        refused = true;
      }
      if (refused && this._connections === 0) {
        this._closeEmitted = true;
        runtime.nextTick(() => this.emit('close'));
      }
    } else {
      this._closeEmitted = true;
      runtime.nextTick(() => this.emit('close'));
    }
    return this;
  }

  _onClose() {
    servers.delete(this._id);
    if (!this._closeEmitted) {
      this._closeEmitted = true;
      this.emit('close');
    }
  }

  getConnections(cb) {
    const n = this._connections;
    if (typeof cb === 'function') runtime.nextTick(cb, null, n);
    return this;
  }

  ref() {
    return this;
  }

  unref() {
    return this;
  }

  [Symbol.asyncDispose]() {
    return new Promise((resolve) => this.close(() => resolve()));
  }
}

Object.defineProperty(Server.prototype, 'connections', {
  get() {
    return this._connections;
  },
  set(n) {
    this._connections = n;
  },
});

function createServer(options, connectionListener) {
  return new Server(options, connectionListener);
}

// ----- Socket ------------------------------------------------------------------------

function toBuffer(u8) {
  return new FastBuffer(u8.buffer, u8.byteOffset, u8.byteLength);
}

class Socket extends EventEmitter {
  constructor(options) {
    super();
    if (typeof options === 'number') options = { fd: options };
    else if (options === undefined || options === null) options = {};
    this.connecting = false;
    this.destroyed = false;
    this.allowHalfOpen = options.allowHalfOpen === true;
    this.server = null;
    this._server = null;
    this.timeout = 0;
    this._handle = null;
    this._id = 0;
    this._closed = false;
    this._hadError = false;
    this._destroyError = null;
    // Readable side.
    this._flowing = null; // null: nobody asked yet; true / false: resume / pause
    this._paused = false; // host reading stopped
    this._buffered = []; // chunks that arrived while not flowing
    this._bufferedBytes = 0;
    this._peerEnded = false;
    this._endEmitted = false;
    this._decoder = null;
    // Writable side.
    this._ending = false;
    this._finished = false;
    this._needDrain = false;
    this._drainCallbacks = [];
    this._finishCallbacks = [];
    this._pendingOps = []; // what was asked before the host socket existed
    // Cached once known, kept after close (as Node does).
    this._peer = null;
    this._local = null;
    this._bytesRead = 0;
    this._bytesWritten = 0;
    this._pauseOnConnect = !!options.pauseOnConnect;
    if (options.handle) this._attach(options.handle, true);
  }

  _attach(handle, accepted) {
    this._handle = handle;
    this._id = handle.id();
    sockets.set(this._id, this);
    if (accepted) {
      this._peer = addressInfo(handle.remoteAddress());
      // The host started it paused (server option pauseOnConnect).
      if (this._pauseOnConnect) this._paused = true;
    }
  }

  // --- readable ------------------------------------------------------------------

  _onData(u8) {
    this._bytesRead += u8.byteLength;
    let chunk = toBuffer(u8);
    if (this._hostPiped !== undefined) {
      // Queued by the host before the pipe: on to the destination, in order.
      this._hostPiped.dest.write(chunk);
      return;
    }
    if (this._flowing === true && this._buffered.length === 0) {
      if (this._decoder !== null) {
        chunk = this._decoder.write(chunk);
        if (chunk.length === 0) return;
      }
      this.emit('data', chunk);
      return;
    }
    this._buffered.push(chunk);
    this._bufferedBytes += chunk.length;
    if (this._flowing === true) this._flush();
    else {
      if (this._bufferedBytes >= READABLE_HWM && !this._paused) this._hostPause();
      if (this._readableListening) this._emitReadable();
    }
  }

  _onEnd() {
    this._peerEnded = true;
    if (this._decoder !== null) {
      const rest = this._decoder.end();
      this._decoder = new StringDecoder(this._decoder.encoding);
      if (rest.length) {
        this._buffered.push(rest);
        this._bufferedBytes += rest.length;
      }
    }
    this._maybeEnd();
  }

  _maybeEnd() {
    if (!this._peerEnded || this._endEmitted || this._buffered.length !== 0) return;
    if (this._flowing !== true && !this._readableListening) return;
    this._endScheduled = true;
    runtime.nextTick(() => {
      if (this._endEmitted || this.destroyed && this._closed) return;
      this._endEmitted = true;
      this.emit('end');
      if (!this.allowHalfOpen && !this._ending && !this.destroyed) {
        runtime.nextTick(() => {
          if (!this._ending && !this.destroyed) this.end();
        });
      }
    });
  }

  _flush() {
    while (this._flowing === true && this._buffered.length && !this.destroyed) {
      let chunk = this._buffered.shift();
      this._bufferedBytes -= chunk.length;
      if (this._decoder !== null && typeof chunk !== 'string') {
        chunk = this._decoder.write(chunk);
        if (chunk.length === 0) continue;
      }
      this.emit('data', chunk);
    }
    if (this._buffered.length === 0) this._maybeEnd();
  }

  _hostPause() {
    this._paused = true;
    if (this._handle !== null && !this._closed) this._handle.pause();
  }

  _hostResume() {
    this._paused = false;
    if (this._handle !== null && !this._closed) this._handle.resume();
  }

  on(event, listener) {
    if (event === 'data' && this._hostPiped !== undefined) this._leaveHostPipe();
    super.on(event, listener);
    if (event === 'data') {
      if (this._flowing !== false) this.resume();
    } else if (event === 'readable') {
      this._readableListening = true;
      this._flowing = false;
      if (this._bufferedBytes > 0 || this._peerEnded) this._emitReadable();
    }
    return this;
  }

  prependListener(event, listener) {
    if (event === 'data' && this._hostPiped !== undefined) this._leaveHostPipe();
    return super.prependListener(event, listener);
  }

  _emitReadable() {
    if (this._readableScheduled) return;
    this._readableScheduled = true;
    runtime.nextTick(() => {
      this._readableScheduled = false;
      if (!this.destroyed) this.emit('readable');
      this._maybeEnd();
    });
  }

  read(size) {
    if (this._buffered.length === 0) {
      if (this._peerEnded) this._maybeEnd();
      else if (this._paused && !this.destroyed) this._hostResume();
      return null;
    }
    let out;
    if (size === undefined || size >= this._bufferedBytes) {
      out =
        this._buffered.length === 1
          ? this._buffered[0]
          : typeof this._buffered[0] === 'string'
            ? this._buffered.join('')
            : Buffer.concat(this._buffered);
      this._buffered = [];
      this._bufferedBytes = 0;
    } else if (size === 0) {
      return null;
    } else {
      const all = Buffer.concat(this._buffered);
      out = all.subarray(0, size);
      const rest = all.subarray(size);
      this._buffered = [rest];
      this._bufferedBytes = rest.length;
    }
    if (this._decoder !== null && typeof out !== 'string') out = this._decoder.write(out);
    if (this._paused && this._bufferedBytes < READABLE_HWM && this._flowing !== false) this._hostResume();
    if (this._paused && this._readableListening && this._bufferedBytes < READABLE_HWM) this._hostResume();
    if (this._buffered.length === 0) this._maybeEnd();
    return out;
  }

  /** Node's `readable.unshift(chunk)`: bytes put back at the front of what is read next. */
  unshift(chunk, encoding) {
    if (chunk === null || chunk === undefined) return;
    const c = typeof chunk === 'string' ? Buffer.from(chunk, encoding || 'utf8') : toBuffer(chunk);
    if (c.length === 0) return;
    this._buffered.unshift(c);
    this._bufferedBytes += c.length;
    if (this._flowing === true) runtime.nextTick(() => this._flush());
    else if (this._readableListening) this._emitReadable();
  }

  pause() {
    if (this._flowing !== false) {
      this._flowing = false;
      this.emit('pause');
    }
    if (!this._paused) this._hostPause();
    return this;
  }

  resume() {
    if (this._flowing !== true) {
      this._flowing = true;
      this._readableListening = false;
      runtime.nextTick(() => {
        if (this._flowing !== true) return;
        this.emit('resume');
        this._flush();
      });
    }
    if (this._paused) this._hostResume();
    return this;
  }

  isPaused() {
    return this._flowing === false;
  }

  setEncoding(encoding) {
    this._decoder = new StringDecoder(encoding);
    // Bytes already buffered are decoded when they are read.
    return this;
  }

  get readable() {
    return !this.destroyed && !this._endEmitted;
  }

  get readableEnded() {
    return this._endEmitted;
  }

  get readableFlowing() {
    return this._flowing;
  }

  get readableLength() {
    return this._bufferedBytes;
  }

  get readableHighWaterMark() {
    return READABLE_HWM;
  }

  get readableEncoding() {
    return this._decoder ? this._decoder.encoding : null;
  }

  // --- writable ------------------------------------------------------------------

  get writable() {
    return !this.destroyed && !this._ending;
  }

  get writableEnded() {
    return this._ending;
  }

  get writableFinished() {
    return this._finished;
  }

  get writableNeedDrain() {
    return this._needDrain;
  }

  get writableHighWaterMark() {
    return WRITABLE_HWM;
  }

  get writableLength() {
    return this.bufferSize;
  }

  get writableCorked() {
    return 0;
  }

  get bufferSize() {
    if (this._handle !== null && !this._closed) return Number(this._handle.bufferSize());
    return 0;
  }

  write(data, encoding, cb) {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    let bytes;
    if (typeof data === 'string') {
      bytes = Buffer.from(data, encoding || 'utf8');
    } else if (data instanceof Uint8Array) {
      bytes = data;
    } else if (ArrayBuffer.isView(data)) {
      bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else if (data === null) {
      throw nodeError(TypeError, 'ERR_STREAM_NULL_VALUES', 'May not write null values to stream');
    } else {
      throw invalidArgType('chunk', 'of type string or an instance of Buffer, TypedArray, or DataView', data);
    }
    let err = null;
    if (this._ending) {
      err = nodeError(Error, 'ERR_STREAM_WRITE_AFTER_END', 'write after end');
    } else if (this.destroyed) {
      err = nodeError(Error, 'ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed');
    } else if (this._peerEnded && this._endEmitted && !this.allowHalfOpen) {
      err = systemError('broken-pipe', 'This socket has been ended by the other party', { syscall: undefined });
      err.code = 'EPIPE';
    }
    if (err !== null) {
      if (typeof cb === 'function') runtime.nextTick(cb, err);
      if (!this.destroyed) runtime.nextTick(() => this.destroy(err));
      return false;
    }
    if (this._handle === null) {
      this._pendingOps.push(() => this._hostWrite(bytes, cb));
      return true;
    }
    return this._hostWrite(bytes, cb);
  }

  _hostWrite(bytes, cb) {
    let ok;
    try {
      ok = this._handle.write(bytes);
    } catch (e) {
      const code = witCode(e);
      const err =
        code === 'invalid-state'
          ? nodeError(Error, 'ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed')
          : systemError(code, `write ${code}`);
      if (typeof cb === 'function') runtime.nextTick(cb, err);
      return false;
    }
    this._bytesWritten += bytes.byteLength;
    if (!ok) this._needDrain = true;
    if (typeof cb === 'function') {
      if (this._needDrain) this._drainCallbacks.push(cb);
      else runtime.nextTick(cb, null);
    }
    return !this._needDrain;
  }

  _onDrain() {
    this._needDrain = false;
    this.emit('drain');
    const cbs = this._drainCallbacks.splice(0);
    for (const cb of cbs) cb(null);
    if (this._ending && !this._finished) this._scheduleFinish();
  }

  end(data, encoding, cb) {
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (data !== undefined && data !== null) this.write(data, encoding);
    if (this._ending) {
      if (typeof cb === 'function') {
        if (this._finished) runtime.nextTick(cb, nodeError(Error, 'ERR_STREAM_ALREADY_FINISHED', 'Cannot call end after a stream was finished'));
        else this._finishCallbacks.push(cb);
      }
      return this;
    }
    this._ending = true;
    // Called before 'finish' is emitted, as Node's end(cb) is.
    if (typeof cb === 'function') this._finishCallbacks.push(cb);
    if (this.destroyed) return this;
    if (this._handle === null) {
      this._pendingOps.push(() => this._hostEnd());
      return this;
    }
    this._hostEnd();
    return this;
  }

  _hostEnd() {
    if (!this._closed) this._handle.end(undefined);
    this._scheduleFinish();
  }

  _scheduleFinish() {
    if (this._needDrain || finishWaiters.has(this)) return;
    finishWaiters.add(this);
    armFinishCheck();
  }

  _emitFinish() {
    if (this._finished || (this.destroyed && this._destroyCalled)) return;
    this._finished = true;
    this.emit('prefinish');
    for (const cb of this._finishCallbacks.splice(0)) cb();
    this.emit('finish');
  }

  destroy(err) {
    if (this.destroyed) return this;
    this.destroyed = true;
    this._destroyCalled = true;
    if (err) this._destroyError = err;
    if (this._handle !== null && !this._closed) {
      this._handle.destroy();
      if (err) runtime.nextTick(() => this.emit('error', err));
    } else if (!this._closed) {
      // No host socket (never connected, or refused at once): Node's order, error then close.
      runtime.nextTick(() => {
        if (err) this.emit('error', err);
        this._onClose(!!err);
      });
    }
    return this;
  }

  destroySoon() {
    if (this._ending) {
      if (this._finished) this.destroy();
      else this.once('finish', () => this.destroy());
    } else {
      this.end(() => this.destroy());
    }
  }

  resetAndDestroy() {
    if (this._handle !== null && !this._closed && !this.destroyed) {
      this.destroyed = true;
      this._destroyCalled = true;
      this._handle.resetAndDestroy();
      return this;
    }
    return this.destroy(nodeError(Error, 'ERR_SOCKET_CLOSED', 'Socket is closed'));
  }

  _onError(err) {
    this.destroyed = true;
    this._hadError = true;
    this._failPending(err);
    this.emit('error', err);
  }

  _failPending(err) {
    const cbs = this._drainCallbacks.splice(0);
    for (const cb of cbs) runtime.nextTick(cb, err);
  }

  _onClose(hadError) {
    if (this._closed) return;
    // Both sides done before the finish check ran: the FIN went out, so 'finish' first.
    if (this._ending && !this._finished && !this._destroyCalled && !hadError && !this._hadError) {
      finishWaiters.delete(this);
      this._emitFinish();
    }
    // A socket in a host pipe: its final counts, which the host keeps until the handle goes.
    if (this._hostCounts) {
      void this.bytesRead;
      void this.bytesWritten;
    }
    this._closed = true;
    this.destroyed = true;
    this.connecting = false;
    const handle = this._handle;
    if (handle !== null) {
      sockets.delete(this._id);
      handle[Symbol.dispose]();
      this._handle = null;
      this._handleGone = true;
    }
    this._failPending(nodeError(Error, 'ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed'));
    if (!this._finished) {
      for (const cb of this._finishCallbacks.splice(0)) {
        runtime.nextTick(cb, nodeError(Error, 'ERR_STREAM_DESTROYED', 'Cannot call end after a stream was destroyed'));
      }
    }
    if (this._server) this._server._connectionClosed();
    this.emit('close', !!hadError || this._hadError || this._destroyError !== null);
  }

  // --- connect -------------------------------------------------------------------

  connect(...args) {
    const [options, cb] = normalizeConnectArgs(args);
    if (options.path !== undefined) {
      throw nodeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'connect to a path (Unix socket) is not supported in netlet');
    }
    const port = options.port;
    if (port === undefined || port === null) {
      throw invalidArgType('options.port', 'of type number or string', port);
    }
    validatePort(port, 'Port', true);
    if (this._handle !== null || this.connecting) {
      throw nodeError(Error, 'ERR_SOCKET_CONNECTING', 'Socket is already connecting or connected');
    }
    if (typeof cb === 'function') this.once('connect', cb);
    if (options.allowHalfOpen !== undefined) this.allowHalfOpen = !!options.allowHalfOpen;
    this.connecting = true;
    this.destroyed = false;
    if (options.timeout) this.setTimeout(options.timeout);
    const host = options.host || 'localhost';
    const request = {
      host,
      port: +port,
      family: options.family === 4 ? 'ipv4' : options.family === 6 ? 'ipv6' : undefined,
      localAddress: options.localAddress,
      noDelay: !!options.noDelay,
      keepAlive: !!options.keepAlive,
      keepAliveInitialDelayMs: ~~options.keepAliveInitialDelay >>> 0,
      allowHalfOpen: this.allowHalfOpen,
    };
    runtime.whenStarted(() => this._hostConnect(request));
    return this;
  }

  _hostConnect(request) {
    if (this.destroyed) return;
    let handle;
    try {
      handle = witNet.connect(request);
    } catch (e) {
      const code = witCode(e);
      const where = `${request.host}:${request.port}`;
      const message =
        code === 'access-denied'
          ? `connect EACCES ${where} (netlet lets a handler connect only where it is run with --allow: pass netlet run --allow ${where})`
          : `connect ${code} ${where}`;
      const err = systemError(code, message, { syscall: 'connect', address: request.host, port: request.port });
      this.connecting = false;
      this.destroy(err);
      return;
    }
    this._attach(handle, false);
    const ops = this._pendingOps.splice(0);
    for (const op of ops) op();
  }

  _onConnect() {
    this.connecting = false;
    this._peer = addressInfo(this._handle.remoteAddress());
    this._local = addressInfo(this._handle.localAddress());
    if (this._paused) this._handle.pause();
    this.emit('connect');
    this.emit('ready');
  }

  // --- options ---------------------------------------------------------------------

  setTimeout(ms, cb) {
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
      if (typeof ms !== 'number') throw invalidArgType('msecs', 'of type number', ms);
      throw nodeError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "msecs" is out of range. It must be a non-negative finite number. Received ${ms}`);
    }
    ms = ms === Infinity ? 0 : Math.trunc(ms);
    this.timeout = ms;
    if (typeof cb === 'function') {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this._withHandle((h) => h.setTimeout(Math.min(ms, 0xffffffff)));
    return this;
  }

  setNoDelay(noDelay) {
    const on = noDelay === undefined ? true : !!noDelay;
    this._withHandle((h) => {
      try {
        h.setNoDelay(on);
      } catch (e) {
        witCode(e);
      }
    });
    return this;
  }

  setKeepAlive(enable, initialDelay) {
    const on = !!enable;
    const delay = ~~initialDelay >>> 0;
    this._withHandle((h) => {
      try {
        h.setKeepAlive(on, delay);
      } catch (e) {
        witCode(e);
      }
    });
    return this;
  }

  _withHandle(fn) {
    if (this._handle !== null) {
      if (!this._closed) fn(this._handle);
    } else if (!this._closed && !this._handleGone) {
      this._pendingOps.push(() => fn(this._handle));
    }
  }

  address() {
    if (this._local === null && this._handle !== null && !this._closed) {
      this._local = addressInfo(this._handle.localAddress());
    }
    return this._local ? { ...this._local } : {};
  }

  _peerInfo() {
    if (this._peer === null && this._handle !== null && !this._closed && !this.connecting) {
      this._peer = addressInfo(this._handle.remoteAddress());
    }
    return this._peer;
  }

  get remoteAddress() {
    const p = this._peerInfo();
    return p ? p.address : undefined;
  }

  get remotePort() {
    const p = this._peerInfo();
    return p ? p.port : undefined;
  }

  get remoteFamily() {
    const p = this._peerInfo();
    return p ? p.family : undefined;
  }

  get localAddress() {
    return this.address().address;
  }

  get localPort() {
    return this.address().port;
  }

  get localFamily() {
    return this.address().family;
  }

  // Counted here; a socket in a host pipe also moved bytes the SDK never saw: the host's
  // count then, while the handle lives (read a last time at the close).
  get bytesRead() {
    if (this._hostCounts && this._handle !== null && !this._closed) {
      const n = Number(this._handle.bytesRead());
      if (n > this._bytesRead) this._bytesRead = n;
    }
    return this._bytesRead;
  }

  get bytesWritten() {
    if (this._hostCounts && this._handle !== null && !this._closed) {
      const n = Number(this._handle.bytesWritten());
      if (n > this._bytesWritten) this._bytesWritten = n;
    }
    return this._bytesWritten;
  }

  get pending() {
    return this._handle === null || this.connecting;
  }

  get readyState() {
    if (this.connecting) return 'opening';
    if (this._handle !== null && !this._closed) {
      switch (this._handle.readyState()) {
        case 'opening':
          return 'opening';
        case 'open':
          return 'open';
        case 'read-only':
          return 'readOnly';
        case 'write-only':
          return 'writeOnly';
        default:
          return 'closed';
      }
    }
    return 'closed';
  }

  get _connecting() {
    return this.connecting;
  }

  ref() {
    return this;
  }

  unref() {
    return this;
  }

  cork() {}

  uncork() {}

  setDefaultEncoding(encoding) {
    this._defaultEncoding = encoding;
    return this;
  }

  // --- pipe --------------------------------------------------------------------------

  pipe(dest, options) {
    const doEnd = !options || options.end !== false;
    if (this._hostPipeable(dest) && this._hostPipe(dest, doEnd)) return dest;
    this._jsPipe(dest, doEnd, true);
    return dest;
  }

  /** Whether the host can move this socket's bytes to `dest` (WIT `socket.pipe`): two
   * sockets of this instance, open, and nobody else reading this one's data. */
  _hostPipeable(dest) {
    return (
      dest instanceof Socket &&
      this._handle !== null &&
      dest._handle !== null &&
      !this._closed &&
      !dest._closed &&
      !this.destroyed &&
      !dest.destroyed &&
      !dest._ending &&
      !this.connecting &&
      !dest.connecting &&
      this._decoder === null &&
      !this._readableListening &&
      this._hostPiped === undefined &&
      (this._pipes === undefined || this._pipes.length === 0) &&
      this.listenerCount('data') === 0
    );
  }

  /** `pipe` carried out by the host: no `data` event per chunk. What arrived before goes
   * first; Node's end, unpipe and 'pipe' / 'unpipe' events as with the JavaScript pipe. */
  _hostPipe(dest, doEnd) {
    try {
      // The end is passed on here (dest.end() on 'end'), so that dest knows it ended.
      this._handle.pipe(dest._handle, { end: false });
    } catch {
      return false;
    }
    const src = this;
    src._hostCounts = true;
    dest._hostCounts = true;
    const pipe = { dest, doEnd, onend: null, cleanup: null, ondestclose: null, onunpipe: null };
    // Node's pipe hears the destination's error first, and unpipes.
    const ondesterror = () => pipe.ondestclose();
    pipe.onend = () => {
      // Node's { end: false } unpipes at the end instead.
      if (doEnd) dest.end();
      else src.unpipe(dest);
    };
    pipe.cleanup = () => {
      if (src._hostPiped !== pipe) return;
      src._hostPiped = undefined;
      src.removeListener('end', pipe.onend);
      dest.removeListener('close', pipe.ondestclose);
      dest.removeListener('error', ondesterror);
      dest.removeListener('unpipe', pipe.onunpipe);
      if (src._handle !== null && !src._closed) src._handle.unpipe();
    };
    pipe.ondestclose = () => {
      // The host unpipes and pauses this socket (at the latest when dest closes);
      // Node's unpipe says so.
      if (src._hostPiped !== pipe) return;
      pipe.cleanup();
      src._paused = true;
      src.unpipe(dest);
    };
    pipe.onunpipe = (s) => {
      if (s === src) pipe.cleanup();
    };
    src._hostPiped = pipe;
    src.on('end', pipe.onend);
    dest.prependListener('error', ondesterror);
    dest.on('close', pipe.ondestclose);
    dest.on('unpipe', pipe.onunpipe);
    (src._pipes || (src._pipes = [])).push(dest);
    // The host resumed it (Node's pipe resumes a paused source).
    src._paused = false;
    // Read before the pipe: written first, as Node's pipe passes it on.
    while (src._buffered.length > 0) {
      const chunk = src._buffered.shift();
      src._bufferedBytes -= chunk.length;
      dest.write(chunk);
    }
    if (typeof dest.emit === 'function') dest.emit('pipe', src);
    if (src._flowing !== true) src.resume();
    return true;
  }

  /** Back from the host's pipe to this one (someone wants the data events too). */
  _leaveHostPipe() {
    const pipe = this._hostPiped;
    pipe.cleanup();
    const pipes = this._pipes || [];
    if (pipes.includes(pipe.dest)) pipes.splice(pipes.indexOf(pipe.dest), 1);
    this._jsPipe(pipe.dest, pipe.doEnd, false);
    if (this._flowing !== false) this._hostResume();
  }

  _jsPipe(dest, doEnd, announce) {
    const src = this;
    const ondata = (chunk) => {
      if (dest.write(chunk) === false && src._flowing !== false) src.pause();
    };
    const ondrain = () => src.resume();
    const onend = () => {
      // Node's { end: false } unpipes at the end instead.
      if (doEnd) dest.end();
      else src.unpipe(dest);
    };
    const cleanup = () => {
      src.removeListener('data', ondata);
      dest.removeListener('drain', ondrain);
      src.removeListener('end', onend);
      src.removeListener('close', cleanup);
      dest.removeListener('close', ondestclose);
      dest.removeListener('error', ondesterror);
      dest.removeListener('unpipe', onunpipe);
    };
    const onunpipe = (s) => {
      if (s === src) cleanup();
    };
    const ondestclose = () => {
      cleanup();
      src.unpipe(dest);
    };
    // Node's pipe hears the destination's error first, and unpipes.
    const ondesterror = () => {
      cleanup();
      src.unpipe(dest);
    };
    if (typeof dest.prependListener === 'function') dest.prependListener('error', ondesterror);
    src.on('data', ondata);
    dest.on('drain', ondrain);
    src.on('end', onend);
    src.on('close', cleanup);
    dest.on('close', ondestclose);
    dest.on('unpipe', onunpipe);
    (this._pipes || (this._pipes = [])).push(dest);
    if (announce && typeof dest.emit === 'function') dest.emit('pipe', src);
    if (this._flowing !== true) this.resume();
  }

  unpipe(dest) {
    // Node's order: nothing when not piped; paused once no destination is left, then
    // each destination hears 'unpipe'.
    const pipes = this._pipes || [];
    if (pipes.length === 0) return this;
    let targets;
    if (dest === undefined || dest === null) {
      targets = pipes.splice(0);
    } else {
      const i = pipes.indexOf(dest);
      if (i < 0) return this;
      targets = pipes.splice(i, 1);
    }
    if (pipes.length === 0) this.pause();
    for (const d of targets) d.emit('unpipe', this);
    return this;
  }

  [Symbol.asyncIterator]() {
    const queue = [];
    const waiting = [];
    let done = false;
    let failure = null;
    const push = (item) => {
      const w = waiting.shift();
      if (w) w(item);
      else queue.push(item);
    };
    this.on('data', (chunk) => push({ value: chunk, done: false }));
    this.once('end', () => {
      done = true;
      push({ value: undefined, done: true });
    });
    this.once('error', (err) => {
      failure = err;
      push(null);
    });
    const next = () => {
      if (queue.length) {
        const item = queue.shift();
        return item === null ? Promise.reject(failure) : Promise.resolve(item);
      }
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) =>
        waiting.push((item) => (item === null ? reject(failure) : resolve(item))),
      );
    };
    return {
      next,
      return: () => {
        this.destroy();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  [Symbol.asyncDispose]() {
    return new Promise((resolve) => {
      if (this._closed) resolve();
      else {
        this.once('close', () => resolve());
        this.destroy();
      }
    });
  }
}

// Listening for 'data' (however it is added) starts the flow, as in Node.
Socket.prototype.addListener = Socket.prototype.on;

function normalizeConnectArgs(args) {
  if (args.length === 0) return [{}, undefined];
  let options;
  const first = args[0];
  if (first !== null && typeof first === 'object') {
    options = { ...first };
  } else if (typeof first === 'string' && !/^\s*\d+\s*$/.test(first)) {
    options = { path: first };
  } else {
    options = { port: first };
    if (args.length > 1 && typeof args[1] === 'string') options.host = args[1];
  }
  const cb = args[args.length - 1];
  return [options, typeof cb === 'function' ? cb : undefined];
}

function connect(...args) {
  const [options, cb] = normalizeConnectArgs(args);
  const socket = new Socket(options);
  return socket.connect(options, cb);
}

// ----- addresses -----------------------------------------------------------------------

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function isIPv4(s) {
  return typeof s === 'string' && IPV4.test(s);
}

function isIPv6(s) {
  if (typeof s !== 'string' || s.length === 0 || s.length > 45) return false;
  let addr = s;
  const zone = addr.indexOf('%');
  if (zone >= 0) addr = addr.slice(0, zone);
  let groups = addr.split(':');
  if (groups.length < 3 || groups.length > 9) return false;
  const last = groups[groups.length - 1];
  let maxGroups = 8;
  if (last.includes('.')) {
    if (!isIPv4(last)) return false;
    groups = groups.slice(0, -1);
    maxGroups = 6;
  }
  const double = addr.indexOf('::');
  if (double !== addr.lastIndexOf('::')) return false;
  const hex = /^[0-9a-fA-F]{1,4}$/;
  if (double < 0) {
    return groups.length === maxGroups && groups.every((g) => hex.test(g));
  }
  const nonEmpty = groups.filter((g) => g !== '');
  if (nonEmpty.length >= maxGroups) return false;
  // Empty groups only where the '::' is.
  for (let i = 0; i < groups.length; i++) {
    if (groups[i] === '' && !(i === 0 || i === groups.length - 1 || (groups[i - 1] === '' || groups[i + 1] === ''))) {
      if (!addr.includes('::')) return false;
    }
  }
  return nonEmpty.every((g) => hex.test(g));
}

function isIP(s) {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0;
}

module.exports = {
  Server,
  Socket,
  Stream: Socket,
  createServer,
  connect,
  createConnection: connect,
  isIP,
  isIPv4,
  isIPv6,
  getDefaultAutoSelectFamily: () => false,
  setDefaultAutoSelectFamily: () => {},
  getDefaultAutoSelectFamilyAttemptTimeout: () => 250,
  setDefaultAutoSelectFamilyAttemptTimeout: () => {},
};
