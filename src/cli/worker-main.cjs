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
const { join } = require('node:path');
const { loadBundle } = require('./load-bundle.cjs');

loadBundle(join(__dirname, 'worker.bundle.cjs'), join(__dirname, 'worker.codecache'), process.env.TSGRUB_WRITE_CODE_CACHE, 'tsgrub.codeCache');
