/** The sxp/simple/simple0 formats against Python (repr and pygrub's own format functions). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { formatResult } from '../../src/cli/output.ts';
import { pyRepr } from '../../src/cli/pyrepr.ts';
import { hasTool, PYTHON } from '../helpers/fixtures.ts';

const SAMPLES = [
  '', ' ', 'root=/dev/xvda1 ro quiet', "it's", 'say "hi"', `both ' and "`, 'back\\slash', 'tab\there', 'nl\nhere', 'nul\0here',
  '\x1b]0;pwned\x07\x1b[2J', 'café ü 日本', '\u202eevil', '\u0085next', '\u00a0nbsp', '\ud83d\ude00 emoji', 'del\x7f', 'cr\r',
];

function pyReprs(values: string[]): string[] {
  const code = `import json,sys\nprint(json.dumps([repr(s) for s in json.loads(sys.stdin.read())]))`;
  const r = spawnSync(PYTHON, ['-c', code], { input: JSON.stringify(values), encoding: 'utf8' });
  return JSON.parse(r.stdout) as string[];
}

test('pyRepr equals Python 3 repr()', (t) => {
  if (!hasTool('python3')) return t.skip('python3 not installed');
  const want = pyReprs(SAMPLES);
  SAMPLES.forEach((s, i) => assert.equal(pyRepr(s), want[i], `repr(${JSON.stringify(s)})`));
  assert.equal(pyRepr(null), 'None');
});

/** pygrub's format_sxp/format_simple, copied into the test as the oracle would run them. */
function pygrubFormat(cases: Array<[string | null, string | null, string | null, string]>): Array<{ out?: string; error?: string }> {
  const code = `
import json, sys
def format_sxp(kernel, ramdisk, args):
    s = "linux (kernel %s)" % repr(kernel)
    if ramdisk: s += "(ramdisk %s)" % repr(ramdisk)
    if args: s += "(args %s)" % repr(args)
    return s
def format_simple(kernel, ramdisk, args, sep):
    for check in (kernel, ramdisk, args):
        if check is not None and sep in check:
            raise RuntimeError("simple format cannot represent delimiter-containing value")
    s = ("kernel %s" % kernel) + sep
    if ramdisk: s += ("ramdisk %s" % ramdisk) + sep
    if args: s += ("args %s" % args) + sep
    s += sep
    return s
res = []
for k, r, a, f in json.loads(sys.stdin.read()):
    try:
        out = format_sxp(k, r, a) if f == "sxp" else format_simple(k, r, a, "\\n" if f == "simple" else "\\0")
        res.append({"out": out})
    except RuntimeError as e:
        res.append({"error": str(e)})
print(json.dumps(res))
`;
  const r = spawnSync(PYTHON, ['-c', code], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(r.stdout);
}

test('formatResult is byte-identical to pygrub for all three formats', (t) => {
  if (!hasTool('python3')) return t.skip('python3 not installed');
  const kernels = ['/var/run/xen/pygrub/boot_kernel.ab_12xyz', null];
  const ramdisks = ['/x/boot_ramdisk.cd', null, ''];
  const cases: Array<[string | null, string | null, string | null, 'sxp' | 'simple' | 'simple0']> = [];
  for (const fmt of ['sxp', 'simple', 'simple0'] as const)
    for (const k of kernels) for (const r of ramdisks) for (const a of [...SAMPLES, null]) cases.push([k, r, a, fmt]);
  const want = pygrubFormat(cases);
  cases.forEach(([k, r, a, fmt], i) => {
    let got: { out?: string; error?: string };
    try {
      got = { out: formatResult({ kernel: k, ramdisk: r, args: a }, fmt) };
    } catch (e) {
      got = { error: (e as Error).message };
    }
    assert.deepEqual(got, want[i], `${fmt} ${JSON.stringify([k, r, a])}`);
  });
});

test('a guest value can never add a record in simple0 (XSA-198)', () => {
  assert.throws(() => formatResult({ kernel: '/k', ramdisk: null, args: 'ro\0kernel /etc/shadow' }, 'simple0'), /delimiter/);
  assert.throws(() => formatResult({ kernel: '/k', ramdisk: null, args: 'ro\nkernel /etc/shadow' }, 'simple'), /delimiter/);
  const sxp = formatResult({ kernel: '/k', ramdisk: null, args: "x')(kernel '/etc/shadow" }, 'sxp');
  assert.equal(sxp, `linux (kernel '/k')(args "x')(kernel '/etc/shadow")`);
});
