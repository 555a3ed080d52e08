'use strict';
/**
 * Loads one of tsgrub's single-file CommonJS bundles through V8 with the code cache the build trained
 * for it (scripts/bundle-cli.mjs): V8 then neither parses the bundle nor compiles again the functions a
 * boot runs (bench/README.md, "Startup"). Shared by the worker's entry (worker-main.cjs) and the
 * parent's (bin/tsgrub-main.cjs); the build copies it next to them in dist/cli.
 *
 * The cache is no more trusted than the code: both live in the package and are written only by the
 * build. The bundle's first line names its build (`// tsgrub-build <32 hex digits>`) and the cache
 * starts with the same id: a cache of another build is never offered to V8, even where V8's own check
 * (source length, flags, version) would let it through. Without a cache, or with one V8 rejects
 * (another Node version or other flags), the bundle is compiled as usual.
 *
 * `writeTo` (the build's training run) writes a new cache there when the process exits. What became
 * of the cache ('accepted', 'rejected' or 'absent') is put at `globalThis[Symbol.for(traceKey)]`
 * before the bundle runs, for TSGRUB_TRACE (a rejected cache means the training run and this one
 * disagree on flags or Node version). Returns the bundle's exports.
 */
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname } = require('node:path');
const vm = require('node:vm');

function loadBundle(file, cacheFile, writeTo, traceKey) {
  const source = readFileSync(file, 'utf8');
  const build = /^\/\/ tsgrub-build ([0-9a-f]{32})\n/.exec(source)?.[1];
  let cachedData;
  if (build) {
    try {
      const blob = readFileSync(cacheFile);
      if (blob.subarray(0, 32).toString('latin1') === build) cachedData = blob.subarray(32);
    } catch {
      cachedData = undefined;
    }
  }
  // The CommonJS wrapper, on one line so the bundle's line numbers stay true.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, { filename: file, cachedData });
  globalThis[Symbol.for(traceKey)] = cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'accepted';
  if (writeTo && build) process.once('exit', () => writeFileSync(writeTo, Buffer.concat([Buffer.from(build, 'latin1'), script.createCachedData()])));
  const mod = { exports: {} };
  // The bundles require only Node built-ins and xz-decompress, which resolve the same from their folder.
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  return mod.exports;
}

module.exports = { loadBundle };
