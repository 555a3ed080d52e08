/** Shared by the driver tests: image bytes, and a whole-tree walk through the vfs. */
import { readFileSync } from 'node:fs';
import type { FsNode } from '../../src/fs/types.ts';
import type { Vfs } from '../../src/fs/vfs.ts';

const dec = new TextDecoder();

/** An image file as a plain Uint8Array (not a Buffer: Buffer#slice is a view). */
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
