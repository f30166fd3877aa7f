// The JavaScript engine netlet builds handlers with: componentize-js's StarlingMonkey
// (SpiderMonkey) engine with its garbage collector tuned to live within netlet's
// `--max-memory` (64 MiB by default).
//
// Why: SpiderMonkey's defaults are a desktop browser's. Its nursery may grow to 64 MiB
// and the first full collection waits until the GC heap holds 27 MiB (and malloc'd
// buffers 38 MiB). Each componentize-js call leaves a little tenured garbage, so under
// sustained load (64 B ping-pong x 32) the linear memory reached 64 MiB before any full
// collection ran, and the next minor GC died with "[unhandlable oom] Failed to allocate
// new chunk during GC". Neither StarlingMonkey nor componentize-js exposes the GC
// parameters (no JS_SetGCParameter reaches the embedding), so the defaults are changed
// where they are set: three constants of GCRuntime's constructor in the engine's code.
//
// The patch is exact: the engine must be the one the pinned componentize-js ships (its
// SHA-256 below), each constant must occur exactly once in the one function that holds
// them, and each is rewritten in place with an encoding of the same length. Anything
// else is an error naming what did not match.

import { createHash } from 'node:crypto';

/** SHA-256 of componentize-js 0.23.0's lib/starlingmonkey_embedding.wasm. */
export const ENGINE_SHA256 =
  '6094cd93d966f9bec9b01332db6e0eedbaf22f60b745c9f823f21e33cbd4d365';

const MiB = 1n << 20n;
const KiB = 1n << 10n;

// LLVM merged adjacent fields of GCSchedulingTunables into 64-bit constant stores: each
// entry is one i64.const of the constructor, low and high 32-bit halves.
export const PATCHES = [
  {
    what: 'nursery size: min 256 KiB (kept), max 64 MiB -> 1 MiB',
    from: (64n * MiB << 32n) | (256n * KiB),
    to: (1n * MiB << 32n) | (256n * KiB),
  },
  {
    what: 'GC heap trigger (JSGC_ALLOCATION_THRESHOLD) 27 MiB -> 8 MiB; small heap max 100 MiB (kept)',
    from: (100n * MiB << 32n) | (27n * MiB),
    to: (100n * MiB << 32n) | (8n * MiB),
  },
  {
    what: 'malloc trigger (JSGC_MALLOC_THRESHOLD_BASE) 38 MiB -> 16 MiB; zone alloc delay 1 MiB (kept)',
    from: (1n * MiB << 32n) | (38n * MiB),
    to: (1n * MiB << 32n) | (16n * MiB),
  },
];

/** A version for file names: changes whenever the patch does. */
export const PATCH_ID = createHash('sha256')
  .update(ENGINE_SHA256 + PATCHES.map((p) => `${p.from}:${p.to}`).join(','))
  .digest('hex')
  .slice(0, 12);

function uleb(bytes, i) {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[i++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [result, i];
  }
}

function sleb64(bytes, i) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const b = bytes[i++];
    result |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (!(b & 0x80)) {
      if (b & 0x40) result -= 1n << shift;
      return [BigInt.asUintN(64, result), i];
    }
  }
}

/** `value` as signed LEB128 in exactly `n` bytes (padded with continuation bytes). */
function sleb64Padded(value, n) {
  let v = BigInt.asIntN(64, value);
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    out[k] = Number(v & 0x7fn) | (k < n - 1 ? 0x80 : 0);
    v >>= 7n;
  }
  // The value must fit: what is left is its sign.
  if (v !== 0n && v !== -1n) throw new Error(`${value} does not fit in ${n} bytes`);
  return out;
}

/** The function bodies of a core module's code section: [start, end) offsets. */
function functionBodies(bytes) {
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error('not a WebAssembly module');
  }
  let i = 8;
  while (i < bytes.length) {
    const id = bytes[i++];
    let size;
    [size, i] = uleb(bytes, i);
    if (id === 10) {
      const bodies = [];
      let j = i;
      let count;
      [count, j] = uleb(bytes, j);
      for (let k = 0; k < count; k++) {
        let len;
        [len, j] = uleb(bytes, j);
        bodies.push([j, j + len]);
        j += len;
      }
      return bodies;
    }
    i += size;
  }
  throw new Error('no code section');
}

/** Offsets of `i64.const value` within [start, end). A byte-level scan: it may see an
 *  opcode inside another immediate, so callers require exactly one match. */
function findI64Const(bytes, start, end, value) {
  const hits = [];
  for (let i = start; i < end; i++) {
    if (bytes[i] !== 0x42) continue;
    const [v, next] = sleb64(bytes, i + 1);
    if (v === value) hits.push([i + 1, next]);
  }
  return hits;
}

/** Returns a patched copy of the engine (a Uint8Array of its bytes). */
export function patchEngine(original) {
  const digest = createHash('sha256').update(original).digest('hex');
  if (digest !== ENGINE_SHA256) {
    throw new Error(
      `the JavaScript engine has SHA-256 ${digest}, not the ${ENGINE_SHA256} netlet's GC ` +
        'settings were made for (js/toolchain/package-lock.json and engine.mjs go together)',
    );
  }
  const bytes = new Uint8Array(original);
  const owners = functionBodies(bytes).filter(
    ([s, e]) => findI64Const(bytes, s, e, PATCHES[1].from).length > 0,
  );
  if (owners.length !== 1) {
    throw new Error(`expected one function setting the GC tunables, found ${owners.length}`);
  }
  const [start, end] = owners[0];
  for (const patch of PATCHES) {
    const hits = findI64Const(bytes, start, end, patch.from);
    if (hits.length !== 1) {
      throw new Error(`GC setting "${patch.what}": ${hits.length} matches, expected 1`);
    }
    const [at, next] = hits[0];
    bytes.set(sleb64Padded(patch.to, next - at), at);
    const [check] = sleb64(bytes, at);
    if (check !== patch.to) throw new Error(`GC setting "${patch.what}": rewrite failed`);
  }
  return bytes;
}
