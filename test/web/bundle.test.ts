/**
 * Package hygiene, checked with the bundler users will use: the browser entries bundle for
 * platform=browser with no Node built-in reachable, and a bundle that names one driver keeps only
 * that driver (ESM + "sideEffects": false).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.ts';

type Esbuild = typeof import('esbuild');
let esbuild: Esbuild | null = null;
try {
  esbuild = await import('esbuild');
} catch {
  esbuild = null;
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

async function bundle(entry: string): Promise<{ inputs: string[]; errors: string[]; text: string }> {
  const out = mkdtempSync(join(tmpdir(), 'tsgrub-bundle-'));
  try {
    const r = await esbuild!.build({
      absWorkingDir: ROOT,
      entryPoints: [entry],
      outfile: join(out, 'out.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      minify: true,
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
    const output = Object.values(r.metafile.outputs)[0]!;
    const inputs = Object.entries(output.inputs).filter(([, v]) => v.bytesInOutput > 0).map(([k]) => k);
    return { inputs, errors: [], text: r.outputFiles[0]!.text };
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string }> }).errors?.map((x) => x.text) ?? [String(e)];
    return { inputs: [], errors, text: '' };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

for (const entry of ['src/index.ts', 'src/browser/index.ts', 'web/worker.ts', 'web/main.ts']) {
  test(`${entry} bundles for the browser with no Node built-in`, async (t) => {
    if (!esbuild) return t.skip('esbuild not installed');
    const b = await bundle(entry);
    assert.deepEqual(b.errors, []);
    assert.ok(b.inputs.length > 0);
    const builtins = b.inputs.filter((i) => NODE_BUILTINS.has(i) || i.startsWith('node:') || i.startsWith('src/node/') || i.startsWith('src/cli/'));
    assert.deepEqual(builtins, []);
  });
}

test('the Node entry does not bundle for the browser (the check above can fail)', async (t) => {
  if (!esbuild) return t.skip('esbuild not installed');
  const b = await bundle('src/node/index.ts');
  assert.ok(b.errors.some((e) => /node:|built into node/i.test(e)), `expected a Node built-in error, got ${b.errors.join('; ')}`);
});

const DRIVER_DIRS = ['src/fs/ext/', 'src/fs/xfs/', 'src/fs/btrfs/', 'src/fs/ufs/', 'src/fs/iso9660/', 'src/fs/fat/'];

test('a bundle that names only iso9660 keeps no other driver', async (t) => {
  if (!esbuild) return t.skip('esbuild not installed');
  const dir = mkdtempSync(join(ROOT, 'test/web/.tmp-'));
  try {
    const entry = join(dir, 'iso-only.ts');
    writeFileSync(
      entry,
      `import { DiskImage, iso9660 } from '../../../src/index.ts';\nexport const open = (b: Uint8Array) => DiskImage.open(b, { drivers: [iso9660] });\n`,
    );
    const only = await bundle(entry);
    assert.deepEqual(only.errors, []);
    const drivers = DRIVER_DIRS.filter((d) => only.inputs.some((i) => i.startsWith(d)));
    assert.deepEqual(drivers, ['src/fs/iso9660/']);

    // Control: openDisk names every built-in, so all of them are there.
    const allEntry = join(dir, 'all.ts');
    writeFileSync(allEntry, `import { openDisk } from '../../../src/index.ts';\nexport const open = (b: Uint8Array) => openDisk(b);\n`);
    const all = await bundle(allEntry);
    assert.deepEqual(DRIVER_DIRS.filter((d) => all.inputs.some((i) => i.startsWith(d))), DRIVER_DIRS);
    assert.ok(only.text.length < all.text.length * 0.75, `iso-only ${only.text.length} B vs all ${all.text.length} B`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
