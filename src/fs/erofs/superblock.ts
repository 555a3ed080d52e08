/**
 * The EROFS superblock (erofs_fs.h struct erofs_super_block, erofs-utils 1.5 / Linux 6.x): 128 bytes
 * at byte 1024, little-endian. Only 4 KiB blocks (blkszbits = 12) as erofs-utils 1.5 writes.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, cString, slice, u16le, u32le, u64le, u8, uuidString } from '../../io/bytes.ts';
import { crc32cRaw } from '../../io/checksum.ts';

export const EROFS_SUPER_OFFSET = 1024;
export const EROFS_SUPER_MAGIC_V1 = 0xe0f5e1e2;
export const FEATURE_COMPAT_SB_CHKSUM = 0x1;

export const INCOMPAT_ZERO_PADDING = 0x1;
export const INCOMPAT_BIG_PCLUSTER = 0x2; // also COMPR_CFGS
export const INCOMPAT_CHUNKED_FILE = 0x4;
export const INCOMPAT_DEVICE_TABLE = 0x8;
export const INCOMPAT_ZTAILPACKING = 0x10;
const INCOMPAT_KNOWN: readonly [number, string][] = [
  [0x20, 'fragments'],
  [0x40, 'xattr-prefixes'],
];
const INCOMPAT_SUPPORTED = INCOMPAT_ZERO_PADDING | INCOMPAT_BIG_PCLUSTER | INCOMPAT_CHUNKED_FILE | INCOMPAT_DEVICE_TABLE | INCOMPAT_ZTAILPACKING;

export interface Superblock {
  readonly blockSize: number;
  readonly blkszBits: number;
  readonly rootNid: number;
  readonly inos: number;
  readonly buildTime: number;
  readonly blocks: number;
  readonly metaBlkAddr: number;
  readonly xattrBlkAddr: number;
  readonly uuid: string | undefined;
  readonly volumeName: string;
  readonly featureCompat: number;
  readonly featureIncompat: number;
  readonly zeroPadding: boolean;
}

export function hasMagic(b: Uint8Array): boolean {
  return b.length >= 4 && u32le(b, 0) === EROFS_SUPER_MAGIC_V1;
}

/**
 * Decodes the superblock from `blk`, the image's first block (the superblock and its checksummed
 * range, bytes 1024..blocksize, live there).
 */
export function decodeSuperblock(blk: Uint8Array, imageSize: number): Superblock {
  const W = 'erofs.Superblock';
  const b = slice(blk, EROFS_SUPER_OFFSET, 128, W);
  const magic = u32le(b, 0, W);
  if (magic !== EROFS_SUPER_MAGIC_V1) throw new CorruptError(`${W}.magic`, `bad magic 0x${magic.toString(16)}`, EROFS_SUPER_OFFSET);
  const checksum = u32le(b, 4, W);
  const feature_compat = u32le(b, 8, W);
  const blkszbits = u8(b, 12, W);
  const root_nid = u16le(b, 14, W);
  const inos = u64le(b, 16, W);
  const build_time = u64le(b, 24, W);
  const blocks = u32le(b, 36, W);
  const meta_blkaddr = u32le(b, 40, W);
  const xattr_blkaddr = u32le(b, 44, W);
  const uuid = slice(b, 48, 16, W);
  const volume_name = cString(b, 64, 16, W);
  const feature_incompat = u32le(b, 80, W);
  const extra_devices = u16le(b, 86, W);
  if (blkszbits !== 12) throw new UnsupportedError('erofs', [`blkszbits-${blkszbits}`]);
  const blockSize = 4096;
  if (feature_compat & FEATURE_COMPAT_SB_CHKSUM) {
    // erofs_superblock_csum_verify: crc32c(~0, sb..end of block) with the field zeroed, no final xor.
    const region = slice(blk, EROFS_SUPER_OFFSET, blockSize - EROFS_SUPER_OFFSET, W).slice();
    region.fill(0, 4, 8);
    const crc = crc32cRaw(0xffffffff, region);
    if (crc !== checksum) throw new CorruptError(`${W}.checksum`, `crc32c 0x${crc.toString(16)} != stored 0x${checksum.toString(16)}`, EROFS_SUPER_OFFSET + 4);
  }
  const unknown = feature_incompat & ~INCOMPAT_SUPPORTED;
  if (unknown) {
    const names = INCOMPAT_KNOWN.filter(([bit]) => unknown & bit).map(([, n]) => n);
    const rest = unknown & ~INCOMPAT_KNOWN.reduce((a, [bit]) => a | bit, 0);
    if (rest) names.push(`incompat-0x${rest.toString(16)}`);
    throw new UnsupportedError('erofs', names);
  }
  if (extra_devices !== 0) throw new UnsupportedError('erofs', ['extra-devices']);
  // The image must hold the blocks the superblock claims.
  bound(blocks, 1, Math.floor(imageSize / blockSize), `${W}.blocks`, EROFS_SUPER_OFFSET + 36);
  bound(meta_blkaddr, 0, blocks - 1, `${W}.meta_blkaddr`, EROFS_SUPER_OFFSET + 40);
  if (inos > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptError(`${W}.inos`, `${inos}`, EROFS_SUPER_OFFSET + 16);
  return {
    blockSize,
    blkszBits: blkszbits,
    rootNid: root_nid,
    inos: Number(inos),
    buildTime: Number(build_time > BigInt(Number.MAX_SAFE_INTEGER) ? 0n : build_time),
    blocks,
    metaBlkAddr: meta_blkaddr,
    xattrBlkAddr: xattr_blkaddr,
    uuid: uuid.every((x) => x === 0) ? undefined : uuidString(uuid),
    volumeName: volume_name,
    featureCompat: feature_compat,
    featureIncompat: feature_incompat,
    zeroPadding: (feature_incompat & INCOMPAT_ZERO_PADDING) !== 0,
  };
}
