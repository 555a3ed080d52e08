/**
 * Solaris guests through the real CLI (pygrub-spec §5, §6; fs-images.md §1.7, §3.3): VTOC + Solaris UFS
 * and VTOC + ZFS, booted from a Solaris GRUB menu.lst and with no config at all (pygrub's sniff), the
 * old-Solaris 0x82 partition type with a VTOC, and a plain Linux swap 0x82 partition that must be skipped.
 *
 * Expected values come from outside our code:
 *  - kernel/ramdisk bytes: test/fixtures/solaris.sha256, the checksums of the files scripts/fixtures/solaris.sh
 *    put into the images, and libxenfsimage (Debian xen-utils-4.17) reading the same paths at the slice offset;
 *  - args: the rule of pygrub-spec §5, written out below from the spec (plus the spec's own tested example),
 *    and the ZFS boot string as libxenfsimage's `getbootstring` reports it;
 *  - Debian's real pygrub (no Solaris sniff): identical records on the Linux layouts (vtoc, mbr-swap-linux)
 *    and identical kernel/ramdisk bytes with --kernel/--ramdisk on the Solaris ones;
 *  - upstream pygrub with the sniff (stable-4.17, run against Debian's xenfsimage) when TSGRUB_UPSTREAM_PYGRUB
 *    names it: identical records for every no-config case.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, PYTHON, ROOT, fixture, manifest } from '../helpers/fixtures.ts';

const TSGRUB = join(ROOT, 'bin/tsgrub');
const FSIMAGE = join(ROOT, 'bin/fsimage');
const PYGRUB = '/usr/lib/xen-4.17/bin/pygrub';
const XENPY = '/usr/lib/xen-4.17/lib/python';
const UPSTREAM = process.env.TSGRUB_UPSTREAM_PYGRUB;

const K64 = '/platform/i86xpv/kernel/amd64/unix';
const R64 = '/platform/i86pc/amd64/boot_archive';
const K32 = '/platform/i86xpv/kernel/unix';
const R32 = '/platform/i86pc/boot_archive';
const SPEC_ARGS = 'root=/dev/dsk/c0t0d0s0 -k -v ip=1.2.3.4 /platform/i86xpv/kernel/amd64/unix';

const have = (name: string) => existsSync(join(FIXTURES, `${name}.img.gz`));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** `<sha256>  <image>:<path>` lines written by scripts/fixtures/solaris.sh. */
function sums(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(join(FIXTURES, 'solaris.sha256'), 'utf8').split('\n')) if (line) m.set(line.slice(66), line.slice(0, 64));
  return m;
}
function sumOf(image: string, path: string): string {
  const s = sums().get(`${image}:${path.replace(/^\//, '')}`);
  assert.ok(s, `no checksum recorded for ${image}:${path}`);
  return s;
}

/** Python's str.split() separators (str.isspace), which upstream's sniff_solaris splits --args on. */
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/**
 * pygrub-spec §5, sniff_solaris: no args → the kernel path; otherwise every `root=`/`ip=` word + " ",
 * then " " + kernel + " ", then every other word + " " (words equal to the kernel path dropped).
 */
function specSolarisArgs(kernel: string, args: string): string {
  if (!args) return kernel;
  let xen = '';
  let user = '';
  for (const w of args.split(PY_SPACE).filter((x) => x !== '')) {
    if (w.startsWith('root=') || w.startsWith('ip=')) xen += `${w} `;
    else if (w !== kernel) user += `${w} `;
  }
  return `${xen} ${kernel} ${user}`;
}

/** pygrub-spec §5 final step: only for non-empty args, replace every zfs-bootfs=… or append " -B <bs>". */
function specBootstring(args: string, bs: string): string {
  if (!args) return args;
  const re = /zfs-bootfs=[\w\-.:@/]+/g;
  return re.test(args) ? args.replace(re, () => bs) : `${args} -B ${bs}`;
}

interface Record {
  rc: number | null;
  stderr: string;
  kernel: string | null;
  ramdisk: string | null;
  args: string | null;
  files: number;
}

/** Runs a pygrub-compatible tool with the simple output format; returns the record with file checksums. */
function boot(tool: string, img: string, args: string[]): Record {
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-solaris-'));
  try {
    const outdir = join(work, 'out');
    const outfile = join(work, 'result');
    spawnSync('mkdir', [outdir]);
    writeFileSync(outfile, '');
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'vt100' };
    const r = spawnSync(tool, ['-q', '--output-format=simple', `--output=${outfile}`, `--output-directory=${outdir}`, ...args, img], { env, encoding: 'utf8', timeout: 60_000 });
    const text = readFileSync(outfile, 'utf8');
    const field = (k: string): string | null => {
      const line = text.split('\n').find((l) => l.startsWith(`${k} `));
      return line === undefined ? null : line.slice(k.length + 1);
    };
    const file = (k: string): string | null => {
      const p = field(k);
      return p === null ? null : sha(readFileSync(p));
    };
    return { rc: r.status, stderr: r.stderr, kernel: file('kernel'), ramdisk: file('ramdisk'), args: field('args'), files: readdirSync(outdir).length };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function tsgrub(img: string, args: string[] = []): Record {
  const r = boot(TSGRUB, img, args);
  assert.equal(r.rc, 0, `tsgrub ${args.join(' ')} failed: ${r.stderr}`);
  return r;
}

function fsimage(args: string[]): string {
  const r = spawnSync(FSIMAGE, args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `fsimage ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Byte offset of partition `path` ("1s0") as `fsimage probe --json` reports it. */
function partStart(img: string, path: string): number {
  const j = JSON.parse(fsimage(['probe', '--json', img])) as { partitions: Array<{ path: string; start: number }> };
  const p = j.partitions.find((x) => x.path === path);
  assert.ok(p, `no partition ${path}`);
  return p.start;
}

/** libxenfsimage at `offset` with `options`: sha256 of each path and the boot string, or a skip reason. */
function xenfsimage(img: string, offset: number, options: string, paths: string[]): { shas: string[]; bootstring: string } | string {
  if (!existsSync(XENPY)) return 'libxenfsimage (xen-utils-4.17) not installed';
  const script = `import sys, hashlib; sys.path.insert(1, ${JSON.stringify(XENPY)}); import xenfsimage
fs = xenfsimage.open(sys.argv[1], int(sys.argv[2]), sys.argv[3])
for p in sys.argv[4:]:
    print(hashlib.sha256(fs.open_file(p).read(1 << 22, 0)).hexdigest())
print(xenfsimage.getbootstring(fs))`;
  const r = spawnSync(PYTHON, ['-c', script, img, String(offset), options, ...paths], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return `xenfsimage failed: ${r.stderr}`;
  const lines = r.stdout.trimEnd().split('\n');
  return { shas: lines.slice(0, paths.length), bootstring: lines[paths.length] ?? '' };
}

function assertFiles(r: Record, image: string, kernel: string, ramdisk: string): void {
  assert.equal(r.kernel, sumOf(image, kernel), `${image}: kernel bytes of ${kernel}`);
  assert.equal(r.ramdisk, sumOf(image, ramdisk), `${image}: ramdisk bytes of ${ramdisk}`);
  assert.equal(r.files, 2);
}

/** The same record from upstream pygrub (with the sniff) when TSGRUB_UPSTREAM_PYGRUB names it. */
function upstreamAgrees(t: { skip(msg: string): void; diagnostic(msg: string): void }, img: string, variants: string[][]): void {
  if (!UPSTREAM || !existsSync(UPSTREAM)) {
    t.skip('upstream pygrub with sniff_solaris not available (set TSGRUB_UPSTREAM_PYGRUB to xen stable-4.17 tools/pygrub/src/pygrub)');
    return;
  }
  for (const v of variants) {
    const want = boot(UPSTREAM, img, v);
    const got = boot(TSGRUB, img, v);
    assert.equal(want.rc, 0, `upstream pygrub ${v.join(' ')}: ${want.stderr}`);
    assert.deepEqual({ ...got, stderr: '' }, { ...want, stderr: '' }, `upstream pygrub ${v.join(' ')}`);
  }
  t.diagnostic(`${variants.length} argument vectors identical to upstream pygrub`);
}

const ARG_VARIANTS = ['-v', 'ip=1.2.3.4', '  root=/dev/dsk/c0t0d0s0    -k   ', `-k ${K64} ${K32} -m verbose`, SPEC_ARGS];

// ------------------------------------------------------------------------------------------- UFS
describe('VTOC + Solaris UFS', { skip: !have('vtoc-ufs-solaris') && 'vtoc-ufs-solaris fixture not built' }, () => {
  it('menu.lst entry 0: kernel$/module$ with $ISADIR boot the amd64 pair, args = the kernel path', () => {
    const img = fixture('vtoc-ufs-solaris');
    const r = tsgrub(img);
    assertFiles(r, 'vtoc-ufs-solaris', K64, R64);
    assert.equal(r.args, specSolarisArgs(K64, ''));
    assert.equal(r.args, K64);
  });

  it('--entry=1 picks the 32-bit entry; its `-k` and --args go through the sniff rewrite', () => {
    const img = fixture('vtoc-ufs-solaris');
    const r = tsgrub(img, ['--entry=1']);
    assertFiles(r, 'vtoc-ufs-solaris', K32, R32);
    assert.equal(r.args, specSolarisArgs(K32, '-k'));
    assert.equal(r.args, ` ${K32} -k `);
    // Entry args first, then --args (pygrub-spec §3.10), then the Solaris rewrite.
    const r2 = tsgrub(img, ['--entry=1', '--args=root=/dev/dsk/c0t0d0s0 -v']);
    assert.equal(r2.args, specSolarisArgs(K32, '-k root=/dev/dsk/c0t0d0s0 -v'));
  });

  it('--args on a menu.lst entry: the spec example', () => {
    const r = tsgrub(fixture('vtoc-ufs-solaris'), [`--args=${SPEC_ARGS}`]);
    assertFiles(r, 'vtoc-ufs-solaris', K64, R64);
    assert.equal(r.args, 'root=/dev/dsk/c0t0d0s0 ip=1.2.3.4  /platform/i86xpv/kernel/amd64/unix -k -v ');
  });

  it('-l lists the Solaris entries with $ISADIR expanded', () => {
    const r = spawnSync(TSGRUB, ['-l', fixture('vtoc-ufs-solaris')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const block = (title: string, k: string, a: string, i: string) => `title: ${title}\n  root: None\n  kernel: ${k}\n  args: ${a}\n  initrd: ${i}\n`;
    assert.equal(r.stdout, block('Solaris 10 xVM (64-bit)', K64, 'None', R64) + block('Solaris 10 xVM (32-bit, kmdb)', K32, '-k', R32));
  });

  it('fsimage reads slice 1s0 (probe, ls, cat) as libxenfsimage does', (t) => {
    const img = fixture('vtoc-ufs-solaris');
    assert.match(fsimage(['probe', img]), /^1s0 .*Solaris root\s+ufs1/m);
    assert.deepEqual(fsimage(['ls', img, '-p', '1s0', '/']).split(/\s+/).filter(Boolean).sort(), ['boot', 'etc', 'platform']);
    assert.deepEqual(fsimage(['ls', img, '-p', '1s0', '/platform/i86xpv/kernel']).split(/\s+/).filter(Boolean).sort(), ['amd64', 'unix']);
    const off = partStart(img, '1s0');
    assert.equal(off, (2048 + 1008) * 512, 'VTOC s0 starts one cylinder into the 0xBF partition');
    const x = xenfsimage(img, off, '', [K64, R64, K32, R32, '/boot/grub/menu.lst']);
    if (typeof x === 'string') return t.skip(x);
    assert.deepEqual(x.shas, [K64, R64, K32, R32, '/boot/grub/menu.lst'].map((p) => sumOf('vtoc-ufs-solaris', p)));
    assert.equal(x.bootstring, 'None', 'the ufs plugin has no boot string');
  });

  it('Debian pygrub (no sniff, no Solaris GRUB) copies the same bytes with --kernel/--ramdisk', (t) => {
    if (!existsSync(PYGRUB)) return t.skip('real pygrub (xen-utils-4.17) not installed');
    const img = fixture('vtoc-ufs-solaris');
    for (const [k, i] of [[K64, R64], [K32, R32]] as const) {
      const v = [`--kernel=${k}`, `--ramdisk=${i}`];
      const want = boot(PYGRUB, img, v);
      assert.equal(want.rc, 0, want.stderr);
      const got = tsgrub(img, v);
      assert.equal(got.kernel, want.kernel);
      assert.equal(got.ramdisk, want.ramdisk);
      // Upstream's sniff rewrites the args also with --kernel (Debian dropped it): empty --args → the kernel path.
      assert.equal(want.args, null);
      assert.equal(got.args, specSolarisArgs(k, ''));
    }
  });
});

describe('VTOC + Solaris UFS, no config: the Solaris sniff', { skip: !have('vtoc-ufs-noconfig') && 'vtoc-ufs-noconfig fixture not built' }, () => {
  it('boots the amd64 pair with the kernel path as args', () => {
    const img = fixture('vtoc-ufs-noconfig');
    assert.equal(spawnSync(FSIMAGE, ['cat', img, '-p', '1s0', '/boot/grub/menu.lst']).status !== 0, true, 'no menu.lst in this image');
    const r = tsgrub(img);
    assertFiles(r, 'vtoc-ufs-noconfig', K64, R64);
    assert.equal(r.args, '/platform/i86xpv/kernel/amd64/unix');
  });

  it('--args is rebuilt as upstream pygrub does (the spec example, and the rule)', () => {
    const img = fixture('vtoc-ufs-noconfig');
    const r = tsgrub(img, [`--args=${SPEC_ARGS}`]);
    assertFiles(r, 'vtoc-ufs-noconfig', K64, R64);
    assert.equal(r.args, 'root=/dev/dsk/c0t0d0s0 ip=1.2.3.4  /platform/i86xpv/kernel/amd64/unix -k -v ');
    for (const a of ARG_VARIANTS) assert.equal(tsgrub(img, [`--args=${a}`]).args, specSolarisArgs(K64, a), a);
  });

  it('--args words are split on any whitespace, as Python str.split()', () => {
    const a = 'root=/dev/dsk/c0t0d0s0\t-k\f-v';
    assert.equal(tsgrub(fixture('vtoc-ufs-noconfig'), [`--args=${a}`]).args, specSolarisArgs(K64, a));
  });

  it('--kernel/--ramdisk also get the rewrite', () => {
    const r = tsgrub(fixture('vtoc-ufs-noconfig'), [`--kernel=${K32}`, `--ramdisk=${R32}`, '--args=-k ip=10.0.0.2']);
    assertFiles(r, 'vtoc-ufs-noconfig', K32, R32);
    assert.equal(r.args, specSolarisArgs(K32, '-k ip=10.0.0.2'));
  });

  it('identical to upstream pygrub', (t) => {
    upstreamAgrees(t, fixture('vtoc-ufs-noconfig'), [[], ...ARG_VARIANTS.map((a) => [`--args=${a}`]), [`--kernel=${K32}`, `--ramdisk=${R32}`, '--args=-k']]);
  });
});

// ------------------------------------------------------------------------------------------- 0x82
describe('0x82 partitions: old-Solaris VTOC and Linux swap', () => {
  it('vtoc82-solaris: the swap p1 is skipped, p2 (0x82 + VTOC) s0 is sniffed: 32-bit pair', { skip: !have('vtoc82-solaris') && 'fixture not built' }, () => {
    const img = fixture('vtoc82-solaris');
    const probe = JSON.parse(fsimage(['probe', '--json', img])) as { partitions: Array<{ path: string; type: string | null; filesystem: { type: string } | null; error: unknown }> };
    const byPath = new Map(probe.partitions.map((p) => [p.path, p]));
    assert.equal(byPath.get('1')?.type, '0x82');
    assert.equal(byPath.get('1')?.filesystem, null);
    assert.equal(byPath.get('2')?.type, '0x82');
    assert.equal(byPath.get('2s0')?.filesystem?.type, 'ufs1');
    assert.ok(![...byPath.keys()].some((p) => p.startsWith('1s')), 'no slices inside the Linux swap');
    const r = tsgrub(img);
    assertFiles(r, 'vtoc82-solaris', K32, R32);
    assert.equal(r.args, K32);
    assert.doesNotMatch(r.stderr, /error|warn|partition 1/i, 'the swap partition is skipped silently');
    assert.equal(tsgrub(img, [`--args=${SPEC_ARGS}`]).args, specSolarisArgs(K32, SPEC_ARGS));
  });

  it('vtoc82-solaris: Debian pygrub finds the same slice (same bytes with --kernel/--ramdisk)', { skip: !have('vtoc82-solaris') && 'fixture not built' }, (t) => {
    if (!existsSync(PYGRUB)) return t.skip('real pygrub (xen-utils-4.17) not installed');
    const img = fixture('vtoc82-solaris');
    const v = [`--kernel=${K32}`, `--ramdisk=${R32}`];
    const want = boot(PYGRUB, img, v);
    assert.equal(want.rc, 0, want.stderr);
    const got = tsgrub(img, v);
    assert.equal(got.kernel, want.kernel);
    assert.equal(got.ramdisk, want.ramdisk);
    assert.equal(got.kernel, sumOf('vtoc82-solaris', K32));
  });

  it('vtoc82-solaris: identical to upstream pygrub', { skip: !have('vtoc82-solaris') && 'fixture not built' }, (t) => {
    upstreamAgrees(t, fixture('vtoc82-solaris'), [[], [`--args=${SPEC_ARGS}`]]);
  });

  it('mbr-swap-linux: Linux swap p1 skipped without error, p2 boots; records identical to Debian pygrub', { skip: !have('mbr-swap-linux') && 'fixture not built' }, (t) => {
    const img = fixture('mbr-swap-linux');
    const r = tsgrub(img);
    assert.equal(r.kernel, sumOf('mbr-swap-linux', '/boot/vmlinuz-6.1.0-tsgrub'));
    assert.equal(r.ramdisk, sumOf('mbr-swap-linux', '/boot/initrd.img-6.1.0-tsgrub'));
    assert.equal(r.args, 'root=/dev/xvda2 ro console=hvc0');
    assert.doesNotMatch(r.stderr, /error|warn|partition 1/i, 'the swap partition is skipped silently');
    if (!existsSync(PYGRUB)) return t.skip('real pygrub (xen-utils-4.17) not installed');
    for (const v of [[], ['--entry=1'], ['--args=extra=1'], ['--entry=Linux after swap (single)']]) {
      const want = boot(PYGRUB, img, v);
      assert.equal(want.rc, 0, want.stderr);
      assert.deepEqual({ ...tsgrub(img, v), stderr: '' }, { ...want, stderr: '' }, v.join(' '));
    }
  });

  it('vtoc (0xBF + VTOC, ext4 in s0): records identical to Debian pygrub', { skip: !have('vtoc') && 'fixture not built' }, (t) => {
    const img = fixture('vtoc');
    const r = tsgrub(img);
    const m = manifest();
    assert.equal(r.kernel, m.get('boot/vmlinuz-6.1.0-tsgrub'));
    assert.equal(r.ramdisk, m.get('boot/initrd.img-6.1.0-tsgrub'));
    if (!existsSync(PYGRUB)) return t.skip('real pygrub (xen-utils-4.17) not installed');
    for (const v of [[], ['--entry=1'], ['--args=console=hvc0 extra=1']]) {
      const want = boot(PYGRUB, img, v);
      assert.equal(want.rc, 0, want.stderr);
      assert.deepEqual({ ...tsgrub(img, v), stderr: '' }, { ...want, stderr: '' }, v.join(' '));
    }
  });
});

// ------------------------------------------------------------------------------------------- ZFS
const DATASET = 'fstestpool/ROOT/fstest';

/**
 * The boot string libxenfsimage builds for `options` on the image's s0, or a skip reason. The zfs plugin
 * builds it when a file is opened (fsi_bootstring_alloc), so the kernel is always opened first.
 */
function zfsBootstring(img: string, options: string, paths: string[]): { shas: string[]; bootstring: string } | string {
  const x = xenfsimage(img, partStart(img, '1s0'), options, [K64, ...paths]);
  if (typeof x !== 'string') x.shas.shift();
  if (typeof x !== 'string') assert.match(x.bootstring, /^zfs-bootfs=fstestpool\/[0-9]+,bootpath=''$/);
  return x;
}

describe('VTOC + ZFS with menu.lst (vtoc-zfs)', { skip: !have('vtoc-zfs') && 'vtoc-zfs fixture not built' }, () => {
  it('boots the bootfs entry: kernel/archive from the bootfs dataset, -B <getbootstring> appended', (t) => {
    const img = fixture('vtoc-zfs');
    const r = tsgrub(img);
    assertFiles(r, 'vtoc-zfs', K64, R64);
    const x = zfsBootstring(img, '', [K64, R64]);
    if (typeof x === 'string') return t.skip(x);
    assert.deepEqual(x.shas, [r.kernel, r.ramdisk]);
    assert.equal(r.args, specBootstring(specSolarisArgs(K64, ''), x.bootstring));
    assert.equal(r.args, `${K64} -B ${x.bootstring}`);
  });

  it('--args=zfs-bootfs=<dataset> selects the dataset and is replaced by the boot string', (t) => {
    const img = fixture('vtoc-zfs');
    const a = `zfs-bootfs=${DATASET}`;
    const r = tsgrub(img, [`--args=${a}`]);
    assertFiles(r, 'vtoc-zfs', K64, R64);
    const x = zfsBootstring(img, DATASET, []);
    if (typeof x === 'string') return t.skip(x);
    assert.equal(r.args, specBootstring(specSolarisArgs(K64, a), x.bootstring));
    assert.equal(r.args, ` ${K64} ${x.bootstring} `);
  });

  it('-l lists the Solaris entry; --entry=0 picks it', () => {
    const img = fixture('vtoc-zfs');
    const r = spawnSync(TSGRUB, ['-l', img], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `title: OpenSolaris (fstest)\n  root: None\n  kernel: ${K64}\n  args: None\n  initrd: ${R64}\n`);
    assertFiles(tsgrub(img, ['--entry=0']), 'vtoc-zfs', K64, R64);
  });

  it('fsimage ls -p 1s0 lists the bootfs dataset, --dataset the pool root', () => {
    const img = fixture('vtoc-zfs');
    assert.deepEqual(fsimage(['ls', img, '-p', '1s0', '/']).split(/\s+/).filter(Boolean).sort(), ['etc', 'platform']);
    assert.deepEqual(fsimage(['ls', img, '-p', '1s0', '--dataset', 'fstestpool', '/boot/grub']).split(/\s+/).filter(Boolean), ['menu.lst']);
  });
});

describe('VTOC + ZFS, no config (vtoc-zfs-noconfig): the Solaris sniff on the bootfs dataset', { skip: !have('vtoc-zfs-noconfig') && 'vtoc-zfs-noconfig fixture not built (needs zfs-fuse)' }, () => {
  it('boots the amd64 pair with `<kernel> -B <getbootstring>`', (t) => {
    const img = fixture('vtoc-zfs-noconfig');
    const r = tsgrub(img);
    assertFiles(r, 'vtoc-zfs-noconfig', K64, R64);
    const x = zfsBootstring(img, '', [K64, R64, K32, R32]);
    if (typeof x === 'string') return t.skip(x);
    assert.deepEqual(x.shas, [K64, R64, K32, R32].map((p) => sumOf('vtoc-zfs-noconfig', p)));
    assert.equal(r.args, `${K64} -B ${x.bootstring}`);
  });

  it('--args: zfs-bootfs=<dataset> replaced, others rebuilt then -B appended', (t) => {
    const img = fixture('vtoc-zfs-noconfig');
    const x = zfsBootstring(img, DATASET, []);
    if (typeof x === 'string') return t.skip(x);
    const r = tsgrub(img, [`--args=zfs-bootfs=${DATASET}`]);
    assertFiles(r, 'vtoc-zfs-noconfig', K64, R64);
    assert.equal(r.args, ` ${K64} ${x.bootstring} `);
    assert.equal(tsgrub(img, [`--args=${SPEC_ARGS}`]).args, `root=/dev/dsk/c0t0d0s0 ip=1.2.3.4  ${K64} -k -v  -B ${x.bootstring}`);
    for (const a of [...ARG_VARIANTS, `-k zfs-bootfs=${DATASET},bootpath=x -v`]) {
      assert.equal(tsgrub(img, [`--args=${a}`]).args, specBootstring(specSolarisArgs(K64, a), x.bootstring), a);
    }
  });

  it('fsimage ls -p 1s0 works', () => {
    const img = fixture('vtoc-zfs-noconfig');
    assert.deepEqual(fsimage(['ls', img, '-p', '1s0', '/platform/i86pc']).split(/\s+/).filter(Boolean).sort(), ['amd64', 'boot_archive']);
  });

  it('identical to upstream pygrub', (t) => {
    upstreamAgrees(t, fixture('vtoc-zfs-noconfig'), [[], [`--args=zfs-bootfs=${DATASET}`], ...ARG_VARIANTS.map((a) => [`--args=${a}`])]);
  });
});
