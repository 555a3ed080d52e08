/** Shared by the squashfs and EROFS tests: a codec table with xz, and a bounded full walk of a volume. */
import { nodeCodecs } from '../../../src/codec/node.ts';
import type { CodecTable } from '../../../src/codec/types.ts';
import { xzDecode } from '../../../src/codec/xz.ts';
import { decodeUtf8 } from '../../../src/io/bytes.ts';
import type { Vfs } from '../../../src/fs/vfs.ts';
import { sha256 } from '../../helpers/fixtures.ts';

export const codecs: CodecTable = Object.freeze({ ...nodeCodecs, xz: xzDecode });

export interface Walked {
  /** path (no leading slash) → sha256 of regular files */
  readonly files: Map<string, string>;
  /** path → size of regular files */
  readonly sizes: Map<string, number>;
  readonly symlinks: Map<string, string>;
  readonly dirs: Set<string>;
  /** path → node id */
  readonly ids: Map<string, number | string>;
}

export async function walk(vfs: Vfs): Promise<Walked> {
  const out: Walked = { files: new Map(), sizes: new Map(), symlinks: new Map(), dirs: new Set(), ids: new Map() };
  const stack: string[] = [''];
  while (stack.length) {
    const dir = stack.pop() as string;
    for (const e of await vfs.readdir(dir === '' ? '/' : `/${dir}`)) {
      const p = dir === '' ? decodeUtf8(e.name) : `${dir}/${decodeUtf8(e.name)}`;
      const node = await vfs.lstat(`/${p}`);
      out.ids.set(p, node.id);
      if (node.kind === 'dir') {
        out.dirs.add(p);
        stack.push(p);
      } else if (node.kind === 'symlink') out.symlinks.set(p, decodeUtf8(await vfs.readlink(`/${p}`)));
      else if (node.kind === 'file') {
        out.files.set(p, sha256(await vfs.readFile(node)));
        out.sizes.set(p, node.size);
      }
    }
  }
  return out;
}
