'use strict';
// Node's `events` module: EventEmitter with Node's semantics (listener order, `once`
// wrappers, `newListener` / `removeListener`, an `error` event with no listener throws,
// the max-listeners warning), written for netlet's JavaScript SDK.

const kCapture = Symbol('kCapture');
const errorMonitor = Symbol('events.errorMonitor');
let defaultMaxListeners = 10;
const warned = new WeakSet();

function checkListener(listener) {
  if (typeof listener !== 'function') {
    const err = new TypeError(
      `The "listener" argument must be of type function. Received ${describe(listener)}`,
    );
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
}

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name}`;
  if (typeof value === 'object') {
    const name = value.constructor && value.constructor.name;
    return name ? `an instance of ${name}` : 'an instance of Object';
  }
  let shown = String(value);
  if (typeof value === 'string') shown = `'${shown}'`;
  return `type ${typeof value} (${shown})`;
}

function EventEmitter(opts) {
  EventEmitter.init.call(this, opts);
}

EventEmitter.prototype._events = undefined;
EventEmitter.prototype._eventsCount = 0;
EventEmitter.prototype._maxListeners = undefined;

EventEmitter.init = function init(opts) {
  if (this._events === undefined || this._events === Object.getPrototypeOf(this)._events) {
    this._events = { __proto__: null };
    this._eventsCount = 0;
  }
  this._maxListeners = this._maxListeners || undefined;
  if (opts && opts.captureRejections) this[kCapture] = true;
};

Object.defineProperty(EventEmitter, 'defaultMaxListeners', {
  enumerable: true,
  get() {
    return defaultMaxListeners;
  },
  set(n) {
    if (typeof n !== 'number' || n < 0 || Number.isNaN(n)) {
      const err = new RangeError(
        `The value of "defaultMaxListeners" is out of range. It must be a non-negative number. Received ${n}`,
      );
      err.code = 'ERR_OUT_OF_RANGE';
      throw err;
    }
    defaultMaxListeners = n;
  },
});

EventEmitter.prototype.setMaxListeners = function setMaxListeners(n) {
  if (typeof n !== 'number' || n < 0 || Number.isNaN(n)) {
    const err = new RangeError(
      `The value of "n" is out of range. It must be a non-negative number. Received ${n}`,
    );
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
  this._maxListeners = n;
  return this;
};

function maxListeners(that) {
  return that._maxListeners === undefined ? defaultMaxListeners : that._maxListeners;
}

EventEmitter.prototype.getMaxListeners = function getMaxListeners() {
  return maxListeners(this);
};

EventEmitter.prototype.emit = function emit(type, ...args) {
  const events = this._events;
  if (type === 'error') {
    if (events !== undefined && events[errorMonitor] !== undefined) {
      this.emit(errorMonitor, ...args);
    }
    if (events === undefined || events.error === undefined) {
      const er = args[0];
      if (er instanceof Error) throw er;
      const err = new Error(`Unhandled error. (${inspectValue(er)})`);
      err.code = 'ERR_UNHANDLED_ERROR';
      err.context = er;
      throw err;
    }
  } else if (events === undefined) {
    return false;
  }
  const handler = events[type];
  if (handler === undefined) return false;
  if (typeof handler === 'function') {
    apply(handler, this, args);
  } else {
    // A copy: listeners added or removed by a listener apply to the next emit.
    const listeners = handler.slice();
    for (let i = 0; i < listeners.length; i++) apply(listeners[i], this, args);
  }
  return true;
};

function apply(fn, that, args) {
  switch (args.length) {
    case 0:
      return fn.call(that);
    case 1:
      return fn.call(that, args[0]);
    case 2:
      return fn.call(that, args[0], args[1]);
    default:
      return fn.apply(that, args);
  }
}

function inspectValue(v) {
  try {
    // util is loaded lazily: events must not depend on it at load time.
    return require('./util.js').inspect(v);
  } catch {
    return String(v);
  }
}

function addListener(target, type, listener, prepend) {
  checkListener(listener);
  let events = target._events;
  if (events === undefined) {
    events = target._events = { __proto__: null };
    target._eventsCount = 0;
  } else if (events.newListener !== undefined) {
    target.emit('newListener', type, listener.listener ? listener.listener : listener);
    // newListener may have changed the table.
    events = target._events;
  }
  let existing = events[type];
  if (existing === undefined) {
    events[type] = listener;
    ++target._eventsCount;
    return target;
  }
  if (typeof existing === 'function') {
    existing = events[type] = prepend ? [listener, existing] : [existing, listener];
  } else if (prepend) {
    existing.unshift(listener);
  } else {
    existing.push(listener);
  }
  const m = maxListeners(target);
  if (m > 0 && existing.length > m && !warned.has(existing)) {
    warned.add(existing);
    const name = target.constructor ? target.constructor.name : 'EventEmitter';
    const w = new Error(
      `Possible EventEmitter memory leak detected. ${existing.length} ${String(type)} listeners ` +
        `added to [${name}]. MaxListeners is ${m}. Use emitter.setMaxListeners() to increase limit`,
    );
    w.name = 'MaxListenersExceededWarning';
    w.emitter = target;
    w.type = type;
    w.count = existing.length;
    if (typeof process !== 'undefined' && process.emitWarning) process.emitWarning(w);
  }
  return target;
}

EventEmitter.prototype.addListener = function addListener_(type, listener) {
  return addListener(this, type, listener, false);
};
EventEmitter.prototype.on = EventEmitter.prototype.addListener;

EventEmitter.prototype.prependListener = function prependListener(type, listener) {
  return addListener(this, type, listener, true);
};

function onceWrapper(...args) {
  if (!this.fired) {
    this.target.removeListener(this.type, this.wrapFn);
    this.fired = true;
    return this.listener.apply(this.target, args);
  }
}

function wrapOnce(target, type, listener) {
  const state = { fired: false, wrapFn: undefined, target, type, listener };
  const wrapped = onceWrapper.bind(state);
  wrapped.listener = listener;
  state.wrapFn = wrapped;
  return wrapped;
}

EventEmitter.prototype.once = function once(type, listener) {
  checkListener(listener);
  this.on(type, wrapOnce(this, type, listener));
  return this;
};

EventEmitter.prototype.prependOnceListener = function prependOnceListener(type, listener) {
  checkListener(listener);
  this.prependListener(type, wrapOnce(this, type, listener));
  return this;
};

EventEmitter.prototype.removeListener = function removeListener(type, listener) {
  checkListener(listener);
  const events = this._events;
  if (events === undefined) return this;
  const list = events[type];
  if (list === undefined) return this;
  if (list === listener || list.listener === listener) {
    if (--this._eventsCount === 0) {
      this._events = { __proto__: null };
    } else {
      delete events[type];
      if (events.removeListener) this.emit('removeListener', type, list.listener || listener);
    }
  } else if (typeof list !== 'function') {
    let position = -1;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i] === listener || list[i].listener === listener) {
        position = i;
        break;
      }
    }
    if (position < 0) return this;
    const removed = list[position];
    if (position === 0) list.shift();
    else list.splice(position, 1);
    if (list.length === 1) events[type] = list[0];
    if (events.removeListener !== undefined) {
      this.emit('removeListener', type, removed.listener || listener);
    }
  }
  return this;
};
EventEmitter.prototype.off = EventEmitter.prototype.removeListener;

EventEmitter.prototype.removeAllListeners = function removeAllListeners(type) {
  const events = this._events;
  if (events === undefined) return this;
  if (events.removeListener === undefined) {
    if (arguments.length === 0) {
      this._events = { __proto__: null };
      this._eventsCount = 0;
    } else if (events[type] !== undefined) {
      if (--this._eventsCount === 0) this._events = { __proto__: null };
      else delete events[type];
    }
    return this;
  }
  if (arguments.length === 0) {
    for (const key of Reflect.ownKeys(events)) {
      if (key === 'removeListener') continue;
      this.removeAllListeners(key);
    }
    this.removeAllListeners('removeListener');
    this._events = { __proto__: null };
    this._eventsCount = 0;
    return this;
  }
  const listeners = events[type];
  if (typeof listeners === 'function') {
    this.removeListener(type, listeners);
  } else if (listeners !== undefined) {
    for (let i = listeners.length - 1; i >= 0; i--) this.removeListener(type, listeners[i]);
  }
  return this;
};

function listenersOf(target, type, unwrap) {
  const events = target._events;
  if (events === undefined) return [];
  const list = events[type];
  if (list === undefined) return [];
  if (typeof list === 'function') return unwrap ? [list.listener || list] : [list];
  return unwrap ? list.map((l) => l.listener || l) : list.slice();
}

EventEmitter.prototype.listeners = function listeners(type) {
  return listenersOf(this, type, true);
};

EventEmitter.prototype.rawListeners = function rawListeners(type) {
  return listenersOf(this, type, false);
};

function listenerCount(type, listener) {
  const events = this._events;
  if (events === undefined) return 0;
  const list = events[type];
  if (list === undefined) return 0;
  if (typeof list === 'function') {
    return listener == null || list === listener || list.listener === listener ? 1 : 0;
  }
  if (listener == null) return list.length;
  let n = 0;
  for (const l of list) if (l === listener || l.listener === listener) n++;
  return n;
}

EventEmitter.prototype.listenerCount = listenerCount;

EventEmitter.listenerCount = function (emitter, type) {
  if (typeof emitter.listenerCount === 'function') return emitter.listenerCount(type);
  return listenerCount.call(emitter, type);
};

EventEmitter.prototype.eventNames = function eventNames() {
  return this._eventsCount > 0 ? Reflect.ownKeys(this._events) : [];
};

/** `events.once(emitter, name)`: a promise of the next event's arguments (rejected by
 *  an `error` event first). */
function once(emitter, name, options) {
  return new Promise((resolve, reject) => {
    const signal = options && options.signal;
    const onError = (err) => {
      emitter.removeListener(name, resolver);
      reject(err);
    };
    const resolver = (...args) => {
      if (name !== 'error') emitter.removeListener('error', onError);
      resolve(args);
    };
    emitter.once(name, resolver);
    if (name !== 'error') emitter.once('error', onError);
    if (signal) {
      signal.addEventListener('abort', () => {
        emitter.removeListener(name, resolver);
        emitter.removeListener('error', onError);
        const err = new Error('The operation was aborted');
        err.name = 'AbortError';
        err.code = 'ABORT_ERR';
        reject(err);
      });
    }
  });
}

/** `events.on(emitter, name)`: an async iterator of the event's arguments. */
function on(emitter, name) {
  const queue = [];
  const waiting = [];
  let error = null;
  let done = false;
  const handler = (...args) => {
    const w = waiting.shift();
    if (w) w.resolve({ value: args, done: false });
    else queue.push(args);
  };
  const onError = (err) => {
    done = true;
    const w = waiting.shift();
    if (w) w.reject(err);
    else error = err;
    iterator.return();
  };
  emitter.on(name, handler);
  if (name !== 'error') emitter.on('error', onError);
  const iterator = {
    next() {
      if (queue.length) return Promise.resolve({ value: queue.shift(), done: false });
      if (error) {
        const e = error;
        error = null;
        return Promise.reject(e);
      }
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    return() {
      emitter.removeListener(name, handler);
      emitter.removeListener('error', onError);
      done = true;
      for (const w of waiting.splice(0)) w.resolve({ value: undefined, done: true });
      return Promise.resolve({ value: undefined, done: true });
    },
    throw(err) {
      error = err;
      return iterator.return();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return iterator;
}

function getEventListeners(emitter, name) {
  return emitter.listeners(name);
}

function setMaxListeners(n = defaultMaxListeners, ...targets) {
  if (targets.length === 0) defaultMaxListeners = n;
  else for (const t of targets) t.setMaxListeners(n);
}

EventEmitter.EventEmitter = EventEmitter;
EventEmitter.usingDomains = false;
EventEmitter.captureRejectionSymbol = Symbol.for('nodejs.rejection');
EventEmitter.errorMonitor = errorMonitor;
EventEmitter.once = once;
EventEmitter.on = on;
EventEmitter.getEventListeners = getEventListeners;
EventEmitter.setMaxListeners = setMaxListeners;
Object.defineProperty(EventEmitter, 'captureRejections', {
  value: false,
  writable: true,
  enumerable: true,
});

module.exports = EventEmitter;
