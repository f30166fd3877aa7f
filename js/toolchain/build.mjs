// `netlet build` for JavaScript, run by the netlet binary with Node:
//
//   node build.mjs '{"toolchain": DIR, "sdk": DIR, "wit": DIR, "input": PATH,
//                    "output": FILE, "meta": FILE}'
//
// 1. Bundles the handler (a file, or a folder with package.json) with the SDK using
//    esbuild: `require('net')` and `import net from 'node:net'` both resolve to the SDK's
//    modules; a Node module the SDK does not have is an error naming it.
// 2. Componentizes the bundle against netlet's WIT (world tcp-udp) with componentize-js,
//    without its `http` and `fetch-event` features (no wasi:http import), on the engine
//    of engine.mjs (its GC tuned to netlet's memory limit).
// 3. Writes the component to `output` and, to `meta`, the Node modules the handler uses
//    (netlet adds them to the component for `netlet inspect`).
//
// Errors are printed to stderr, with positions in the bundle mapped back to the
// handler's files, and the exit status is 1.

import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { readFile, writeFile, mkdtemp, rm, rename, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { patchEngine, PATCH_ID } from './engine.mjs';

const SDK_MODULES = {
  net: 'net.js',
  dgram: 'dgram.js',
  events: 'events.js',
  buffer: 'buffer.js',
  timers: 'timers.js',
  'timers/promises': 'timers-promises.js',
  util: 'util.js',
  process: 'process.js',
  console: 'console.js',
  string_decoder: 'string_decoder.js',
  http: 'http.js',
  // The npm package's server side, on `http`'s 'upgrade' event.
  ws: 'ws.js',
};

// Node's built-in modules: asking for one the SDK lacks is an error, not a search of
// node_modules.
const NODE_BUILTINS = new Set(
  (
    'assert assert/strict async_hooks buffer child_process cluster console constants crypto ' +
    'dgram diagnostics_channel dns dns/promises domain events fs fs/promises http http2 https ' +
    'inspector module net os path path/posix path/win32 perf_hooks process punycode querystring ' +
    'readline readline/promises repl stream stream/consumers stream/promises stream/web ' +
    'string_decoder sys timers timers/promises tls trace_events tty url util util/types v8 vm ' +
    'wasi worker_threads zlib test sqlite sea'
  ).split(' '),
);

const BUNDLE_NAME = 'netlet-bundle.js';

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const require = createRequire(path.join(cfg.toolchain, 'package.json'));
  const esbuild = require('esbuild');
  const entry = await resolveEntry(cfg.input);
  const work = await mkdtemp(path.join(os.tmpdir(), 'netlet-build-'));
  try {
    const used = new Set();
    const bundle = await bundleHandler(esbuild, cfg, entry, work, used);
    const engine = await ensureEngine(cfg.toolchain);
    const cjs = path.join(cfg.toolchain, 'node_modules/@bytecodealliance/componentize-js');
    const { splicer } = await import(pathToFileURL(path.join(cjs, 'lib/spidermonkey-embedding-splicer.js')).href);
    const splice = splicer.spliceBindings;
    if (process.env.NETLET_JS_TUNE_BINDINGS !== '0') {
      splicer.spliceBindings = (...args) => {
        const spliced = splice.apply(splicer, args);
        spliced.jsBindings = tuneBindings(spliced.jsBindings);
        return spliced;
      };
    }
    const { componentize } = await import(pathToFileURL(path.join(cjs, 'src/componentize.js')).href);
    let component;
    try {
      ({ component } = await componentize({
        sourcePath: bundle.path,
        witPath: cfg.wit,
        worldName: 'tcp-udp',
        disableFeatures: ['http', 'fetch-event'],
        engine,
      }));
    } catch (err) {
      throw new Error(mapPositions(String(err.message || err), bundle.map));
    }
    await writeFile(cfg.output, component);
    await writeFile(cfg.meta, JSON.stringify({ modules: [...used].sort(), entry: path.basename(entry) }));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function resolveEntry(input) {
  const info = await stat(input).catch(() => null);
  if (info === null) throw new Error(`${input}: no such file or folder`);
  if (!info.isDirectory()) return path.resolve(input);
  const pkgPath = path.join(input, 'package.json');
  let main = 'index.js';
  if (existsSync(pkgPath)) {
    const pkg = JSON.parse(await readFile(pkgPath, 'utf8'));
    if (typeof pkg.main === 'string') main = pkg.main;
  }
  let file = path.resolve(input, main);
  if (!existsSync(file) && existsSync(file + '.js')) file += '.js';
  if (existsSync(file) && (await stat(file)).isDirectory()) file = path.join(file, 'index.js');
  if (!existsSync(file)) throw new Error(`${input}: its entry point ${main} does not exist`);
  return file;
}

async function bundleHandler(esbuild, cfg, entry, work, used) {
  const sdk = cfg.sdk;
  const inSdk = (p) => p.startsWith(sdk + path.sep);
  const builtins = {
    name: 'netlet-node-modules',
    setup(build) {
      build.onResolve({ filter: /^(node:)?[a-z_]+(\/[a-z_]+)?$/ }, (args) => {
        const name = args.path.startsWith('node:') ? args.path.slice(5) : args.path;
        const file = SDK_MODULES[name];
        if (file !== undefined) {
          if (!inSdk(args.importer) && args.importer !== '<stdin>') used.add(name);
          return { path: path.join(sdk, file) };
        }
        if (NODE_BUILTINS.has(name) || args.path.startsWith('node:')) {
          return {
            errors: [
              {
                text:
                  `"${args.path}" is a Node module netlet's JavaScript SDK does not provide ` +
                  `(it provides ${Object.keys(SDK_MODULES).join(', ')})`,
              },
            ],
          };
        }
        return undefined;
      });
      // `require.main === module` marks the entry script, as in Node.
      build.onLoad({ filter: /\.[cm]?js$/ }, async (args) => {
        if (args.path !== entry) return undefined;
        const contents = await readFile(args.path, 'utf8');
        if (!/\brequire\.main\b/.test(contents)) return undefined;
        return { contents: 'require.main = module; ' + contents, loader: 'js' };
      });
    },
  };
  // The SDK loads at build time (into the snapshot); the handler's own top level runs
  // when the instance starts (runtime.js's `init`), as Node runs a script.
  const runtimePath = JSON.stringify(path.join(sdk, 'runtime.js'));
  const entryCode =
    `import ${JSON.stringify(path.join(sdk, 'globals.js'))};\n` +
    `import { setMain } from ${runtimePath};\n` +
    `setMain(() => { require(${JSON.stringify(entry)}); });\n` +
    `export { handler } from ${runtimePath};\n`;
  const outfile = path.join(work, BUNDLE_NAME);
  let result;
  try {
    result = await esbuild.build({
      stdin: { contents: entryCode, resolveDir: path.dirname(entry), sourcefile: 'netlet-entry.js', loader: 'js' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      mainFields: ['main', 'module'],
      conditions: ['node'],
      external: ['netlet:*'],
      define: { __dirname: '"/"', __filename: JSON.stringify('/' + path.basename(entry)) },
      write: false,
      outfile,
      sourcemap: 'external',
      sourcesContent: false,
      legalComments: 'none',
      logLevel: 'silent',
      plugins: [builtins],
    });
  } catch (err) {
    const lines = (err.errors || []).map((e) => {
      const loc = e.location ? `${path.relative(process.cwd(), e.location.file) || e.location.file}:${e.location.line}:${e.location.column + 1}: ` : '';
      return `${loc}${e.text}`;
    });
    throw new Error(lines.length ? lines.join('\n') : String(err.message || err));
  }
  const js = result.outputFiles.find((f) => f.path.endsWith('.js')).text;
  const rawMap = JSON.parse(result.outputFiles.find((f) => f.path.endsWith('.map')).text);
  const base = path.dirname(entry);
  const sources = rawMap.sources.map((s) => {
    const abs = path.resolve(work, s);
    if (inSdk(abs)) return 'node:' + path.basename(abs, '.js');
    if (abs.endsWith('netlet-entry.js')) return 'netlet:entry';
    return path.relative(base, abs);
  });
  const map = { sources, mappings: rawMap.mappings };
  const code =
    js.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n') +
    `globalThis[Symbol.for('netlet.sourcemap')] = ${JSON.stringify(map)};\n`;
  const bundlePath = path.join(work, BUNDLE_NAME);
  await writeFile(bundlePath, code);
  return { path: bundlePath, map };
}

/** The JavaScript glue componentize-js generates for the WIT calls, with two costs on
 *  every call taken out: a debug-log call that builds an object literal each time (and
 *  logs nothing unless process.env.JCO_DEBUG is set), and the removal of the resource
 *  object from its FinalizationRegistry on each method call (which also leaves a socket
 *  object dropped without dispose holding its handle). What does not match is left as
 *  it is. */
function tuneBindings(js) {
  return js
    .replace(/\n[ \t]*_debugLog\((?:[^;'"`]|'[^']*'|"[^"]*")*\);/g, '')
    .replace(/\n[ \t]*finalizationRegistry_import\$[\w$]+\.unregister\(arg0\);/g, '');
}

/** The engine with netlet's GC settings, made once per toolchain. */
async function ensureEngine(toolchain) {
  const target = path.join(toolchain, `netlet-engine-${PATCH_ID}.wasm`);
  if (existsSync(target)) return target;
  const original = await readFile(
    path.join(toolchain, 'node_modules/@bytecodealliance/componentize-js/lib/starlingmonkey_embedding.wasm'),
  );
  const patched = patchEngine(original);
  const tmp = `${target}.tmp${process.pid}`;
  await writeFile(tmp, patched);
  await rename(tmp, target);
  return target;
}

// ----- source positions ---------------------------------------------------------------

const VLQ = new Map(
  [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]),
);

function decodeMappings(mappings) {
  const lines = [];
  let src = 0;
  let sLine = 0;
  let sCol = 0;
  for (const text of mappings.split(';')) {
    const segs = [];
    let col = 0;
    for (const seg of text.split(',')) {
      if (!seg) continue;
      const vals = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const d = VLQ.get(ch);
        value += (d & 31) << shift;
        if (d & 32) shift += 5;
        else {
          vals.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      col += vals[0];
      if (vals.length >= 4) {
        src += vals[1];
        sLine += vals[2];
        sCol += vals[3];
        segs.push([col, src, sLine, sCol]);
      }
    }
    lines.push(segs);
  }
  return lines;
}

function mapPositions(text, map) {
  let lines = null;
  return text.replace(new RegExp(`[^\\s@(]*${BUNDLE_NAME.replace('.', '\\.')}:(\\d+):(\\d+)`, 'g'), (all, l, c) => {
    lines ??= decodeMappings(map.mappings);
    const segs = lines[+l - 1];
    if (!segs || !segs.length) return all;
    let best = segs[0];
    for (const s of segs) if (s[0] <= +c - 1) best = s;
    return `${map.sources[best[1]]}:${best[2] + 1}:${best[3] + 1}`;
  });
}

main().catch((err) => {
  process.stderr.write(`${String(err && err.message ? err.message : err).trim()}\n`);
  process.exit(1);
});
