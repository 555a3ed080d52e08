/**
 * ReiserFS 3.5/3.6 driver. See README.md for the spec it follows and what it does not support.
 */
import { UnsupportedError } from '../../errors.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { FilesystemDriver, ProbeResult, Volume } from '../types.ts';
import { decodeSuperblock, findSuperblock } from './superblock.ts';
import { ReiserVolume } from './volume.ts';

export { ReiserNode, ReiserVolume } from './volume.ts';
export type { Superblock } from './superblock.ts';

export const reiserfs: FilesystemDriver = {
  id: 'reiserfs',

  async probe(src: ByteSource, ctx: Context): Promise<ProbeResult | null> {
    void ctx;
    // Reads 2 × 204 bytes; a source too small or a read error means "not mine".
    let found;
    try {
      found = await findSuperblock(src);
    } catch {
      return null;
    }
    if (!found) return null;
    try {
      const sb = decodeSuperblock(found.raw, found.location, src.size);
      return { type: 'reiserfs', ...(sb.label ? { label: sb.label } : {}), ...(sb.uuid ? { uuid: sb.uuid } : {}) };
    } catch {
      return null;
    }
  },

  async open(src: ByteSource, ctx: Context): Promise<Volume> {
    const found = await findSuperblock(src);
    if (!found) throw new UnsupportedError('reiserfs: no superblock at 64 KiB or 8 KiB');
    const sb = decodeSuperblock(found.raw, found.location, src.size);
    const vol = new ReiserVolume(src, sb, ctx);
    await vol.root();
    return vol;
  },
};
