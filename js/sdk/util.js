'use strict';
// Node's `util` module, the parts handler code and console output use: format (printf
// style, as console.log), inspect (Node's rendering of values, depth 2, single line
// when it fits in 80 columns), inherits, promisify, callbackify, deprecate, types.

const customInspect = Symbol.for('nodejs.util.inspect.custom');
const promisifyCustom = Symbol.for('nodejs.util.promisify.custom');

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ESCAPES = {
  '\n': '\\n',
  '\t': '\\t',
  '\r': '\\r',
  '\b': '\\b',
  '\f': '\\f',
  '\v': '\\v',
  '\\': '\\\\',
};

function quote(str) {
  let q = "'";
  if (str.includes("'")) {
    if (!str.includes('"')) q = '"';
    else if (!str.includes('`') && !str.includes('${')) q = '`';
  }
  let out = '';
  for (const ch of str) {
    if (ch === q) out += '\\' + ch;
    else if (ESCAPES[ch]) out += ESCAPES[ch];
    else if (ch < ' ' || ch === '\x7f') out += '\\x' + ch.charCodeAt(0).toString(16).padStart(2, '0');
    else out += ch;
  }
  return q + out + q;
}

function formatKey(key) {
  if (typeof key === 'symbol') return `[${key.toString()}]`;
  return IDENT.test(key) ? key : quote(key);
}

function functionBase(fn) {
  const src = Function.prototype.toString.call(fn);
  if (src.startsWith('class') && /^class\b/.test(src)) {
    const parent = Object.getPrototypeOf(fn);
    let base = `[class ${fn.name || '(anonymous)'}`;
    if (parent && parent.name) base += ` extends ${parent.name}`;
    return base + ']';
  }
  let type = 'Function';
  const ctor = Object.getPrototypeOf(fn) && Object.getPrototypeOf(fn).constructor;
  if (ctor && ctor.name === 'AsyncFunction') type = 'AsyncFunction';
  else if (ctor && ctor.name === 'GeneratorFunction') type = 'GeneratorFunction';
  else if (ctor && ctor.name === 'AsyncGeneratorFunction') type = 'AsyncGeneratorFunction';
  return fn.name ? `[${type}: ${fn.name}]` : `[${type} (anonymous)]`;
}

function constructorName(obj) {
  let proto = Object.getPrototypeOf(obj);
  if (proto === null) return null;
  while (proto) {
    const desc = Object.getOwnPropertyDescriptor(proto, 'constructor');
    if (desc && typeof desc.value === 'function' && desc.value.name) return desc.value.name;
    proto = Object.getPrototypeOf(proto);
  }
  return 'Object';
}

function isError(v) {
  return v instanceof Error || Object.prototype.toString.call(v) === '[object Error]';
}

function formatPrimitive(v, ctx, top) {
  switch (typeof v) {
    case 'string':
      if (top && ctx.topStringsRaw) return v;
      return quote(v);
    case 'number':
      return Object.is(v, -0) ? '-0' : String(v);
    case 'bigint':
      return `${v}n`;
    case 'boolean':
      return String(v);
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return v.toString();
    default:
      return v === null ? 'null' : String(v);
  }
}

function isBelowBreakLength(ctx, output, start) {
  let total = output.length + start;
  if (total + output.length > ctx.breakLength) return false;
  for (const entry of output) {
    total += entry.length;
    if (total > ctx.breakLength) return false;
  }
  return true;
}

function reduce(ctx, output, base, braces, depth) {
  if (output.length === 0) {
    if (base) return `${base} ${braces[0]}${braces[1]}`;
    return `${braces[0]}${braces[1]}`;
  }
  const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
  if (ctx.compact && ctx.currentDepth - depth < 3 && isBelowBreakLength(ctx, output, start)) {
    const joined = output.join(', ');
    if (!joined.includes('\n')) {
      return `${base ? base + ' ' : ''}${braces[0]} ${joined} ${braces[1]}`;
    }
  }
  const indentation = '\n' + ' '.repeat(ctx.indentationLvl);
  return `${base ? base + ' ' : ''}${braces[0]}${indentation}  ${output.join(`,${indentation}  `)}${indentation}${braces[1]}`;
}

function formatValue(ctx, value, recurseTimes, top) {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
    return formatPrimitive(value, ctx, top);
  }
  if (ctx.customInspect !== false) {
    const custom = value[customInspect];
    if (typeof custom === 'function' && custom !== inspect) {
      const ret = custom.call(value, recurseTimes, { ...ctx, stylize: (s) => s }, inspect);
      if (ret !== value) {
        return typeof ret === 'string' ? ret : formatValue(ctx, ret, recurseTimes, false);
      }
    }
  }
  if (ctx.seen.includes(value)) {
    let index = ctx.circular.get(value);
    if (index === undefined) {
      index = ctx.circular.size + 1;
      ctx.circular.set(value, index);
    }
    return `[Circular *${index}]`;
  }
  return formatRaw(ctx, value, recurseTimes);
}

function formatRaw(ctx, value, recurseTimes) {
  const name = typeof value === 'function' ? null : constructorName(value);
  let keys = Object.keys(value);
  const symbols = Object.getOwnPropertySymbols(value).filter(
    (s) => Object.getOwnPropertyDescriptor(value, s).enumerable,
  );
  let base = '';
  let braces = ['{', '}'];
  let entriesFn = null;
  let prefix = name === null ? '[Object: null prototype] ' : name !== 'Object' ? `${name} ` : '';

  if (Array.isArray(value)) {
    prefix = name !== 'Array' && name !== null ? `${name}(${value.length}) ` : '';
    braces = [`${prefix}[`, ']'];
    keys = keys.filter((k) => !/^\d+$/.test(k));
    entriesFn = () => formatList(ctx, value, recurseTimes);
  } else if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    braces = [`${name}(${value.length}) [`, ']'];
    keys = keys.filter((k) => !/^\d+$/.test(k));
    entriesFn = () => formatList(ctx, value, recurseTimes);
  } else if (value instanceof Map) {
    braces = [`${prefix.trim() || 'Map'}(${value.size}) {`, '}'];
    entriesFn = () => {
      const out = [];
      for (const [k, v] of value) {
        out.push(`${formatValue(ctx, k, recurseTimes, false)} => ${formatValue(ctx, v, recurseTimes, false)}`);
      }
      return out;
    };
  } else if (value instanceof Set) {
    braces = [`${prefix.trim() || 'Set'}(${value.size}) {`, '}'];
    entriesFn = () => [...value].map((v) => formatValue(ctx, v, recurseTimes, false));
  } else if (typeof value === 'function') {
    base = functionBase(value);
    keys = keys.filter((k) => k !== 'prototype');
    if (keys.length === 0 && symbols.length === 0) return base;
  } else if (value instanceof RegExp) {
    base = RegExp.prototype.toString.call(value);
    if (keys.length === 0) return base;
  } else if (value instanceof Date) {
    base = Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
    if (keys.length === 0) return base;
  } else if (isError(value)) {
    base = value.stack && typeof value.stack === 'string' ? formatErrorStack(value) : `[${Error.prototype.toString.call(value)}]`;
    keys = keys.filter((k) => k !== 'stack' && k !== 'message');
    if (keys.length === 0 && symbols.length === 0) return base;
  } else if (value instanceof Promise) {
    braces = ['Promise {', '}'];
    entriesFn = () => ['<unknown>'];
  } else if (value instanceof WeakMap || value instanceof WeakSet) {
    return `${name} { <items unknown> }`;
  } else if (value instanceof ArrayBuffer) {
    braces = ['ArrayBuffer {', '}'];
    entriesFn = () => {
      const bytes = new Uint8Array(value, 0, Math.min(50, value.byteLength));
      let hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
      if (value.byteLength > 50) hex += ` ... ${value.byteLength - 50} more bytes`;
      return [`[Uint8Contents]: <${hex}>`, `byteLength: ${value.byteLength}`];
    };
  } else if (prefix) {
    braces = [`${prefix}{`, '}'];
  } else if (typeof value === 'object' && Object.prototype.toString.call(value) === '[object Arguments]') {
    braces = ['[Arguments] [', ']'];
    entriesFn = () => formatList(ctx, value, recurseTimes);
  }

  if (recurseTimes > ctx.depth && ctx.depth !== null) {
    if (Array.isArray(value)) return '[Array]';
    return `[${name || 'Object'}]`;
  }

  ctx.seen.push(value);
  ctx.currentDepth = recurseTimes;
  const output = entriesFn ? entriesFn() : [];
  for (const key of keys) output.push(formatProperty(ctx, value, recurseTimes, key));
  for (const sym of symbols) output.push(formatProperty(ctx, value, recurseTimes, sym));
  ctx.seen.pop();

  let result = reduce(ctx, output, base, braces, recurseTimes);
  const index = ctx.circular.get(value);
  if (index !== undefined) result = `<ref *${index}> ${result}`;
  return result;
}

function formatErrorStack(err) {
  // SpiderMonkey's stack has no "Name: message" line; Node's starts with it.
  const head = Error.prototype.toString.call(err);
  const frames = String(err.stack)
    .split('\n')
    .filter((l) => l.length)
    .map((l) => {
      const at = l.lastIndexOf('@');
      return at >= 0 ? `    at ${l.slice(0, at) || '<anonymous>'} (${l.slice(at + 1)})` : `    at ${l}`;
    });
  return [head, ...frames].join('\n');
}

function formatList(ctx, list, recurseTimes) {
  const out = [];
  const max = Math.min(ctx.maxArrayLength, list.length);
  let holes = 0;
  for (let i = 0; i < max; i++) {
    if (!Array.isArray(list) || Object.prototype.hasOwnProperty.call(list, i)) {
      if (holes) {
        out.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`);
        holes = 0;
      }
      out.push(formatValue(ctx, list[i], recurseTimes + 1, false));
    } else {
      holes++;
    }
  }
  if (holes) out.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`);
  if (list.length > max) {
    const more = list.length - max;
    out.push(`... ${more} more item${more > 1 ? 's' : ''}`);
  }
  return out;
}

function formatProperty(ctx, value, recurseTimes, key) {
  const desc = Object.getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
  let str;
  if (desc.value !== undefined || !('get' in desc)) {
    ctx.indentationLvl += 2;
    str = formatValue(ctx, desc.value, recurseTimes + 1, false);
    ctx.indentationLvl -= 2;
  } else if (desc.get !== undefined) {
    str = desc.set !== undefined ? '[Getter/Setter]' : '[Getter]';
  } else {
    str = desc.set !== undefined ? '[Setter]' : 'undefined';
  }
  return `${formatKey(key)}: ${str}`;
}

function inspect(value, opts) {
  const ctx = {
    depth: 2,
    breakLength: 80,
    compact: 3,
    maxArrayLength: 100,
    maxStringLength: 10000,
    customInspect: true,
    indentationLvl: 0,
    currentDepth: 0,
    seen: [],
    circular: new Map(),
  };
  if (typeof opts === 'object' && opts !== null) {
    for (const k of Object.keys(opts)) {
      if (k in ctx) ctx[k] = opts[k];
    }
    if (opts.depth === Infinity) ctx.depth = null;
  } else if (typeof opts === 'boolean') {
    // Legacy signature inspect(obj, showHidden, depth).
    if (arguments.length > 2 && arguments[2] !== undefined) ctx.depth = arguments[2];
  }
  return formatValue(ctx, value, 0, false);
}

inspect.custom = customInspect;
inspect.defaultOptions = { depth: 2, breakLength: 80, compact: 3 };

function formatWithOptions(inspectOptions, ...args) {
  const first = args[0];
  let out = '';
  let a = 0;
  if (typeof first === 'string') {
    if (args.length === 1) return first;
    a = 1;
    let last = 0;
    for (let i = 0; i < first.length - 1; i++) {
      if (first.charCodeAt(i) !== 37) continue; // '%'
      const c = first[i + 1];
      if (c === '%') {
        out += first.slice(last, i) + '%';
        last = i + 2;
        i++;
        continue;
      }
      if (a >= args.length) continue;
      let rep;
      switch (c) {
        case 's': {
          const v = args[a];
          if (typeof v === 'string') rep = v;
          else if (typeof v === 'bigint') rep = `${v}n`;
          else if (typeof v === 'number') rep = Object.is(v, -0) ? '-0' : String(v);
          else if (typeof v === 'symbol') rep = v.toString();
          else if (v !== null && typeof v === 'object' && !(isError(v))) rep = inspect(v, { ...inspectOptions, depth: 0 });
          else rep = isError(v) ? String(v.stack || v) : String(v);
          break;
        }
        case 'd': {
          const v = args[a];
          if (typeof v === 'bigint') rep = `${v}n`;
          else if (typeof v === 'symbol') rep = 'NaN';
          else rep = formatPrimitive(Number(v), {}, false);
          break;
        }
        case 'i': {
          const v = args[a];
          if (typeof v === 'bigint') rep = `${v}n`;
          else if (typeof v === 'symbol') rep = 'NaN';
          else rep = formatPrimitive(parseInt(v), {}, false);
          break;
        }
        case 'f':
          rep = typeof args[a] === 'symbol' ? 'NaN' : formatPrimitive(parseFloat(args[a]), {}, false);
          break;
        case 'j':
          try {
            rep = JSON.stringify(args[a]);
          } catch {
            rep = '[Circular]';
          }
          break;
        case 'o':
          rep = inspect(args[a], { ...inspectOptions, depth: 4 });
          break;
        case 'O':
          rep = inspect(args[a], inspectOptions);
          break;
        case 'c':
          rep = '';
          break;
        default:
          continue;
      }
      out += first.slice(last, i) + rep;
      last = i + 2;
      i++;
      a++;
    }
    out += first.slice(last);
  }
  for (; a < args.length; a++) {
    const v = args[a];
    const sep = out.length || a > 0 ? ' ' : '';
    out += sep + (typeof v === 'string' ? v : inspect(v, inspectOptions));
  }
  return out;
}

function format(...args) {
  return formatWithOptions(undefined, ...args);
}

function inherits(ctor, superCtor) {
  if (ctor === undefined || ctor === null) {
    const err = new TypeError('The "ctor" argument must be of type function. Received ' + ctor);
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  if (superCtor === undefined || superCtor === null || superCtor.prototype === undefined) {
    const err = new TypeError('The "superCtor.prototype" property must be of type object.');
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  Object.defineProperty(ctor, 'super_', { value: superCtor, writable: true, configurable: true });
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
}

function promisify(original) {
  if (typeof original !== 'function') {
    const err = new TypeError('The "original" argument must be of type function');
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  if (original[promisifyCustom]) return original[promisifyCustom];
  function fn(...args) {
    return new Promise((resolve, reject) => {
      original.call(this, ...args, (err, ...values) => {
        if (err) reject(err);
        else resolve(values.length > 1 ? values : values[0]);
      });
    });
  }
  Object.setPrototypeOf(fn, Object.getPrototypeOf(original));
  Object.defineProperty(fn, promisifyCustom, { value: fn });
  return fn;
}
promisify.custom = promisifyCustom;

function callbackify(original) {
  return function (...args) {
    const cb = args.pop();
    original.apply(this, args).then(
      (v) => process.nextTick(cb, null, v),
      (e) => process.nextTick(cb, e || Object.assign(new Error('Promise was rejected with a falsy value'), { reason: e })),
    );
  };
}

const warnedDeprecations = new Set();
function deprecate(fn, msg, code) {
  return function (...args) {
    const key = code || msg;
    if (!warnedDeprecations.has(key)) {
      warnedDeprecations.add(key);
      if (typeof process !== 'undefined' && process.emitWarning) {
        process.emitWarning(msg, 'DeprecationWarning', code);
      }
    }
    return new.target ? Reflect.construct(fn, args, new.target) : fn.apply(this, args);
  };
}

const tag = (v) => Object.prototype.toString.call(v);
const types = {
  isDate: (v) => v instanceof Date,
  isRegExp: (v) => v instanceof RegExp,
  isMap: (v) => v instanceof Map,
  isSet: (v) => v instanceof Set,
  isPromise: (v) => v instanceof Promise,
  isNativeError: (v) => isError(v),
  isArrayBuffer: (v) => v instanceof ArrayBuffer,
  isAnyArrayBuffer: (v) => v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer),
  isArrayBufferView: (v) => ArrayBuffer.isView(v),
  isTypedArray: (v) => ArrayBuffer.isView(v) && !(v instanceof DataView),
  isUint8Array: (v) => v instanceof Uint8Array,
  isDataView: (v) => v instanceof DataView,
  isAsyncFunction: (v) => typeof v === 'function' && tag(v) === '[object AsyncFunction]',
  isGeneratorFunction: (v) => typeof v === 'function' && /GeneratorFunction/.test(tag(v)),
  isBoxedPrimitive: (v) => v instanceof Number || v instanceof String || v instanceof Boolean,
  isWeakMap: (v) => v instanceof WeakMap,
  isWeakSet: (v) => v instanceof WeakSet,
};

function isDeepStrictEqual(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (ArrayBuffer.isView(a)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !isDeepStrictEqual(v, b.get(k))) return false;
    return true;
  }
  if (a instanceof Set) {
    if (a.size !== b.size) return false;
    for (const v of a) if (!b.has(v)) return false;
    return true;
  }
  if (a instanceof Date) return a.getTime() === b.getTime();
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !isDeepStrictEqual(a[k], b[k])) return false;
  }
  return true;
}

module.exports = {
  format,
  formatWithOptions,
  inspect,
  inherits,
  promisify,
  callbackify,
  deprecate,
  types,
  isDeepStrictEqual,
  isArray: Array.isArray,
  isBoolean: (v) => typeof v === 'boolean',
  isNull: (v) => v === null,
  isNullOrUndefined: (v) => v == null,
  isNumber: (v) => typeof v === 'number',
  isString: (v) => typeof v === 'string',
  isSymbol: (v) => typeof v === 'symbol',
  isUndefined: (v) => v === undefined,
  isRegExp: types.isRegExp,
  isObject: (v) => v !== null && typeof v === 'object',
  isDate: types.isDate,
  isError: isError,
  isFunction: (v) => typeof v === 'function',
  isPrimitive: (v) => v === null || (typeof v !== 'object' && typeof v !== 'function'),
  TextEncoder: globalThis.TextEncoder,
  TextDecoder: globalThis.TextDecoder,
};
