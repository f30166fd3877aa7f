'use strict';
// The runtime of netlet's JavaScript SDK: it exports the WIT `handler` interface (`init`,
// `handle`) and turns each batch of host events into Node callbacks.
//
// It knows sockets, datagram sockets and timers only as event kinds: `net` and `dgram`
// register a dispatcher for theirs when they are loaded, so a handler that never requires
// `dgram` carries none of it.
//
// Build time is not run time: componentize-js evaluates the bundle's top level while
// snapshotting the engine (at `netlet build`), when no host exists. The SDK's own modules
// load then (they are in the snapshot); the handler's top-level code is compiled then
// but runs in `init`, when the instance starts, as Node runs a script: process.argv,
// Date.now(), Math.random() at its top level are the instance's, not baked into the
// component. Whatever would need the host before that (work the SDK does while it
// loads) is recorded with `whenStarted` and replayed in order by `init`.
//
// Node's loop order within a batch: each event's callback, then `process.nextTick`
// callbacks, then promise jobs; at the end of the batch the work Node does after I/O
// (`setImmediate` callbacks, a socket's `finish`).
//
// An exception that escapes handler code, or an `error` event nobody listens to, is one
// log line with the message and the JavaScript stack, then the instance stops as a trap
// does (the host closes its connections and starts a new one).

const wit = require('./wit.mjs');

const hostConsole = globalThis.console;
let started = false;
let dead = false;
let inInit = false;
let initError = null;
let argv = [];
const startQueue = [];
const ticks = [];
let batchEnd = [];
const immediates = [];
let immediateWakeup = 0;
const hostTimers = new Map();
const dispatchers = { net: null, dgram: null };
let uncaughtHook = null;
let inBatch = false;
let main = null;

/** The handler's top-level code, run by `init`. */
function setMain(fn) {
  main = fn;
}

/** True once `init` has run (the instance is live, not being snapshotted). */
function isStarted() {
  return started;
}

/** Runs `fn` now if the instance is live, else when it starts (in call order). */
function whenStarted(fn) {
  if (started) fn();
  else startQueue.push(fn);
}

function nextTick(fn, ...args) {
  if (typeof fn !== 'function') {
    const err = new TypeError(`The "callback" argument must be of type function. Received ${typeof fn}`);
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  ticks.push({ fn, args });
}

function runTicks() {
  // Ticks queued by ticks run in the same drain, as in Node.
  for (let i = 0; i < ticks.length && !dead; i++) {
    const { fn, args } = ticks[i];
    guard(fn, args);
  }
  ticks.length = 0;
}

/** Runs `fn` at the end of the current batch (of `init`, if called from it). */
function atBatchEnd(fn) {
  batchEnd.push(fn);
}

function guard(fn, args) {
  try {
    if (args === undefined || args.length === 0) fn();
    else fn(...args);
  } catch (err) {
    fatal(err);
  }
}

// ----- timers on the host's `timers` interface --------------------------------------

/** Starts a host timer; `fire(hostId)` runs when it fires. Only once started. */
function startHostTimer(ms, repeat, fire) {
  const id = repeat ? wit.timers.setInterval(ms) : wit.timers.setTimeout(ms);
  hostTimers.set(id, { fire, repeat });
  return id;
}

function clearHostTimer(id) {
  if (hostTimers.delete(id)) wit.timers.clearTimeout(id);
}

function onTimer(id) {
  const t = hostTimers.get(id);
  if (t === undefined) return;
  if (!t.repeat) hostTimers.delete(id);
  t.fire(id);
}

// setImmediate: run after the current batch's I/O; one queued while immediates run (or
// outside any batch) waits for the next turn, which a zero timer brings.
function queueImmediate(immediate) {
  immediates.push(immediate);
  if (!inBatch && started && immediateWakeup === 0) {
    immediateWakeup = startHostTimer(0, false, () => {
      immediateWakeup = 0;
    });
  }
}

function runImmediates() {
  if (immediates.length === 0) return;
  const due = immediates.splice(0);
  for (const imm of due) {
    if (dead) return;
    if (imm._destroyed) continue;
    imm._destroyed = true;
    guard(imm._onImmediate, imm._argv);
    runTicks();
  }
  if (immediates.length && immediateWakeup === 0 && !dead) {
    immediateWakeup = startHostTimer(0, false, () => {
      immediateWakeup = 0;
    });
  }
}

// ----- events -----------------------------------------------------------------------

function register(kind, dispatcher) {
  dispatchers[kind] = dispatcher;
}

function dispatch(ev) {
  switch (ev.tag) {
    case 'net': {
      const d = dispatchers.net;
      if (d) d(ev.val);
      else if (ev.val.tag === 'connection') ev.val.val.socket[Symbol.dispose]();
      break;
    }
    case 'dgram': {
      const d = dispatchers.dgram;
      if (d) d(ev.val);
      break;
    }
    case 'timer':
      onTimer(ev.val);
      break;
  }
}

function endOfBatch() {
  while (batchEnd.length && !dead) {
    const fns = batchEnd;
    batchEnd = [];
    for (const fn of fns) {
      guard(fn);
      runTicks();
    }
  }
  inBatch = false;
  runImmediates();
}

const handler = {
  init(args) {
    argv = args;
    started = true;
    inInit = true;
    inBatch = true;
    try {
      for (let i = 0; i < startQueue.length && !dead; i++) guard(startQueue[i]);
      startQueue.length = 0;
      if (main !== null && !dead) guard(main);
      runTicks();
      endOfBatch();
    } finally {
      inInit = false;
      inBatch = false;
    }
    if (initError !== null) return { tag: 'err', val: initError };
    if (immediates.length && immediateWakeup === 0) {
      immediateWakeup = startHostTimer(0, false, () => {
        immediateWakeup = 0;
      });
    }
    return { tag: 'ok', val: undefined };
  },

  async handle(events) {
    if (dead) return;
    inBatch = true;
    const n = events.length;
    for (let i = 0; i < n; i++) {
      try {
        dispatch(events[i]);
      } catch (err) {
        fatal(err);
      }
      if (dead) return;
      if (ticks.length) runTicks();
      // Promise jobs queued by this event run before the next event, as Node drains
      // its microtask queue after each callback.
      if (i + 1 < n) await null;
      if (dead) return;
    }
    endOfBatch();
  },
};

// ----- process.exit -----------------------------------------------------------------

const exitHooks = [];
const EXIT = { netletExit: true };

/** `fn()` releases what a module holds when the handler calls process.exit(); it
 *  returns true if the instance must stop as a trap does (it was serving). */
function onExit(fn) {
  exitHooks.push(fn);
}

/** process.exit(): everything the instance holds is released and no callback runs
 *  again. A client then has nothing left and netlet ends; an instance that was serving
 *  stops as after a trap (a new one takes over the listeners). Never returns. */
function exit(code) {
  if (!dead) {
    dead = true;
    let serving = false;
    for (const fn of exitHooks) {
      try {
        if (fn()) serving = true;
      } catch {
        // Releasing what is left goes on.
      }
    }
    for (const id of [...hostTimers.keys()]) clearHostTimer(id);
    if (serving && !inInit) {
      hostConsole.error(`process.exit(${code === undefined ? '' : code}) called: the instance stops`);
      trap();
    }
  }
  throw EXIT;
}

// ----- errors -----------------------------------------------------------------------

function setUncaughtHook(fn) {
  uncaughtHook = fn;
}

/** An exception escaped handler code: Node's `uncaughtException`, or the end. */
function fatal(err) {
  if (err === EXIT || dead) return;
  if (uncaughtHook && uncaughtHook(err)) return;
  const line = describeUncaught(err);
  if (inInit) {
    // `init`'s error result: the host logs it in one line and restarts the instance.
    dead = true;
    initError = line;
    return;
  }
  dead = true;
  hostConsole.error(line);
  trap();
}

/** Stops the instance the way a Rust panic does: a trap the host handles (closing the
 *  instance's sockets, starting a new one). Dropping a resource handle that was never
 *  given (0) is one the component model always refuses. */
function trap() {
  const bogus = Object.create(wit.net.Socket.prototype);
  bogus[Symbol.dispose]();
  // Not reached: the host stops the instance inside the call above.
  throw new Error('netlet: the instance should have stopped');
}

function describeUncaught(err) {
  let text;
  let stack = null;
  if (err instanceof Error || (err && typeof err === 'object' && typeof err.stack === 'string' && 'message' in err)) {
    let head;
    try {
      head = Error.prototype.toString.call(err);
    } catch {
      head = 'Error';
    }
    text = `Uncaught ${head}`;
    if (err.code !== undefined && !head.includes(String(err.code))) text += ` [${err.code}]`;
    stack = typeof err.stack === 'string' ? err.stack : null;
  } else {
    let shown;
    try {
      shown = require('./util.js').inspect(err);
    } catch {
      shown = String(err);
    }
    text = `Uncaught ${shown}`;
  }
  const frames = stack ? mapStack(stack) : [];
  if (frames.length) text += ` (at ${frames.join(' < ')})`;
  return text.replace(/\n/g, '\\n');
}

// Stacks name the bundle netlet build made; its source map (embedded by the build) turns
// them back into the handler's own files. Frames of the SDK itself are left out unless
// there is nothing else.
const SOURCE_MAP_KEY = Symbol.for('netlet.sourcemap');
let decodedMap = null;

const VLQ = new Int8Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  .split('')
  .forEach((c, i) => (VLQ[c.charCodeAt(0)] = i));

function decodeMap(map) {
  // lines[i] = [[genCol, src, line, col], ...] sorted by genCol.
  const lines = [];
  let src = 0;
  let sLine = 0;
  let sCol = 0;
  for (const lineText of map.mappings.split(';')) {
    const segs = [];
    let genCol = 0;
    for (const seg of lineText.split(',')) {
      if (!seg) continue;
      const vals = [];
      let value = 0;
      let shift = 0;
      for (let i = 0; i < seg.length; i++) {
        const d = VLQ[seg.charCodeAt(i)];
        value += (d & 31) << shift;
        if (d & 32) {
          shift += 5;
        } else {
          vals.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      genCol += vals[0];
      if (vals.length >= 4) {
        src += vals[1];
        sLine += vals[2];
        sCol += vals[3];
        segs.push([genCol, src, sLine, sCol]);
      }
    }
    lines.push(segs);
  }
  return { lines, sources: map.sources };
}

function mapPosition(line, col) {
  const raw = globalThis[SOURCE_MAP_KEY];
  if (!raw) return null;
  if (decodedMap === null) decodedMap = decodeMap(raw);
  const segs = decodedMap.lines[line - 1];
  if (!segs || segs.length === 0) return null;
  let best = segs[0];
  for (const s of segs) {
    if (s[0] <= col - 1) best = s;
    else break;
  }
  return { source: decodedMap.sources[best[1]], line: best[2] + 1, col: best[3] + 1 };
}

function mapStack(stack) {
  const all = [];
  for (const frame of stack.split('\n')) {
    if (!frame) continue;
    const at = frame.lastIndexOf('@');
    // SpiderMonkey names an anonymous function after where it is ("a/b</<"), starting
    // with the bundler's module path: Node says <anonymous>.
    let fn = at > 0 ? frame.slice(0, at) : '';
    if (/[<\/]/.test(fn)) fn = '<anonymous>';
    const where = at >= 0 ? frame.slice(at + 1) : frame;
    const m = /^(.*):(\d+):(\d+)$/.exec(where);
    if (!m) continue;
    let place = null;
    if (/netlet-bundle\.js$/.test(m[1])) place = mapPosition(+m[2], +m[3]);
    if (place === null) {
      all.push({ text: `${fn || '<anonymous>'} (${m[1]}:${m[2]}:${m[3]})`, sdk: true });
      continue;
    }
    const sdk = place.source.startsWith('node:') || place.source.startsWith('netlet:');
    all.push({ text: `${fn || '<anonymous>'} (${place.source}:${place.line}:${place.col})`, sdk });
  }
  const own = all.filter((f) => !f.sdk);
  return (own.length ? own : all).slice(0, 6).map((f) => f.text);
}

module.exports = {
  handler,
  setMain,
  wit,
  hostConsole,
  isStarted,
  whenStarted,
  nextTick,
  runTicks,
  atBatchEnd,
  queueImmediate,
  startHostTimer,
  clearHostTimer,
  register,
  fatal,
  exit,
  onExit,
  setUncaughtHook,
  describeUncaught,
  argv: () => argv,
};
