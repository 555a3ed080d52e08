/**
 * Native encryption: an encrypted dataset is refused by name (Unsupported), while the pool and its
 * unencrypted datasets stay readable. OpenZFS's own test pool (corpus, cryptv0: dataset cryptv0/testfs
 * created with encryption=on).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { nodeCodecs } from '../../../src/codec/node.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { zfs } from '../../../src/fs/zfs/index.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { hasTool, SHARED } from '../../helpers/fixtures.ts';

const POOL = join(SHARED, 'corpus/openzfs/cryptv0.dat.bz2');

test('an encrypted ZFS dataset is Unsupported, naming native encryption; the root dataset still reads', async (t) => {
  if (!existsSync(POOL)) return t.skip('../shared/corpus/openzfs is absent');
  if (!hasTool('bunzip2')) return t.skip('bunzip2 not installed');
  const bytes = new Uint8Array(execFileSync('bunzip2', ['-c', POOL], { maxBuffer: 256 << 20 }));
  const ctx = createContext({}, nodeCodecs);
  const root = new Vfs(await zfs.open(new MemorySource(bytes), ctx), ctx);
  assert.deepEqual((await root.readdir('/')).map((e) => new TextDecoder().decode(e.name)), ['testfs']);
  let err: unknown;
  try {
    await zfs.open(new MemorySource(bytes), createContext({}, nodeCodecs), { dataset: 'cryptv0/testfs' });
  } catch (e) {
    err = e;
  }
  assert.ok(isTsgrubError(err), String(err));
  assert.equal(err.code, 'Unsupported');
  assert.match(err.message, /cryptv0\/testfs: native encryption/);
});
