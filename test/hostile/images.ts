/**
 * Builders for hostile disk images, made with real tools (mke2fs -d from a small boot tree) or by
 * patching the committed fixtures, then patched at structures located with debugfs. Every image is a
 * file in a temp directory, because the CLI must see it as a file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { crc32 } from '../../src/io/checksum.ts';
import { fixture, run } from '../helpers/fixtures.ts';

/** Deterministic pseudo-random bytes (SHA-256 in counter mode): file contents the test can recompute. */
export function prng(seed: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0, pos = 0; pos < length; i++) {
    const h = createHash('sha256').update(`${seed}:${i}`).digest();
    out.set(h.subarray(0, Math.min(32, length - pos)), pos);
    pos += 32;
  }
  return out;
}

export const KERNEL = prng('hostile-kernel', 96 * 1024 + 17);
export const KERNEL2 = prng('hostile-kernel-2', 40 * 1024 + 3);
export const INITRD = prng('hostile-initrd', 48 * 1024 + 5);
export const SHADOW = new TextEncoder().encode('root:GUEST-SHADOW-NOT-THE-HOST:19000:0:99999:7:::\n');

export function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export function grubCfg(entries: string): string {
  return `set timeout=0\n${entries}`;
}

/** The standard boot entry of our small tree. */
export const STD_ENTRY = "menuentry 'Hostile Linux' {\n\tlinux /boot/vmlinuz root=/dev/xvda1 ro\n\tinitrd /boot/initrd.img\n}\n";

export interface TreeSpec {
  /** Config text (or bytes) written to /boot/grub/grub.cfg; null = no config. */
  readonly config?: string | Uint8Array | null;
  /**
   * Extra files: path → bytes, or { sparse: size } for a sparse file with one data block at 0 (with
   * `every`, a 4 KiB data block at every multiple of it, holes between: one extent each).
   */
  readonly files?: Record<string, Uint8Array | { sparse: number; head?: Uint8Array; every?: number }>;
  /** Symlinks: path → target. */
  readonly symlinks?: Record<string, string>;
  /** Leave /boot/vmlinuz out (a case supplies its own). */
  readonly noKernel?: boolean;
}

/** A temp directory that is removed at process exit. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `tsgrub-${prefix}-`));
  process.on('exit', () => rmSync(d, { recursive: true, force: true }));
  return d;
}

function writeTree(root: string, spec: TreeSpec): void {
  mkdirSync(join(root, 'boot/grub'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  if (!spec.noKernel) writeFileSync(join(root, 'boot/vmlinuz'), KERNEL);
  writeFileSync(join(root, 'boot/vmlinuz-other'), KERNEL2);
  writeFileSync(join(root, 'boot/initrd.img'), INITRD);
  writeFileSync(join(root, 'etc/shadow'), SHADOW);
  if (spec.config !== null) writeFileSync(join(root, 'boot/grub/grub.cfg'), spec.config ?? grubCfg(STD_ENTRY));
  for (const [p, v] of Object.entries(spec.files ?? {})) {
    const full = join(root, p);
    mkdirSync(dirname(full), { recursive: true });
    if (v instanceof Uint8Array) {
      writeFileSync(full, v);
    } else {
      writeFileSync(full, v.head ?? new Uint8Array(4096).fill(0x41));
      if (v.every) {
        const fd = openSync(full, 'r+');
        const block = new Uint8Array(4096);
        for (let at = v.every, i = 1; at + 4096 <= v.sparse; at += v.every, i++) writeSync(fd, block.fill(i & 0xff), 0, 4096, at);
        closeSync(fd);
      }
      truncateSync(full, v.sparse);
    }
  }
  for (const [p, target] of Object.entries(spec.symlinks ?? {})) symlinkSync(target, join(root, p));
}

/**
 * An ext4 image (no metadata_csum, so a patched structure is judged on its own merits, not stopped
 * by a checksum) holding the tree. `size` like mke2fs's ("8M").
 */
export function buildExt4(dir: string, name: string, spec: TreeSpec, size = '8M', extra: string[] = []): string {
  const tree = join(dir, `${name}.tree`);
  writeTree(tree, spec);
  const img = join(dir, `${name}.img`);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', '^metadata_csum,^has_journal', '-E', 'root_owner=0:0', ...extra, '-d', tree, img, size]);
  rmSync(tree, { recursive: true, force: true });
  return img;
}

export function debugfs(img: string, cmd: string, write = false): string {
  return run('debugfs', [...(write ? ['-w'] : []), '-R', cmd, img]).toString('utf8');
}

export function ext4BlockSize(img: string): number {
  const m = /Block size:\s+(\d+)/.exec(run('dumpe2fs', ['-h', img]).toString());
  assert.ok(m, 'dumpe2fs block size');
  return Number(m[1]);
}

/** Byte offset of a path's on-disk inode (debugfs imap). */
export function inodeOffset(img: string, path: string): number {
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(debugfs(img, `imap "${path}"`));
  assert.ok(m, `imap ${path}`);
  return Number(m[1]) * ext4BlockSize(img) + parseInt(m[2] as string, 16);
}

export function bmap(img: string, path: string, lblk: number): number {
  const n = Number(debugfs(img, `bmap "${path}" ${lblk}`).trim());
  assert.ok(Number.isSafeInteger(n) && n > 0, `bmap ${path} ${lblk}`);
  return n;
}

/** Writes `bytes` at `offset` of the file in place. */
export function patchFile(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

export function readAt(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(length);
    assert.equal(readSync(fd, b, 0, length, offset), length);
    return b;
  } finally {
    closeSync(fd);
  }
}

const le16 = (v: number) => {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return b;
};
const le32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
};

/** ext4_extent_header + one ext4_extent_idx {ei_block 0, ei_leaf} (kernel ext4_extents.h). */
export function extentIndexNode(entriesMax: number, depth: number, leaf: number): Uint8Array {
  const b = new Uint8Array(24);
  b.set(le16(0xf30a), 0);
  b.set(le16(1), 2);
  b.set(le16(entriesMax), 4);
  b.set(le16(depth), 6);
  b.set(le32(0), 8); // eh_generation
  b.set(le32(0), 12); // ei_block
  b.set(le32(leaf), 16); // ei_leaf_lo
  b.set(le16(0), 20); // ei_leaf_hi
  return b;
}

/**
 * Rewrites the kernel's extent tree: the inode's i_block becomes a depth-`rootDepth` index node
 * pointing at the kernel's first data block, which becomes an index node of depth `childDepth`
 * pointing at `childLeaf` (itself: a cycle; threat-model §1.4 repro 1).
 */
export function patchKernelExtents(img: string, path: string, rootDepth: number, childDepth: number, self: boolean): void {
  const bs = ext4BlockSize(img);
  const ino = inodeOffset(img, path);
  const blk = bmap(img, path, 0);
  // i_block is at offset 40 of struct ext4_inode, 60 bytes: room for a header and 4 entries.
  patchFile(img, ino + 40, extentIndexNode(4, rootDepth, blk));
  const childMax = Math.floor((bs - 12) / 12);
  patchFile(img, blk * bs, extentIndexNode(childMax, childDepth, self ? blk : blk + 1));
}

/** Copies a fixture to `dir` so it can be patched. */
export function copyFixture(dir: string, name: string): string {
  const out = join(dir, `${name}.img`);
  writeFileSync(out, readFileSync(fixture(name)));
  return out;
}

/** GPT header at byte `at`: set NumberOfPartitionEntries (and optionally SizeOfPartitionEntry), fix HeaderCRC32. */
export function patchGptHeader(img: string, at: number, numEntries: number, entrySize?: number): void {
  const h = readAt(img, at, 92);
  assert.equal(new TextDecoder().decode(h.subarray(0, 8)), 'EFI PART', `GPT header at ${at}`);
  const dv = new DataView(h.buffer);
  dv.setUint32(80, numEntries, true);
  if (entrySize !== undefined) dv.setUint32(84, entrySize, true);
  dv.setUint32(16, 0, true);
  dv.setUint32(16, crc32(h), true);
  patchFile(img, at, h);
}

/** Where the backup GPT header is (AlternateLBA of the primary). */
export function gptBackupAt(img: string): number {
  const h = readAt(img, 512, 92);
  return Number(new DataView(h.buffer).getBigUint64(32, true)) * 512;
}

/** The EBR chain of the first extended partition: absolute byte offsets of each EBR. */
export function ebrChain(img: string): number[] {
  const mbr = readAt(img, 0, 512);
  const dv = new DataView(mbr.buffer);
  let extStart = -1;
  for (let i = 0; i < 4; i++) {
    const t = mbr[446 + i * 16 + 4];
    if (t === 0x05 || t === 0x0f || t === 0x85) extStart = dv.getUint32(446 + i * 16 + 8, true);
  }
  assert.ok(extStart > 0, 'extended partition');
  const out: number[] = [];
  let ebr = extStart;
  for (let n = 0; n < 16; n++) {
    out.push(ebr * 512);
    const b = readAt(img, ebr * 512, 512);
    const l = new DataView(b.buffer);
    const t = b[446 + 16 + 4];
    if (t !== 0x05 && t !== 0x0f) break;
    ebr = extStart + l.getUint32(446 + 16 + 8, true);
  }
  return out;
}

/** The byte offset of the Solaris dk_label (magic 0xDABE at 508, v_sanity at 12) in the first MiBs. */
export function findVtoc(img: string): number {
  const head = readAt(img, 0, 4 << 20);
  const dv = new DataView(head.buffer);
  for (let at = 512; at + 512 <= head.length; at += 512) {
    if (dv.getUint16(at + 508, true) === 0xdabe && dv.getUint32(at + 12, true) === 0x600ddeee) return at;
  }
  assert.fail('no VTOC label found');
}

/** Sets v_nparts and keeps the XOR-of-words checksum (dkl_cksum at 510) valid. */
export function patchVtocNparts(img: string, at: number, nparts: number): void {
  const b = readAt(img, at, 512);
  const dv = new DataView(b.buffer);
  const old = dv.getUint16(30, true);
  dv.setUint16(30, nparts, true);
  dv.setUint16(510, dv.getUint16(510, true) ^ old ^ nparts, true);
  patchFile(img, at, b);
}
