/**
 * dissect.ffs corpus (FreeBSD UFS2 with 32 KiB blocks, and UFS1 symlink edge cases): open, walk
 * everything, read every file and symlink; compare file bytes (also reached through symlinks) with
 * grub-fstest. Read from ../shared, never copied into the repository.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SHARED, hasTool, run, sha256 } from '../../helpers/fixtures.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { dec, openBytes, walk } from './helpers.ts';

const DIR = join(SHARED, 'corpus/dissect.ffs');
const names = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.bin.gz')).sort() : [];

test('dissect.ffs corpus is present', (t) => {
  if (names.length === 0) return t.skip(`${DIR} absent`);
  assert.ok(names.length >= 4);
});

for (const name of names) {
  test(`dissect.ffs/${name}: walk, read, agree with grub-fstest`, async (t) => {
    const bytes = new Uint8Array(gunzipSync(readFileSync(join(DIR, name))));
    const t0 = Date.now();
    const tmp = mkdtempSync(join(tmpdir(), 'tsgrub-ufs-'));
    try {
      const img = join(tmp, 'img');
      writeFileSync(img, bytes);
      const { vfs } = await openBytes(bytes);
      const entries = await walk(vfs);
      const grub = hasTool('grub-fstest');
      const tsk = hasTool('istat');
      let compared = 0;
      let links = 0;
      for (const { path, node } of entries) {
        if (node.kind === 'symlink') {
          const ours = dec.decode(await vfs.readlink(`/${path}`));
          // GRUB 2.06 drops the last byte of these UFS fast symlinks ("../target/t" for a 12-byte
          // "../target/to"), so targets are checked against sleuthkit, whose size agrees with di_size.
          if (tsk) {
            let out = '';
            try {
              out = run('istat', [img, String(node.id)]).toString();
            } catch {
              out = ''; // sleuthkit cannot open this image (UFS2 layout it does not find)
            }
            const m = /^symbolic link to: (.*)$/m.exec(out);
            if (m) {
              assert.equal(ours, m[1], path);
              links++;
            }
          }
          // Resolution through the link ends in a node or a typed error, never anything else.
          try {
            await vfs.stat(`/${path}`);
          } catch (e) {
            assert.ok(isTsgrubError(e), String(e));
          }
        }
        if (node.kind !== 'file') continue;
        const ours = await vfs.readFile(node);
        if (grub) {
          assert.equal(sha256(ours), sha256(run('grub-fstest', [img, 'cat', `/${path}`])), path);
          compared++;
        }
      }
      if (!grub) t.diagnostic('grub-fstest not installed: bytes not compared');
      else assert.ok(compared >= 1, `${compared} files compared`);
      t.diagnostic(`${entries.length} entries, ${compared} files compared with grub-fstest, ${links} symlink targets with istat`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    assert.ok(Date.now() - t0 < 10_000);
  });
}
