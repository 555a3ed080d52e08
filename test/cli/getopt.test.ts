/** gnuGetopt against Python's own getopt.gnu_getopt (pygrub's parser), on many argument vectors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gnuGetopt, GetoptError, pyInt } from '../../src/cli/getopt.ts';
import { hasTool, PYTHON } from '../helpers/fixtures.ts';

const SHORT = 'qilnh::';
const LONG = ['quiet', 'interactive', 'list-entries', 'not-really', 'help', 'output=', 'output-format=', 'output-directory=', 'offset=', 'runas=', 'entry=', 'kernel=', 'ramdisk=', 'args=', 'isconfig', 'debug'];

const VECTORS: string[][] = [
  ['--output=/o', '--output-format=simple0', '--output-directory=/d', '-q', '--entry=1', '/dev/vg/guest'],
  ['/img', '-qn', '--entry', '2', '--args=console=hvc0 root=/dev/xvda1'],
  ['--args=', 'img'],
  ['--', '-img-with-dash'],
  ['--args', '--weird-leading-dash', 'img'],
  ['--ent=1', 'img'],
  ['--out=x', 'img'],
  ['--output-dir=/tmp', 'img'],
  ['--output-f=simple', 'img'],
  ['-h'],
  ['-h', 'foo', 'img'],
  ['-hfoo', 'img'],
  ['-x', 'img'],
  ['--nope', 'img'],
  ['--quiet=1', 'img'],
  ['--kernel'],
  ['img', '-l', '-n', 'extra', '--debug'],
  ['-', 'img'],
  ['--i', 'img'],
  ['--is', 'img'],
  ['--in', 'img'],
  ['--ram=r', '--ker=k', 'img'],
  ['--runas=65534', '-q', 'img'],
  ['-qilnhX', 'img'],
  ['--entry=', 'img'],
  ['img1', 'img2', '--offset', '1048576'],
];

/** Python's verdict on each argument vector, in one interpreter run. */
function python(vectors: string[][]): unknown[] {
  const code = `
import getopt, json, sys
res = []
for argv in json.loads(sys.stdin.read()):
    try:
        o, a = getopt.gnu_getopt(argv, ${JSON.stringify(SHORT)}, ${JSON.stringify(LONG)})
        res.append({"opts": o, "args": a})
    except getopt.GetoptError as e:
        res.append({"error": e.msg})
print(json.dumps(res))
`;
  const r = spawnSync(PYTHON, ['-c', code], { input: JSON.stringify(vectors), encoding: 'utf8' });
  return JSON.parse(r.stdout) as unknown[];
}

function ours(argv: string[]): unknown {
  try {
    const r = gnuGetopt(argv, SHORT, LONG);
    return { opts: r.opts, args: r.args };
  } catch (e) {
    if (e instanceof GetoptError) return { error: e.message };
    throw e;
  }
}

test('gnuGetopt matches Python getopt.gnu_getopt on pygrub argument vectors', (t) => {
  if (!hasTool('python3')) return t.skip('python3 not installed');
  const want = python(VECTORS);
  VECTORS.forEach((v, i) => assert.deepEqual(ours(v), want[i], `argv ${JSON.stringify(v)}`));
});

test('gnuGetopt matches Python on random argument vectors', (t) => {
  if (!hasTool('python3')) return t.skip('python3 not installed');
  const pieces = ['-q', '-n', '-l', '-i', '-h', '-qn', '--e', '--entry', '--entry=3', '--out', '--output', '--output=', '--args', '--args=a b', 'img', '-', '--', 'x', '--isc', '--deb', '--kernel=/k', '--of', '--offset=12', '-z', '--help', '--output-format', 'simple'];
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const vectors = Array.from({ length: 2000 }, () => Array.from({ length: 1 + rand(5) }, () => pieces[rand(pieces.length)] as string));
  const want = python(vectors);
  vectors.forEach((v, i) => assert.deepEqual(ours(v), want[i], `argv ${JSON.stringify(v)}`));
});

test('pyInt follows Python int()', (t) => {
  if (!hasTool('python3')) return t.skip('python3 not installed');
  const inputs = [' 1', '+2', '-3', '1_0', '1__0', '_1', '1_', '0x10', '', ' ', '007', '1.0', '12a', '\t5\n', '99999999999999999999'];
  const code = `
import json, sys
out = []
for s in json.loads(sys.argv[1]):
    try: out.append(int(s))
    except ValueError: out.append(None)
print(json.dumps(out))`;
  const py = JSON.parse(spawnSync(PYTHON, ['-c', code, JSON.stringify(inputs)], { encoding: 'utf8' }).stdout) as (number | null)[];
  inputs.forEach((s, i) => {
    const want = py[i] ?? null;
    // Values beyond 2^53 are not representable: we say null (refuse) where Python has a big int.
    if (want !== null && !Number.isSafeInteger(want)) assert.equal(pyInt(s), null);
    else assert.equal(pyInt(s), want, `int(${JSON.stringify(s)})`);
  });
});
