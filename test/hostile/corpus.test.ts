/**
 * CI wrapper for `npm run robustness` (scripts/robustness.ts): the shared robustness corpus, every
 * image in its own child process with a 10 s timeout and a 320 MiB RSS cap. The run must report no
 * crash, untyped error, timeout or memory overrun. Skips when ../shared/corpus is absent.
 *
 * ROBUSTNESS_ONLY=substring narrows the run (e.g. `e2fsprogs`, `openzfs`) for local iteration.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, SHARED } from '../helpers/fixtures.ts';

const CORPUS = join(SHARED, 'corpus');

test('robustness corpus: no crash, untyped error, timeout or memory overrun', { skip: !existsSync(CORPUS) && `${CORPUS} is absent`, timeout: 20 * 60_000 }, (t) => {
  const only = process.env.ROBUSTNESS_ONLY;
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/robustness.ts'), '--json', '--jobs', '2', ...(only ? ['--only', only] : [])], {
    cwd: ROOT,
    timeout: 19 * 60_000,
    maxBuffer: 64 << 20,
  });
  assert.equal(r.error, undefined, `robustness run failed to finish: ${r.error?.message}`);
  const out = JSON.parse(r.stdout.toString('utf8')) as {
    rows: Array<{ image: string; verdict: string; outcome: string; seconds: number; rssMiB: number | null; drivers: string }>;
    summary: Record<string, number>;
  };
  t.diagnostic(`summary: ${JSON.stringify(out.summary)}`);
  assert.ok(out.summary.images! > 0, 'the corpus yielded images');
  const bad = out.rows.filter((x) => x.verdict !== 'ok');
  assert.deepEqual(bad.map((x) => `${x.image}: ${x.verdict}: ${x.outcome}`), [], 'every corpus image ends with data or a typed error');
  assert.equal(r.status, 0, r.stderr.toString('utf8').slice(-2000));
});
