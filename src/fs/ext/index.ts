/**
 * The ext2/ext3/ext4 filesystem driver (see README.md for the spec followed and what is not supported).
 */
import { CorruptError } from '../../errors.ts';
import { cString, uuidString } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { FilesystemDriver, ProbeResult, Volume } from '../types.ts';
import { INCOMPAT_JOURNAL_DEV, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, extType, isExt, parseSuperblock, readRawSuperblock } from './superblock.ts';
import { ExtVolume } from './volume.ts';

export { ExtVolume, ExtNode } from './volume.ts';

async function readSuperblockBytes(src: ByteSource): Promise<Uint8Array | null> {
  if (src.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) return null;
  return src.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
}

export const ext: FilesystemDriver = {
  id: 'ext',

  async probe(src: ByteSource, _ctx: Context): Promise<ProbeResult | null> {
    const b = await readSuperblockBytes(src);
    if (!b || !isExt(b)) return null;
    const raw = readRawSuperblock(b);
    // An external journal device carries the magic but holds no files (blkid calls it "jbd").
    if (raw.s_feature_incompat & INCOMPAT_JOURNAL_DEV) return null;
    const label = cString(b, 0x78, 16);
    return { type: extType(raw), label, uuid: uuidString(raw.s_uuid) };
  },

  async open(src: ByteSource, ctx: Context): Promise<Volume> {
    const b = await readSuperblockBytes(src);
    if (!b) throw new CorruptError('ext.Superblock', `source of ${src.size} bytes is too small`);
    ctx.budget.chargeMetadata(SUPERBLOCK_SIZE);
    const sb = parseSuperblock(b);
    const vol = new ExtVolume(src, ctx, sb);
    // Fail at open, not at first use, when the root is unreadable.
    await vol.root();
    return vol;
  },
};
