/** Shared by the ReiserFS tests: open an image (file or bytes), walk it whole. */
import { readFileSync } from 'node:fs';
import { MemorySource, type ByteSource } from '../../../src/io/source.ts';
import { createContext, type Context, type Limits } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { reiserfs } from '../../../src/fs/reiserfs/index.ts';
import type { FsNode, Volume } from '../../../src/fs/types.ts';

export const dec = new TextDecoder();

export async function openSource(src: ByteSource, limits: Partial<Limits> = {}): Promise<{ vfs: Vfs; vol: Volume; ctx: Context }> {
  const ctx = createContext(limits);
  const vol = await reiserfs.open(src, ctx);
  return { vfs: new Vfs(vol, ctx), vol, ctx };
}

export function openBytes(bytes: Uint8Array, limits: Partial<Limits> = {}): Promise<{ vfs: Vfs; vol: Volume; ctx: Context }> {
  return openSource(new MemorySource(bytes), limits);
}

export function imageBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

export interface Walked {
  readonly path: string;
  readonly node: FsNode;
}

/** Every entry under the root, depth-first, without following symlinks. */
export async function walk(vfs: Vfs, dir = ''): Promise<Walked[]> {
  const out: Walked[] = [];
  for (const e of await vfs.readdir(dir || '/')) {
    const path = `${dir}/${dec.decode(e.name)}`;
    const node = await vfs.lstat(path);
    out.push({ path: path.slice(1), node });
    if (node.kind === 'dir') out.push(...(await walk(vfs, path)));
  }
  return out;
}
