/**
 * bin/tsgrub's prestarted worker (bin/tsgrub; src/cli/worker.ts, "Prestarted"): started with the
 * parent, it plans each file and the parent copies along the plan. It is used only when the path it
 * was granted is the image the parent opened; a file it cannot plan sends the parent to a spawned
 * worker; and the parent checks every plan before it copies a byte — shown here with a fake worker
 * that lies, started exactly as bin/tsgrub starts the real one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, hasTool, manifest, ROOT } from '../helpers/fixtures.ts';

const TSGRUB = join(ROOT, 'bin/tsgrub');
const MAIN = join(ROOT, 'bin/tsgrub-main.cjs');
const SAMPLE = join(ROOT, 'examples/sample-guest.img');
const isRoot = process.getuid?.() === 0;

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.NODE_EXTRA_CA_CERTS;
  delete e.PYGRUB_MAX_RAM_USAGE_MB;
  return { ...e, TSGRUB_TRACE: '1', ...extra };
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  labels: string[];
  files: string[];
  out: string;
}

function run(cmd: string[], out: string, extraEnv: NodeJS.ProcessEnv = {}): Run {
  mkdirSync(out, { recursive: true });
  const [bin, ...args] = cmd as [string, ...string[]];
  const r = spawnSync(bin, args, { env: env(extraEnv), encoding: 'utf8', timeout: 60_000 });
  const labels = r.stderr
    .split('\n')
    .map((l) => /^tsgrub trace: +[-\d.]+ ms {2}(.*)$/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, labels, files: readdirSync(out).sort(), out };
}

/** The sample image booted by the parent alone (a spawned worker): what every prestarted run must equal. */
function spawnedReference(out: string): Run {
  return run([process.execPath, MAIN, '-q', '--output-format=simple', `--output-directory=${out}`, SAMPLE], out);
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** simple-format record → {kernel, ramdisk, args} with the random file names replaced by their bytes' hash. */
function record(r: Run): Record<string, string> {
  const rec: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) rec[line.slice(0, sp)] = line.slice(sp + 1);
  }
  for (const k of ['kernel', 'ramdisk']) if (rec[k]) rec[k] = sha(rec[k] as string);
  return rec;
}

test('bin/tsgrub uses its prestarted worker: it plans, the parent copies, and the result equals a spawned worker’s', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-pre-'));
  try {
    const argv = ['-q', '--output-format=simple'];
    const pre = run([TSGRUB, ...argv, `--output-directory=${join(dir, 'a')}`, SAMPLE], join(dir, 'a'));
    const spawned = run([process.execPath, MAIN, ...argv, `--output-directory=${join(dir, 'b')}`, SAMPLE], join(dir, 'b'));
    assert.equal(pre.status, 0, pre.stderr);
    assert.equal(spawned.status, 0, spawned.stderr);
    assert.ok(pre.labels.includes('request received'), pre.labels.join(' | '));
    assert.ok(pre.labels.includes('kernel planned') && pre.labels.includes('kernel copied'), pre.labels.join(' | '));
    assert.ok(!pre.labels.includes('spawning the worker'), pre.labels.join(' | '));
    assert.ok(spawned.labels.includes('spawning the worker') && !spawned.labels.includes('request received'), spawned.labels.join(' | '));
    assert.deepEqual(record(pre), record(spawned));
    assert.equal(pre.files.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the granted image may be a symlink or a block device (LVM volumes are both)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-pre-'));
  const loops: string[] = [];
  try {
    const link = join(dir, 'disk');
    symlinkSync(SAMPLE, link);
    const viaLink = run([TSGRUB, '-q', '--output-format=simple', `--output-directory=${join(dir, 'a')}`, link], join(dir, 'a'));
    assert.equal(viaLink.status, 0, viaLink.stderr);
    assert.ok(viaLink.labels.includes('request received') && !viaLink.labels.includes('spawning the worker'), viaLink.labels.join(' | '));
    const reference = spawnedReference(join(dir, 'b'));
    assert.deepEqual(record(viaLink), record(reference));
    if (!isRoot || !hasTool('losetup')) return t.skip('needs root and losetup for the block device');
    const dev = spawnSync('losetup', ['-f', '--show', '-r', SAMPLE], { encoding: 'utf8' });
    if (dev.status !== 0) return t.skip(`losetup: ${dev.stderr.trim()}`);
    loops.push(dev.stdout.trim());
    const blk = join(dir, 'blk');
    symlinkSync(loops[0] as string, blk);
    for (const path of [loops[0] as string, blk]) {
      const r = run([TSGRUB, '-q', '--output-format=simple', `--output-directory=${join(dir, `c${path.length}`)}`, path], join(dir, `c${path.length}`));
      assert.equal(r.status, 0, r.stderr);
      assert.ok(r.labels.includes('request received'), `${path}: ${r.labels.join(' | ')}`);
      assert.deepEqual(record(r), record(reference), path);
    }
  } finally {
    for (const l of loops) spawnSync('losetup', ['-d', l]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a package reached through a symlinked directory (a versioned install) still uses its prestarted worker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-pre-'));
  try {
    // /opt/tsgrub -> /opt/tsgrub-0.4.0: Node loads the worker from its real path, which the worker's
    // read grant must name, or the worker dies at its first read and every boot takes the slow way.
    const pkg = join(dir, 'pkg');
    symlinkSync(ROOT, pkg);
    const r = run([join(pkg, 'bin/tsgrub'), '-q', '--output-format=simple', `--output-directory=${join(dir, 'a')}`, SAMPLE], join(dir, 'a'));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.labels.includes('request received') && !r.labels.includes('spawning the worker'), r.labels.join(' | '));
    assert.deepEqual(record(r), record(spawnedReference(join(dir, 'b'))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file the prestarted worker cannot plan (ZFS: no extent map) is copied by a spawned worker instead', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-pre-'));
  try {
    const r = run([TSGRUB, '-q', '--output-format=simple', `--output-directory=${dir}`, fixture('zfs-lzjb')], dir);
    assert.equal(r.status, 0, r.stderr);
    const at = (l: string) => r.labels.indexOf(l);
    assert.ok(at('starting the prestarted worker') >= 0 && at('starting the prestarted worker') < at('falling back to a spawned worker'), r.labels.join(' | '));
    assert.ok(at('falling back to a spawned worker') < at('spawning the worker'), r.labels.join(' | '));
    const rec = record(r);
    const m = manifest();
    assert.equal(rec.kernel, m.get('boot/vmlinuz-6.1.0-tsgrub'));
    assert.equal(rec.ramdisk, m.get('boot/initrd.img-6.1.0-tsgrub'));
    assert.equal(r.files.length, 2, 'the emptied files were rewritten, not duplicated');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the prestarted worker is not used (and does not outlive tsgrub) when its path is not the image, or other limits are asked for', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-pre-'));
  try {
    // The last argument is the --output file, not the image: bin/tsgrub grants that path, and the
    // parent sees another device/inode than its image's.
    const result = join(dir, 'result');
    writeFileSync(result, '');
    const other = run([TSGRUB, '-q', `--output-directory=${join(dir, 'a')}`, SAMPLE, '--output', result], join(dir, 'a'));
    assert.equal(other.status, 0, other.stderr);
    assert.ok(other.labels.includes('spawning the worker') && !other.labels.includes('request received'), other.labels.join(' | '));
    assert.match(readFileSync(result, 'utf8'), /^linux \(kernel /);
    const left = spawnSync('pgrep', ['-f', `worker-main.cjs --prestarted ${result}`], { encoding: 'utf8' });
    assert.equal(left.stdout.trim(), '', 'the unused prestarted worker was stopped');

    // Node's permission model reads * as a wildcard and commas as separators: such a path would
    // grant more than the image, so it is not granted at all.
    for (const name of ['a*b.img', 'a,b.img']) {
      const odd = join(dir, name);
      copyFileSync(SAMPLE, odd);
      const r = run([TSGRUB, '-q', `--output-directory=${join(dir, `o${name.length}${name[1]}`)}`, odd], join(dir, `o${name.length}${name[1]}`));
      assert.equal(r.status, 0, r.stderr);
      assert.ok(r.labels.includes('spawning the worker') && !r.labels.includes('request received'), `${name}: ${r.labels.join(' | ')}`);
    }

    const ram = run([TSGRUB, '-q', `--output-directory=${join(dir, 'b')}`, SAMPLE], join(dir, 'b'), { PYGRUB_MAX_RAM_USAGE_MB: '2048' });
    assert.equal(ram.status, 0, ram.stderr);
    assert.ok(ram.labels.includes('spawning the worker') && !ram.labels.includes('request received'), ram.labels.join(' | '));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A fake prestarted worker: started by a copy of bin/tsgrub's own coproc line, it reads the parent's
 * start message and answers with the messages given, whatever the image holds.
 */
function withFake(dir: string, messages: unknown[], args: string[], img = SAMPLE): Run {
  const fake = join(dir, 'fake-worker.cjs');
  writeFileSync(
    fake,
    `'use strict';
const fs = require('node:fs');
const b = Buffer.alloc(65536);
let got = '';
while (!got.includes('\\n')) { const n = fs.readSync(3, b, 0, b.length, null); if (!n) process.exit(0); got += b.toString('utf8', 0, n); }
const messages = JSON.parse(process.env.FAKE_MESSAGES);
if (messages === 'die') process.exit(3);
for (const m of messages) fs.writeSync(4, JSON.stringify(m) + '\\n');
for (;;) { const n = fs.readSync(3, b, 0, b.length, null); if (!n) break; }
`,
  );
  const launcher = join(dir, 'launch');
  writeFileSync(
    launcher,
    `#!/bin/bash
coproc W { exec node "$FAKE" 3<&0 4>&1 </dev/null >/dev/null; }
exec node "$MAIN" --as "$0" --prestarted-worker "$W_PID" "$IMG" -- "$@" 3</dev/fd/"\${W[0]}" 4>/dev/fd/"\${W[1]}"
`,
  );
  chmodSync(launcher, 0o755);
  const out = join(dir, `out-${readdirSync(dir).length}`);
  return run([launcher, '-q', '--output-format=simple', `--output-directory=${out}`, ...args, img], out, {
    FAKE: fake,
    MAIN,
    IMG: img,
    FAKE_MESSAGES: JSON.stringify(messages),
  });
}

const result = (kernelBytes: number, ramdiskBytes: number | null) => ({
  type: 'result',
  kernelBytes,
  ramdiskBytes,
  args: 'ro',
  listing: '',
  warnings: [],
  partition: '',
  how: 'fake',
  config: null,
});

function imageBytes(offset: number, length: number): Buffer {
  const fd = openSync(SAMPLE, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

test('the parent copies exactly along a prestarted worker’s plan: data runs from its own image descriptor, holes as zeros', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-fake-'));
  try {
    const r = withFake(dir, [
      { type: 'map', file: 'kernel', size: 6000, runs: [6000, 1024], done: true },
      { type: 'map', file: 'ramdisk', size: 9000, runs: [4096, -1], done: false },
      { type: 'map', file: 'ramdisk', size: 9000, runs: [4904, 70000], done: true },
      result(6000, 9000),
    ], []);
    assert.equal(r.status, 0, r.stderr);
    const rec = Object.fromEntries(r.stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
    assert.deepEqual(readFileSync(rec.kernel as string), imageBytes(1024, 6000));
    assert.deepEqual(readFileSync(rec.ramdisk as string), Buffer.concat([Buffer.alloc(4096), imageBytes(70000, 4904)]));
    assert.equal(rec.args, 'ro');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a prestarted worker’s forged plans are refused before a byte is copied, and nothing is left behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-fake-'));
  const size = statSync(SAMPLE).size;
  const map = (size: number, runs: number[], done = true) => ({ type: 'map', file: 'kernel', size, runs, done });
  const refused = /^tsgrub: the image parser is not believed: /m;
  const cases: Array<[string, unknown[], string[], RegExp]> = [
    ['a run past the end of the image', [map(4096, [4096, size - 100]), result(4096, null)], [], /outside the image/],
    ['runs short of the file', [map(8192, [4096, 0]), result(8192, null)], [], /cover 4096 of 8192 bytes/],
    ['runs past the file', [map(4096, [4096, 0, 10, 0]), result(4096, null)], [], /bad length 10 at file offset 4096/],
    ['a zero-length run', [map(4096, [0, 0, 4096, 0]), result(4096, null)], [], /bad length 0/],
    ['a negative offset', [map(4096, [4096, -2]), result(4096, null)], [], /-2\+4096 is outside the image/],
    ['a fractional length', [map(4096, [4095.5, 0, 0.5, 0]), result(4096, null)], [], /bad length 4095\.5/],
    ['a file over the size cap', [map(2 << 20, [2 << 20, 0]), result(2 << 20, null)], ['--max-file-size=1'], /over the 1048576-byte cap/],
    ['the kernel mapped twice', [map(4096, [4096, 0]), map(4096, [4096, 0]), result(4096, null)], [], /unexpected map of the kernel/],
    ['a map without a file', [{ type: 'map', file: 'initrd', size: 1, runs: [1, 0], done: true }, result(1, null)], [], /malformed worker message/],
    ['a size claimed without a plan', [result(4096, null)], [], /^tsgrub: kernel copy is inconsistent/m],
    ['a map left incomplete', [map(8192, [4096, 0], false), result(8192, null)], [], /^tsgrub: copy failed: a map was left incomplete/m],
    // The copy starts with the first chunk: a bad second one must still fail the run and leave nothing.
    ['a good chunk, then one past the image', [map(8192, [4096, 0], false), map(8192, [4096, size], true), result(8192, null)], [], /outside the image/],
  ];
  try {
    for (const [what, messages, extra, why] of cases) {
      const r = withFake(dir, messages, extra);
      assert.equal(r.status, 1, `${what}: ${r.stderr}`);
      if (why.source.startsWith('^')) assert.match(r.stderr, why, what);
      else {
        assert.match(r.stderr, refused, what);
        assert.match(r.stderr, why, what);
      }
      assert.deepEqual(r.files, [], `${what}: no file left behind`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker’s account of its confinement (--debug) is checked for shape and printed escaped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-fake-'));
  const id = { uid: 0, gid: 0, groups: [0], pathsDenied: true, limits: ['Max data size 1 1 bytes'], envVars: 0 };
  const claim = (identity: unknown) => [{ type: 'map', file: 'kernel', size: 4096, runs: [4096, 0], done: true }, { ...result(4096, null), identity }];
  try {
    for (const [what, identity] of [
      ['groups that are not a list', { ...id, groups: 'x' }],
      ['a uid that is not a number', { ...id, uid: '0' }],
      ['limits that are not strings', { ...id, limits: [{}] }],
      ['too many limits', { ...id, limits: Array.from({ length: 65 }, () => 'x') }],
      ['no identity at all but a string', 'root'],
    ] as Array<[string, unknown]>) {
      const r = withFake(dir, claim(identity), ['--debug']);
      assert.equal(r.status, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /^tsgrub: the image parser is not believed: malformed worker message/m, what);
      assert.deepEqual(r.files, [], `${what}: no file left behind`);
    }
    // Well shaped, but what it says goes to the terminal: control characters escaped.
    const r = withFake(dir, claim({ ...id, limits: ['Max data size \x1b]0;owned\x07 bytes'] }), ['--debug']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stderr.includes('\x1b'), 'no raw escape character on the terminal');
    assert.match(r.stderr, /path access denied, empty environment; Max data size \\x1B\]0;owned\\x07 bytes\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a plan abandoned after its first chunks (unmappable after all) is redone by a spawned worker on emptied files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-fake-'));
  try {
    const r = withFake(dir, [{ type: 'map', file: 'ramdisk', size: 1 << 20, runs: [65536, 0], done: false }, { type: 'unmappable', file: 'ramdisk' }], []);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.labels.includes('falling back to a spawned worker'), r.labels.join(' | '));
    const reference = spawnedReference(join(dir, 'ref'));
    assert.deepEqual(record(r), record(reference));
    assert.equal(r.files.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a prestarted worker that dies before it says anything is replaced by a spawned one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-fake-'));
  try {
    const r = withFake(dir, 'die' as unknown as unknown[], []);
    assert.equal(r.status, 0, r.stderr);
    const at = (l: string) => r.labels.indexOf(l);
    assert.ok(at('starting the prestarted worker') >= 0 && at('starting the prestarted worker') < at('spawning the worker'), r.labels.join(' | '));
    const reference = spawnedReference(join(dir, 'ref'));
    assert.deepEqual(record(r), record(reference));
    assert.equal(r.files.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--runas: a prestarted worker that did not drop to the uid is not believed', (t) => {
  if (!isRoot) return t.skip('needs root (the fake worker then runs as root)');
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-fake-'));
  chmodSync(dir, 0o755);
  try {
    const r = withFake(dir, [{ type: 'map', file: 'kernel', size: 4096, runs: [4096, 0], done: true }, result(4096, null)], ['--runas=65534']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^tsgrub: the image parser is not believed: it does not run as the --runas uid/m);
    assert.deepEqual(r.files, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
