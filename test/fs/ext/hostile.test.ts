/**
 * Hostile ext images, made by patching real fixtures in memory at structures located with debugfs.
 * Each must end quickly with a typed error naming the structure (threat-model.md C2, C4, C5, C15).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isTsgrubError } from '../../../src/errors.ts';
import { ext } from '../../../src/fs/ext/index.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { fixture, hasTool, run } from '../../helpers/fixtures.ts';

const KERNEL = '/boot/vmlinuz-6.1.0-tsgrub';

function debugfs(img: string, cmd: string): string {
  return run('debugfs', ['-R', cmd, img]).toString('utf8');
}
function blockSize(img: string): number {
  return Number(/Block size:\s+(\d+)/.exec(run('dumpe2fs', ['-h', img]).toString())?.[1]);
}
/** Byte offset of a path's on-disk inode (debugfs imap). */
function inodeOffset(img: string, path: string): number {
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(debugfs(img, `imap "${path}"`));
  assert.ok(m, `imap ${path}`);
  return Number(m[1]) * blockSize(img) + parseInt(m[2] as string, 16);
}
function inodeNumber(img: string, path: string): number {
  return Number(/Inode: (\d+)/.exec(debugfs(img, `stat "${path}"`))?.[1]);
}
/** Physical block of a path's logical block (debugfs bmap). */
function bmap(img: string, path: string, lblk: number): number {
  return Number(debugfs(img, `bmap "${path}" ${lblk}`).trim());
}

function flip(b: Uint8Array, off: number, mask: number) {
  b[off] = (b[off] as number) ^ mask;
}
function put16(b: Uint8Array, off: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint16(off, v, true);
}
function put32(b: Uint8Array, off: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint32(off, v, true);
}
/** An extent header then index entries {ei_block, ei_leaf}. */
function writeIndexNode(b: Uint8Array, off: number, entries: number, max: number, depth: number, leaf: number) {
  put16(b, off, 0xf30a);
  put16(b, off + 2, entries);
  put16(b, off + 4, max);
  put16(b, off + 6, depth);
  put32(b, off + 8, 0);
  put32(b, off + 12, 0);
  put32(b, off + 16, leaf);
  put16(b, off + 20, 0);
}

async function expectTyped(bytes: Uint8Array, code: string, kind: RegExp | null, action: (vfs: Vfs) => Promise<unknown>) {
  const t0 = Date.now();
  const ctx = createContext({ wallMs: 10_000 });
  try {
    const vol = await ext.open(new MemorySource(bytes), ctx);
    await action(new Vfs(vol, ctx));
    assert.fail('expected an error');
  } catch (e) {
    if (!isTsgrubError(e)) throw e;
    assert.equal(e.code, code, e.message);
    if (kind) assert.match(String(e.data.kind ?? e.data.limit), kind, e.message);
  }
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
}

const tools = hasTool('debugfs') && hasTool('dumpe2fs');
// ext4-metabg: extents without metadata_csum, so structural checks are reached (not checksums first).
const PLAIN = 'ext4-metabg';

describe('hostile ext images', { skip: tools ? false : 'debugfs/dumpe2fs not installed' }, () => {
  test('self-referencing extent index', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const bs = blockSize(img);
    const ino = inodeOffset(img, KERNEL);
    const blk = bmap(img, KERNEL, 0);
    writeIndexNode(b, ino + 0x28, 1, 4, 1, blk);
    writeIndexNode(b, blk * bs, 1, (bs - 12) / 12, 1, blk);
    await expectTyped(b, 'Corrupt', /^ext\.Extent(Depth|Loop)$/, (vfs) => vfs.readFile(KERNEL));
  });

  test('extent tree deeper than its header says', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const bs = blockSize(img);
    const ino = inodeOffset(img, KERNEL);
    const [b1, b2] = [bmap(img, KERNEL, 0), bmap(img, KERNEL, 1)];
    writeIndexNode(b, ino + 0x28, 1, 4, 1, b1);
    writeIndexNode(b, b1 * bs, 1, (bs - 12) / 12, 2, b2);
    await expectTyped(b, 'Corrupt', /^ext\.ExtentDepth$/, (vfs) => vfs.readFile(KERNEL));
  });

  test('eh_entries > eh_max', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const ino = inodeOffset(img, KERNEL);
    put16(b, ino + 0x28 + 2, 5);
    await expectTyped(b, 'Corrupt', /^ext\.ExtentHeader$/, (vfs) => vfs.readFile(KERNEL));
  });

  test('extent pointing outside the filesystem', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const ino = inodeOffset(img, KERNEL);
    put16(b, ino + 0x28 + 12 + 6, 0x7fff); // ee_start_hi
    await expectTyped(b, 'Corrupt', /^ext\.Extent$/, (vfs) => vfs.readFile(KERNEL));
  });

  test('block map: a stretch of consecutive pointers that runs past the filesystem, and one wild pointer inside a stretch', async () => {
    // ext2-1k: the 600 KiB initrd's first indirect block maps logical blocks 12–267 in one stretch.
    const img = fixture('ext2-1k');
    const INITRD = '/boot/initrd.img-6.1.0-tsgrub';
    const ind = Number(/\(IND\):(\d+)/.exec(debugfs(img, `stat "${INITRD}"`))?.[1]);
    const count = Number(/Block count:\s+(\d+)/.exec(run('dumpe2fs', ['-h', img]).toString())?.[1]);
    assert.ok(ind > 0 && count > 0);
    const bs = blockSize(img);
    // Pointers 100–103 become count − 2 … count + 1: consecutive, so only the stretch's end is outside.
    const past = new Uint8Array(readFileSync(img));
    for (let k = 0; k < 4; k++) put32(past, ind * bs + (100 + k) * 4, count - 2 + k);
    // Pointer 150 becomes 0xfffffff0: the stretch around it breaks there.
    const wild = new Uint8Array(readFileSync(img));
    put32(wild, ind * bs + 150 * 4, 0xfffffff0);
    for (const b of [past, wild]) {
      await expectTyped(b, 'Corrupt', /^ext\.BlockMap$/, (vfs) => vfs.readFile(INITRD));
      await expectTyped(b, 'Corrupt', /^ext\.BlockMap$/, async (vfs) => {
        const vol = vfs.volume;
        for await (const _ of vol.extentBatches?.(await vfs.stat(INITRD)) ?? []) {
          // The whole map is checked before (or while) it is handed out.
        }
      });
    }
  });

  test('directory entry with rec_len = 0', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const blk = bmap(img, '/etc', 0);
    put16(b, blk * blockSize(img) + 4, 0);
    await expectTyped(b, 'Corrupt', /^ext\.DirEntry$/, (vfs) => vfs.readdir('/etc'));
    await expectTyped(b, 'Corrupt', /^ext\.DirEntry$/, (vfs) => vfs.stat('/etc/hostname'));
  });

  test('a directory that contains itself', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const bs = blockSize(img);
    const start = bmap(img, '/etc', 0) * bs;
    const block = b.subarray(start, start + bs);
    const name = new TextEncoder().encode('hostname');
    // Find the "hostname" entry by walking the block's rec_len chain.
    let off = 0;
    let found = -1;
    while (off < bs) {
      const recLen = block[off + 4]! | (block[off + 5]! << 8);
      const nameLen = block[off + 6]!;
      if (nameLen === name.length && name.every((c, i) => block[off + 8 + i] === c)) found = off;
      if (recLen === 0) break;
      off += recLen;
    }
    assert.ok(found >= 0);
    put32(block, found, inodeNumber(img, '/etc'));
    block[found + 7] = 2; // EXT4_FT_DIR
    await expectTyped(b, 'Corrupt', /^ext\.DirectoryLoop$/, (vfs) => vfs.stat('/etc/hostname/hostname/hostname'));
  });

  test('inode size 2^40 on a sparse file: read is bounded by the fileBytes budget', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const ino = inodeOffset(img, '/sparse.bin');
    put32(b, ino + 0x6c, 256); // i_size_high
    const ctx = createContext();
    const vol = await ext.open(new MemorySource(b), ctx);
    const vfs = new Vfs(vol, ctx);
    const node = await vfs.stat('/sparse.bin');
    assert.equal(node.size, 2 ** 40 + 2 * 1024 * 1024); // i_size_lo keeps the real 2 MiB
    await expectTyped(b, 'LimitExceeded', /^fileBytes$/, (v) => v.readFile('/sparse.bin'));
    // A small read far into the hole is zeros, quickly.
    const tail = await vol.read(node, node.size - 4096, 8192);
    assert.equal(tail.length, 4096);
    assert.ok(tail.every((x) => x === 0));
  });

  test('an htree lookup still checks every entry of the leaf it searches', async () => {
    const img = fixture(PLAIN);
    const b = new Uint8Array(readFileSync(img));
    const bs = blockSize(img);
    assert.match(debugfs(img, 'htree /dir-many'), /Root node dump/);
    const target = Buffer.from('file-150.txt');
    let leaf = -1;
    for (let lb = 1; lb < 64 && leaf < 0; lb++) {
      const start = bmap(img, '/dir-many', lb) * bs;
      if (Buffer.from(b.subarray(start, start + bs)).indexOf(target) >= 0) leaf = start;
    }
    assert.ok(leaf >= 0, 'a leaf of /dir-many holds file-150.txt');
    const block = Buffer.from(b.subarray(leaf, leaf + bs));
    const own = block.indexOf(target);
    // Another entry of the same leaf, before or after the one looked up: a '/' in its name, after
    // the digits where it differs from the name looked up (file-NNN.txt: its 't' at index 9).
    let other = block.indexOf('file-');
    if (other === own) other = block.indexOf('file-', own + 1);
    assert.ok(other >= 0 && other !== own);
    b[leaf + other + 9] = 0x2f;
    await expectTyped(b, 'Corrupt', /^ext\.DirEntryName$/, (vfs) => vfs.stat('/dir-many/file-150.txt'));
  });

  describe('metadata_csum mismatches are CorruptError', () => {
    const CSUM = 'ext4';
    test('superblock', async () => {
      const b = new Uint8Array(readFileSync(fixture(CSUM)));
      flip(b, 1024 + 0x78, 0x20); // s_volume_name
      await expectTyped(b, 'Corrupt', /^ext\.SuperblockChecksum$/, async () => {});
    });
    test('group descriptor', async () => {
      const img = fixture(CSUM);
      const b = new Uint8Array(readFileSync(img));
      const gdt = (blockSize(img) === 1024 ? 2 : 1) * blockSize(img);
      flip(b, gdt + 0xc, 1); // bg_free_blocks_count_lo of group 0
      await expectTyped(b, 'Corrupt', /^ext\.GroupDescChecksum$/, async () => {});
    });
    test('inode', async () => {
      const img = fixture(CSUM);
      const b = new Uint8Array(readFileSync(img));
      flip(b, inodeOffset(img, '/boot/grub/grub.cfg') + 0x10, 1); // i_mtime
      await expectTyped(b, 'Corrupt', /^ext\.InodeChecksum$/, (vfs) => vfs.readFile('/boot/grub/grub.cfg'));
    });
    test('directory block', async () => {
      const img = fixture(CSUM);
      const b = new Uint8Array(readFileSync(img));
      const start = bmap(img, '/etc', 0) * blockSize(img);
      flip(b, start + 12 + 8, 0x40); // the first byte of '..''s name: still a valid entry, wrong checksum
      await expectTyped(b, 'Corrupt', /^ext\.DirBlockChecksum$/, (vfs) => vfs.readdir('/etc'));
    });
    test('htree node', async () => {
      const img = fixture(CSUM);
      const b = new Uint8Array(readFileSync(img));
      const start = bmap(img, '/dir-many', 0) * blockSize(img);
      flip(b, start + 0x24, 1); // dx_root entry 0's block number (the checksum is verified before it is used)
      await expectTyped(b, 'Corrupt', /^ext\.DxChecksum$/, (vfs) => vfs.stat('/dir-many/file-007.txt'));
    });
    test('extent block', async () => {
      const img = fixture(CSUM);
      const b = new Uint8Array(readFileSync(img));
      const m = /^\s*0\/\s*1\s+1\/\s*1\s+\d+\s*-\s*\d+\s+(\d+)/m.exec(debugfs(img, 'ex /x/frag.bin'));
      assert.ok(m, 'frag.bin index node');
      const start = Number(m[1]) * blockSize(img);
      flip(b, start + 12 + 8, 0x80); // ee_start_lo of the first leaf extent: still inside the fs, wrong checksum
      await expectTyped(b, 'Corrupt', /^ext\.ExtentBlockChecksum$/, (vfs) => vfs.readFile('/x/frag.bin'));
    });
  });
});
