/**
 * Hostile ReiserFS images, patched in memory from the r5 fixture: each must fail fast with a typed
 * error naming the structure, never hang, crash or return wrong data. Live tree blocks are located by
 * scanning for leaves outside the journal area (journal copies of leaves are not read by the driver).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../../helpers/fixtures.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { imageBytes, openBytes } from './helpers.ts';

const SB = 65536;
const base = imageBytes(fixture('reiserfs'));
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const bs = dv(base).getUint16(SB + 44, true);
const rootBlock = dv(base).getUint32(SB + 8, true);
const journalFirst = dv(base).getUint32(SB + 12, true);
const journalSize = dv(base).getUint32(SB + 20, true);
const blockCount = dv(base).getUint32(SB, true);

interface Found { block: number; ih: number; location: number; len: number }

/** The live leaf item of object `objectId` with 3.6 type `type` (0 SD, 1 indirect, 3 direntry). */
function findItem(img: Uint8Array, objectId: number, type: number): Found {
  const v = dv(img);
  for (let b = 17; b < blockCount; b++) {
    if (b >= journalFirst && b <= journalFirst + journalSize) continue;
    const at = b * bs;
    if (v.getUint16(at, true) !== 1) continue;
    const nr = v.getUint16(at + 2, true);
    if (nr < 1 || nr > (bs - 24) / 24) continue;
    for (let i = 0; i < nr; i++) {
      const ih = at + 24 + i * 24;
      if (v.getUint32(ih + 4, true) !== objectId) continue;
      const u = v.getUint32(ih + 12, true); // 3.5 keys: uniqueness 0 SD, 0xfffffffe indirect, 500 direntry
      const t = v.getUint16(ih + 22, true) === 1 ? img[ih + 15]! >> 4 : u === 0 ? 0 : u === 0xfffffffe ? 1 : u === 500 ? 3 : -1;
      if (t === type) return { block: b, ih, location: at + v.getUint16(ih + 20, true), len: v.getUint16(ih + 18, true) };
    }
  }
  throw new Error(`item ${objectId}/${type} not found`);
}

async function expectTyped(img: Uint8Array, action: (vfs: Awaited<ReturnType<typeof openBytes>>['vfs']) => Promise<unknown>, code: string, kind?: RegExp, limits: Parameters<typeof openBytes>[1] = {}): Promise<void> {
  const t0 = Date.now();
  let err: unknown;
  try {
    const { vfs } = await openBytes(img, limits);
    await action(vfs);
  } catch (e) {
    err = e;
  }
  assert.ok(isTsgrubError(err), `expected a typed error, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (kind) assert.match(String(err.data['kind'] ?? err.data['limit']), kind, err.message);
  assert.ok(Date.now() - t0 < 2000, 'fails fast');
}

const readKernel = (vfs: Awaited<ReturnType<typeof openBytes>>['vfs']) => vfs.readFile('/boot/vmlinuz-6.1.0-tsgrub');

test('sanity: the unpatched image reads', async () => {
  const { vfs } = await openBytes(base);
  assert.equal((await readKernel(vfs)).length, 400 * 1024 + 1234);
});

test('tree height 20 (superblock) and root blk_level 20', async () => {
  const a = base.slice();
  dv(a).setUint16(SB + 68, 20, true);
  await expectTyped(a, async () => undefined, 'Corrupt', /s_tree_height/);
  const b = base.slice();
  dv(b).setUint16(rootBlock * bs, 20, true);
  await expectTyped(b, readKernel, 'Corrupt', /TreeLevel/);
});

test('a child block equal to its parent (cycle), and a child pointing at an ancestor', async () => {
  const level = dv(base).getUint16(rootBlock * bs, true);
  assert.ok(level >= 2, 'the fixture has an internal root');
  const nr = dv(base).getUint16(rootBlock * bs + 2, true);
  const a = base.slice();
  for (let i = 0; i <= nr; i++) dv(a).setUint32(rootBlock * bs + 24 + nr * 16 + i * 8, rootBlock, true);
  await expectTyped(a, readKernel, 'Corrupt', /InternalNode/);
  // The leaf under the root's first child replaced by a copy of the root: a level mismatch.
  const child = dv(base).getUint32(rootBlock * bs + 24 + nr * 16, true);
  const b = base.slice();
  b.set(base.subarray(rootBlock * bs, rootBlock * bs + bs), child * bs);
  await expectTyped(b, async (vfs) => vfs.readdir('/'), 'Corrupt', /TreeLevel|InternalNode/);
});

test('item location outside the block, and nr_items huge', async () => {
  const sd = findItem(base, 2, 0); // the root directory's stat data
  const a = base.slice();
  dv(a).setUint16(sd.ih + 20, bs - 4, true);
  await expectTyped(a, async () => undefined, 'Corrupt', /ItemHead/);
  const b = base.slice();
  dv(b).setUint16(sd.block * bs + 2, 0xffff, true);
  await expectTyped(b, async () => undefined, 'Corrupt', /BlockHead/);
});

test('a directory entry location overlapping the entry headers', async () => {
  const dir = findItem(base, 2, 3);
  const a = base.slice();
  dv(a).setUint16(dir.location + 16 + 12, 8, true); // entry 1's deh_location inside the headers
  await expectTyped(a, async (vfs) => vfs.readdir('/'), 'Corrupt', /DirEntry/);
});

test('an indirect item pointing past the filesystem', async () => {
  const { vfs } = await openBytes(base);
  const id = Number((await vfs.stat('/boot/vmlinuz-6.1.0-tsgrub')).id);
  const ind = findItem(base, id, 1);
  const a = base.slice();
  dv(a).setUint32(ind.location, 0xfffffff0, true);
  await expectTyped(a, readKernel, 'Corrupt', /IndirectItem/);
});

test('a stat-data size of 2^60', async () => {
  const { vfs } = await openBytes(base);
  const id = Number((await vfs.stat('/boot/vmlinuz-6.1.0-tsgrub')).id);
  const sd = findItem(base, id, 0);
  assert.equal(sd.len, 44);
  const a = base.slice();
  dv(a).setBigUint64(sd.location + 8, 1n << 60n, true);
  await expectTyped(a, readKernel, 'Corrupt', /StatData/);
});

test('a node budget stops a walk that visits too many nodes', async () => {
  await expectTyped(base, async (vfs) => { for (let i = 0; i < 1000; i++) await vfs.readdir('/dir-many'); }, 'LimitExceeded', /nodesVisited/, { nodesVisited: 200 });
});
