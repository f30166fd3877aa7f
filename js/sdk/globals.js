'use strict';
// Node's globals for handler code: Buffer, process, console, the timers, global. Loaded
// before the handler's own modules.

const { Buffer } = require('./buffer.js');
const process = require('./process.js');
const timers = require('./timers.js');
const console = require('./console.js');

function define(name, value) {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

define('global', globalThis);
define('Buffer', Buffer);
define('process', process);
define('console', console);
define('setTimeout', timers.setTimeout);
define('clearTimeout', timers.clearTimeout);
define('setInterval', timers.setInterval);
define('clearInterval', timers.clearInterval);
define('setImmediate', timers.setImmediate);
define('clearImmediate', timers.clearImmediate);

// V8's Error.captureStackTrace, which Node libraries use to name errors.
if (typeof Error.captureStackTrace !== 'function') {
  Error.captureStackTrace = function captureStackTrace(target) {
    const stack = new Error().stack || '';
    Object.defineProperty(target, 'stack', {
      value: stack.split('\n').slice(1).join('\n'),
      writable: true,
      configurable: true,
    });
  };
}
