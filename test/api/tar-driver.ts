/**
 * A third-party filesystem driver, written outside the package against its public API only: POSIX
 * ustar archives (POSIX.1-2001 `pax` §ustar Interchange Format) read as a read-only filesystem.
 * It is the worked example of docs/api.md: probe cheaply, open into a Volume of inode-level
 * operations, let the vfs do paths and symlinks. Not supported: GNU long names ('L'/'K'), pax
 * extended headers ('x'/'g'), sparse members; those archives are refused, never misread.
 */
import {
  BlockCache,
  CorruptError,
  LimitExceededError,
  UnsupportedError,
  type ByteSource,
  type Context,
  type DirEntry,
  type FilesystemDriver,
  type FsNode,
  type ProbeResult,
  type Volume,
} from '../../src/index.ts';

const BLOCK = 512;

interface TarNode extends FsNode {
  /** Byte offset of the member's data in the archive. */
  readonly data: number;
  readonly target: Uint8Array;
  readonly children: Map<string, TarNode>;
}

const latin1 = new TextDecoder('latin1');

function field(h: Uint8Array, off: number, len: number): Uint8Array {
  const f = h.subarray(off, off + len);
  const nul = f.indexOf(0);
  return nul < 0 ? f : f.subarray(0, nul);
}

/** An octal numeric field (spaces/NULs around it allowed); sizes stay below 2^33 in ustar. */
function octal(h: Uint8Array, off: number, len: number, what: string, at: number): number {
  const s = latin1.decode(field(h, off, len)).trim();
  if (!/^[0-7]{0,12}$/.test(s)) throw new CorruptError('tar.Header', `${what} is not octal`, at + off);
  return s === '' ? 0 : parseInt(s, 8);
}

/** The header checksum: the byte sum with the chksum field read as spaces. */
function checksumOk(h: Uint8Array, at: number): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  return octal(h, 148, 8, 'chksum', at) === sum;
}

function isUstar(h: Uint8Array): boolean {
  return latin1.decode(h.subarray(257, 262)) === 'ustar';
}

function newDir(id: number): TarNode {
  return { kind: 'dir', size: 0, id, mode: 0o40755, data: 0, target: new Uint8Array(0), children: new Map() };
}

class TarVolume implements Volume {
  readonly type = 'ustar';
  constructor(
    readonly source: ByteSource,
    private readonly top: TarNode,
  ) {}
  async root(): Promise<FsNode> {
    return this.top;
  }
  async lookup(dir: FsNode, name: Uint8Array): Promise<FsNode | null> {
    return (dir as TarNode).children.get(latin1.decode(name)) ?? null;
  }
  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    for (const [name, n] of (dir as TarNode).children) yield { name: Uint8Array.from(name, (c) => c.charCodeAt(0)), kind: n.kind };
  }
  /** A member's data is contiguous in the archive: one source read serves any request. */
  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const n = file as TarNode;
    const len = Math.max(0, Math.min(length, n.size - offset));
    return this.source.read(n.data + offset, len);
  }
  async readlink(link: FsNode): Promise<Uint8Array> {
    return (link as TarNode).target.slice();
  }
}

async function openTar(src: ByteSource, ctx: Context): Promise<Volume> {
  const meta = new BlockCache(src, ctx.budget, BLOCK);
  let nextId = 1;
  const root = newDir(nextId++);
  let off = 0;
  while (off + BLOCK <= src.size) {
    const h = await meta.read(off, BLOCK);
    if (h.every((b) => b === 0)) break; // end-of-archive marker
    if (!isUstar(h) || !checksumOk(h, off)) throw new CorruptError('tar.Header', 'bad magic or checksum', off);
    ctx.budget.chargeNode();
    const type = String.fromCharCode(h[156] as number);
    const size = octal(h, 124, 12, 'size', off);
    const dataAt = off + BLOCK;
    if (dataAt + size > src.size) throw new CorruptError('tar.Header', `member of ${size} bytes runs past the archive`, off);
    if ('LKxgS'.includes(type)) throw new UnsupportedError('tar', [`typeflag ${type}`]);
    const prefix = latin1.decode(field(h, 345, 155));
    const name = latin1.decode(field(h, 0, 100));
    const parts = `${prefix}${prefix ? '/' : ''}${name}`.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.some((p) => p === '..')) throw new CorruptError('tar.Name', 'member name with ..', off);
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      let next = dir.children.get(p);
      if (!next) dir.children.set(p, (next = newDir(nextId++)));
      if (next.kind !== 'dir') throw new CorruptError('tar.Name', `${p} is not a directory`, off);
      dir = next;
    }
    const leaf = parts.at(-1);
    if (leaf !== undefined) {
      if (dir.children.size >= ctx.limits.dirEntries) throw new LimitExceededError('dirEntries', 'tar directory too large', ctx.limits.dirEntries);
      const mode = octal(h, 100, 8, 'mode', off);
      const mtime = octal(h, 136, 12, 'mtime', off);
      const target = field(h, 157, 100).slice();
      const kind = type === '5' ? 'dir' : type === '2' ? 'symlink' : type === '0' || type === '\0' ? 'file' : 'other';
      const old = dir.children.get(leaf);
      const node: TarNode = {
        kind,
        size: kind === 'symlink' ? target.length : kind === 'file' ? size : 0,
        id: nextId++,
        mode,
        mtime,
        data: dataAt,
        target,
        // A directory member after its children (or twice) keeps the children already seen.
        children: kind === 'dir' && old?.kind === 'dir' ? old.children : new Map(),
      };
      dir.children.set(leaf, node);
    }
    const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    if (next <= off) throw new CorruptError('tar.Header', 'no progress', off);
    off = next;
  }
  return new TarVolume(src, root);
}

export const ustar: FilesystemDriver = {
  id: 'ustar',
  async probe(src: ByteSource, ctx: Context): Promise<ProbeResult | null> {
    if (src.size < BLOCK) return null;
    const h = await new BlockCache(src, ctx.budget, BLOCK).read(0, BLOCK);
    return isUstar(h) && checksumOk(h, 0) ? { type: 'ustar' } : null;
  },
  open: openTar,
};
