/**
 * Block group descriptors (struct ext4_group_desc). Only what reading needs: where each group's inode
 * table is. Descriptors are read lazily, one descriptor block at a time through the block cache, so a
 * hostile group count allocates nothing. Locations follow the kernel's descriptor_loc(): the classic
 * table after the superblock, and with meta_bg one descriptor block at the start of each meta group.
 */
import { CorruptError } from '../../errors.ts';
import { u16le, u32le } from '../../io/bytes.ts';
import { crc16, crc32cRaw } from '../../io/checksum.ts';
import type { ByteSource } from '../../io/source.ts';
import { groupHasSuper, type Superblock } from './superblock.ts';

export interface GroupDesc {
  readonly group: number;
  readonly inodeTable: number;
  readonly flags: number;
}

/** Raw fields named as in struct ext4_group_desc. */
function readRawGroupDesc(b: Uint8Array, sb: Superblock) {
  const w = 'ext.GroupDesc';
  return {
    bg_inode_table_lo: u32le(b, 0x8, w),
    bg_flags: u16le(b, 0x12, w),
    bg_checksum: u16le(b, 0x1e, w),
    bg_inode_table_hi: sb.descSize >= 64 ? u32le(b, 0x28, w) : 0,
  };
}

const le32 = (n: number) => new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);

/** ext4_group_desc_csum: metadata_csum (crc32c low 16 bits) or the older gdt_csum (crc16). */
export function groupDescChecksum(sb: Superblock, group: number, desc: Uint8Array): number | null {
  if (sb.metadataCsum) {
    let c = crc32cRaw(sb.csumSeed, le32(group));
    c = crc32cRaw(c, desc.subarray(0, 0x1e));
    c = crc32cRaw(c, new Uint8Array(2));
    if (desc.length > 0x20) c = crc32cRaw(c, desc.subarray(0x20));
    return c & 0xffff;
  }
  if (sb.gdtCsum) {
    let c = crc16(0xffff, sb.raw.s_uuid);
    c = crc16(c, le32(group));
    c = crc16(c, desc.subarray(0, 0x1e));
    if (desc.length > 0x20) c = crc16(c, desc.subarray(0x20));
    return c;
  }
  return null;
}

/** Byte offset of group `g`'s descriptor. */
export function groupDescOffset(sb: Superblock, g: number): number {
  const blockNr = Math.floor(g / sb.descPerBlock);
  const within = (g % sb.descPerBlock) * sb.descSize;
  let block: number;
  if (!sb.hasMetaBg || blockNr < sb.firstMetaBg) {
    block = sb.firstDataBlock + 1 + blockNr;
  } else {
    const first = blockNr * sb.descPerBlock;
    block = sb.firstDataBlock + first * sb.blocksPerGroup + (groupHasSuper(sb, first) ? 1 : 0);
  }
  if (block >= sb.blocksCount) throw new CorruptError('ext.GroupDesc', `descriptor block ${block} of group ${g} beyond the filesystem`);
  return block * sb.blockSize + within;
}

export class GroupTable {
  private readonly cache = new Map<number, GroupDesc>();
  private readonly tableBlocks: number;

  constructor(
    private readonly sb: Superblock,
    private readonly meta: ByteSource,
  ) {
    this.tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
  }

  async get(g: number): Promise<GroupDesc> {
    const sb = this.sb;
    if (!Number.isSafeInteger(g) || g < 0 || g >= sb.groupCount) throw new CorruptError('ext.GroupDesc', `group ${g} of ${sb.groupCount}`);
    const hit = this.cache.get(g);
    if (hit) return hit;
    const off = groupDescOffset(sb, g);
    const b = await this.meta.read(off, sb.descSize);
    const raw = readRawGroupDesc(b, sb);
    const want = groupDescChecksum(sb, g, b);
    if (want !== null && want !== raw.bg_checksum) {
      throw new CorruptError('ext.GroupDescChecksum', `group ${g}: stored 0x${raw.bg_checksum.toString(16)}, computed 0x${want.toString(16)}`, off + 0x1e);
    }
    const inodeTable = raw.bg_inode_table_lo + raw.bg_inode_table_hi * 2 ** 32;
    if (inodeTable < sb.firstDataBlock || inodeTable + this.tableBlocks > sb.blocksCount) {
      throw new CorruptError('ext.GroupDesc.bg_inode_table', `group ${g}: inode table at block ${inodeTable} outside the filesystem`, off + 0x8);
    }
    const d: GroupDesc = { group: g, inodeTable, flags: raw.bg_flags };
    if (this.cache.size > 4096) this.cache.clear();
    this.cache.set(g, d);
    return d;
  }
}
