/**
 * How tsgrub starts (bench/README.md, "Startup"): the worker and the parent run their single-file
 * bundles with the V8 code caches the build trained (the worker's under its flags); a cache from
 * another build, or one V8 rejects, is never used and the boot is the same; TSGRUB_TRACE reports every
 * phase in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.ts';
import { WORKER_V8_FLAGS, workerPermissionFlags } from '../../src/cli/worker-flags.ts';

const TSGRUB = join(ROOT, 'bin/tsgrub');
const SAMPLE = join(ROOT, 'examples/sample-guest.img');
const CLI = join(ROOT, 'dist/cli');

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

function traced(cmd: string[], out: string): { marks: Array<{ at: number; label: string }>; stderr: string } {
  const [bin, ...args] = cmd as [string, ...string[]];
  const before = Number(process.hrtime.bigint()) / 1e6;
  const r = spawnSync(bin, [...args, '-q', `--output-directory=${out}`, SAMPLE], { env: env({ TSGRUB_TRACE: '1' }), encoding: 'utf8' });
  const after = Number(process.hrtime.bigint()) / 1e6;
  assert.equal(r.status, 0, r.stderr);
  const marks = [...r.stderr.matchAll(/^tsgrub trace:\s+(-?[\d.]+) ms {2}(.+)$/gm)].map((m) => ({ at: Number(m[1]), label: m[2] as string }));
  for (let i = 1; i < marks.length; i++) assert.ok((marks[i] as { at: number }).at >= (marks[i - 1] as { at: number }).at - 0.5, `${marks[i]?.label} before ${marks[i - 1]?.label}`);
  // Where the marks' 0 is on the monotonic clock every process shares (the bench places the launch
  // before it and the exit after the last mark): after the spawn, and every mark before the end.
  const origin = /^tsgrub trace: clock origin: ([\d.]+) ms monotonic$/m.exec(r.stderr);
  assert.ok(origin, r.stderr);
  assert.ok(Number(origin[1]) > before && Number(origin[1]) + (marks.at(-1) as { at: number }).at < after, `origin ${origin[1]} outside ${before}..${after}`);
  // The counters: every read that reached the image (the worker's and, prestarted, the parent's copy),
  // against the bytes copied.
  const reads = /^tsgrub trace: image reads: (\d+) calls, (\d+) bytes, ([\d.]+) per byte copied$/m.exec(r.stderr);
  assert.ok(reads, r.stderr);
  const copied = readdirSync(out).reduce((n, f) => n + statSync(join(out, f)).size, 0);
  assert.ok(copied > 0 && Number(reads[2]) >= copied, `${reads[2]} bytes read for ${copied} copied`);
  assert.ok(Math.abs(Number(reads[3]) - Number(reads[2]) / copied) < 1e-3);
  // A rejected cache (build and run disagree on V8 flags or Node version) would silently cost every boot.
  assert.ok(marks.some((m) => m.label === 'worker code loaded (code cache accepted)'), r.stderr);
  assert.ok(marks.some((m) => m.label === 'parent code loaded (code cache accepted)'), r.stderr);
  return { marks, stderr: r.stderr };
}

test('TSGRUB_TRACE reports every phase in order, and the worker started from the trained code cache', () => {
  const out = mkdtempSync(join(tmpdir(), 'tsgrub-trace-'));
  try {
    // A worker the parent spawns: one phase after the other (the two copies run at the same time:
    // their marks come in either order).
    const spawned = traced([process.execPath, join(ROOT, 'bin/tsgrub-main.cjs')], out).marks.map((m) => m.label.replace(/ \(.*\)$/, ''));
    assert.deepEqual(
      [...spawned.slice(0, 6), ...spawned.slice(6, 8).sort(), ...spawned.slice(8)],
      ['parent code loaded', 'spawning the worker', 'worker process started', 'worker code loaded', 'disk opened', 'config parsed, entry chosen', 'kernel copied', 'ramdisk copied', 'worker reported', 'worker exited'],
    );
    for (const f of readdirSync(out)) rmSync(join(out, f));
    // bin/tsgrub's prestarted worker: it starts before the parent has loaded its code, and plans
    // while the parent copies, so only these orders are fixed.
    const pre = traced([TSGRUB], out).marks.map((m) => m.label.replace(/ \(.*\)$/, ''));
    const before = (a: string, b: string) => assert.ok(pre.indexOf(a) >= 0 && pre.indexOf(a) < pre.indexOf(b), `${a} before ${b}: ${pre.join(' | ')}`);
    before('worker process started', 'parent code loaded');
    for (const [a, b] of [
      ['worker process started', 'worker code loaded'], ['worker code loaded', 'request received'], ['parent code loaded', 'starting the prestarted worker'],
      ['starting the prestarted worker', 'request received'], ['request received', 'disk opened'], ['disk opened', 'config parsed, entry chosen'],
      ['config parsed, entry chosen', 'ramdisk planned'], ['ramdisk planned', 'kernel planned'], ['kernel planned', 'kernel copied'],
      ['ramdisk planned', 'ramdisk copied'], ['kernel planned', 'worker reported'], ['ramdisk copied', 'worker exited'],
    ] as const) before(a, b);
    assert.ok(!pre.includes('spawning the worker'), pre.join(' | '));
    // Without TSGRUB_TRACE, nothing of it.
    const q = spawnSync(TSGRUB, ['-q', `--output-directory=${out}`, SAMPLE], { env: env(), encoding: 'utf8' });
    assert.equal(q.status, 0, q.stderr);
    assert.doesNotMatch(q.stderr, /trace/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

/** Runs a copy of the worker (worker-main.cjs + bundle + the given cache) as the parent does, without copying. */
async function runWorkerCopy(cache: Buffer | null): Promise<{ code: number | null; reply: Record<string, unknown> | null; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-cache-'));
  try {
    copyFileSync(join(CLI, 'worker-main.cjs'), join(dir, 'worker-main.cjs'));
    copyFileSync(join(CLI, 'load-bundle.cjs'), join(dir, 'load-bundle.cjs'));
    copyFileSync(join(CLI, 'worker.bundle.cjs'), join(dir, 'worker.bundle.cjs'));
    if (cache) writeFileSync(join(dir, 'worker.codecache'), cache);
    const image = openSync(SAMPLE, 'r');
    try {
      const req = { args: '', listEntries: false, notReally: true, interactive: false, limits: {}, trace: true };
      const child = spawn(process.execPath, [...workerPermissionFlags(dir), ...WORKER_V8_FLAGS, '--no-warnings', join(dir, 'worker-main.cjs'), JSON.stringify(req)], {
        stdio: ['ignore', 'ignore', 'pipe', image, 'ignore', 'ignore', 'pipe'],
        env: {},
        cwd: '/',
      });
      let reply = '';
      let stderr = '';
      (child.stdio as unknown as NodeJS.ReadableStream[])[6]?.on('data', (b: Buffer) => (reply += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
      const code = await new Promise<number | null>((res) => child.on('close', res));
      const line = reply.split('\n')[0] ?? '';
      return { code, reply: line ? (JSON.parse(line) as Record<string, unknown>) : null, stderr };
    } finally {
      closeSync(image);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function cacheStatus(reply: Record<string, unknown> | null): string | undefined {
  const trace = (reply?.trace ?? []) as Array<[string, number]>;
  return /\(code cache (\w+)\)/.exec(trace.map((t) => t[0]).join('\n'))?.[1];
}

test('the worker never uses a code cache of another build, survives one V8 rejects, and runs without one', async () => {
  assert.ok(existsSync(join(CLI, 'worker.codecache')), 'the build trains dist/cli/worker.codecache');
  const good = readFileSync(join(CLI, 'worker.codecache'));
  const build = /^\/\/ tsgrub-build ([0-9a-f]{32})\n/.exec(readFileSync(join(CLI, 'worker.bundle.cjs'), 'utf8'))?.[1];
  assert.ok(build, 'the bundle names its build on its first line');
  assert.equal(good.subarray(0, 32).toString('latin1'), build);

  const ok = await runWorkerCopy(good);
  assert.equal(ok.reply?.type, 'result', ok.stderr);
  assert.equal(cacheStatus(ok.reply), 'accepted');

  // Another build's cache (right V8 data, wrong build id): not even offered to V8.
  const other = Buffer.concat([Buffer.from('f'.repeat(32), 'latin1'), good.subarray(32)]);
  const foreign = await runWorkerCopy(other);
  assert.equal(foreign.reply?.type, 'result', foreign.stderr);
  assert.equal(cacheStatus(foreign.reply), 'absent');

  // This build's id on bytes V8 cannot use: V8 rejects them and compiles the source.
  const junk = Buffer.concat([Buffer.from(build, 'latin1'), Buffer.alloc(4096, 0x5a)]);
  const rejected = await runWorkerCopy(junk);
  assert.equal(rejected.reply?.type, 'result', rejected.stderr);
  assert.equal(cacheStatus(rejected.reply), 'rejected');

  const none = await runWorkerCopy(null);
  assert.equal(none.reply?.type, 'result', none.stderr);
  assert.equal(cacheStatus(none.reply), 'absent');
  // Same verdict whatever the cache.
  for (const r of [foreign, rejected, none]) assert.equal(r.reply?.args, ok.reply?.args);
});

/** A copy of the package's parent (bin/ and dist/cli/) with the given parent cache, booting the sample. */
function runParentCopy(cache: Buffer | null): { status: number | null; cache: string | undefined; record: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-pcache-'));
  try {
    for (const d of ['bin', 'dist/cli', 'out']) mkdirSync(join(dir, d), { recursive: true });
    for (const f of ['tsgrub-main.cjs', 'package.json']) copyFileSync(join(ROOT, 'bin', f), join(dir, 'bin', f));
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    for (const f of readdirSync(CLI)) if (f !== 'tsgrub.codecache' && statSync(join(CLI, f)).isFile()) copyFileSync(join(CLI, f), join(dir, 'dist/cli', f));
    if (cache) writeFileSync(join(dir, 'dist/cli/tsgrub.codecache'), cache);
    const r = spawnSync(process.execPath, [join(dir, 'bin/tsgrub-main.cjs'), '-q', '--output-format=simple', `--output-directory=${join(dir, 'out')}`, SAMPLE], {
      env: env({ TSGRUB_TRACE: '1' }),
      encoding: 'utf8',
    });
    // The record without the (random) names of the copied files: their sizes instead.
    const record = r.stdout.replace(/^(kernel|ramdisk) (\S+)$/gm, (_m, k: string, f: string) => `${k} ${statSync(f).size}`);
    return { status: r.status, cache: /parent code loaded \(code cache (\w+)\)/.exec(r.stderr)?.[1], record, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the parent uses the code cache of its own build only, survives one V8 rejects, and runs without one', () => {
  assert.ok(existsSync(join(CLI, 'tsgrub.codecache')), 'the build trains dist/cli/tsgrub.codecache');
  const good = readFileSync(join(CLI, 'tsgrub.codecache'));
  const build = /^\/\/ tsgrub-build ([0-9a-f]{32})\n/.exec(readFileSync(join(CLI, 'tsgrub.bundle.cjs'), 'utf8'))?.[1];
  assert.ok(build, 'the parent bundle names its build on its first line');
  assert.equal(good.subarray(0, 32).toString('latin1'), build);
  const ok = runParentCopy(good);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.cache, 'accepted');
  assert.match(ok.record, /^kernel \d+$/m);
  const foreign = runParentCopy(Buffer.concat([Buffer.from('f'.repeat(32), 'latin1'), good.subarray(32)]));
  const rejected = runParentCopy(Buffer.concat([Buffer.from(build, 'latin1'), Buffer.alloc(4096, 0x5a)]));
  const none = runParentCopy(null);
  for (const [r, want] of [[foreign, 'absent'], [rejected, 'rejected'], [none, 'absent']] as const) {
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.cache, want);
    assert.equal(r.record, ok.record, 'the same boot whatever the cache');
  }
});

test('the parent writes a code cache only to its own package (it runs as root: no file anywhere else)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-pcache-'));
  try {
    const elsewhere = join(dir, 'cache');
    const r = spawnSync(TSGRUB, ['-q', `--output-directory=${dir}`, SAMPLE], { env: env({ TSGRUB_WRITE_PARENT_CODE_CACHE: elsewhere }), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(elsewhere), 'nothing written outside the package');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the build leaves only the bundles, the loader, the cache and tsc output in dist/cli', () => {
  const names = readdirSync(CLI);
  for (const f of ['worker-main.cjs', 'load-bundle.cjs', 'worker.bundle.cjs', 'worker.codecache', 'tsgrub.bundle.cjs', 'tsgrub.codecache', 'fsimage.bundle.cjs']) assert.ok(names.includes(f), f);
  assert.ok(!names.includes('tsgrub.bundle.js'), 'the ESM bundle of earlier builds is removed');
});
