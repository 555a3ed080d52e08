/**
 * The hostile-image suite through the real CLI (threat-model.md §1.4, §4.1, §4.2 C). Each case is a
 * real image (mke2fs -d of a small boot tree, or a committed fixture) patched into a hostile shape,
 * written to a temp file, and run through `bin/tsgrub -q --output-format=simple0`. For EVERY case we
 * assert the §4.1 contract: ends in seconds, exit 0 with the right bytes or exit 1 with one clear line
 * (no raw control bytes, no stack trace, no "internal error"), no stray file in the output directory,
 * bounded peak RSS, nothing written outside it (cwd, HOME, TMPDIR stay empty; the image is unchanged).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { hasTool, manifest, ROOT } from '../helpers/fixtures.ts';
import {
  buildExt4, copyFixture, debugfs, ebrChain, findVtoc, gptBackupAt, grubCfg, INITRD, KERNEL, KERNEL2, patchFile,
  patchGptHeader, patchKernelExtents, patchVtocNparts, readAt, sha, SHADOW, STD_ENTRY, tempDir, type TreeSpec,
} from './images.ts';

const TSGRUB = join(ROOT, 'bin/tsgrub');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
/** threat-model §4.1: 10 s for images ≤ 64 MiB (generous: CI runs tests two at a time). */
const MAX_MS = 10_000;
/** threat-model §4.1: worker peak RSS ≤ 320 MiB. */
const MAX_RSS_KIB = 320 * 1024;
const BAD_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const HAVE_TOOLS = hasTool('mke2fs') && hasTool('debugfs');
const WORK = tempDir('hostile-cli');
let counter = 0;

interface CliRun {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  rssKiB: number | null;
  out: Buffer;
  outDir: string;
  files: string[];
}

/** Runs tsgrub on `img` in a fresh sandbox of directories and checks the invariants common to all runs. */
function runCli(img: string, opts: { args?: string[]; env?: Record<string, string>; format?: string; list?: boolean } = {}): CliRun {
  const n = counter++;
  const box = join(WORK, `run${n}`);
  const outDir = join(box, 'out');
  const cwd = join(box, 'cwd');
  const home = join(box, 'home');
  const tmp = join(box, 'tmp');
  for (const d of [outDir, cwd, home, tmp]) spawnSync('mkdir', ['-p', d]);
  const outFile = join(box, 'result');
  writeFileSync(outFile, '');
  const timeFile = join(box, 'time');
  const imgSha = sha(readFileSync(img));
  const argv = opts.list
    ? ['-l', `--output-directory=${outDir}`, ...(opts.args ?? []), img]
    : ['-q', `--output-format=${opts.format ?? 'simple0'}`, `--output=${outFile}`, `--output-directory=${outDir}`, ...(opts.args ?? []), img];
  const [cmd, args] = TIME ? [TIME, ['-f', '%M', '-o', timeFile, TSGRUB, ...argv]] : [TSGRUB, argv];
  const t0 = Date.now();
  const r = spawnSync(cmd, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: tmp, ...(opts.env ?? {}) },
    timeout: 30_000,
    maxBuffer: 16 << 20,
  });
  const ms = Date.now() - t0;
  const rss = TIME && existsSync(timeFile) ? Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop()) : null;
  const run: CliRun = {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout.toString('utf8'),
    stderr: r.stderr.toString('utf8'),
    ms,
    rssKiB: Number.isFinite(rss) ? rss : null,
    out: readFileSync(outFile),
    outDir,
    files: readdirSync(outDir).map((f) => join(outDir, f)),
  };
  const where = `${img}: status ${r.status} signal ${r.signal} stderr ${JSON.stringify(run.stderr.slice(0, 400))}`;
  assert.equal(r.error, undefined, `spawn failed or timed out: ${where}`);
  assert.equal(r.signal, null, `killed by a signal: ${where}`);
  assert.ok(ms < MAX_MS, `took ${ms} ms: ${where}`);
  if (run.rssKiB !== null) assert.ok(run.rssKiB <= MAX_RSS_KIB, `peak RSS ${run.rssKiB} KiB: ${where}`);
  for (const d of [cwd, home, tmp]) assert.deepEqual(readdirSync(d), [], `something was written to ${d}`);
  assert.equal(sha(readFileSync(img)), imgSha, 'the image was modified');
  for (const [name, s] of [['stderr', run.stderr], ['stdout', run.stdout]] as const) {
    assert.ok(!BAD_CHARS.test(s), `raw control/bidi character on ${name}: ${JSON.stringify(s.slice(0, 400))}`);
    assert.ok(!/^\s+at .*:\d+:\d+\)?$/m.test(s), `stack trace on ${name}: ${s.slice(0, 400)}`);
    assert.ok(!/internal error|worker failed|Uncaught|TypeError|RangeError/.test(s), `crash on ${name}: ${s.slice(0, 400)}`);
  }
  return run;
}

/** Exit 0: the simple0 records are well framed, the files in D are exactly the reported ones. */
function parseSuccess(run: CliRun): { kernel: Buffer; ramdisk: Buffer | null; args: string | null } {
  assert.equal(run.status, 0, `expected success, got ${run.status}: ${run.stderr}`);
  const text = run.out.toString('utf8');
  assert.ok(text.endsWith('\0\0'), `simple0 output ends with an empty record: ${JSON.stringify(text)}`);
  const recs = text.slice(0, -2).split('\0');
  const map = new Map<string, string>();
  for (const r of recs) {
    const m = /^(kernel|ramdisk|args) ([^]*)$/.exec(r);
    assert.ok(m, `unexpected simple0 record ${JSON.stringify(r)}`);
    assert.ok(!map.has(m[1] as string), `duplicate record ${m[1]}`);
    map.set(m[1] as string, m[2] as string);
  }
  const kernel = map.get('kernel');
  assert.ok(kernel, 'kernel record');
  const ramdisk = map.get('ramdisk') ?? null;
  const reported = [kernel, ...(ramdisk ? [ramdisk] : [])].sort();
  for (const p of reported) assert.ok(p.startsWith(`${run.outDir}/`), `output ${p} outside the output directory`);
  assert.deepEqual(run.files.sort(), reported, 'files in the output directory are exactly the reported ones');
  return { kernel: readFileSync(kernel), ramdisk: ramdisk ? readFileSync(ramdisk) : null, args: map.get('args') ?? null };
}

/** Exit 1 with one `tsgrub: …` line (plus indented per-partition detail), nothing left behind. */
function assertFailure(run: CliRun, pattern: RegExp): void {
  assert.equal(run.status, 1, `expected failure, got ${run.status}; stderr ${run.stderr}`);
  assert.deepEqual(run.files, [], 'no stray file in the output directory after a failure');
  assert.equal(run.out.length, 0, 'nothing written to --output after a failure');
  const top = run.stderr.split('\n').filter((l) => l && !l.startsWith('  ') && !l.startsWith('WARNING:') && !l.startsWith('Using <class'));
  assert.equal(top.length, 1, `one error line: ${JSON.stringify(run.stderr)}`);
  assert.match(top[0] as string, /^tsgrub: /);
  assert.match(run.stderr, pattern);
}

function ext4(spec: TreeSpec, size = '8M'): string {
  return buildExt4(WORK, `img${counter++}`, spec, size);
}

const STD_OK = (run: CliRun) => {
  const r = parseSuccess(run);
  assert.equal(sha(r.kernel), sha(KERNEL));
  assert.equal(sha(r.ramdisk ?? Buffer.alloc(0)), sha(INITRD));
  return r;
};

describe('hostile images through bin/tsgrub', { skip: !HAVE_TOOLS && 'mke2fs/debugfs not installed' }, () => {
  test('baseline: a clean image boots with the right bytes', () => {
    const r = STD_OK(runCli(ext4({})));
    assert.equal(r.args, 'root=/dev/xvda1 ro');
  });

  test('self-referencing extent index on the kernel is Corrupt, not the disk head (repro 1.4-1)', () => {
    const img = ext4({});
    patchKernelExtents(img, '/boot/vmlinuz', 1, 1, true);
    // The oracle libext2fs would return the disk's first bytes: make sure that is not what happens.
    assertFailure(runCli(img), /Error opening \/boot\/vmlinuz in guest|corrupt ext\.Extent/);
    assert.match(runCli(img).stderr, /corrupt ext\.Extent(Loop|Depth|Index)/);
  });

  test('a bad extent leaf found after the copy has begun: the plan is dropped, one error, no file left', () => {
    // The ramdisk in 1,200 one-block fragments between holes: four extent leaves under an index in
    // its inode. The worker sends the runs of the first leaves, and the parent copies along them,
    // before it reads the last leaf, whose header is then broken.
    const cfg = grubCfg("menuentry 'Fragments' {\n\tlinux /boot/vmlinuz root=/dev/xvda1 ro\n\tinitrd /boot/frag.img\n}\n");
    const img = ext4({ config: cfg, files: { 'boot/frag.img': { sparse: 1200 * 8192, every: 8192 } } }, '32M');
    const leaves = [...debugfs(img, 'ex /boot/frag.img').matchAll(/^\s*0\/\s*1\s+\d+\/\s*\d+\s+\d+ -\s*\d+\s+(\d+)\s/gm)].map((m) => Number(m[1]));
    assert.equal(leaves.length, 4, 'an index over four leaves');
    const clean = runCli(img);
    assert.equal(clean.status, 0, clean.stderr);
    patchFile(img, (leaves[3] as number) * 4096, new Uint8Array([0xde, 0xad]));
    assertFailure(runCli(img), /ext\.ExtentHeader|bad magic/);
    // The same failure with the trace on: the parent had the ramdisk's first runs (its copy had begun).
    const traced = runCli(img, { env: { TSGRUB_TRACE: '1' } });
    assert.equal(traced.status, 1);
    assert.deepEqual(traced.files, []);
    assert.match(traced.stderr, /ramdisk first runs/);
    assert.doesNotMatch(traced.stderr, /spawning the worker/);
  });

  test('an extent tree deeper than its header says is Corrupt (ExtentDepth)', () => {
    const img = ext4({});
    patchKernelExtents(img, '/boot/vmlinuz', 1, 2, false);
    assertFailure(runCli(img), /corrupt ext\.ExtentDepth/);
  });

  test('a directory that contains itself: lookups through it end typed or succeed, never loop', () => {
    const img = ext4({ config: grubCfg("menuentry 'self' {\n linux /boot/self/self/self/self/vmlinuz\n initrd /boot/initrd.img\n}\n") });
    debugfs(img, 'ln /boot /boot/self', true);
    assert.match(debugfs(img, 'ls -l /boot'), /self/);
    const run = runCli(img);
    if (run.status === 0) STD_OK(run);
    else assertFailure(run, /DirectoryLoop|loop|Corrupt|corrupt/i);
  });

  test('a symlink loop on the kernel path is TooManySymlinks (repro 1.4-6: no leftover temp files)', () => {
    const img = ext4({ noKernel: true, symlinks: { 'boot/vmlinuz': 'loopB', 'boot/loopB': 'loopA', 'boot/loopA': 'loopB' } });
    assertFailure(runCli(img), /too many levels of symbolic links/);
  });

  test('GPT claiming 0xFFFFFFFF entries (both headers, entry size 128 and 40): bounded, typed (repro 1.4-3)', () => {
    const expect = manifest().get('boot/vmlinuz-6.1.0-tsgrub');
    for (const size of [128, 40]) {
      const img = copyFixture(WORK, 'gpt');
      const backup = gptBackupAt(img);
      patchGptHeader(img, 512, 0xffffffff, size);
      patchGptHeader(img, backup, 0xffffffff, size);
      const run = runCli(img);
      if (run.status === 0) assert.equal(sha(parseSuccess(run).kernel), expect);
      else assertFailure(run, /gpt|partition|filesystem|NumberOfPartitionEntries/i);
    }
  });

  test('an EBR chain that loops (last EBR → first, and an EBR → itself) stops; the fs is still found', () => {
    const expect = manifest().get('boot/vmlinuz-6.1.0-tsgrub');
    for (const target of ['first', 'self'] as const) {
      const img = copyFixture(WORK, 'mbr-logical');
      const chain = ebrChain(img);
      assert.ok(chain.length >= 3, `EBR chain ${chain}`);
      const last = chain[chain.length - 1] as number;
      const extStart = (chain[0] as number) / 512;
      const to = target === 'first' ? extStart : last / 512;
      // Entry 2 of the EBR = link {type 5, start relative to the extended partition}.
      const e = readAt(img, last + 446 + 16, 16);
      const dv = new DataView(e.buffer);
      e[4] = 0x05;
      dv.setUint32(8, to - extStart, true);
      dv.setUint32(12, 2, true);
      patchFile(img, last + 446 + 16, e);
      const run = runCli(img);
      if (run.status === 0) assert.equal(sha(parseSuccess(run).kernel), expect);
      else assertFailure(run, /EBR|partition|filesystem/i);
    }
  });

  test('a Solaris VTOC declaring 300 slices is refused, bounded', () => {
    const img = copyFixture(WORK, 'vtoc');
    patchVtocNparts(img, findVtoc(img), 300);
    const run = runCli(img);
    if (run.status === 0) assert.equal(sha(parseSuccess(run).kernel), manifest().get('boot/vmlinuz-6.1.0-tsgrub'));
    else assertFailure(run, /vtoc|partition|filesystem/i);
  });

  test('a sparse 600 MiB kernel in an 8 MiB image stops at the 256 MiB cap, and at 16 MiB with PYGRUB_MAX_FILE_SIZE_MB (repro 1.4-2)', () => {
    const img = ext4({ noKernel: true, files: { 'boot/vmlinuz': { sparse: 600 << 20 } } });
    assert.ok(statSync(img).size <= 8 << 20);
    assertFailure(runCli(img), /limit fileBytes exceeded/);
    const r16 = runCli(img, { env: { PYGRUB_MAX_FILE_SIZE_MB: '16' } });
    assertFailure(r16, /limit fileBytes exceeded/);
    // And a 20 MiB sparse kernel passes the default cap but not a 16 MiB one: the cap is what stops it.
    const img20 = ext4({ noKernel: true, files: { 'boot/vmlinuz': { sparse: 20 << 20, head: KERNEL } } });
    const ok = parseSuccess(runCli(img20));
    assert.equal(ok.kernel.length, 20 << 20);
    assert.equal(sha(ok.kernel.subarray(0, KERNEL.length)), sha(KERNEL));
    assert.ok(ok.kernel.subarray(KERNEL.length).every((x) => x === 0), 'holes read as zeros');
    assertFailure(runCli(img20, { env: { PYGRUB_MAX_FILE_SIZE_MB: '16' } }), /limit fileBytes exceeded/);
  });

  test('a 64 KiB menuentry line (the pygrub ReDoS shape) ends fast (repro 1.4-4)', () => {
    for (const n of [30_000, 40_000]) {
      const img = ext4({ config: `menuentry "${"' ".repeat(n)}\n${STD_ENTRY}` });
      const run = runCli(img);
      if (run.status === 0) STD_OK(run);
      else assertFailure(run, /line|config|Config|quote|syntax/i);
    }
  });

  test('titles with ESC/OSC/CSI/C1/bidi/NUL: -l output is escaped (repro 1.4-5), -q boots', () => {
    const evil = 'T\u001b]0;owned\u0007\u001b[2J\u009b31m\u202eevil\u0000nul';
    const img = ext4({ config: grubCfg(`menuentry '${evil}' {\n linux /boot/vmlinuz root=/dev/xvda1 ro\n initrd /boot/initrd.img\n}\n`) });
    const list = runCli(img, { list: true });
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(list.files, [], '-l creates no files');
    assert.match(list.stdout, /\\x1B\]0;owned\\x07\\x1B\[2J/, `the title is listed, escaped: ${JSON.stringify(list.stdout)}`);
    STD_OK(runCli(img));
  });

  test('args with NUL: simple0 refuses to frame them (XSA-198); newline args: simple refuses', () => {
    const nul = ext4({ config: grubCfg("menuentry 'n' {\n linux /boot/vmlinuz root=/dev/xvda1 x\u0000kernel /etc/shadow\n initrd /boot/initrd.img\n}\n") });
    const r0 = runCli(nul);
    if (r0.status === 0) {
      // Only acceptable if the NUL never reached the args (e.g. the parser dropped it).
      const r = STD_OK(r0);
      assert.ok(!r.args?.includes('\0'));
    } else {
      assertFailure(r0, /delimiter|NUL|config|Config/i);
    }
    const nl = ext4({ config: grubCfg("menuentry 'nl' {\n linux /boot/vmlinuz \"root=/dev/xvda1\nkernel /etc/shadow\"\n initrd /boot/initrd.img\n}\n") });
    const simple = runCli(nl, { format: 'simple' });
    if (simple.status === 0) {
      // The newline did not survive into args: the simple framing must still be exactly 3 records.
      const text = simple.out.toString('utf8');
      assert.equal(text.split('\n').filter((l) => /^kernel /.test(l)).length, 1, text);
      assert.ok(!/^kernel \/etc\/shadow/m.test(text), text);
    } else {
      assertFailure(simple, /delimiter/);
    }
    const z = runCli(nl);
    if (z.status === 0) {
      const r = STD_OK(z);
      assert.ok(!r.args?.includes('\0'));
    } else assertFailure(z, /./);
  });

  test('__proto__ / constructor as config keys do nothing special', () => {
    const cfg = 'set __proto__=x\nset constructor=y\nset toString=z\nset hasOwnProperty=1\nset prototype=2\n' +
      "menuentry '__proto__' --id constructor {\n set __proto__=1\n linux /boot/vmlinuz root=/dev/xvda1 ro\n initrd /boot/initrd.img\n}\n";
    STD_OK(runCli(ext4({ config: cfg })));
    const cfg2 = `set default=__proto__\n${cfg}`;
    STD_OK(runCli(ext4({ config: cfg2 })));
  });

  test('default= huge, negative, not a number, 40 KiB: boots one of the entries', () => {
    const entries = `${STD_ENTRY}menuentry 'Other' {\n linux /boot/vmlinuz-other\n initrd /boot/initrd.img\n}\n`;
    for (const d of ['99999999999999999999999999', '-1', '-99999999999', 'abc', '1e400', '0x10', '', '"a>b>c"', `"${'a>'.repeat(20_000)}"`]) {
      const run = runCli(ext4({ config: `set default=${d}\n${grubCfg(entries)}` }));
      const r = parseSuccess(run);
      assert.ok([sha(KERNEL), sha(KERNEL2)].includes(sha(r.kernel)), `default=${d.slice(0, 30)}`);
    }
  });

  test('a 1 GiB sparse config: only the first MiB is read, bounded', () => {
    const head = new TextEncoder().encode(grubCfg(STD_ENTRY));
    const img = ext4({ config: null, files: { 'boot/grub/grub.cfg': { sparse: 1 << 30, head } } }, '16M');
    const run = runCli(img);
    // The zeros after the text form one 1 MiB "line": LineTooLong is the expected typed refusal.
    if (run.status === 0) STD_OK(run);
    else assertFailure(run, /LineTooLong|config|Config|limit/i);
    // 2 MiB of real text after the entry: the entry in the first MiB still boots.
    const big = `${grubCfg(STD_ENTRY)}${'# filler filler filler filler filler filler filler filler\n'.repeat(40_000)}`;
    assert.ok(big.length > 2 << 20);
    STD_OK(runCli(ext4({ config: big }, '16M')));
  });

  test('a kernel path of 8 KiB (one long name, and many components) is refused typed', () => {
    for (const p of [`/boot/${'a'.repeat(8192)}`, `/boot${'/x'.repeat(4096)}`]) {
      const img = ext4({ config: grubCfg(`menuentry 'long' {\n linux ${p}\n}\n`) });
      assertFailure(runCli(img), /Error opening|too long|no such file|limit|NotFound|name/i);
    }
  });

  test('../../../../etc/shadow as kernel path resolves inside the image only', () => {
    for (const p of ['/../../../../etc/shadow', '/boot/../../../../../etc/shadow']) {
      const img = ext4({ config: grubCfg(`menuentry 'shadow' {\n linux ${p}\n}\n`) });
      const r = parseSuccess(runCli(img));
      assert.equal(sha(r.kernel), sha(SHADOW), 'the guest file, not the host one');
      assert.equal(r.ramdisk, null);
    }
  });

  // BUG-1 (found by the fuzzer): every nesting level re-lexed the whole file; now the bytes parsed
  // through source/configfile share one budget of twice the one-file cap.
  test('a grub.cfg of 30,000 `source /boot/grub/grub.cfg` lines ends typed, in seconds, in bounded memory', () => {
    const img = ext4({ config: `${'source /boot/grub/grub.cfg\n'.repeat(30_000)}${STD_ENTRY}` });
    const run = runCli(img);
    if (run.status === 0) STD_OK(run);
    else assertFailure(run, /limit|config|Config/i);
  });
});
