// Bundles the two tsgrub processes and fsimage into one CommonJS file each (dist/cli/*.bundle.cjs): a
// process start then loads one module instead of ~130, and Node starts a CommonJS main ~5–10 ms sooner than an ES
// module (no ESM loader). Then trains the worker's V8 code cache (src/cli/worker-main.cjs) by running
// the worker, with the V8 flags it always runs with, on the bundled sample image.
// xz-decompress stays external: it is loaded lazily, only for xz-compressed images.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, openSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/cli');
const buildId = randomBytes(16).toString('hex');

for (const name of ['worker', 'tsgrub', 'fsimage']) {
  await build({
    entryPoints: [join(cli, `${name}.js`)],
    outfile: join(cli, `${name}.bundle.cjs`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['xz-decompress'],
    logLevel: 'warning',
    legalComments: 'none',
    // Minified: 590 → 316 KB for the worker, which V8 reads, hashes and deserializes at every start
    // (−3–4 ms a boot). Nothing depends on function names (errors set theirs explicitly).
    // TSGRUB_BUNDLE_NAMES=1 keeps names and whitespace, for readable CPU profiles (bench/README.md).
    minify: !process.env.TSGRUB_BUNDLE_NAMES,
    // The worker's lazy import('xz-decompress') becomes a lazy require: worker-main.cjs compiles the
    // bundle with vm.Script, where import() would need an (experimental) loader hook. fsimage keeps
    // import(): its --driver modules may be ES modules.
    supported: name === 'worker' ? { 'dynamic-import': false } : {},
    // The worker's first line names its build, so worker-main.cjs never pairs it with another build's
    // code cache. The parent finds the package from its own file name.
    banner: {
      js:
        name === 'worker'
          ? `// tsgrub-build ${buildId}`
          : `${name === 'tsgrub' ? `// tsgrub-build ${buildId}\n` : ''}const __tsgrub_import_meta_url = require("node:url").pathToFileURL(__filename).href;`,
    },
    define: name === 'worker' ? {} : { 'import.meta.url': '__tsgrub_import_meta_url' },
  });
}
copyFileSync(join(root, 'src/cli/worker-main.cjs'), join(cli, 'worker-main.cjs'));
copyFileSync(join(root, 'src/cli/load-bundle.cjs'), join(cli, 'load-bundle.cjs'));
// The worker's fixed flags for bin/tsgrub, which starts it before any JavaScript of ours runs.
{
  const { WORKER_FIXED_FLAGS } = await import(pathToFileURL(join(cli, 'worker-flags.js')).href);
  if (WORKER_FIXED_FLAGS.some((f) => f.includes('\n'))) throw new Error('bundle-cli: a worker flag contains a newline');
  writeFileSync(join(cli, 'worker.flags'), `${WORKER_FIXED_FLAGS.join('\n')}\n`);
}
rmSync(join(cli, 'tsgrub.bundle.js'), { force: true }); // the ESM bundle of earlier builds

// Train the code cache: one boot of the sample image with the worker's V8 flags, as the parent runs it
// (minus the permission flags, which are Node's, not V8's, and would forbid writing the cache).
const cache = join(cli, 'worker.codecache');
rmSync(cache, { force: true });
const sample = join(root, 'examples/sample-guest.img');
if (!existsSync(sample)) {
  process.stderr.write('bundle-cli: examples/sample-guest.img is missing; the worker runs without a code cache\n');
} else {
  const { WORKER_V8_FLAGS } = await import(pathToFileURL(join(cli, 'worker-flags.js')).href);
  const image = openSync(sample, 'r');
  const sink = openSync('/dev/null', 'w');
  const req = { args: '', listEntries: false, notReally: false, interactive: false, limits: {} };
  const child = spawn(process.execPath, [...WORKER_V8_FLAGS, join(cli, 'worker-main.cjs'), JSON.stringify(req)], {
    stdio: ['ignore', 'ignore', 'inherit', image, sink, sink, 'pipe'],
    env: { TSGRUB_WRITE_CODE_CACHE: cache },
    cwd: '/',
  });
  let reply = '';
  child.stdio[6].on('data', (b) => (reply += b));
  const code = await new Promise((res) => child.on('close', res));
  closeSync(image);
  closeSync(sink);
  if (code !== 0 || !reply.includes('"type":"result"') || !existsSync(cache)) {
    rmSync(cache, { force: true });
    throw new Error(`bundle-cli: the code-cache training run failed (exit ${code}): ${reply.slice(0, 300)}`);
  }
  process.stderr.write(`bundle-cli: worker code cache ${(statSync(cache).size / 1024).toFixed(0)} KiB\n`);
}

// Train the parent's code cache the same way: one prestarted boot of the sample image through
// bin/tsgrub, the parent writing the cache as it exits (bin/tsgrub-main.cjs loads it; no V8 flags).
const parentCache = join(cli, 'tsgrub.codecache');
rmSync(parentCache, { force: true });
if (existsSync(sample)) {
  const out = mkdtempSync(join(tmpdir(), 'tsgrub-train-'));
  try {
    const env = { ...process.env, TSGRUB_WRITE_PARENT_CODE_CACHE: parentCache };
    delete env.NODE_OPTIONS;
    delete env.PYGRUB_MAX_RAM_USAGE_MB;
    const child = spawn(join(root, 'bin/tsgrub'), ['-q', '--output-format=simple', `--output-directory=${out}`, sample], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    const code = await new Promise((res) => child.on('close', res));
    if (code !== 0 || !existsSync(parentCache)) {
      rmSync(parentCache, { force: true });
      throw new Error(`bundle-cli: the parent's code-cache training run failed (exit ${code}): ${err.slice(0, 300)}`);
    }
    process.stderr.write(`bundle-cli: parent code cache ${(statSync(parentCache).size / 1024).toFixed(0)} KiB\n`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
