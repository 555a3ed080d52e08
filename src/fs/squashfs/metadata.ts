/**
 * Metadata blocks (squashfs.rst "Metadata blocks"): a 2-byte little-endian header whose bit 15 says
 * "stored uncompressed" and whose low 15 bits are the stored length (1..8192), then the data, which
 * inflates to at most 8 KiB. Tables (inodes, directories, fragments, ids, export) are chains of such
 * blocks; a position inside one is (block start relative to the table, offset in the uncompressed
 * block). Reads are bounded by the table's end, so a chain always progresses and ends.
 */
import { CorruptError } from '../../errors.ts';
import { bound, u16le } from '../../io/bytes.ts';
import type { BlockCache } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { decompress } from './compress.ts';
import { METADATA_SIZE } from './superblock.ts';

export interface MetaBlock {
  readonly data: Uint8Array;
  /** Absolute byte offset of the following block. */
  readonly next: number;
}

/** A cursor in a metadata stream: absolute block start and offset in its uncompressed data. */
export interface MetaPos {
  block: number;
  offset: number;
}

export class MetadataReader {
  private readonly blocks = new Map<number, MetaBlock>();
  private static readonly MAX_CACHED = 512;

  constructor(
    private readonly cache: BlockCache,
    private readonly ctx: Context,
    private readonly compressor: string,
  ) {}

  /** One metadata block at absolute `at`, which must lie (header and data) before `end`. */
  async block(at: number, end: number): Promise<MetaBlock> {
    const hit = this.blocks.get(at);
    if (hit) return hit;
    if (!Number.isSafeInteger(at) || at < 0 || at + 2 > end) throw new CorruptError('squashfs.MetadataBlock', `block at ${at} lies outside its table (end ${end})`, at);
    const hdr = u16le(await this.cache.read(at, 2), 0, 'squashfs.MetadataBlock');
    const stored = (hdr & 0x8000) !== 0;
    const len = hdr & 0x7fff;
    bound(len, 1, METADATA_SIZE, 'squashfs.MetadataBlock.length', at);
    if (at + 2 + len > end) throw new CorruptError('squashfs.MetadataBlock.length', `block of ${len} bytes at ${at} runs past its table end ${end}`, at);
    const raw = await this.cache.read(at + 2, len);
    const data = stored ? raw : await decompress(this.ctx, this.compressor, raw, METADATA_SIZE, 'squashfs.MetadataBlock', at);
    if (data.length === 0) throw new CorruptError('squashfs.MetadataBlock', 'empty block', at);
    const blk = { data, next: at + 2 + len };
    this.blocks.set(at, blk);
    if (this.blocks.size > MetadataReader.MAX_CACHED) this.blocks.delete(this.blocks.keys().next().value as number);
    return blk;
  }

  /**
   * `length` bytes of the stream from `pos` (advanced past them), crossing block boundaries;
   * the table ends at `end`.
   */
  async read(pos: MetaPos, length: number, end: number, what: string): Promise<Uint8Array> {
    bound(length, 0, this.ctx.limits.allocBytes, what);
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const blk = await this.block(pos.block, end);
      if (pos.offset > blk.data.length) throw new CorruptError(what, `offset ${pos.offset} past a ${blk.data.length}-byte metadata block`, pos.block);
      if (pos.offset === blk.data.length) {
        // blk.next > pos.block always (a block is at least 3 bytes), and `end` bounds it: the chain ends.
        pos.block = blk.next;
        pos.offset = 0;
        continue;
      }
      const n = Math.min(length - got, blk.data.length - pos.offset);
      out.set(blk.data.subarray(pos.offset, pos.offset + n), got);
      got += n;
      pos.offset += n;
    }
    return out;
  }
}
