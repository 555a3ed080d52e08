'use strict';
/**
 * Entry point of the confined worker (tsgrub's image parser). It runs the single-file bundle
 * `worker.bundle.cjs` through V8 with the code cache `worker.codecache` that the build made by running
 * this same bundle, under the same V8 flags, on examples/sample-guest.img: V8 then neither parses the
 * 600 KB bundle nor compiles the functions a boot uses (bench/README.md, "Startup"). Without a cache,
 * or with one V8 rejects (another Node version or other flags), the bundle is compiled as usual.
 *
 * The cache is no more trusted than the code: both live in the package and are written only by the build.
 * The bundle's first line names its build; a cache of another build is never used, even where V8's own
 * check (source length, flags, version) would let it through.
 *
 * With TSGRUB_WRITE_CODE_CACHE=<file> in the environment (the build's training run; the real worker
 * gets an empty environment) it writes the cache when the run ends.
 */
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const vm = require('node:vm');

const file = join(__dirname, 'worker.bundle.cjs');
const source = readFileSync(file, 'utf8');
const build = /^\/\/ tsgrub-build ([0-9a-f]{32})\n/.exec(source)?.[1];
let cachedData;
if (build) {
  try {
    const blob = readFileSync(join(__dirname, 'worker.codecache'));
    if (blob.subarray(0, 32).toString('latin1') === build) cachedData = blob.subarray(32);
  } catch {
    cachedData = undefined;
  }
}
// The CommonJS wrapper, on one line so the bundle's line numbers stay true.
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {
  filename: file,
  cachedData,
});
// For TSGRUB_TRACE: whether this start used the cache (a rejected one means the build's training run
// and this run disagree on flags or Node version).
globalThis[Symbol.for('tsgrub.codeCache')] =
  cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'accepted';
const out = process.env.TSGRUB_WRITE_CODE_CACHE;
if (out && build) {
  process.once('beforeExit', () => writeFileSync(out, Buffer.concat([Buffer.from(build, 'latin1'), script.createCachedData()])));
}
const mod = { exports: {} };
// The bundle requires only Node built-ins and xz-decompress, which resolve the same from this folder.
script.runInThisContext().call(mod.exports, mod.exports, require, mod, file, __dirname);
