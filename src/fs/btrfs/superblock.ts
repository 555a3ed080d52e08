/**
 * The btrfs superblock (struct btrfs_super_block, kernel fs/btrfs/ctree.h / uapi btrfs_tree.h):
 * primary at 64 KiB, mirrors at 64 MiB and 256 GiB. Checksummed from byte 0x20 to 4 KiB.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, bytesEqual, cString, slice, u16le, u32le, u64le, u64leSafe, u8, uuidString } from '../../io/bytes.ts';
import { crc32c } from '../../io/checksum.ts';
import type { ByteSource } from '../../io/source.ts';

export const SUPER_OFFSETS = [0x10000, 64 * 2 ** 20, 256 * 2 ** 30] as const;
export const SUPER_SIZE = 4096;
export const MAGIC = new TextEncoder().encode('_BHRfS_M');
const SYS_CHUNK_ARRAY_MAX = 2048;

/** incompat flags (BTRFS_FEATURE_INCOMPAT_*) and whether we can read images that set them. */
const INCOMPAT: ReadonlyArray<readonly [number, string, boolean]> = [
  [0, 'mixed_backref', true],
  [1, 'default_subvol', true],
  [2, 'mixed_groups', true],
  [3, 'compress_lzo', true],
  [4, 'compress_zstd', true],
  [5, 'big_metadata', true],
  [6, 'extended_iref', true],
  [7, 'raid56', true], // only matters if a chunk actually uses RAID5/6 (refused there)
  [8, 'skinny_metadata', true],
  [9, 'no_holes', true],
  [10, 'metadata_uuid', true],
  [11, 'raid1c34', true],
  [12, 'zoned', true],
  [13, 'extent_tree_v2', false],
  [14, 'raid_stripe_tree', false],
  [16, 'simple_quota', true],
];

export const CSUM_TYPES = ['crc32c', 'xxhash64', 'sha256', 'blake2b'] as const;

export interface Superblock {
  readonly offset: number;
  readonly fsid: Uint8Array;
  /** The fsid tree blocks carry (metadata_uuid when that feature is on). */
  readonly metadataFsid: Uint8Array;
  readonly generation: bigint;
  readonly root: number;
  readonly chunkRoot: number;
  readonly totalBytes: number;
  readonly sectorsize: number;
  readonly nodesize: number;
  readonly rootLevel: number;
  readonly chunkRootLevel: number;
  readonly incompatFlags: bigint;
  readonly csumType: number;
  readonly label: string;
  readonly uuid: string;
  readonly devid: bigint;
  readonly sysChunkArray: Uint8Array;
}

/** Validates one superblock copy; null when the magic is absent, CorruptError when it is damaged. */
export function parseSuperblock(b: Uint8Array, offset: number): Superblock | null {
  const what = 'btrfs.Superblock';
  if (!bytesEqual(slice(b, 0x40, 8, what), MAGIC)) return null;
  const csum_type = u16le(b, 0xc4, what);
  if (csum_type !== 0) {
    throw new UnsupportedError('btrfs checksum', [CSUM_TYPES[csum_type] ?? `csum type ${csum_type}`]);
  }
  const stored = u32le(b, 0, what);
  const computed = crc32c(slice(b, 0x20, SUPER_SIZE - 0x20, what));
  if (stored !== computed) throw new CorruptError('btrfs.SuperblockCsum', `crc32c ${computed.toString(16)} != stored ${stored.toString(16)}`, offset);
  const bytenr = u64le(b, 0x30, what);
  if (bytenr !== BigInt(offset)) throw new CorruptError('btrfs.SuperblockBytenr', `superblock says it lives at ${bytenr}`, offset);
  const sectorsize = u32le(b, 0x90, what);
  const nodesize = u32le(b, 0x94, what);
  // Powers of two: sectorsize 4 KiB..64 KiB, nodesize sectorsize..64 KiB (BTRFS_MAX_METADATA_BLOCKSIZE).
  const pow2 = (v: number) => v >= 4096 && v <= 65536 && (v & (v - 1)) === 0; // range first: & is 32-bit
  if (!pow2(sectorsize)) throw new CorruptError('btrfs.Sectorsize', `sectorsize ${sectorsize}`, offset + 0x90);
  if (!pow2(nodesize) || nodesize < sectorsize) throw new CorruptError('btrfs.Nodesize', `nodesize ${nodesize}`, offset + 0x94);
  const incompat = u64le(b, 0xbc, what);
  const unsupported: string[] = [];
  for (let bit = 0n; bit < 64n; bit++) {
    if (!((incompat >> bit) & 1n)) continue;
    const known = INCOMPAT.find(([n]) => BigInt(n) === bit);
    if (!known) unsupported.push(`incompat bit ${bit}`);
    else if (!known[2]) unsupported.push(known[1]);
  }
  if (unsupported.length) throw new UnsupportedError('btrfs', unsupported);
  const sys_chunk_array_size = bound(u32le(b, 0xa0, what), 0, SYS_CHUNK_ARRAY_MAX, 'btrfs.SysChunkArraySize', offset + 0xa0);
  const fsid = slice(b, 0x20, 16, what).slice();
  const metadataUuid = (incompat >> 10n) & 1n;
  const root_level = u8(b, 0xc6, what);
  const chunk_root_level = u8(b, 0xc7, what);
  return {
    offset,
    fsid,
    metadataFsid: metadataUuid ? slice(b, 0x23b, 16, what).slice() : fsid,
    generation: u64le(b, 0x48, what),
    root: u64leSafe(b, 0x50, what),
    chunkRoot: u64leSafe(b, 0x58, what),
    totalBytes: u64leSafe(b, 0x70, what),
    sectorsize,
    nodesize,
    rootLevel: root_level,
    chunkRootLevel: chunk_root_level,
    incompatFlags: incompat,
    csumType: csum_type,
    label: cString(b, 0x12b, 256, what),
    uuid: uuidString(fsid),
    devid: u64le(b, 0xc9, what),
    sysChunkArray: slice(b, 0x32b, sys_chunk_array_size, what).slice(),
  };
}

/**
 * The primary superblock, or the first valid mirror when the primary is damaged (the mirrors
 * that lie inside the image). Among valid copies the primary wins, as the kernel mounts it.
 */
export async function readSuperblock(src: ByteSource): Promise<Superblock> {
  let firstError: unknown = null;
  let sawMagic = false;
  for (const off of SUPER_OFFSETS) {
    if (off + SUPER_SIZE > src.size) break;
    const b = await src.read(off, SUPER_SIZE);
    try {
      const sb = parseSuperblock(b, off);
      if (sb) return sb;
    } catch (e) {
      if (e instanceof UnsupportedError) throw e;
      sawMagic = true;
      firstError ??= e;
    }
  }
  if (sawMagic && firstError) throw firstError;
  throw new CorruptError('btrfs.Superblock', 'no superblock with the btrfs magic', SUPER_OFFSETS[0]);
}
