/** Shared by the ReiserFS tests: open an image (file or bytes), walk it whole. */
import { MemorySource, type ByteSource } from '../../../src/io/source.ts';
import { createContext, type Context, type Limits } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { reiserfs } from '../../../src/fs/reiserfs/index.ts';
import type { Volume } from '../../../src/fs/types.ts';

export const dec = new TextDecoder();

export async function openSource(src: ByteSource, limits: Partial<Limits> = {}): Promise<{ vfs: Vfs; vol: Volume; ctx: Context }> {
  const ctx = createContext(limits);
  const vol = await reiserfs.open(src, ctx);
  return { vfs: new Vfs(vol, ctx), vol, ctx };
}

export function openBytes(bytes: Uint8Array, limits: Partial<Limits> = {}): Promise<{ vfs: Vfs; vol: Volume; ctx: Context }> {
  return openSource(new MemorySource(bytes), limits);
}

export { imageBytes, walk, type Walked } from '../../helpers/walk.ts';
