/** Shared by the UFS tests: open an image, walk it whole. */
import { MemorySource } from '../../../src/io/source.ts';
import { createContext, type Context, type Limits } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { ufs } from '../../../src/fs/ufs/index.ts';

export const dec = new TextDecoder();

export async function openBytes(bytes: Uint8Array, limits: Partial<Limits> = {}): Promise<{ vfs: Vfs; ctx: Context }> {
  const ctx = createContext(limits);
  const vol = await ufs.open(new MemorySource(bytes), ctx);
  return { vfs: new Vfs(vol, ctx), ctx };
}

export { imageBytes, walk, type Walked } from '../../helpers/walk.ts';
