'use strict';
// Node's `console`, formatted as Node formats (util.format / util.inspect) and written
// to netlet's log: log/info/debug to stdout, error/warn/trace to stderr. Output made at
// build time (top-level code) is written when the instance starts.

const util = require('./util.js');
const runtime = require('./runtime.js');

function makeWriter(toStderr) {
  return (text) => {
    const write = () => (toStderr ? runtime.hostConsole.error(text) : runtime.hostConsole.log(text));
    if (runtime.isStarted()) write();
    else runtime.whenStarted(write);
  };
}

class Console {
  constructor(options) {
    // new Console(stdout, stderr) / new Console({ stdout, stderr }): streams with write().
    let stdout = options;
    let stderr = arguments[1];
    if (options && typeof options.write !== 'function' && options.stdout) {
      stdout = options.stdout;
      stderr = options.stderr;
    }
    this._out = stdout && typeof stdout.write === 'function' ? (t) => stdout.write(t + '\n') : makeWriter(false);
    this._err = stderr && typeof stderr.write === 'function'
      ? (t) => stderr.write(t + '\n')
      : stdout && typeof stdout.write === 'function'
        ? this._out
        : makeWriter(true);
    this._counts = new Map();
    this._timers = new Map();
    this._indent = '';
    for (const name of Object.getOwnPropertyNames(Console.prototype)) {
      if (name !== 'constructor' && typeof this[name] === 'function') this[name] = this[name].bind(this);
    }
  }

  _print(toErr, args) {
    let text = util.format(...args);
    if (this._indent) text = this._indent + text.replace(/\n/g, '\n' + this._indent);
    (toErr ? this._err : this._out)(text);
  }

  log(...args) {
    this._print(false, args);
  }
  info(...args) {
    this._print(false, args);
  }
  debug(...args) {
    this._print(false, args);
  }
  error(...args) {
    this._print(true, args);
  }
  warn(...args) {
    this._print(true, args);
  }
  trace(...args) {
    const err = new Error(util.format(...args));
    err.name = 'Trace';
    this._print(true, [util.inspect(err)]);
  }
  dir(obj, options) {
    this._print(false, [util.inspect(obj, { customInspect: false, ...options })]);
  }
  dirxml(...args) {
    this.log(...args);
  }
  assert(value, ...args) {
    if (!value) {
      args[0] = `Assertion failed${args.length === 0 ? '' : `: ${args[0]}`}`;
      this.warn(...args);
    }
  }
  count(label = 'default') {
    label = `${label}`;
    const n = (this._counts.get(label) || 0) + 1;
    this._counts.set(label, n);
    this.log(`${label}: ${n}`);
  }
  countReset(label = 'default') {
    this._counts.delete(`${label}`);
  }
  group(...label) {
    if (label.length) this.log(...label);
    this._indent += '  ';
  }
  groupCollapsed(...label) {
    this.group(...label);
  }
  groupEnd() {
    this._indent = this._indent.slice(0, -2);
  }
  time(label = 'default') {
    this._timers.set(`${label}`, performance.now());
  }
  timeEnd(label = 'default') {
    this.timeLog(label);
    this._timers.delete(`${label}`);
  }
  timeLog(label = 'default', ...data) {
    const start = this._timers.get(`${label}`);
    if (start === undefined) {
      this.warn(`Warning: No such label '${label}' for console.time${data.length ? 'Log' : 'End'}()`);
      return;
    }
    const ms = performance.now() - start;
    const shown = ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${ms.toFixed(3)}ms`;
    this.log(`${label}: ${shown}`, ...data);
  }
  table(data) {
    // A plain rendering: Node's box drawing is not reproduced.
    this.log(data);
  }
}

const console = new Console();
console.Console = Console;

module.exports = console;
