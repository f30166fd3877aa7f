'use strict';
// Node's `process`, as far as it means something in a sandboxed handler: nextTick,
// argv (`netlet run X.wasm -- ARGS`), an empty env, stdout/stderr to netlet's log,
// hrtime, emitWarning, and `uncaughtException`. `process.exit()` stops the instance.

const EventEmitter = require('./events.js');
const runtime = require('./runtime.js');

const process = new EventEmitter();

function lineWriter(write) {
  let pending = '';
  return {
    write(chunk, encoding, cb) {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      let text = typeof chunk === 'string' ? chunk : require('./buffer.js').Buffer.from(chunk).toString(encoding);
      text = pending + text;
      const nl = text.lastIndexOf('\n');
      if (nl >= 0) {
        const lines = text.slice(0, nl);
        pending = text.slice(nl + 1);
        runtime.whenStarted(() => write(lines));
      } else {
        pending = text;
      }
      if (typeof cb === 'function') runtime.nextTick(cb);
      return true;
    },
    end(chunk, encoding, cb) {
      if (chunk !== undefined && typeof chunk !== 'function') this.write(chunk, encoding);
      if (pending) {
        const rest = pending;
        pending = '';
        runtime.whenStarted(() => write(rest));
      }
      const done = typeof chunk === 'function' ? chunk : typeof encoding === 'function' ? encoding : cb;
      if (typeof done === 'function') runtime.nextTick(done);
    },
    on() {
      return this;
    },
    once() {
      return this;
    },
    isTTY: false,
    columns: 80,
    writable: true,
  };
}

process.title = 'netlet';
process.version = 'v20.0.0';
process.versions = { node: '20.0.0', netlet: '0.1.0' };
process.release = { name: 'netlet' };
process.platform = 'linux';
process.arch = 'wasm32';
process.pid = 1;
process.ppid = 0;
process.execPath = '/netlet';
process.execArgv = [];
process.env = {};
process.exitCode = undefined;
process.browser = false;
process.features = {};
process.config = { variables: {} };
// `netlet run X.wasm -- ARGS`: ['netlet', 'handler', ...ARGS], set when the instance
// starts (before the handler's top level runs).
process.argv = ['netlet', 'handler'];
runtime.whenStarted(() => {
  process.argv = ['netlet', 'handler', ...runtime.argv()];
});
process.nextTick = runtime.nextTick;
process.cwd = () => '/';
process.chdir = () => {
  const err = new Error('process.chdir() is not supported in netlet');
  err.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  throw err;
};
process.umask = () => 0o22;
process.uptime = () => performance.now() / 1000;
process.hrtime = function hrtime(prev) {
  const now = performance.now();
  let s = Math.floor(now / 1000);
  let ns = Math.floor((now % 1000) * 1e6);
  if (prev) {
    s -= prev[0];
    ns -= prev[1];
    if (ns < 0) {
      s--;
      ns += 1e9;
    }
  }
  return [s, ns];
};
process.hrtime.bigint = () => BigInt(Math.floor(performance.now() * 1e6));
process.memoryUsage = () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 });
process.memoryUsage.rss = () => 0;
process.cpuUsage = () => ({ user: 0, system: 0 });
process.emitWarning = function emitWarning(warning, type, code) {
  if (typeof type === 'object' && type !== null) {
    code = type.code;
    type = type.type;
  }
  let name = type || 'Warning';
  let message = warning;
  if (warning instanceof Error) {
    name = warning.name;
    message = warning.message;
  }
  process.emit('warning', Object.assign(new Error(String(message)), { name, code }));
  process.stderr.write(`(netlet) ${code ? `[${code}] ` : ''}${name}: ${message}\n`);
};
process.exit = function exit(code) {
  if (code !== undefined) process.exitCode = code;
  process.emit('exit', process.exitCode === undefined ? 0 : process.exitCode);
  runtime.exit(process.exitCode);
};
process.abort = () => process.exit(134);
process.kill = () => {
  const err = new Error('process.kill() is not supported in netlet');
  err.code = 'ERR_METHOD_NOT_IMPLEMENTED';
  throw err;
};
process.binding = () => {
  throw new Error('No such module');
};
process.stdout = lineWriter((text) => runtime.hostConsole.log(text));
process.stderr = lineWriter((text) => runtime.hostConsole.error(text));
process.stdin = null;

runtime.setUncaughtHook((err) => {
  if (process.listenerCount('uncaughtException') === 0) return false;
  process.emit('uncaughtException', err, 'uncaughtException');
  return true;
});

module.exports = process;
