/**
 * The plugin API from the command line: a filesystem driver written outside the package
 * (test/api/tar-driver.ts, a ustar reader) is passed to `fsimage --driver`, probed and read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool, ROOT } from '../helpers/fixtures.ts';

function fsimage(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  // tsx lets the TypeScript driver module load; fsimage itself runs the built package.
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/fsimage'), ...args], { env, encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('fsimage --driver probes and reads with a third-party driver', (t) => {
  if (!hasTool('tar')) return t.skip('tar not installed');
  const work = mkdtempSync(join(tmpdir(), 'fsimage-driver-'));
  try {
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc/hostname'), 'tarhost\n');
    const tar = join(work, 'tree.tar');
    assert.equal(spawnSync('tar', ['--format=ustar', '-C', tree, '-cf', tar, '.']).status, 0);
    const without = fsimage(['probe', '--json', tar]);
    const rows = (JSON.parse(without.stdout) as { partitions: Array<{ filesystem: unknown }> }).partitions;
    assert.ok(rows.every((r) => r.filesystem === null), 'no built-in driver claims a tar file');
    const probe = fsimage(['probe', '--json', '--driver', 'test/api/tar-driver.ts', tar]);
    assert.equal(probe.status, 0, probe.stderr);
    const whole = (JSON.parse(probe.stdout) as { partitions: Array<{ path: string; filesystem: { type: string } | null }> }).partitions.find((r) => r.path === '0');
    assert.equal(whole?.filesystem?.type, 'ustar');
    const cat = fsimage(['cat', '--driver', 'test/api/tar-driver.ts', tar, '/etc/hostname']);
    assert.equal(cat.status, 0, cat.stderr);
    assert.equal(cat.stdout, 'tarhost\n');
    const bad = fsimage(['ls', '--driver', 'test/helpers/fixtures.ts', tar]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /exports no filesystem driver/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
