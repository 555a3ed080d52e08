/** Shared by the UFS tests: open an image, walk it whole. */
import { readFileSync } from 'node:fs';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext, type Context, type Limits } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { ufs } from '../../../src/fs/ufs/index.ts';
import type { FsNode } from '../../../src/fs/types.ts';

export const dec = new TextDecoder();

export async function openBytes(bytes: Uint8Array, limits: Partial<Limits> = {}): Promise<{ vfs: Vfs; ctx: Context }> {
  const ctx = createContext(limits);
  const vol = await ufs.open(new MemorySource(bytes), ctx);
  return { vfs: new Vfs(vol, ctx), ctx };
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
