/** Test helper: walks a volume through the vfs (bounded depth) and reads every regular file. */
import { decodeUtf8 } from '../../../src/io/bytes.ts';
import type { Context } from '../../../src/limits.ts';
import type { FsNode, Volume } from '../../../src/fs/types.ts';
import { Vfs } from '../../../src/fs/vfs.ts';

export interface Walked {
  readonly node: FsNode;
  readonly kind: FsNode['kind'];
}

/** path (no leading slash) → node, for everything below the root; bounded by `maxDepth` and `maxNodes`. */
export async function walk(volume: Volume, ctx: Context, maxDepth = 64, maxNodes = 100_000): Promise<Map<string, Walked>> {
  const vfs = new Vfs(volume, ctx);
  const out = new Map<string, Walked>();
  const stack: { path: string; node: FsNode; depth: number }[] = [{ path: '', node: await volume.root(), depth: 0 }];
  while (stack.length > 0) {
    const { path, node, depth } = stack.pop() as { path: string; node: FsNode; depth: number };
    if (depth > maxDepth) throw new Error(`walk deeper than ${maxDepth} at ${path}`);
    for (const e of await vfs.readdir(node)) {
      const name = decodeUtf8(e.name);
      const p = path ? `${path}/${name}` : name;
      const child = await vfs.lstat(`/${p}`);
      if (out.size >= maxNodes) throw new Error('too many nodes');
      out.set(p, { node: child, kind: child.kind });
      if (child.kind === 'dir') stack.push({ path: p, node: child, depth: depth + 1 });
    }
  }
  return out;
}

export async function readAll(volume: Volume, ctx: Context, node: FsNode): Promise<Uint8Array> {
  return new Vfs(volume, ctx).readFile(node);
}
