'use strict';
// Node's `buffer` module: Buffer as a Uint8Array subclass, with Node's encodings (utf8,
// hex, base64, base64url, latin1/binary, ascii, utf16le/ucs2), slicing that shares
// memory, comparison and search, and the integer/float readers and writers.

const kMaxLength = 2 ** 32 - 1;
const kStringMaxLength = 2 ** 29 - 24;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');
// The engine's own single-byte decoder (WHATWG's "latin1" is windows-1252: one byte, one
// character, the same as Node's latin1 except at 0x80-0x9f, which are checked for). A
// loop over bytes in JavaScript costs about half a microsecond a byte in the
// interpreter; native code does the same in a few microseconds a request head.
const singleByteDecoder = new TextDecoder('latin1');
const NOT_LATIN1 = /[^\x00-\xff]/;
const NOT_ASCII = /[^\x00-\x7f]/;
const nativeIndexOf = Uint8Array.prototype.indexOf;
const nativeLastIndexOf = Uint8Array.prototype.lastIndexOf;
const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

class FastBuffer extends Uint8Array {}

function codeError(Ctor, code, message) {
  const err = new Ctor(message);
  err.code = code;
  return err;
}

function typeName(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') {
    const name = value.constructor && value.constructor.name;
    return name ? `an instance of ${name}` : 'an instance of Object';
  }
  if (typeof value === 'function') return `function ${value.name}`;
  let shown = String(value);
  if (typeof value === 'string') shown = `'${shown.length > 25 ? shown.slice(0, 25) + '...' : shown}'`;
  return `type ${typeof value} (${shown})`;
}

// ----- encodings -------------------------------------------------------------------

function normalizeEncoding(enc) {
  if (enc === undefined || enc === null || enc === 'utf8' || enc === 'utf-8') return 'utf8';
  switch (String(enc).toLowerCase()) {
    case 'utf8':
    case 'utf-8':
      return 'utf8';
    case 'hex':
      return 'hex';
    case 'base64':
      return 'base64';
    case 'base64url':
      return 'base64url';
    case 'latin1':
    case 'binary':
      return 'latin1';
    case 'ascii':
      return 'ascii';
    case 'ucs2':
    case 'ucs-2':
    case 'utf16le':
    case 'utf-16le':
      return 'utf16le';
    default:
      return undefined;
  }
}

function checkEncoding(enc) {
  const normalized = normalizeEncoding(enc);
  if (normalized === undefined) {
    throw codeError(TypeError, 'ERR_UNKNOWN_ENCODING', `Unknown encoding: ${enc}`);
  }
  return normalized;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_LOOKUP = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  B64_LOOKUP[B64.charCodeAt(i)] = i;
  B64_LOOKUP[B64URL.charCodeAt(i)] = i;
}
const HEX = '0123456789abcdef';
const HEX_PAIRS = [];
for (let i = 0; i < 256; i++) HEX_PAIRS.push(HEX[i >> 4] + HEX[i & 15]);

function hexValue(c) {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function base64ByteLength(str) {
  let len = str.length;
  // Trailing padding does not count.
  while (len > 0 && str.charCodeAt(len - 1) === 0x3d) len--;
  return (len * 3) >>> 2;
}

function byteLengthOf(string, enc) {
  switch (enc) {
    case 'utf8': {
      let n = 0;
      for (let i = 0; i < string.length; i++) {
        const c = string.charCodeAt(i);
        if (c < 0x80) n += 1;
        else if (c < 0x800) n += 2;
        else if (c >= 0xd800 && c <= 0xdbff && i + 1 < string.length) {
          const d = string.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            n += 4;
            i++;
          } else n += 3;
        } else n += 3;
      }
      return n;
    }
    case 'hex':
      return string.length >>> 1;
    case 'base64':
    case 'base64url':
      return base64ByteLength(string);
    case 'utf16le':
      return string.length * 2;
    default:
      return string.length;
  }
}

/** Encodes `string` into `target` from `offset`, at most `max` bytes; returns bytes written. */
function encodeInto(string, enc, target, offset, max) {
  switch (enc) {
    case 'utf8': {
      const view = target.subarray(offset, offset + max);
      return utf8Encoder.encodeInto(string, view).written;
    }
    case 'hex': {
      let n = 0;
      for (let i = 0; i + 1 < string.length && n < max; i += 2) {
        const hi = hexValue(string.charCodeAt(i));
        const lo = hexValue(string.charCodeAt(i + 1));
        if (hi < 0 || lo < 0) break;
        target[offset + n++] = (hi << 4) | lo;
      }
      return n;
    }
    case 'base64':
    case 'base64url': {
      let n = 0;
      let acc = 0;
      let bits = 0;
      for (let i = 0; i < string.length && n < max; i++) {
        const v = B64_LOOKUP[string.charCodeAt(i) & 0xff];
        if (string.charCodeAt(i) > 0xff || v < 0) {
          if (string.charCodeAt(i) === 0x3d) break;
          continue;
        }
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          target[offset + n++] = (acc >> bits) & 0xff;
        }
      }
      return n;
    }
    case 'utf16le': {
      let n = 0;
      for (let i = 0; i < string.length && n + 2 <= max; i++) {
        const c = string.charCodeAt(i);
        target[offset + n++] = c & 0xff;
        target[offset + n++] = c >> 8;
      }
      return n;
    }
    default: {
      // latin1, ascii: the low byte of each code unit.
      const n = Math.min(string.length, max);
      for (let i = 0; i < n; i++) target[offset + i] = string.charCodeAt(i) & 0xff;
      return n;
    }
  }
}

function fromStringFast(string, enc) {
  if (enc === 'utf8') {
    const bytes = utf8Encoder.encode(string);
    return new FastBuffer(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const length = byteLengthOf(string, enc);
  const buf = new FastBuffer(length);
  const written = encodeInto(string, enc, buf, 0, length);
  return written === length ? buf : buf.subarray(0, written);
}

function decode(bytes, enc, start, end) {
  switch (enc) {
    case 'utf8':
      if (start === 0 && end === bytes.length) return utf8Decoder.decode(bytes);
      return utf8Decoder.decode(new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start));
    case 'hex': {
      let out = '';
      for (let i = start; i < end; i++) out += HEX_PAIRS[bytes[i]];
      return out;
    }
    case 'base64':
    case 'base64url': {
      const table = enc === 'base64' ? B64 : B64URL;
      let out = '';
      let i = start;
      for (; i + 2 < end; i += 3) {
        const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
        out += table[n >> 18] + table[(n >> 12) & 63] + table[(n >> 6) & 63] + table[n & 63];
      }
      const rest = end - i;
      if (rest === 1) {
        const n = bytes[i] << 16;
        out += table[n >> 18] + table[(n >> 12) & 63];
        if (enc === 'base64') out += '==';
      } else if (rest === 2) {
        const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
        out += table[n >> 18] + table[(n >> 12) & 63] + table[(n >> 6) & 63];
        if (enc === 'base64') out += '=';
      }
      return out;
    }
    case 'latin1':
    case 'ascii': {
      const view = new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start);
      const fast = singleByteDecoder.decode(view);
      // Bytes 0x80-0x9f (windows-1252 differs there), or any high byte for ascii, take
      // the exact path below.
      if (!(enc === 'ascii' ? NOT_ASCII : NOT_LATIN1).test(fast)) return fast;
      const mask = enc === 'ascii' ? 0x7f : 0xff;
      let out = '';
      for (let i = start; i < end; i += 4096) {
        const chunk = bytes.subarray(i, Math.min(end, i + 4096));
        out += String.fromCharCode.apply(null, mask === 0xff ? chunk : chunk.map((b) => b & mask));
      }
      return out;
    }
    case 'utf16le': {
      let out = '';
      for (let i = start; i + 1 < end; i += 2) out += String.fromCharCode(bytes[i] | (bytes[i + 1] << 8));
      return out;
    }
    default:
      throw codeError(TypeError, 'ERR_UNKNOWN_ENCODING', `Unknown encoding: ${enc}`);
  }
}

// ----- Buffer ------------------------------------------------------------------------

function Buffer(arg, encodingOrOffset, length) {
  if (typeof arg === 'number') {
    if (typeof encodingOrOffset === 'string') {
      throw codeError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "string" argument must be of type string. Received type number (${arg})`,
      );
    }
    return Buffer.alloc(arg);
  }
  return Buffer.from(arg, encodingOrOffset, length);
}

Object.setPrototypeOf(Buffer, Uint8Array);
Buffer.prototype = FastBuffer.prototype;
Object.defineProperty(FastBuffer.prototype, 'constructor', {
  value: Buffer,
  writable: true,
  configurable: true,
});
Buffer.poolSize = 8 * 1024;

function checkSize(size) {
  if (typeof size !== 'number') {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "size" argument must be of type number. Received ${typeName(size)}`,
    );
  }
  if (!(size >= 0 && size <= kMaxLength)) {
    throw codeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The value of "size" is out of range. It must be >= 0 && <= ${kMaxLength}. Received ${size}`,
    );
  }
}

Buffer.alloc = function alloc(size, fill, encoding) {
  checkSize(size);
  const buf = new FastBuffer(size);
  if (fill !== undefined && fill !== 0 && size > 0) buf.fill(fill, encoding);
  return buf;
};

Buffer.allocUnsafe = function allocUnsafe(size) {
  checkSize(size);
  return new FastBuffer(size);
};

Buffer.allocUnsafeSlow = Buffer.allocUnsafe;

Buffer.from = function from(value, encodingOrOffset, length) {
  if (typeof value === 'string') return fromStringFast(value, checkEncoding(encodingOrOffset));
  if (typeof value === 'object' && value !== null) {
    if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
      const offset = encodingOrOffset === undefined ? 0 : +encodingOrOffset || 0;
      if (offset > value.byteLength) {
        throw codeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"offset" is outside of buffer bounds');
      }
      const len = length === undefined ? value.byteLength - offset : +length || 0;
      if (offset + len > value.byteLength) {
        throw codeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"length" is outside of buffer bounds');
      }
      return new FastBuffer(value, offset, len);
    }
    if (ArrayBuffer.isView(value)) {
      if (value instanceof Uint8Array) {
        const buf = new FastBuffer(value.length);
        buf.set(value);
        return buf;
      }
      if (value instanceof DataView) {
        const src = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
        const buf = new FastBuffer(src.length);
        buf.set(src);
        return buf;
      }
      // Other typed arrays: one byte per element, as Node does.
      const buf = new FastBuffer(value.length);
      for (let i = 0; i < value.length; i++) buf[i] = Number(value[i]) & 0xff;
      return buf;
    }
    const primitive = value.valueOf && value.valueOf();
    if (primitive != null && primitive !== value) {
      return Buffer.from(primitive, encodingOrOffset, length);
    }
    if (typeof value[Symbol.toPrimitive] === 'function') {
      const p = value[Symbol.toPrimitive]('string');
      if (typeof p === 'string') return fromStringFast(p, checkEncoding(encodingOrOffset));
    }
    if (value.length !== undefined || Array.isArray(value)) {
      const len = typeof value.length === 'number' && value.length === value.length ? value.length : 0;
      const buf = new FastBuffer(len);
      for (let i = 0; i < len; i++) buf[i] = value[i] & 0xff;
      return buf;
    }
    if (value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data);
  }
  throw codeError(
    TypeError,
    'ERR_INVALID_ARG_TYPE',
    'The first argument must be of type string or an instance of Buffer, ArrayBuffer, or ' +
      `Array or an Array-like Object. Received ${typeName(value)}`,
  );
};

Buffer.of = function of(...items) {
  return Buffer.from(items);
};

Buffer.isBuffer = function isBuffer(b) {
  return b instanceof Buffer;
};

Buffer.isEncoding = function isEncoding(enc) {
  return typeof enc === 'string' && enc.length !== 0 && normalizeEncoding(enc) !== undefined;
};

Buffer.byteLength = function byteLength(string, encoding) {
  if (typeof string !== 'string') {
    if (ArrayBuffer.isView(string) || string instanceof ArrayBuffer) return string.byteLength;
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      'The "string" argument must be of type string or an instance of Buffer or ArrayBuffer. ' +
        `Received ${typeName(string)}`,
    );
  }
  return byteLengthOf(string, normalizeEncoding(encoding) || 'utf8');
};

Buffer.compare = function compare(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      'The "buf1" argument must be an instance of Buffer or Uint8Array.',
    );
  }
  return compareBytes(a, 0, a.length, b, 0, b.length);
};

function compareBytes(a, aStart, aEnd, b, bStart, bEnd) {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const x = a[aStart + i];
    const y = b[bStart + i];
    if (x !== y) return x < y ? -1 : 1;
  }
  const la = aEnd - aStart;
  const lb = bEnd - bStart;
  return la < lb ? -1 : la > lb ? 1 : 0;
}

Buffer.concat = function concat(list, totalLength) {
  if (!Array.isArray(list)) {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "list" argument must be an instance of Array. Received ${typeName(list)}`,
    );
  }
  if (list.length === 0) return new FastBuffer(0);
  if (totalLength === undefined) {
    totalLength = 0;
    for (let i = 0; i < list.length; i++) {
      if (!(list[i] instanceof Uint8Array)) {
        throw codeError(
          TypeError,
          'ERR_INVALID_ARG_TYPE',
          `The "list[${i}]" argument must be an instance of Buffer or Uint8Array. Received ${typeName(list[i])}`,
        );
      }
      totalLength += list[i].length;
    }
  }
  const out = Buffer.allocUnsafe(totalLength);
  let pos = 0;
  for (let i = 0; i < list.length && pos < totalLength; i++) {
    const b = list[i];
    if (!(b instanceof Uint8Array)) {
      throw codeError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `The "list[${i}]" argument must be an instance of Buffer or Uint8Array. Received ${typeName(b)}`,
      );
    }
    const take = Math.min(b.length, totalLength - pos);
    out.set(take === b.length ? b : b.subarray(0, take), pos);
    pos += take;
  }
  if (pos < totalLength) out.fill(0, pos);
  return out;
};

const proto = FastBuffer.prototype;

function clampRange(len, start, end) {
  start = start === undefined ? 0 : Math.trunc(+start) || 0;
  end = end === undefined ? len : Math.trunc(+end) || 0;
  if (start < 0) start = Math.max(len + start, 0);
  if (end < 0) end = Math.max(len + end, 0);
  if (start > len) start = len;
  if (end > len) end = len;
  return [start, Math.max(start, end)];
}

proto.toString = function toString(encoding, start, end) {
  if (arguments.length === 0) return utf8Decoder.decode(this);
  const len = this.length;
  start = start === undefined || start <= 0 ? 0 : start >= len ? len : Math.trunc(start) || 0;
  end = end === undefined || end > len ? len : end <= 0 ? 0 : Math.trunc(end) || 0;
  if (end <= start) return '';
  return decode(this, checkEncoding(encoding), start, end);
};

proto.toLocaleString = proto.toString;

proto.toJSON = function toJSON() {
  return { type: 'Buffer', data: Array.from(this) };
};

proto.equals = function equals(other) {
  if (!(other instanceof Uint8Array)) {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "otherBuffer" argument must be an instance of Buffer or Uint8Array. Received ${typeName(other)}`,
    );
  }
  if (this === other) return true;
  if (this.length !== other.length) return false;
  return compareBytes(this, 0, this.length, other, 0, other.length) === 0;
};

proto.compare = function compare(target, targetStart = 0, targetEnd = target.length, sourceStart = 0, sourceEnd = this.length) {
  if (!(target instanceof Uint8Array)) {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "target" argument must be an instance of Buffer or Uint8Array. Received ${typeName(target)}`,
    );
  }
  return compareBytes(this, sourceStart, sourceEnd, target, targetStart, targetEnd);
};

// slice shares memory, as subarray does (Node's long-standing behaviour).
proto.slice = function slice(start, end) {
  const [s, e] = clampRange(this.length, start, end);
  return new FastBuffer(this.buffer, this.byteOffset + s, e - s);
};

proto.subarray = function subarray(start, end) {
  const [s, e] = clampRange(this.length, start, end);
  return new FastBuffer(this.buffer, this.byteOffset + s, e - s);
};

proto.write = function write(string, offset, length, encoding) {
  if (typeof string !== 'string') {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "string" argument must be of type string. Received ${typeName(string)}`,
    );
  }
  if (offset === undefined) {
    encoding = 'utf8';
    offset = 0;
    length = this.length;
  } else if (length === undefined && typeof offset === 'string') {
    encoding = offset;
    offset = 0;
    length = this.length;
  } else {
    offset = offset >>> 0;
    if (typeof length === 'string') {
      encoding = length;
      length = this.length - offset;
    } else if (length === undefined) {
      length = this.length - offset;
    } else {
      length = length >>> 0;
    }
  }
  if (offset > this.length) {
    throw codeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', 'Attempt to access memory outside buffer bounds');
  }
  const max = Math.min(length, this.length - offset);
  return encodeInto(string, checkEncoding(encoding), this, offset, max);
};

proto.fill = function fill(value, offset, end, encoding) {
  if (typeof offset === 'string') {
    encoding = offset;
    offset = 0;
    end = this.length;
  } else if (typeof end === 'string') {
    encoding = end;
    end = this.length;
  }
  offset = offset === undefined ? 0 : offset >>> 0;
  end = end === undefined ? this.length : end >>> 0;
  if (offset > this.length || end > this.length) {
    throw codeError(RangeError, 'ERR_OUT_OF_RANGE', 'The value of "offset" is out of range.');
  }
  if (end <= offset) return this;
  if (typeof value === 'number') {
    Uint8Array.prototype.fill.call(this, value & 0xff, offset, end);
    return this;
  }
  if (typeof value === 'boolean') {
    Uint8Array.prototype.fill.call(this, +value, offset, end);
    return this;
  }
  let bytes;
  if (typeof value === 'string') {
    if (value.length === 0) {
      Uint8Array.prototype.fill.call(this, 0, offset, end);
      return this;
    }
    bytes = fromStringFast(value, checkEncoding(encoding));
    if (bytes.length === 0) {
      throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'value' is invalid. Received '${value}'`);
    }
  } else if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    Uint8Array.prototype.fill.call(this, Number(value) & 0xff, offset, end);
    return this;
  }
  for (let i = offset, j = 0; i < end; i++, j++) {
    if (j === bytes.length) j = 0;
    this[i] = bytes[j];
  }
  return this;
};

proto.copy = function copy(target, targetStart, sourceStart, sourceEnd) {
  targetStart = targetStart === undefined ? 0 : Math.max(0, Math.trunc(targetStart) || 0);
  sourceStart = sourceStart === undefined ? 0 : Math.max(0, Math.trunc(sourceStart) || 0);
  sourceEnd = sourceEnd === undefined ? this.length : Math.min(this.length, Math.trunc(sourceEnd) || 0);
  if (targetStart >= target.length || sourceStart >= sourceEnd) return 0;
  const n = Math.min(sourceEnd - sourceStart, target.length - targetStart);
  const src = new Uint8Array(this.buffer, this.byteOffset + sourceStart, n);
  if (target instanceof Uint8Array) target.set(src, targetStart);
  else for (let i = 0; i < n; i++) target[targetStart + i] = src[i];
  return n;
};

// Candidates by the engine's own indexOf of the needle's first byte (native), then the
// rest compared.
function indexOfBytes(hay, needle, from, last) {
  const n = needle.length;
  const len = hay.length;
  if (n === 0) return last ? Math.min(from, len) : Math.min(from, len);
  const first = needle[0];
  if (!last) {
    let i = from;
    while (i + n <= len) {
      i = nativeIndexOf.call(hay, first, i);
      if (i < 0 || i + n > len) return -1;
      let j = 1;
      while (j < n && hay[i + j] === needle[j]) j++;
      if (j === n) return i;
      i++;
    }
  } else {
    let i = Math.min(from, len - n);
    while (i >= 0) {
      i = nativeLastIndexOf.call(hay, first, i);
      if (i < 0) return -1;
      let j = 1;
      while (j < n && hay[i + j] === needle[j]) j++;
      if (j === n) return i;
      i--;
    }
  }
  return -1;
}

function search(buf, value, byteOffset, encoding, last) {
  if (typeof byteOffset === 'string') {
    encoding = byteOffset;
    byteOffset = undefined;
  }
  let from;
  if (byteOffset === undefined || byteOffset === null || Number.isNaN(+byteOffset)) {
    from = last ? buf.length : 0;
  } else {
    from = Math.trunc(+byteOffset);
    if (from < 0) from = buf.length + from;
    if (from < 0) {
      if (last) return -1;
      from = 0;
    }
  }
  if (typeof value === 'number') {
    const v = value & 0xff;
    if (last) return from < 0 ? -1 : nativeLastIndexOf.call(buf, v, Math.min(from, buf.length - 1));
    return from >= buf.length ? -1 : nativeIndexOf.call(buf, v, from);
  }
  let needle;
  if (typeof value === 'string') needle = fromStringFast(value, checkEncoding(encoding));
  else if (value instanceof Uint8Array) needle = value;
  else {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "value" argument must be one of type number or string or an instance of Buffer or Uint8Array. Received ${typeName(value)}`,
    );
  }
  if (needle.length === 0) return last ? Math.min(from, buf.length) : from <= buf.length ? from : buf.length;
  return indexOfBytes(buf, needle, from, last);
}

proto.indexOf = function indexOf(value, byteOffset, encoding) {
  return search(this, value, byteOffset, encoding, false);
};

proto.lastIndexOf = function lastIndexOf(value, byteOffset, encoding) {
  return search(this, value, byteOffset, encoding, true);
};

proto.includes = function includes(value, byteOffset, encoding) {
  return this.indexOf(value, byteOffset, encoding) !== -1;
};

function swap(buf, size) {
  if (buf.length % size !== 0) {
    throw codeError(RangeError, 'ERR_INVALID_BUFFER_SIZE', `Buffer size must be a multiple of ${size * 8}-bits`);
  }
  for (let i = 0; i < buf.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = buf[a];
      buf[a] = buf[b];
      buf[b] = t;
    }
  }
  return buf;
}
proto.swap16 = function swap16() {
  return swap(this, 2);
};
proto.swap32 = function swap32() {
  return swap(this, 4);
};
proto.swap64 = function swap64() {
  return swap(this, 8);
};

// ----- numbers -----------------------------------------------------------------------

// Integers are read and written with byte arithmetic (no DataView per call: this runs
// in an interpreter); floats and 64-bit values through shared scratch arrays.
const f32 = new Float32Array(1);
const f64 = new Float64Array(1);
const f32Bytes = new Uint8Array(f32.buffer);
const f64Bytes = new Uint8Array(f64.buffer);
const bigScratch = new DataView(new ArrayBuffer(8));

function checkOffset(buf, offset, size) {
  if (offset === undefined) offset = 0;
  else if (typeof offset !== 'number') {
    throw codeError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "offset" argument must be of type number. Received ${typeName(offset)}`,
    );
  }
  if (offset >= 0 && offset + size <= buf.length && (offset | 0) === offset) return offset;
  if (!Number.isInteger(offset)) {
    throw codeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The value of "offset" is out of range. It must be an integer. Received ${offset}`,
    );
  }
  if (buf.length - size < 0) {
    throw codeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', 'Attempt to access memory outside buffer bounds');
  }
  throw codeError(
    RangeError,
    'ERR_OUT_OF_RANGE',
    `The value of "offset" is out of range. It must be >= 0 and <= ${buf.length - size}. Received ${offset}`,
  );
}

function checkValue(value, min, max, size) {
  if (value > max || value < min || value !== value) {
    const n = size > 4 ? 'n' : '';
    const range = `>= ${min}${n} and <= ${max}${n}`;
    throw codeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The value of "value" is out of range. It must be ${range}. Received ${value}`,
    );
  }
}

// [name, size, signed]: the unsigned value from bytes, big- or little-endian.
function readUnsigned(buf, o, size, little) {
  let v = 0;
  if (little) for (let i = size - 1; i >= 0; i--) v = v * 256 + buf[o + i];
  else for (let i = 0; i < size; i++) v = v * 256 + buf[o + i];
  return v;
}

function writeUnsigned(buf, o, size, little, v) {
  if (little) {
    for (let i = 0; i < size; i++) {
      buf[o + i] = v & 0xff;
      v = Math.floor(v / 256);
    }
  } else {
    for (let i = size - 1; i >= 0; i--) {
      buf[o + i] = v & 0xff;
      v = Math.floor(v / 256);
    }
  }
}

const INTS = [
  ['UInt8', 1, false],
  ['Int8', 1, true],
  ['UInt16', 2, false],
  ['Int16', 2, true],
  ['UInt32', 4, false],
  ['Int32', 4, true],
];

for (const [name, size, signed] of INTS) {
  const limit = 2 ** (8 * size);
  const min = signed ? -limit / 2 : 0;
  const max = signed ? limit / 2 - 1 : limit - 1;
  const ends = size === 1 ? [''] : ['LE', 'BE'];
  for (const end of ends) {
    const little = end === 'LE';
    let read;
    if (size === 1) {
      read = signed
        ? function (offset) {
            const b = this[checkOffset(this, offset, 1)];
            return b > 127 ? b - 256 : b;
          }
        : function (offset) {
            return this[checkOffset(this, offset, 1)];
          };
    } else if (size === 4 && !signed && !little) {
      read = function readUInt32BE(offset) {
        const o = checkOffset(this, offset, 4);
        return this[o] * 0x1000000 + ((this[o + 1] << 16) | (this[o + 2] << 8) | this[o + 3]);
      };
    } else {
      read = function (offset) {
        const v = readUnsigned(this, checkOffset(this, offset, size), size, little);
        return signed && v > max ? v - limit : v;
      };
    }
    const write = function (value, offset) {
      const o = checkOffset(this, offset, size);
      value = +value;
      checkValue(value, min, max, size);
      writeUnsigned(this, o, size, little, value < 0 ? value + limit : value);
      return o + size;
    };
    proto[`read${name}${end}`] = read;
    proto[`write${name}${end}`] = write;
    if (name.startsWith('UInt')) {
      proto[`readUint${name.slice(4)}${end}`] = read;
      proto[`writeUint${name.slice(4)}${end}`] = write;
    }
  }
}

for (const [name, size, scratch, bytes] of [
  ['Float', 4, f32, f32Bytes],
  ['Double', 8, f64, f64Bytes],
]) {
  for (const end of ['LE', 'BE']) {
    // The scratch arrays are little-endian (wasm32 is).
    const little = end === 'LE';
    proto[`read${name}${end}`] = function (offset) {
      const o = checkOffset(this, offset, size);
      for (let i = 0; i < size; i++) bytes[little ? i : size - 1 - i] = this[o + i];
      return scratch[0];
    };
    proto[`write${name}${end}`] = function (value, offset) {
      const o = checkOffset(this, offset, size);
      scratch[0] = +value;
      for (let i = 0; i < size; i++) this[o + i] = bytes[little ? i : size - 1 - i];
      return o + size;
    };
  }
}

for (const [name, getter, setter, min, max] of [
  ['BigUInt64', 'getBigUint64', 'setBigUint64', 0n, 2n ** 64n - 1n],
  ['BigInt64', 'getBigInt64', 'setBigInt64', -(2n ** 63n), 2n ** 63n - 1n],
]) {
  for (const end of ['LE', 'BE']) {
    const little = end === 'LE';
    const read = function (offset) {
      const o = checkOffset(this, offset, 8);
      for (let i = 0; i < 8; i++) bigScratch.setUint8(i, this[o + i]);
      return bigScratch[getter](0, little);
    };
    const write = function (value, offset) {
      const o = checkOffset(this, offset, 8);
      if (typeof value !== 'bigint') throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "value" argument must be of type bigint. Received ${typeName(value)}`);
      checkValue(value, min, max, 8);
      bigScratch[setter](0, value, little);
      for (let i = 0; i < 8; i++) this[o + i] = bigScratch.getUint8(i);
      return o + 8;
    };
    proto[`read${name}${end}`] = read;
    proto[`write${name}${end}`] = write;
    if (name === 'BigUInt64') {
      proto[`readBigUint64${end}`] = read;
      proto[`writeBigUint64${end}`] = write;
    }
  }
}

function checkByteLength(byteLength) {
  if (!Number.isInteger(byteLength) || byteLength < 1 || byteLength > 6) {
    throw codeError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The value of "byteLength" is out of range. It must be >= 1 and <= 6. Received ${byteLength}`,
    );
  }
}

proto.readUIntLE = proto.readUintLE = function readUIntLE(offset, byteLength) {
  checkByteLength(byteLength);
  offset = checkOffset(this, offset, byteLength);
  let v = 0;
  for (let i = byteLength - 1; i >= 0; i--) v = v * 256 + this[offset + i];
  return v;
};
proto.readUIntBE = proto.readUintBE = function readUIntBE(offset, byteLength) {
  checkByteLength(byteLength);
  offset = checkOffset(this, offset, byteLength);
  let v = 0;
  for (let i = 0; i < byteLength; i++) v = v * 256 + this[offset + i];
  return v;
};
proto.readIntLE = function readIntLE(offset, byteLength) {
  const v = this.readUIntLE(offset, byteLength);
  const limit = 2 ** (8 * byteLength - 1);
  return v >= limit ? v - limit * 2 : v;
};
proto.readIntBE = function readIntBE(offset, byteLength) {
  const v = this.readUIntBE(offset, byteLength);
  const limit = 2 ** (8 * byteLength - 1);
  return v >= limit ? v - limit * 2 : v;
};
proto.writeUIntLE = proto.writeUintLE = function writeUIntLE(value, offset, byteLength) {
  checkByteLength(byteLength);
  offset = checkOffset(this, offset, byteLength);
  checkValue(value, 0, 2 ** (8 * byteLength) - 1, byteLength);
  let v = +value;
  for (let i = 0; i < byteLength; i++) {
    this[offset + i] = v % 256;
    v = Math.floor(v / 256);
  }
  return offset + byteLength;
};
proto.writeUIntBE = proto.writeUintBE = function writeUIntBE(value, offset, byteLength) {
  checkByteLength(byteLength);
  offset = checkOffset(this, offset, byteLength);
  checkValue(value, 0, 2 ** (8 * byteLength) - 1, byteLength);
  let v = +value;
  for (let i = byteLength - 1; i >= 0; i--) {
    this[offset + i] = v % 256;
    v = Math.floor(v / 256);
  }
  return offset + byteLength;
};
proto.writeIntLE = function writeIntLE(value, offset, byteLength) {
  const limit = 2 ** (8 * byteLength - 1);
  checkValue(value, -limit, limit - 1, byteLength);
  return this.writeUIntLE(value < 0 ? value + limit * 2 : value, offset, byteLength);
};
proto.writeIntBE = function writeIntBE(value, offset, byteLength) {
  const limit = 2 ** (8 * byteLength - 1);
  checkValue(value, -limit, limit - 1, byteLength);
  return this.writeUIntBE(value < 0 ? value + limit * 2 : value, offset, byteLength);
};

// `util.inspect(buf)` / `console.log(buf)`: `<Buffer 68 65 6c 6c 6f>`.
proto[inspectSymbol] = function inspect() {
  const max = exportsObject.INSPECT_MAX_BYTES;
  let shown = '';
  const n = Math.min(max, this.length);
  for (let i = 0; i < n; i++) shown += (i ? ' ' : '') + HEX_PAIRS[this[i]];
  const more = this.length - n;
  if (more > 0) shown += ` ... ${more} more byte${more > 1 ? 's' : ''}`;
  return `<Buffer${shown ? ' ' + shown : ''}>`;
};
proto.inspect = proto[inspectSymbol];

Object.defineProperty(proto, 'parent', {
  enumerable: true,
  get() {
    return this.buffer;
  },
});
Object.defineProperty(proto, 'offset', {
  enumerable: true,
  get() {
    return this.byteOffset;
  },
});

function SlowBuffer(size) {
  return Buffer.allocUnsafe(size);
}

const exportsObject = {
  Buffer,
  SlowBuffer,
  FastBuffer,
  kMaxLength,
  kStringMaxLength,
  constants: { MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: kStringMaxLength },
  INSPECT_MAX_BYTES: 50,
  atob: (s) => globalThis.atob(s),
  btoa: (s) => globalThis.btoa(s),
  isUtf8(input) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(input);
      return true;
    } catch {
      return false;
    }
  },
  isAscii(input) {
    for (let i = 0; i < input.length; i++) if (input[i] > 0x7f) return false;
    return true;
  },
  // Used by string_decoder and net: decode a range without a Buffer.
  decode,
  normalizeEncoding,
  checkEncoding,
};
if (typeof Blob !== 'undefined') exportsObject.Blob = Blob;
if (typeof File !== 'undefined') exportsObject.File = File;

module.exports = exportsObject;
