/**
 * pygrub's own example configs (shared/conformance/pygrub-examples): the same harness that produced
 * EXPECTED.tsv with the real pygrub is run with PYGRUB=bin/tsgrub, on images it builds the same way
 * (mke2fs, sfdisk, mkfs.vfat, genisoimage, mkfs.xfs). Every row where pygrub succeeded must select the
 * same kernel, ramdisk and args; rows where it failed are either the same failure or one of the
 * documented improvements (docs/compatibility.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool, PYTHON, ROOT, SHARED } from '../helpers/fixtures.ts';

const EXAMPLES = join(SHARED, 'conformance/pygrub-examples');

type Row = { example: string; layout: string; cfg: string; extra: string; rc: string; kernel: string; ramdisk: string; args: string; note: string };

function load(path: string): Map<string, Row> {
  const rows = new Map<string, Row>();
  const lines = readFileSync(path, 'utf8').split('\n').slice(1);
  for (const l of lines) {
    if (!l) continue;
    const [example = '', layout = '', cfg = '', extra = '', rc = '', kernel = '', ramdisk = '', args = '', note = ''] = l.split('\t');
    rows.set(`${example}|${layout}|${extra}`, { example, layout, cfg, extra, rc, kernel, ramdisk, args, note });
  }
  return rows;
}

/** pygrub failures we turn into boots, with the reason (docs/compatibility.md). */
function improvement(r: Row): string | null {
  if (r.extra.startsWith('(none: interactive')) return 'no tty: boot the default instead of failing';
  if (r.example.startsWith('alpine') && r.layout === 'rootfs-boot-dir') return 'extlinux paths relative to the config directory, as syslinux resolves them';
  if (r.example.startsWith('fedora-16') && (r.extra === '--entry=2' || r.extra === '--entry=3')) return 'GRUB 2 multiboot (Xen) entries boot their first module as the PV kernel';
  if (r.example.startsWith('rhel-7') && r.layout === 'bootpart-xfs') return 'XFS v5 is read';
  return null;
}

test('tsgrub selects what the real pygrub selects on every example that pygrub boots', { timeout: 600_000 }, (t) => {
  if (!existsSync(join(EXAMPLES, 'EXPECTED.tsv'))) return t.skip('../shared/conformance is absent');
  for (const tool of ['mke2fs', 'sfdisk', 'mkfs.vfat', 'mcopy', 'genisoimage', 'mkfs.xfs']) if (!hasTool(tool)) return t.skip(`${tool} not installed`);
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-conformance-'));
  try {
    const tsv = join(work, 'ours.tsv');
    const env: NodeJS.ProcessEnv = { ...process.env, PYGRUB: join(ROOT, 'bin/tsgrub'), WORKDIR: join(work, 'w'), TSV: tsv };
    delete env.NODE_EXTRA_CA_CERTS;
    const r = spawnSync(PYTHON, [join(EXAMPLES, 'run_examples.py')], { env, encoding: 'utf8', timeout: 540_000, maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, `harness failed: ${r.stderr.slice(-2000)}`);
    const expected = load(join(EXAMPLES, 'EXPECTED.tsv'));
    const ours = load(tsv);
    let matched = 0;
    let improved = 0;
    let sameFailure = 0;
    for (const [key, e] of expected) {
      const o = ours.get(key);
      assert.ok(o, `row ${key} missing from our run`);
      assert.doesNotMatch(o.note, /stray/, `${key}: tsgrub left temp files behind: ${o.note}`);
      if (e.rc === '0') {
        assert.deepEqual([o.rc, o.kernel, o.ramdisk, o.args], [e.rc, e.kernel, e.ramdisk, e.args], key);
        matched++;
      } else if (o.rc === '0') {
        assert.ok(improvement(e), `${key}: pygrub fails, we boot ${o.kernel}: not a documented improvement`);
        improved++;
      } else {
        sameFailure++;
      }
    }
    t.diagnostic(`${matched} rows match pygrub, ${improved} documented improvements, ${sameFailure} same failures`);
    assert.equal(matched, [...expected.values()].filter((e) => e.rc === '0').length);
    assert.ok(matched >= 71);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
