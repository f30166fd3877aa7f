'use strict';
// Node's `dgram` on netlet's `dgram` interface: createSocket, bind (the operator's
// `--udp` socket on that port, or one of the handler's own where allowed), send in all
// its argument forms (with the implicit bind Node does), connect / disconnect, address /
// remoteAddress, close, broadcast / TTL / multicast, buffer sizes.

const EventEmitter = require('./events.js');
const { Buffer, FastBuffer } = require('./buffer.js');
const runtime = require('./runtime.js');
const { systemError, witCode, nodeError, invalidArgType, validatePort } = require('./errors.js');

const witDgram = runtime.wit.dgram;

const UNBOUND = 0;
const BINDING = 1;
const BOUND = 2;

const byId = new Map(); // host socket id -> Socket

// ----- binds: which host socket a `socket.bind(port)` gets ---------------------------
//
// `socket.bind(port)` binds a socket of the handler's own (WIT `socket.bind`): for a port
// the operator configured (`netlet run --udp ADDR`, or `--udp ADDR=PORT`) the host hands
// it the operator's socket; otherwise it binds where `--allow` permits (port 0: a free
// one). Operator sockets the code did not bind are announced with their handles; they are
// kept (dropping them would close them) and their datagrams ignored.

const unclaimed = [];

function dispatch(ev) {
  const v = ev.val;
  switch (ev.tag) {
    case 'message': {
      const s = byId.get(v.socket);
      if (s && !s._closed) {
        const r = v.rinfo;
        s.emit('message', new FastBuffer(v.data.buffer, v.data.byteOffset, v.data.byteLength), {
          address: r.address,
          family: r.family === 'ipv6' ? 'IPv6' : 'IPv4',
          port: r.port,
          size: r.size,
        });
      }
      break;
    }
    case 'listening': {
      if (v.handle !== undefined && v.handle !== null) {
        unclaimed.push(v.handle);
      } else {
        const s = byId.get(v.socket);
        if (s) s._onListening();
      }
      break;
    }
    case 'connect': {
      const s = byId.get(v);
      if (s) s._onConnect();
      break;
    }
    case 'error': {
      const s = byId.get(v.socket);
      if (s && !s._closed) s.emit('error', systemError(v.error.code, v.error.message));
      break;
    }
    case 'close': {
      const s = byId.get(v);
      if (s) s._onHostClose();
      break;
    }
  }
}

runtime.register('dgram', dispatch);

runtime.onExit(() => {
  let serving = unclaimed.length > 0;
  for (const socket of [...byId.values()]) {
    if (socket._bindState === BOUND && socket._port !== 0) {
      // It serves a port (maybe the operator's socket): the next instance takes over.
      serving = true;
    } else if (socket._handle !== null) {
      socket._handle.close();
      socket._handle[Symbol.dispose]();
    }
  }
  byId.clear();
  return serving;
});

function lookupDefault(type) {
  return type === 'udp6' ? '::1' : '127.0.0.1';
}

function toBytes(msg) {
  if (typeof msg === 'string') return Buffer.from(msg);
  if (msg instanceof Uint8Array) return msg;
  if (ArrayBuffer.isView(msg)) return new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
  return null;
}

function sliceBuffer(buffer, offset, length) {
  if (typeof buffer === 'string') buffer = Buffer.from(buffer);
  else if (!ArrayBuffer.isView(buffer)) {
    throw invalidArgType('buffer', 'of type string or an instance of Buffer, TypedArray, or DataView', buffer);
  }
  offset = offset >>> 0;
  length = length >>> 0;
  if (offset > buffer.byteLength) {
    throw nodeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"offset" is outside of buffer bounds');
  }
  if (offset + length > buffer.byteLength) {
    throw nodeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"length" is outside of buffer bounds');
  }
  return new FastBuffer(buffer.buffer, buffer.byteOffset + offset, length);
}

class Socket extends EventEmitter {
  constructor(type, listener) {
    super();
    let options = {};
    if (type !== null && typeof type === 'object') {
      options = type;
      type = options.type;
    }
    if (type !== 'udp4' && type !== 'udp6') {
      throw nodeError(TypeError, 'ERR_SOCKET_BAD_TYPE', 'Bad socket type specified. Valid types are: udp4, udp6');
    }
    this.type = type;
    this._options = options;
    this._handle = null;
    this._id = 0;
    this._bindState = UNBOUND;
    this._connected = false;
    this._connecting = false;
    this._closed = false;
    this._queue = []; // sends waiting for the socket to exist
    this._address = null;
    if (typeof listener === 'function') this.on('message', listener);
    if (options.signal) {
      const onAbort = () => this.close();
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort);
    }
  }

  _healthCheck() {
    if (this._closed) throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
  }

  _create() {
    const o = this._options;
    let handle;
    try {
      handle = witDgram.createSocket(this.type, {
        reuseAddr: !!o.reuseAddr,
        ipv6Only: !!o.ipv6Only,
        recvBufferSize: o.recvBufferSize,
        sendBufferSize: o.sendBufferSize,
      });
    } catch (e) {
      const code = witCode(e);
      return systemError(code, `socket ${code}`, { syscall: 'socket' });
    }
    this._setHandle(handle);
    return null;
  }

  _setHandle(handle) {
    this._handle = handle;
    this._id = handle.id();
    byId.set(this._id, this);
  }

  bind(port_, address_, callback) {
    this._healthCheck();
    if (this._bindState !== UNBOUND) {
      throw nodeError(Error, 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound');
    }
    let port = port_;
    let address = address_;
    if (typeof port === 'function') {
      callback = port;
      port = 0;
      address = undefined;
    } else if (port !== null && typeof port === 'object') {
      callback = address_;
      address = port.address;
      port = port.port;
    }
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    }
    if (port === undefined || port === null) port = 0;
    port = validatePort(port, 'Port', true);
    if (address !== undefined && address !== null && typeof address !== 'string') {
      throw invalidArgType('address', 'of type string', address);
    }
    this._bindState = BINDING;
    if (typeof callback === 'function') this.once('listening', callback);
    runtime.whenStarted(() => {
      if (!this._closed) this._bindOwn(port, address || undefined);
    });
    return this;
  }

  _bindOwn(port, address) {
    this._port = port;
    const failed = this._create();
    if (failed) {
      this._bindState = UNBOUND;
      this._failQueue(failed);
      this.emit('error', failed);
      return;
    }
    try {
      this._handle.bind(port, address);
    } catch (e) {
      const code = witCode(e);
      const where = `${address || (this.type === 'udp6' ? '::' : '0.0.0.0')}:${port}`;
      const message =
        code === 'access-denied'
          ? `bind EACCES ${where} (netlet run --udp ${address ? where : port} gives the handler this port; --udp ADDR=${port} serves it elsewhere)`
          : `bind ${code} ${where}`;
      const err = systemError(code, message, { syscall: 'bind', address: address || '0.0.0.0', port });
      this._bindState = UNBOUND;
      this._failQueue(err);
      this.emit('error', err);
    }
    // `listening` comes as a host event.
  }

  _onListening() {
    if (this._closed) return;
    this._bindState = BOUND;
    try {
      this._address = this._handle.address();
    } catch {
      this._address = null;
    }
    this.emit('listening');
    const queued = this._queue.splice(0);
    for (const op of queued) op();
  }

  _failQueue(err) {
    const queued = this._queue.splice(0);
    for (const op of queued) op(err);
  }

  send(buffer, offset, length, port, address, callback) {
    let list;
    if (!this._connected) {
      if (address || (port && typeof port !== 'function')) {
        buffer = sliceBuffer(buffer, offset, length);
      } else {
        callback = port;
        port = offset;
        address = length;
      }
    } else {
      if (typeof length === 'number') {
        buffer = sliceBuffer(buffer, offset, length);
        if (typeof port === 'function') {
          callback = port;
          port = null;
        }
      } else {
        callback = offset;
      }
      if (port || address) {
        throw nodeError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
      }
    }
    if (!Array.isArray(buffer)) {
      const bytes = toBytes(buffer);
      if (bytes === null) {
        throw invalidArgType('buffer', 'of type string or an instance of Buffer, TypedArray, or DataView', buffer);
      }
      list = [bytes];
    } else {
      list = [];
      for (const item of buffer) {
        const bytes = toBytes(item);
        if (bytes === null) {
          throw invalidArgType('buffer list arguments', 'of type string or an instance of Buffer, TypedArray, or DataView', buffer);
        }
        list.push(bytes);
      }
    }
    if (!this._connected) port = validatePort(port, 'Port', false);
    if (typeof callback !== 'function') callback = undefined;
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    } else if (address !== undefined && address !== null && typeof address !== 'string') {
      throw invalidArgType('address', 'of type string', address);
    }
    this._healthCheck();
    const msg = list.length === 1 ? list[0] : Buffer.concat(list);
    const dest = this._connected ? null : address || lookupDefault(this.type);
    const go = (failed) => {
      if (failed) {
        if (callback) callback(failed);
        return;
      }
      this._hostSend(msg, dest, this._connected ? 0 : port, callback);
    };
    if (this._handle === null || this._bindState === BINDING) {
      if (this._bindState === UNBOUND) this._implicitBind();
      if (this._handle === null || this._bindState === BINDING) {
        this._queue.push(go);
        return;
      }
    }
    go(null);
  }

  // Node binds an unbound socket to a free port before its first send or connect, and
  // sends once it is listening.
  _implicitBind() {
    this._bindState = BINDING;
    runtime.whenStarted(() => {
      if (!this._closed && this._handle === null) this._bindOwn(0, undefined);
    });
  }

  _hostSend(msg, address, port, callback) {
    if (this._closed || this._handle === null) {
      if (callback) runtime.nextTick(callback, nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running'));
      return;
    }
    try {
      this._handle.send(msg, port, address === null ? undefined : address);
    } catch (e) {
      const code = witCode(e);
      const where = address === null ? '' : ` ${address}:${port}`;
      const message =
        code === 'access-denied'
          ? `send EACCES${where} (netlet lets a handler send to new peers only where it is run with --allow: pass netlet run --allow${where})`
          : `send ${systemError(code, '').code}${where}`;
      const err = systemError(code, message, { syscall: 'send', address: address || undefined, port: port || undefined });
      if (callback) runtime.nextTick(callback, err);
      else runtime.nextTick(() => this.emit('error', err));
      return;
    }
    if (callback) runtime.nextTick(callback, null, msg.length);
  }

  connect(port, address, callback) {
    port = validatePort(port, 'Port', false);
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    } else if (address !== undefined && typeof address !== 'string') {
      throw invalidArgType('address', 'of type string', address);
    }
    this._healthCheck();
    if (this._connected || this._connecting) {
      throw nodeError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
    }
    this._connecting = true;
    if (typeof callback === 'function') this.once('connect', callback);
    const go = (failed) => {
      if (failed) return;
      try {
        this._handle.connect(port, address || lookupDefault(this.type));
      } catch (e) {
        const code = witCode(e);
        const err = systemError(code, `connect ${systemError(code, '').code} ${address || lookupDefault(this.type)}:${port}`, { syscall: 'connect' });
        this._connecting = false;
        runtime.nextTick(() => {
          if (typeof callback === 'function') {
            this.removeListener('connect', callback);
            callback(err);
          } else {
            this.emit('error', err);
          }
        });
      }
    };
    if (this._handle === null) {
      if (this._bindState === UNBOUND) this._implicitBind();
      this._queue.push(go);
    } else {
      go(null);
    }
  }

  _onConnect() {
    this._connecting = false;
    this._connected = true;
    this.emit('connect');
  }

  disconnect() {
    this._healthCheck();
    if (!this._connected) {
      throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    }
    this._handle.disconnect();
    this._connected = false;
  }

  address() {
    this._healthCheck();
    if (this._handle === null || this._bindState !== BOUND) {
      throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
    }
    let a;
    try {
      a = this._handle.address();
    } catch (e) {
      witCode(e);
      throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
    }
    return { address: a.address, family: a.family === 'ipv6' ? 'IPv6' : 'IPv4', port: a.port };
  }

  remoteAddress() {
    this._healthCheck();
    if (!this._connected) {
      throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    }
    const a = this._handle.remoteAddress();
    return { address: a.address, family: a.family === 'ipv6' ? 'IPv6' : 'IPv4', port: a.port };
  }

  close(callback) {
    if (this._closed) {
      throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
    }
    if (typeof callback === 'function') this.on('close', callback);
    const finish = () => {
      this._closed = true;
      this._failQueue(nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running'));
      if (this._handle !== null) this._handle.close();
      runtime.nextTick(() => this.emit('close'));
    };
    // Sends still waiting for the socket go out first, as Node flushes its queue.
    if (this._queue.length && this._bindState === BINDING) this._queue.push(() => finish());
    else finish();
    return this;
  }

  _onHostClose() {
    byId.delete(this._id);
    if (this._handle !== null) {
      this._handle[Symbol.dispose]();
      this._handle = null;
    }
  }

  _call(syscall, fn) {
    this._healthCheck();
    if (this._handle === null) {
      throw systemError('invalid-state', `${syscall} EBADF`, { code: 'EBADF', errno: -9, syscall });
    }
    try {
      return fn(this._handle);
    } catch (e) {
      // Node's setters report what the system call said: EINVAL for a value it refused.
      const wit = witCode(e);
      const code = wit === 'invalid-argument' ? 'einval' : wit;
      throw systemError(code, `${syscall} ${systemError(code, '').code}`, { syscall });
    }
  }

  setBroadcast(flag) {
    this._call('setBroadcast', (h) => h.setBroadcast(!!flag));
  }

  setTTL(ttl) {
    if (typeof ttl !== 'number') throw invalidArgType('ttl', 'of type number', ttl);
    this._call('setTTL', (h) => h.setTtl(ttl));
    return ttl;
  }

  setMulticastTTL(ttl) {
    if (typeof ttl !== 'number') throw invalidArgType('ttl', 'of type number', ttl);
    this._call('setMulticastTTL', (h) => h.setMulticastTtl(ttl));
    return ttl;
  }

  setMulticastLoopback(flag) {
    this._call('setMulticastLoopback', (h) => h.setMulticastLoopback(!!flag));
    return flag;
  }

  setMulticastInterface(interfaceAddress) {
    if (typeof interfaceAddress !== 'string') throw invalidArgType('interfaceAddress', 'of type string', interfaceAddress);
    this._call('setMulticastInterface', (h) => h.setMulticastInterface(interfaceAddress));
  }

  addMembership(multicastAddress, interfaceAddress) {
    if (!multicastAddress) {
      throw nodeError(TypeError, 'ERR_MISSING_ARGS', 'The "multicastAddress" argument must be specified');
    }
    this._call('addMembership', (h) => h.addMembership(multicastAddress, interfaceAddress));
  }

  dropMembership(multicastAddress, interfaceAddress) {
    if (!multicastAddress) {
      throw nodeError(TypeError, 'ERR_MISSING_ARGS', 'The "multicastAddress" argument must be specified');
    }
    this._call('dropMembership', (h) => h.dropMembership(multicastAddress, interfaceAddress));
  }

  addSourceSpecificMembership() {
    throw nodeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'addSourceSpecificMembership is not supported in netlet');
  }

  dropSourceSpecificMembership() {
    throw nodeError(Error, 'ERR_METHOD_NOT_IMPLEMENTED', 'dropSourceSpecificMembership is not supported in netlet');
  }

  getRecvBufferSize() {
    return this._call('uv_recv_buffer_size', (h) => h.getRecvBufferSize());
  }

  setRecvBufferSize(size) {
    this._call('uv_recv_buffer_size', (h) => h.setRecvBufferSize(size));
  }

  getSendBufferSize() {
    return this._call('uv_send_buffer_size', (h) => h.getSendBufferSize());
  }

  setSendBufferSize(size) {
    this._call('uv_send_buffer_size', (h) => h.setSendBufferSize(size));
  }

  getSendQueueSize() {
    return this._handle === null ? 0 : Number(this._handle.getSendQueueSize());
  }

  getSendQueueCount() {
    return this._handle === null ? this._queue.length : this._handle.getSendQueueCount();
  }

  ref() {
    return this;
  }

  unref() {
    return this;
  }

  [Symbol.asyncDispose]() {
    return new Promise((resolve) => (this._closed ? resolve() : this.close(resolve)));
  }
}

function createSocket(type, listener) {
  return new Socket(type, listener);
}

module.exports = { Socket, createSocket };
