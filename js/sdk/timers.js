'use strict';
// Node's `timers`: setTimeout / setInterval on the host's `timers` interface, and
// setImmediate (after the current batch of I/O, as Node's check phase). A timer made at
// build time (top-level code) starts when the instance does.

const runtime = require('./runtime.js');

const TIMEOUT_MAX = 2 ** 31 - 1;
let nextId = 1;
const byId = new Map();

function checkCallback(cb) {
  if (typeof cb !== 'function') {
    const err = new TypeError(
      `The "callback" argument must be of type function. Received ${cb === null ? 'null' : typeof cb === 'object' ? 'an instance of ' + (cb.constructor ? cb.constructor.name : 'Object') : 'type ' + typeof cb + ' (' + String(cb) + ')'}`,
    );
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
}

function delayOf(after) {
  after = after * 1;
  if (!(after >= 1 && after <= TIMEOUT_MAX)) {
    if (after > TIMEOUT_MAX && typeof process !== 'undefined' && process.emitWarning) {
      process.emitWarning(
        `${after} does not fit into a 32-bit signed integer.\nTimeout duration was set to 1.`,
        'TimeoutOverflowWarning',
      );
    }
    after = 1;
  }
  return Math.trunc(after);
}

class Timeout {
  constructor(callback, after, args, repeat) {
    this._idleTimeout = delayOf(after);
    this._onTimeout = callback;
    this._timerArgs = args;
    this._repeat = repeat ? this._idleTimeout : null;
    this._destroyed = false;
    this._hostId = 0;
    this._id = nextId++;
    this._refed = true;
    byId.set(this._id, this);
    runtime.whenStarted(() => this._start());
  }

  _start() {
    if (this._destroyed) return;
    this._hostId = runtime.startHostTimer(this._idleTimeout, this._repeat !== null, () => this._fire());
  }

  _fire() {
    if (this._destroyed) return;
    if (this._repeat === null) {
      this._destroyed = true;
      this._hostId = 0;
      byId.delete(this._id);
    }
    const args = this._timerArgs;
    if (args === undefined) this._onTimeout();
    else this._onTimeout(...args);
  }

  _clear() {
    if (this._destroyed) return;
    this._destroyed = true;
    byId.delete(this._id);
    if (this._hostId) runtime.clearHostTimer(this._hostId);
    this._hostId = 0;
  }

  refresh() {
    if (!this._destroyed && runtime.isStarted()) {
      if (this._hostId) runtime.clearHostTimer(this._hostId);
      this._start();
    }
    return this;
  }

  ref() {
    this._refed = true;
    return this;
  }

  unref() {
    // The instance does not exit when its loop empties, so refs change nothing.
    this._refed = false;
    return this;
  }

  hasRef() {
    return this._refed;
  }

  close() {
    this._clear();
    return this;
  }

  [Symbol.toPrimitive]() {
    return this._id;
  }

  [Symbol.dispose]() {
    this._clear();
  }
}

class Immediate {
  constructor(callback, args) {
    this._onImmediate = callback;
    this._argv = args;
    this._destroyed = false;
    this._refed = true;
    runtime.queueImmediate(this);
  }

  ref() {
    this._refed = true;
    return this;
  }

  unref() {
    this._refed = false;
    return this;
  }

  hasRef() {
    return this._refed;
  }

  [Symbol.dispose]() {
    this._destroyed = true;
  }
}

function setTimeout(callback, after, ...args) {
  checkCallback(callback);
  return new Timeout(callback, after, args.length ? args : undefined, false);
}

function setInterval(callback, repeat, ...args) {
  checkCallback(callback);
  return new Timeout(callback, repeat, args.length ? args : undefined, true);
}

function clearTimeout(timer) {
  if (timer instanceof Timeout) {
    timer._clear();
    return;
  }
  if (typeof timer === 'number' || typeof timer === 'string') {
    const t = byId.get(+timer);
    if (t) t._clear();
  }
}

function setImmediate(callback, ...args) {
  checkCallback(callback);
  return new Immediate(callback, args.length ? args : undefined);
}

function clearImmediate(immediate) {
  if (immediate instanceof Immediate) immediate._destroyed = true;
}

const promises = {
  setTimeout(after, value, options) {
    return new Promise((resolve, reject) => {
      const signal = options && options.signal;
      if (signal && signal.aborted) return reject(abortError(signal));
      const t = setTimeout(() => resolve(value), after);
      if (signal) signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(abortError(signal));
      });
    });
  },
  setImmediate(value, options) {
    return new Promise((resolve, reject) => {
      const signal = options && options.signal;
      if (signal && signal.aborted) return reject(abortError(signal));
      const i = setImmediate(() => resolve(value));
      if (signal) signal.addEventListener('abort', () => {
        clearImmediate(i);
        reject(abortError(signal));
      });
    });
  },
  async *setInterval(after, value) {
    const waiting = [];
    let fired = 0;
    const t = setInterval(() => {
      fired++;
      const w = waiting.shift();
      if (w) w();
    }, after);
    try {
      for (;;) {
        if (fired === 0) await new Promise((r) => waiting.push(r));
        fired--;
        yield value;
      }
    } finally {
      clearInterval(t);
    }
  },
  scheduler: {
    wait: (ms, options) => promises.setTimeout(ms, undefined, options),
    yield: () => promises.setImmediate(),
  },
};

function abortError(signal) {
  const err = new Error('The operation was aborted');
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  err.cause = signal.reason;
  return err;
}

module.exports = {
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval: clearTimeout,
  setImmediate,
  clearImmediate,
  Timeout,
  Immediate,
  promises,
};
