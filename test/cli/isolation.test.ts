/**
 * The confinement of the image parser (threat-model §3.2): the worker runs with Node's permission
 * model (no path may be opened), an empty environment, rlimits from prlimit, and with --runas as an
 * unprivileged uid with no supplementary groups; the parent creates the files and cleans up whatever
 * happens to the worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool, ROOT } from '../helpers/fixtures.ts';

const TSGRUB = join(ROOT, 'bin/tsgrub');
const MAIN = join(ROOT, 'bin/tsgrub-main.cjs');
const SAMPLE = join(ROOT, 'examples/sample-guest.img');
const isRoot = process.getuid?.() === 0;

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

function workdir(): { dir: string; out: string; img: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-iso-'));
  chmodSync(dir, 0o755);
  const out = join(dir, 'out');
  mkdirSync(out);
  const img = join(dir, 'disk.img');
  copyFileSync(SAMPLE, img);
  chmodSync(img, 0o644);
  return { dir, out, img };
}

// bin/tsgrub prestarts the worker (it plans, the parent copies: it may write no file at all);
// bin/tsgrub-main.cjs alone spawns it with the descriptors and the file size cap (prlimit).
for (const mode of ['prestarted', 'spawned'] as const) {
  test(`--runas drops to the uid with no supplementary groups, paths denied, rlimits set; files stay root-owned 0600 (${mode} worker)`, (t) => {
    if (!isRoot) return t.skip('needs root to switch uid');
    const { dir, out, img } = workdir();
    try {
      const argv = ['-q', '--runas=65534', '--debug', '--output-format=simple', `--output-directory=${out}`, img];
      const r = mode === 'prestarted' ? spawnSync(TSGRUB, argv, { env: env(), encoding: 'utf8' }) : spawnSync(process.execPath, [MAIN, ...argv], { env: env(), encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /worker ran as uid 65534 gid 65534 groups \[65534\], path access denied/);
      if (mode === 'prestarted') {
        assert.match(r.stderr, /Max data size 1073741824 1073741824/);
        assert.match(r.stderr, /Max file size 0 0/);
        assert.match(r.stderr, /Max core file size 0 0/);
        assert.match(r.stderr, /Max open files 512 512/);
      } else if (hasTool('prlimit')) {
        assert.match(r.stderr, /Max data size 1073741824 1073741824/);
        assert.match(r.stderr, /Max file size 268439552 268439552/);
        assert.match(r.stderr, /Max core file size 0 0/);
      }
      const files = readdirSync(out);
      assert.equal(files.length, 2);
      for (const f of files) {
        const st = statSync(join(out, f));
        assert.equal(st.uid, 0);
        assert.equal(st.mode & 0o777, 0o600);
      }
      assert.match(r.stdout, /^kernel .*boot_kernel\.[a-z0-9_]{8}\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('without --runas the worker is still confined (permission model, empty environment, rlimits), prestarted or spawned', () => {
  const { dir, out, img } = workdir();
  try {
    // A variable of the caller's must not reach the worker (it gets env {} either way).
    const e = env({ TSGRUB_ISOLATION_MARK: 'from the caller' });
    const argv = ['-q', '--debug', '--output-format=simple', `--output-directory=${out}`, img];
    for (const [cmd, args] of [[TSGRUB, argv], [process.execPath, [MAIN, ...argv]]] as const) {
      for (const f of readdirSync(out)) rmSync(join(out, f));
      const r = spawnSync(cmd, [...args], { env: e, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /path access denied, empty environment;/, `${cmd}: ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--runas needs -q or --entry, as in pygrub', () => {
  const r = spawnSync(TSGRUB, ['--runas=65534', SAMPLE], { env: env(), encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'In order to use --runas, you must also set --entry or -q\n');
  const r2 = spawnSync(TSGRUB, ['--runas=x', '-q', SAMPLE], { env: env(), encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.equal(r2.stdout, 'runas value must be an integer user id\n');
  assert.match(r2.stderr, /^Usage: /);
});

test('a worker that fails makes tsgrub exit non-zero with its error (pygrub exits 0 here) and leaves no file', (t) => {
  const { dir, out } = workdir();
  try {
    const junk = join(dir, 'junk.img');
    writeFileSync(junk, Buffer.alloc(1 << 20, 0x41));
    const args = ['-q', '--output-format=simple0', `--output-directory=${out}`, junk];
    if (isRoot) args.unshift('--runas=65534');
    chmodSync(junk, 0o644);
    const r = spawnSync(TSGRUB, args, { env: env(), encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^tsgrub: Unable to find partition containing kernel\n/);
    assert.deepEqual(readdirSync(out), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A disk whose kernel is a 200 MiB sparse file: copying it takes long enough to interrupt. */
function bigKernelImage(dir: string): string | null {
  if (!hasTool('mke2fs')) return null;
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'boot/grub'), { recursive: true });
  writeFileSync(join(tree, 'boot/grub/grub.cfg'), "menuentry 'big' {\n linux /boot/vmlinuz ro\n}\n");
  writeFileSync(join(tree, 'boot/vmlinuz'), '');
  truncateSync(join(tree, 'boot/vmlinuz'), 200 << 20);
  const img = join(dir, 'big.img');
  const r = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, img, '16M']);
  return r.status === 0 ? img : null;
}

async function interrupt(t: { skip(m: string): void }, target: 'worker' | 'parent'): Promise<void> {
  const { dir, out } = workdir();
  try {
    const img = bigKernelImage(dir);
    if (!img || !hasTool('pgrep')) return t.skip('mke2fs or pgrep not installed');
    const child = spawn(TSGRUB, ['-q', '--output-format=simple', `--output-directory=${out}`, img], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const done = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    // Interrupt as soon as the parent has created its files and a worker exists (the copy itself is
    // too fast to aim at on a sparse kernel). bin/tsgrub's prestarted worker exists from the start,
    // and the parent replaces it with a spawned one when it cannot plan the file (a sparse kernel) or
    // dies before saying anything: kill every worker the parent has, until the parent ends.
    const deadline = Date.now() + 20_000;
    const workers = () => spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    while (readdirSync(out).length < 2 || workers().length === 0) {
      if (Date.now() > deadline) throw new Error('the worker never started');
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(readdirSync(out).length, 2, 'the parent created its two output files before starting the worker');
    let ended = false;
    void done.then(() => (ended = true));
    if (target === 'worker') {
      while (!ended && Date.now() < deadline) {
        for (const p of workers()) {
          try {
            process.kill(Number(p), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await new Promise((r) => setTimeout(r, 1));
      }
    } else child.kill('SIGTERM');
    const code = await done;
    assert.notEqual(code, 0, stderr);
    if (target === 'parent') assert.equal(code, 143);
    assert.deepEqual(readdirSync(out), [], 'no file left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('SIGKILL of the worker: tsgrub fails and removes its files', (t) => interrupt(t, 'worker'));
test('SIGTERM to tsgrub while the worker runs (libxl does this): exit 143, no files left', (t) => interrupt(t, 'parent'));
