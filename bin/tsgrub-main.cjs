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
 * The bundle compiled with the V8 code cache the build trained on one prestarted boot of the sample
 * image, as the worker's entry does (dist/cli/load-bundle.cjs): the functions a boot runs are then not
 * compiled again (≈ 4 ms sooner at the hand-off). TSGRUB_WRITE_PARENT_CODE_CACHE=<file> (the build's
 * training run) writes the cache on exit.
 */
function loadParent() {
  const { loadBundle } = require('../dist/cli/load-bundle.cjs');
  const cache = join(__dirname, '../dist/cli/tsgrub.codecache');
  // The parent runs as root: the variable may only name the package's own cache (what the build sets),
  // never make it write anywhere else.
  const train = process.env.TSGRUB_WRITE_PARENT_CODE_CACHE === cache ? cache : undefined;
  // TSGRUB_TRACE says what became of the cache ('parent code loaded (code cache …)').
  return loadBundle(bundle, cache, train, 'tsgrub.parentCodeCache');
}

const load = existsSync(bundle) ? Promise.resolve().then(loadParent) : import(pathToFileURL(join(__dirname, '../dist/cli/tsgrub.js')).href);
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
