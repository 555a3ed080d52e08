/**
 * Semantic versioning of the public API: the surface of every package entry is recorded with the
 * version it shipped in (surface.json). A change to the surface fails here until package.json's
 * version says so; then `UPDATE_API_SURFACE=1 node --import tsx --test test/api/surface.test.ts`
 * records the new surface (it refuses when the bump is too small).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.ts';
import { bumpSatisfies, currentSurface, diffSurface, requiredBump } from './surface.ts';

const SNAPSHOT = join(ROOT, 'test/api/surface.json');

test('the public surface changes only with a version bump that says so', () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const snap = JSON.parse(readFileSync(SNAPSHOT, 'utf8')) as { version: string; surface: Record<string, string[]> };
  const now = currentSurface();
  const diff = diffSurface(snap.surface, now);
  const need = requiredBump(diff);
  const ok = bumpSatisfies(snap.version, version, need);
  const detail = [...diff.removed.map((x) => `- ${x}`), ...diff.added.map((x) => `+ ${x}`)].join('\n');
  if (process.env.UPDATE_API_SURFACE === '1') {
    assert.ok(ok, `refusing to record: the change needs a ${need} bump from ${snap.version}, package.json says ${version}\n${detail}`);
    writeFileSync(SNAPSHOT, `${JSON.stringify({ version, surface: now }, null, 2)}\n`);
    return;
  }
  assert.ok(need === 'none' || ok, `the public API changed (needs a ${need} version bump from ${snap.version}; package.json says ${version}):\n${detail}`);
  assert.equal(need, 'none', `the public API changed and the version was bumped to ${version}: record it with UPDATE_API_SURFACE=1\n${detail}`);
});

test('every entry exports the high-level API and the plugin API', () => {
  const now = currentSurface();
  for (const entry of ['.', './browser', './node']) {
    const names = new Set(now[entry]!.map((l) => l.split(/[ ({]/)[1]));
    for (const n of ['openDisk', 'DiskImage', 'FilesystemDriver', 'Volume', 'FsNode', 'TsgrubError', 'Limits', 'fileStream', 'builtinDrivers']) {
      assert.ok(names.has(n), `${entry} exports ${n}`);
    }
  }
});

test('the semver rule', () => {
  assert.equal(requiredBump({ added: [], removed: [] }), 'none');
  assert.equal(requiredBump({ added: ['.: const x'], removed: [] }), 'minor');
  assert.equal(requiredBump({ added: ['.: function f(a, b?)'], removed: ['.: function f(a)'] }), 'major');
  assert.equal(bumpSatisfies('1.2.3', '1.2.3', 'minor'), false);
  assert.equal(bumpSatisfies('1.2.3', '1.2.4', 'minor'), false);
  assert.equal(bumpSatisfies('1.2.3', '1.3.0', 'minor'), true);
  assert.equal(bumpSatisfies('1.2.3', '1.3.0', 'major'), false);
  assert.equal(bumpSatisfies('1.2.3', '2.0.0', 'major'), true);
  assert.equal(bumpSatisfies('0.1.0', '0.1.1', 'minor'), true);
  assert.equal(bumpSatisfies('0.1.0', '0.1.1', 'major'), false);
  assert.equal(bumpSatisfies('0.1.0', '0.2.0', 'major'), true);
  assert.equal(bumpSatisfies('0.1.0', '0.1.0', 'none'), true);
});
