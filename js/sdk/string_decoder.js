'use strict';
// Node's `string_decoder`: decodes a stream of byte chunks into strings without
// splitting a character (UTF-8, UTF-16LE) or a base64 group across chunks. Sockets use
// it for `setEncoding`.

const { decode, checkEncoding } = require('./buffer.js');

class StringDecoder {
  constructor(encoding) {
    this.encoding = checkEncoding(encoding);
    this._utf8 = this.encoding === 'utf8' ? new TextDecoder('utf-8') : null;
    this._pending = null; // bytes held back for base64 / utf16le
  }

  write(buf) {
    if (typeof buf === 'string') return buf;
    if (!(buf instanceof Uint8Array)) {
      const err = new TypeError('The "buf" argument must be an instance of Buffer, TypedArray, or DataView.');
      err.code = 'ERR_INVALID_ARG_TYPE';
      throw err;
    }
    if (this._utf8) return this._utf8.decode(buf, { stream: true });
    const group = this.encoding === 'base64' || this.encoding === 'base64url' ? 3 : this.encoding === 'utf16le' ? 2 : 1;
    if (group === 1) return decode(buf, this.encoding, 0, buf.length);
    let bytes = buf;
    if (this._pending) {
      bytes = new Uint8Array(this._pending.length + buf.length);
      bytes.set(this._pending);
      bytes.set(buf, this._pending.length);
      this._pending = null;
    }
    let usable = bytes.length - (bytes.length % group);
    if (this.encoding === 'utf16le' && usable >= 2) {
      // Do not split a surrogate pair.
      const last = bytes[usable - 2] | (bytes[usable - 1] << 8);
      if (last >= 0xd800 && last <= 0xdbff) usable -= 2;
    }
    if (usable < bytes.length) this._pending = bytes.slice(usable);
    return decode(bytes, this.encoding, 0, usable);
  }

  end(buf) {
    let out = buf === undefined ? '' : this.write(buf);
    if (this._utf8) {
      out += this._utf8.decode();
    } else if (this._pending) {
      out += decode(this._pending, this.encoding, 0, this._pending.length);
      this._pending = null;
    }
    return out;
  }
}

module.exports = { StringDecoder };
