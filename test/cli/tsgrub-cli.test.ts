/**
 * tsgrub's command-line contract (pygrub-spec §1): usage errors, messages, streams and exit codes are
 * compared with the real pygrub; then tsgrub's own modes (-l, -n, --isconfig, --offset, --output,
 * --filesystems) and the rule that nothing is left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SHARED } from '../helpers/fixtures.ts';

const TSGRUB = join(ROOT, 'bin/tsgrub');
const PYGRUB = '/usr/lib/xen-4.17/bin/pygrub';
const SAMPLE = join(ROOT, 'examples/sample-guest.img');

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, TERM: 'vt100' };
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

function run(tool: string, args: string[], cwd?: string) {
  const r = spawnSync(tool, args, { env: env(), encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('usage errors: same message, stream and exit status as pygrub', (t) => {
  if (!existsSync(PYGRUB)) return t.skip('real pygrub (xen-utils-4.17) not installed');
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-cli-'));
  try {
    const cases = [
      [],
      ['--help'],
      ['-h'],
      ['-x', SAMPLE],
      ['--out=x', SAMPLE],
      ['--output-format=xml', SAMPLE],
      ['--offset=12k', SAMPLE],
      ['--runas=abc', '-q', SAMPLE],
      ['--runas=1', SAMPLE],
      [`--output-directory=${join(work, 'missing')}`, SAMPLE],
      ['--quiet=1', SAMPLE],
      ['--kernel'],
    ];
    for (const args of cases) {
      const p = run(PYGRUB, args);
      const o = run(TSGRUB, args);
      const norm = (s: string) => s.split(PYGRUB).join('ARGV0').split(TSGRUB).join('ARGV0');
      assert.equal(o.status, p.status, `${args.join(' ')}: status`);
      assert.equal(norm(o.stdout), norm(p.stdout), `${args.join(' ')}: stdout`);
      assert.equal(norm(o.stderr), norm(p.stderr), `${args.join(' ')}: stderr`);
    }
    // -h takes an argument (getopt 'h::'): usage on stderr and exit 0.
    const h = run(TSGRUB, ['-h', 'x', SAMPLE]);
    assert.equal(h.status, 0);
    assert.match(h.stderr, /^Usage: /);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('-l lists every entry with escaped titles; -n copies nothing; neither leaves files', () => {
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-cli-'));
  try {
    const l = run(TSGRUB, ['-l', `--output-directory=${work}`, SAMPLE]);
    assert.equal(l.status, 0, l.stderr);
    assert.equal(l.stdout.match(/^title: /gm)?.length, 2);
    assert.match(l.stdout, /title: Test Linux 6\.1\.0-tsgrub \(recovery\)\n  root: None\n  kernel: \/boot\/vmlinuz-6\.1\.0-tsgrub\n  args: root=\/dev\/xvda1 ro single\n  initrd: \/boot\/initrd\.img-6\.1\.0-tsgrub\n/);
    const n = run(TSGRUB, ['-n', '-q', `--output-directory=${work}`, SAMPLE]);
    assert.equal(n.status, 0, n.stderr);
    assert.equal(n.stdout, "linux (kernel None)(args 'root=/dev/xvda1 ro console=hvc0')");
    const n2 = run(TSGRUB, ['-n', '-q', '--kernel=/nope', `--output-directory=${work}`, SAMPLE]);
    assert.equal(n2.status, 1);
    assert.match(n2.stderr, /The requested kernel file does not exist/);
    assert.deepEqual(readdirSync(work), []);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('--isconfig parses every config format (pygrub: GRUB 2 only)', () => {
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-cli-'));
  try {
    const menu = join(work, 'menu.lst');
    writeFileSync(menu, 'default 1\ntitle a\n kernel /a ro\ntitle b\n kernel /vmlinuz-b root=/dev/xvda1\n initrd /initrd-b\n');
    const r = run(TSGRUB, ['--isconfig', `--output-directory=${work}`, menu]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '  kernel: /vmlinuz-b\n  initrd: /initrd-b\n  args: root=/dev/xvda1\n');
    const ext = join(work, 'extlinux.conf');
    writeFileSync(ext, 'DEFAULT x\nLABEL x\n KERNEL /k\n APPEND initrd=/i quiet\n');
    const e = run(TSGRUB, ['--isconfig', ext]);
    assert.equal(e.stdout, '  kernel: /k\n  initrd: /i\n  args: quiet\n');
    const fedora = join(SHARED, 'conformance/pygrub-examples/fedora-19.grub2');
    if (existsSync(fedora)) {
      const f = run(TSGRUB, ['--isconfig', '--entry=1', fedora]);
      assert.equal(f.status, 0);
      assert.match(f.stdout, /^  kernel: \/vmlinuz-0-rescue-/);
    }
    assert.deepEqual(readdirSync(work).sort(), ['extlinux.conf', 'menu.lst']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('--offset reads the filesystem at a byte offset; --filesystems restricts the drivers', () => {
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-cli-'));
  try {
    const ok = run(TSGRUB, ['-q', '-n', '--offset=1048576', SAMPLE]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /args 'root=\/dev\/xvda1 ro console=hvc0'/);
    const bad = run(TSGRUB, ['-q', '-n', '--offset=512', SAMPLE]);
    assert.equal(bad.status, 1);
    const allow = run(TSGRUB, ['-q', '-n', '--filesystems=ext,fat', SAMPLE]);
    assert.equal(allow.status, 0, allow.stderr);
    const deny = run(TSGRUB, ['-q', '-n', '--filesystems=xfs', SAMPLE]);
    assert.equal(deny.status, 1);
    assert.match(deny.stderr, /no known filesystem/);
    const unknown = run(TSGRUB, ['-q', '-n', '--filesystems=ntfs', SAMPLE]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /unknown filesystem ntfs/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('--output is opened as pygrub does: must exist, written once, not truncated', () => {
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-cli-'));
  try {
    const out = join(work, 'out');
    mkdirSync(out);
    const missing = run(TSGRUB, ['-q', `--output=${join(work, 'nofile')}`, `--output-directory=${out}`, SAMPLE]);
    assert.equal(missing.status, 1);
    assert.deepEqual(readdirSync(out), [], 'no temp files after the failed open');
    const res = join(work, 'result');
    writeFileSync(res, 'X'.repeat(400));
    const r = run(TSGRUB, ['-q', '--output-format=simple0', `--output=${res}`, `--output-directory=${out}`, SAMPLE]);
    assert.equal(r.status, 0, r.stderr);
    const data = readFileSync(res, 'latin1');
    assert.match(data, /^kernel \/.*\0ramdisk \/.*\0args root=\/dev\/xvda1 ro console=hvc0\0\0X+$/);
    assert.equal(data.length, 400, 'the old tail stays, as with pygrub (libxl truncates the file itself)');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
