'use strict';
// Node's error objects for what the host reports: each WIT `error-code` as Node's
// `err.code` / `err.errno` / `err.syscall` (and `address` / `port` when the message names
// them), and the SDK's own `ERR_*` errors.

const CODES = {
  'access-denied': ['EACCES', -13],
  'invalid-argument': ['ERR_INVALID_ARG_VALUE', undefined],
  // What a system call refused as out of range (a socket option), as libuv reports it.
  einval: ['EINVAL', -22],
  'invalid-state': ['ERR_SOCKET_CLOSED', undefined],
  'address-in-use': ['EADDRINUSE', -98],
  'address-not-available': ['EADDRNOTAVAIL', -99],
  'connection-refused': ['ECONNREFUSED', -111],
  'connection-reset': ['ECONNRESET', -104],
  'connection-aborted': ['ECONNABORTED', -103],
  'broken-pipe': ['EPIPE', -32],
  'timed-out': ['ETIMEDOUT', -110],
  'host-unreachable': ['EHOSTUNREACH', -113],
  'name-not-found': ['ENOTFOUND', -3008],
  'message-too-large': ['EMSGSIZE', -90],
  'tls-handshake-failed': ['ERR_SSL_HANDSHAKE_FAILURE', undefined],
  'would-exceed-limit': ['ENOBUFS', -105],
  unknown: ['EUNKNOWN', undefined],
};

/** A Node system error for a WIT error-code, with `message` as the host wrote it. */
function systemError(code, message, extra) {
  const [nodeCode, errno] = CODES[code] || CODES.unknown;
  const err = new Error(message || `${nodeCode}`);
  err.errno = errno;
  err.code = nodeCode;
  // "connect ECONNREFUSED 127.0.0.1:9": the syscall, then the address and port.
  const m = /^(\w+) [A-Z_]+(?: ([0-9a-fA-F.:]+?)(?::(\d+))?)?(?:$| )/.exec(err.message);
  if (m) {
    err.syscall = m[1] === 'getaddrinfo' ? 'getaddrinfo' : m[1];
    if (m[2] !== undefined) {
      if (err.syscall === 'getaddrinfo') err.hostname = m[2];
      else err.address = m[2];
    }
    if (m[3] !== undefined) err.port = +m[3];
  }
  if (extra) Object.assign(err, extra);
  return err;
}

/** An error the host returned from a call (a thrown ComponentError): its WIT code. */
function witCode(e) {
  if (e && typeof e === 'object' && 'payload' in e) return e.payload;
  throw e;
}

function nodeError(Ctor, code, message) {
  const err = new Ctor(message);
  err.code = code;
  return err;
}

function invalidArgType(name, expected, actual) {
  let received;
  if (actual === null) received = 'null';
  else if (actual === undefined) received = 'undefined';
  else if (typeof actual === 'function') received = `function ${actual.name}`;
  else if (typeof actual === 'object') {
    received = actual.constructor && actual.constructor.name ? `an instance of ${actual.constructor.name}` : 'an instance of Object';
  } else {
    let shown = String(actual);
    if (typeof actual === 'string') shown = `'${shown.length > 28 ? shown.slice(0, 25) + '...' : shown}'`;
    received = `type ${typeof actual} (${shown})`;
  }
  return nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${received}`);
}

function badPort(name, port) {
  let shown = typeof port === 'string' ? `'${port}'` : String(port);
  return nodeError(
    RangeError,
    'ERR_SOCKET_BAD_PORT',
    `${name} should be >= 0 and < 65536. Received type ${typeof port} (${shown}).`,
  );
}

/** A port as Node accepts it (a number or a numeric string, 0-65535). */
function validatePort(port, name = 'Port', allowZero = true) {
  if (
    (typeof port !== 'number' && typeof port !== 'string') ||
    (typeof port === 'string' && port.trim().length === 0) ||
    +port !== +port >>> 0 ||
    port > 0xffff ||
    (port === 0 && !allowZero)
  ) {
    throw badPort(name, port);
  }
  return port | 0;
}

module.exports = { systemError, witCode, nodeError, invalidArgType, validatePort, CODES };
