// Every differential program in one component: a test picks one by name (`node suite.js
// NAME ARGS...`, `netlet run suite.wasm -- NAME ARGS...`), so the tests build and compile
// one component rather than one per program. The program sees its own arguments from
// process.argv[2] on, as if run directly.
const programs = {
  backpressure: () => require('./backpressure.js'),
  connect: () => require('./connect.js'),
  dgramsend: () => require('./dgramsend.js'),
  echo: () => require('./echo.js'),
  encoding: () => require('./encoding.js'),
  errors: () => require('./errors.js'),
  esm: () => require('./esm.mjs'),
  greeting: () => require('./greeting.js'),
  halfopen: () => require('./halfopen.js'),
  http: () => require('./http.js'),
  pause: () => require('./pause.js'),
  pipes: () => require('./pipes.js'),
  timeout: () => require('./timeout.js'),
  udp: () => require('./udp.js'),
  writecb: () => require('./writecb.js'),
  wsecho: () => require('./wsecho.js'),
};

const name = process.argv[2];
if (!Object.prototype.hasOwnProperty.call(programs, name)) {
  throw new Error(`no test program ${JSON.stringify(name)}; one of ${Object.keys(programs).join(', ')}`);
}
process.argv.splice(2, 1);
programs[name]();
