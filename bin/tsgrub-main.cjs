'use strict';
// Entry of tsgrub's supervisor process (the parent). bin/tsgrub runs it as
//   node tsgrub-main.cjs --as <its $0> [--prestarted-worker <pid> <image>] -- <pygrub's arguments…>
// with, when prestarted, fd 3 and 4 the pipes from and to a worker it started at the same moment
// (see bin/tsgrub). Run directly, with pygrub's arguments alone, the supervisor spawns its worker
// itself. It loads the single-file CommonJS bundle when the build made one, else the modules tsc wrote.
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

let args = process.argv.slice(2);
let launch;
if (args[0] === '--as' && args[2] === '--') {
  process.argv[1] = args[1]; // pygrub's usage line names the program as it was invoked
  args = args.slice(3);
} else if (args[0] === '--as' && args[2] === '--prestarted-worker' && args[5] === '--') {
  process.argv[1] = args[1];
  launch = { pid: Number(args[3]), image: args[4], rfd: 3, wfd: 4 };
  args = args.slice(6);
}
const bundle = join(__dirname, '../dist/cli/tsgrub.bundle.cjs');

/**
 * The bundle compiled with the V8 code cache the build trained (one prestarted boot of the sample
 * image, scripts/bundle-cli.mjs), as the worker's loader does: the functions a boot runs are then not
 * compiled again (≈ 3–4 ms sooner at the hand-off). A cache of another build (the bundle's first line
 * names its build) is never offered to V8; one V8 rejects (another Node, other flags) is compiled
 * around. With TSGRUB_WRITE_PARENT_CODE_CACHE=<file> (the build's training run) it writes the cache on exit.
 */
function loadBundle() {
  const { readFileSync, writeFileSync } = require('node:fs');
  const vm = require('node:vm');
  const { createRequire } = require('node:module');
  const source = readFileSync(bundle, 'utf8');
  const build = /^\/\/ tsgrub-build ([0-9a-f]{32})\n/.exec(source)?.[1];
  let cachedData;
  if (build) {
    try {
      const blob = readFileSync(join(__dirname, '../dist/cli/tsgrub.codecache'));
      if (blob.subarray(0, 32).toString('latin1') === build) cachedData = blob.subarray(32);
    } catch {
      cachedData = undefined;
    }
  }
  // The CommonJS wrapper, on one line so the bundle's line numbers stay true.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, { filename: bundle, cachedData });
  // For TSGRUB_TRACE ('parent code loaded (code cache …)').
  globalThis[Symbol.for('tsgrub.parentCodeCache')] = cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'accepted';
  const out = process.env.TSGRUB_WRITE_PARENT_CODE_CACHE;
  if (out && build) process.once('exit', () => writeFileSync(out, Buffer.concat([Buffer.from(build, 'latin1'), script.createCachedData()])));
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, join(__dirname, '../dist/cli'));
  return mod.exports;
}

const load = existsSync(bundle) ? Promise.resolve().then(loadBundle) : import(pathToFileURL(join(__dirname, '../dist/cli/tsgrub.js')).href);
// main() writes its record and messages synchronously and has restored the terminal by the time it
// returns, so exit at once rather than let Node tear the process down at leisure (a few ms a boot).
load
  .then(({ main }) => main(args, process.env, launch))
  .then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`tsgrub: ${e && e.message ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
