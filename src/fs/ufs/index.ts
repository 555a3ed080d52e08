/**
 * UFS driver (UFS1, UFS2, Solaris UFS1; both byte orders). See README.md for what it follows.
 */
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { UnsupportedError, isTsgrubError } from '../../errors.ts';
import type { FilesystemDriver, ProbeResult, Volume } from '../types.ts';
import { decodeSuperblock, findSuperblock } from './superblock.ts';
import { UfsVolume } from './volume.ts';

export { UfsVolume } from './volume.ts';
export type { Superblock, UfsFlavour } from './superblock.ts';

export const ufs: FilesystemDriver = {
  id: 'ufs',

  async probe(src: ByteSource, ctx: Context): Promise<ProbeResult | null> {
    void ctx;
    let found;
    try {
      found = await findSuperblock(src);
    } catch (e) {
      if (isTsgrubError(e)) return null;
      throw e;
    }
    if (!found) return null;
    const sb = decodeSuperblock(found.sb, found.location);
    const vol = new UfsVolume(src, sb, ctx);
    return { type: vol.type, ...(vol.label ? { label: vol.label } : {}), ...(vol.uuid ? { uuid: vol.uuid } : {}) };
  },

  async open(src: ByteSource, ctx: Context): Promise<Volume> {
    const found = await findSuperblock(src);
    if (!found) throw new UnsupportedError('ufs: no superblock at 64 KiB, 8 KiB, 0 or 256 KiB');
    const sb = decodeSuperblock(found.sb, found.location);
    const vol = new UfsVolume(src, sb, ctx);
    await vol.root();
    return vol;
  },
};
