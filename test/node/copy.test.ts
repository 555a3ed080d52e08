/**
 * src/node/copy.ts: the extent fast path against the standard tree's manifest (sha256 computed from
 * the tree by scripts/mkfixtures.sh, not by us) and against the generic `Vfs.chunks` path, on real
 * images from mke2fs/mkfs.fat/xorriso/mkfs.xfs/makefs, directly and inside a partition (SliceSource
 * at a non-zero offset); hostile extent maps are refused before anything is written.
 * (Lives in bench/ with the benchmark; the lead may move it to test/node/.)
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nodeCodecs } from '../../src/codec/node.ts';
import { isTsgrubError } from '../../src/errors.ts';
import { btrfs } from '../../src/fs/btrfs/index.ts';
import { ext } from '../../src/fs/ext/index.ts';
import { fat } from '../../src/fs/fat/index.ts';
import { iso9660 } from '../../src/fs/iso9660/index.ts';
import type { Extent, FilesystemDriver, FsNode, Volume } from '../../src/fs/types.ts';
import { ufs } from '../../src/fs/ufs/index.ts';
import { Vfs } from '../../src/fs/vfs.ts';
import { xfs } from '../../src/fs/xfs/index.ts';
import { SliceSource, type ByteSource } from '../../src/io/source.ts';
import { createContext } from '../../src/limits.ts';
import { appendPairs, copyRuns, copyToFd, planCopy, RunsReceiver, unpackRuns } from '../../src/node/copy.ts';
import { FileSource } from '../../src/node/file-source.ts';
import { fixture, manifest, sha256 } from '../helpers/fixtures.ts';

const KERNEL = 'boot/vmlinuz-6.1.0-tsgrub';
const INITRD = 'boot/initrd.img-6.1.0-tsgrub';
const tmp = mkdtempSync(join(tmpdir(), 'tsgrub-copy-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

async function copied(vfs: Vfs, node: FsNode, opts: Parameters<typeof copyToFd>[3] = {}): Promise<Uint8Array> {
  const path = join(tmp, 'out');
  const fd = openSync(path, 'w');
  try {
    const n = await copyToFd(vfs, node, fd, opts);
    assert.equal(n, node.size);
  } finally {
    closeSync(fd);
  }
  return readFileSync(path);
}

const cases: Array<[string, FilesystemDriver, string[]]> = [
  ['ext4', ext, [KERNEL, INITRD, 'sparse.bin', 'etc/hostname', 'etc/empty']],
  ['ext2-1k', ext, [KERNEL, INITRD, 'sparse.bin']],
  ['fat32', fat, [KERNEL, INITRD, 'sparse.bin', 'etc/twelve']],
  ['iso-xorriso', iso9660, [KERNEL, INITRD, 'sparse.bin']],
  ['xfs5', xfs, [KERNEL, INITRD, 'sparse.bin']],
  ['ufs2-le', ufs, [KERNEL, INITRD, 'sparse.bin']],
  // btrfs: uncompressed extents through the chunk map (DUP metadata, single data); the zstd image's
  // compressed/inline files take the chunked path (extents() says Unsupported).
  ['btrfs', btrfs, [KERNEL, INITRD, 'sparse.bin', 'etc/hostname']],
  ['btrfs-zstd', btrfs, [KERNEL, INITRD, 'sparse.bin', 'etc/hostname']],
];

for (const [name, driver, files] of cases) {
  for (const offset of [0, 512 * 1024]) {
    test(`${name}${offset ? ' in a partition at 512 KiB' : ''}: extent copy equals the manifest and the chunked copy`, async () => {
      const want = manifest();
      let path = fixture(name);
      if (offset) {
        path = join(tmp, `${name}-part.img`);
        const img = readFileSync(fixture(name));
        const disk = new Uint8Array(offset + img.length);
        disk.fill(0xa5, 0, offset);
        disk.set(img, offset);
        writeFileSync(path, disk);
      }
      const file = FileSource.open(path);
      try {
        const src: ByteSource = offset ? new SliceSource(file, offset, file.size - offset, 'p1') : file;
        const ctx = createContext({}, nodeCodecs);
        const vfs = new Vfs(await driver.open(src, ctx), ctx);
        for (const f of files) {
          const node = await vfs.stat(`/${f}`);
          const before = file.readCalls;
          const fast = await copied(vfs, node);
          const calls = file.readCalls - before;
          assert.equal(sha256(fast), want.get(f), `${f}: extent copy`);
          // chunkBytes forces the generic path: an independent route through Volume.read.
          assert.equal(sha256(await copied(vfs, node, { chunkBytes: 1 << 16 })), want.get(f), `${f}: chunked copy`);
          if (f === INITRD) assert.ok(calls <= 8, `${f}: ${calls} reads for 600 KiB (contiguous runs should be one read each)`);
        }
      } finally {
        file.close();
      }
    });
  }
}

/** A volume whose extent map is whatever the test says, over a real file; `read` serves `content` when given. */
function fakeVfs(src: ByteSource, size: number, map: Extent[], content?: Uint8Array): { vfs: Vfs; node: FsNode } {
  const node: FsNode = { kind: 'file', size, id: 7 };
  const volume: Volume = {
    type: 'fake',
    source: src,
    root: async () => ({ kind: 'dir', size: 0, id: 2 }),
    lookup: async () => null,
    // eslint-disable-next-line require-yield
    readdir: async function* () {
      return;
    },
    read: async (_f: FsNode, offset: number, length: number) => {
      if (!content) throw new Error('the fast path must not call read');
      return content.slice(offset, Math.min(content.length, offset + length));
    },
    readlink: async () => new Uint8Array(0),
    extents: async function* () {
      yield* map;
    },
  };
  const ctx = createContext({}, nodeCodecs);
  return { vfs: new Vfs(volume, ctx), node };
}

test('hostile extent maps: outside the partition, overlapping, gaps as zeros, nothing written on refusal', async () => {
  const path = join(tmp, 'pattern.img');
  const bytes = new Uint8Array(64 * 1024).map((_, i) => (i * 7 + 3) & 0xff);
  writeFileSync(path, bytes);
  const file = FileSource.open(path);
  try {
    const part = new SliceSource(file, 4096, 32 * 1024, 'p1');
    // Past the end of the partition (but inside the file): refused, naming the extent.
    {
      const { vfs, node } = fakeVfs(part, 8192, [{ logical: 0, length: 8192, physical: 28 * 1024 }]);
      const out = join(tmp, 'refused');
      const fd = openSync(out, 'w');
      await assert.rejects(copyToFd(vfs, node, fd), (e: unknown) => isTsgrubError(e) && e.code === 'Corrupt' && /outside the volume/.test(e.message));
      closeSync(fd);
      assert.equal(readFileSync(out).length, 0, 'nothing written before the map is validated');
    }
    {
      const { vfs, node } = fakeVfs(part, 8192, [
        { logical: 0, length: 4096, physical: 0 },
        { logical: 2048, length: 4096, physical: 8192 },
      ]);
      const fd = openSync(join(tmp, 'x'), 'w');
      await assert.rejects(copyToFd(vfs, node, fd), (e: unknown) => isTsgrubError(e) && /overlaps/.test(e.message));
      closeSync(fd);
    }
    {
      const { vfs, node } = fakeVfs(part, 8192, [{ logical: 0, length: -1, physical: 0 }]);
      const fd = openSync(join(tmp, 'x'), 'w');
      await assert.rejects(copyToFd(vfs, node, fd), (e: unknown) => isTsgrubError(e) && e.code === 'Corrupt');
      closeSync(fd);
    }
    // A negative physical offset is a bad extent, not a hole: −1 means a hole only in packed batches.
    for (const physical of [-1, -4096, 0.5, Number.NaN]) {
      const { vfs, node } = fakeVfs(part, 8192, [{ logical: 0, length: 8192, physical }]);
      const out = join(tmp, 'refused');
      const fd = openSync(out, 'w');
      await assert.rejects(copyToFd(vfs, node, fd), (e: unknown) => isTsgrubError(e) && e.code === 'Corrupt' && /outside the volume/.test(e.message), String(physical));
      closeSync(fd);
      assert.equal(readFileSync(out).length, 0, `${physical}: nothing written`);
    }
    // A gap, an explicit hole, a run past EOF (clipped) and a missing tail: zeros where unmapped.
    {
      const { vfs, node } = fakeVfs(part, 20000, [
        { logical: 1000, length: 1000, physical: 100 },
        { logical: 3000, length: 500, physical: null },
        { logical: 3500, length: 100000, physical: 5000 },
      ]);
      const got = await copied(vfs, node);
      const want = new Uint8Array(20000);
      want.set(bytes.subarray(4096 + 100, 4096 + 1100), 1000);
      want.set(bytes.subarray(4096 + 5000, 4096 + 5000 + 16500), 3500);
      assert.deepEqual(new Uint8Array(got), want);
    }
    // No data mapped at all (squashfs/erofs say "cannot map" this way): the chunked path reads it.
    {
      const content = new Uint8Array(5000).fill(0x5a);
      for (const map of [[], [{ logical: 0, length: 5000, physical: null }]]) {
        const { vfs, node } = fakeVfs(part, 5000, map, content);
        assert.deepEqual(new Uint8Array(await copied(vfs, node)), content);
      }
    }
    // Over the file size cap: refused before mapping.
    {
      const { vfs, node } = fakeVfs(part, 8192, [{ logical: 0, length: 8192, physical: 0 }]);
      const fd = openSync(join(tmp, 'x'), 'w');
      await assert.rejects(copyToFd(vfs, node, fd, { maxBytes: 4096 }), (e: unknown) => isTsgrubError(e) && e.code === 'LimitExceeded');
      closeSync(fd);
    }
  } finally {
    file.close();
  }
});

test('fragment windows: thousands of small runs, close, far, backwards and holes, across buffers, equal the bytes they map', async () => {
  const path = join(tmp, 'frag-pattern.img');
  const fileBytes = 16 << 20;
  const bytes = new Uint8Array(fileBytes);
  let x = 0x2545f491;
  for (let i = 0; i < fileBytes; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    bytes[i] = x;
    bytes[i + 1] = x >>> 8;
    bytes[i + 2] = x >>> 16;
    bytes[i + 3] = x >>> 24;
  }
  writeFileSync(path, bytes);
  const file = FileSource.open(path);
  try {
    const partStart = 4096;
    const partSize = fileBytes - 8192;
    const part = new SliceSource(file, partStart, partSize, 'p1');
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // About 3 MiB of file: mostly 0.5–16 KiB fragments 0–40 KiB apart going forward (windows), some
    // large runs (read directly), backward and far jumps (new windows), and holes.
    const map: Extent[] = [];
    const want = new Uint8Array(3 << 20);
    let logical = 0;
    let physical = 0;
    while (logical < want.length) {
      const kind = rnd(20);
      const length = Math.min(want.length - logical, kind === 0 ? 64 * 1024 + rnd(256 * 1024) : 512 + rnd(16 * 1024));
      if (kind === 1) {
        map.push({ logical, length, physical: null });
        logical += length;
        continue;
      }
      if (kind === 2) physical = rnd(partSize - 1024 * 1024); // backwards or far
      else if (kind === 3) physical += 33 * 1024 + rnd(1024 * 1024); // past the gap limit
      else physical += rnd(40 * 1024);
      if (physical + length > partSize) physical = rnd(partSize - length);
      map.push({ logical, length, physical });
      want.set(bytes.subarray(partStart + physical, partStart + physical + length), logical);
      logical += length;
      physical += length;
    }
    assert.ok(map.length > 150, `${map.length} runs`);
    const { vfs, node } = fakeVfs(part, want.length, map);
    const readsBefore = file.readCalls;
    const got = await copied(vfs, node);
    assert.equal(sha256(new Uint8Array(got)), sha256(want));
    // Windows merged most small fragments into shared reads.
    const dataRuns = map.filter((e) => e.physical !== null).length;
    assert.ok(file.readCalls - readsBefore < dataRuns * 0.6, `${file.readCalls - readsBefore} reads for ${dataRuns} runs`);
  } finally {
    file.close();
  }
});

test('appendPairs → RunsReceiver round-trips a real plan, and copyRuns along it gives the file’s bytes', async () => {
  const m = manifest();
  const src = FileSource.open(fixture('ext4'));
  try {
    const ctx = createContext({}, nodeCodecs);
    const vol = await ext.open(src, ctx);
    const vfs = new Vfs(vol, ctx);
    const node = await vfs.stat('/boot/initrd.img-6.1.0-tsgrub');
    const plan = await planCopy(vfs, node);
    assert.ok(plan, 'ext maps its files');
    // Sent in chunks, as the worker does.
    const rx = new RunsReceiver(plan.size, src.size);
    for (let i = 0; i < plan.runs.count; i += 7) {
      const pairs: number[] = [];
      appendPairs(plan.runs, pairs, i, i + 7);
      rx.add(pairs);
    }
    assert.deepEqual(unpackRuns(rx.finish()), unpackRuns(plan.runs));
    const dir = mkdtempSync(join(tmpdir(), 'tsgrub-runs-'));
    try {
      const out = join(dir, 'out');
      const fd = openSync(out, 'w');
      try {
        assert.equal(await copyRuns(src, rx.finish(), plan.size, fd), plan.size);
      } finally {
        closeSync(fd);
      }
      assert.equal(sha256(readFileSync(out)), m.get('boot/initrd.img-6.1.0-tsgrub'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    src.close();
  }
});

test('streamed plans: the runs handed out while planning, and the receiver’s chunks, stay as they were while the maps grow', async () => {
  const path = join(tmp, 'stream-pattern.img');
  writeFileSync(path, new Uint8Array(1 << 20));
  const file = FileSource.open(path);
  try {
    // 3,000 extents in threes: data at p, data at p + 100 (it continues the one before: they merge,
    // across batch boundaries too), a hole.
    const map: Extent[] = [];
    for (let k = 0; k < 3000; k++) {
      const p = (Math.floor(k / 3) * 3170) % 900_000;
      map.push(k % 3 === 2 ? { logical: k * 100, length: 100, physical: null } : { logical: k * 100, length: 100, physical: p + (k % 3) * 100 });
    }
    const { vfs, node } = fakeVfs(file, 300_000, map);
    const handed: ReturnType<typeof unpackRuns> = [];
    const views: Array<Parameters<typeof unpackRuns>[0]> = [];
    // As the worker does: each hand-out taken as it comes (and the views kept, to look at again).
    const plan = await planCopy(vfs, node, {
      onRuns: (runs) => {
        handed.push(...unpackRuns(runs));
        views.push(runs);
      },
    });
    assert.ok(plan);
    assert.deepEqual(views.flatMap((v) => unpackRuns(v)), handed, 'a view handed out never changes afterwards');
    const all = unpackRuns(plan.runs);
    assert.equal(all.length, 2000);
    assert.deepEqual(handed, all, 'every run handed out once, in order, final (not extended after it went out)');
    assert.deepEqual(all[0], { logical: 0, length: 200, physical: 0 });
    assert.deepEqual(all[1], { logical: 200, length: 100, physical: null });
    assert.deepEqual(all[2], { logical: 300, length: 200, physical: 3170 });
    // The receiver's chunks (views) too, across many reallocations.
    const rx = new RunsReceiver(plan.size, file.size);
    const chunks: Array<Parameters<typeof unpackRuns>[0]> = [];
    for (let i = 0; i < plan.runs.count; i += 5) {
      const pairs: number[] = [];
      appendPairs(plan.runs, pairs, i, i + 5);
      chunks.push(rx.add(pairs));
    }
    assert.deepEqual(chunks.flatMap((c) => unpackRuns(c)), unpackRuns(rx.finish()));
    assert.deepEqual(unpackRuns(rx.finish()), all);
  } finally {
    file.close();
  }
});

test('RunsReceiver refuses every map that is not exactly the file inside the image', () => {
  const bad: Array<[string, number, unknown[]]> = [
    ['not pairs', 10, [10]],
    ['not an array', 10, 'x' as unknown as unknown[]],
    ['zero length', 10, [0, 0, 10, 0]],
    ['negative length', 10, [-1, 0]],
    ['fractional length', 10, [9.5, 0, 0.5, 0]],
    ['a length as a string', 10, ['10', 0]],
    ['past the file', 10, [11, 0]],
    ['past the image', 10, [10, 995]],
    ['an offset past 2^53', 10, [10, 2 ** 53 + 2]],
    ['a negative offset', 10, [10, -5]],
    ['NaN', 10, [10, Number.NaN]],
    ['null offset (holes are -1)', 10, [10, null]],
  ];
  for (const [what, size, pairs] of bad) {
    const rx = new RunsReceiver(size, 1000);
    assert.throws(() => rx.add(pairs), (e: unknown) => isTsgrubError(e), what);
  }
  const short = new RunsReceiver(10, 1000);
  short.add([4, 0]);
  assert.throws(() => short.finish(), /cover 4 of 10/);
  const many = new RunsReceiver(10, 1000, 3);
  assert.throws(() => many.add([1, 0, 1, 0, 1, 0, 1, 0]), (e: unknown) => isTsgrubError(e) && e.code === 'LimitExceeded');
  assert.throws(() => new RunsReceiver(-1, 1000), (e: unknown) => isTsgrubError(e));
  // The good case: data runs at both ends of the image, a hole between, an empty file.
  const ok = new RunsReceiver(30, 1000);
  ok.add([10, 0, 10, -1, 10, 990]);
  assert.deepEqual(unpackRuns(ok.finish()), [
    { logical: 0, length: 10, physical: 0 },
    { logical: 10, length: 10, physical: null },
    { logical: 20, length: 10, physical: 990 },
  ]);
  assert.deepEqual(unpackRuns(new RunsReceiver(0, 1000).finish()), []);
});
