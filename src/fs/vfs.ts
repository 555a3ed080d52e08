/**
 * Path walking, once for all drivers: absolute and relative paths, `.`/`..`, repeated slashes,
 * symlinks (relative and absolute, resolved inside the image; `..` at the root stays at the root),
 * a hop limit, path and name length limits, and bounded reads and streaming of file data.
 */
import {
  CorruptError,
  IsADirectoryError,
  LimitExceededError,
  NotADirectoryError,
  NotFoundError,
  TooManySymlinksError,
  isTsgrubError,
} from '../errors.ts';
import { concatBytes, decodeUtf8, textEncoder } from '../io/bytes.ts';
import type { Context } from '../limits.ts';
import type { DirEntry, FsNode, Volume } from './types.ts';

const SLASH = 0x2f;
const DOT = 0x2e;

export type PathLike = string | Uint8Array;

export interface ListedEntry {
  readonly name: Uint8Array;
  readonly kind: DirEntry['kind'];
}

export interface StreamOptions {
  /** Chunk size of each read (default 1 MiB). */
  readonly chunkBytes?: number;
  /** Refuse files larger than this (LimitExceeded `fileBytes`); default: the context's fileBytes. */
  readonly maxBytes?: number;
  /** Read at most this many bytes instead of refusing (config reads: pygrub reads the first 1 MiB). */
  readonly truncateAt?: number;
}

function splitPath(path: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === SLASH) {
      if (i > start) out.push(path.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

function isDot(c: Uint8Array): boolean {
  return c.length === 1 && c[0] === DOT;
}
function isDotDot(c: Uint8Array): boolean {
  return c.length === 2 && c[0] === DOT && c[1] === DOT;
}

export function toPathBytes(p: PathLike): Uint8Array {
  return typeof p === 'string' ? textEncoder.encode(p) : p;
}

/** Lookups a Vfs remembers (see `Vfs.lookup`); past this many it forgets them all and starts again. */
const MAX_DENTRIES = 4096;

/** A name's bytes as a string key, one character per byte (exact for any bytes, unlike UTF-8). */
function nameKey(name: Uint8Array): string {
  let k = '';
  for (let i = 0; i < name.length; i++) k += String.fromCharCode(name[i] as number);
  return k;
}

export class Vfs {
  constructor(
    readonly volume: Volume,
    readonly ctx: Context,
  ) {}

  /**
   * Answers of the driver's `lookup`, by directory node and name: a node, or null when the name is
   * absent. The image does not change under a run, and the same lookup comes back often (a boot asks
   * for /boot/… seven times: the config, its search, the kernel and the ramdisk, each resolved again
   * by who uses it). Errors are not kept. Bounded by MAX_DENTRIES.
   */
  private readonly dentries = new Map<FsNode, Map<string, FsNode | null>>();
  private dentryCount = 0;

  private async lookup(dir: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const key = nameKey(name);
    let names = this.dentries.get(dir);
    const known = names?.get(key);
    if (known !== undefined) return known;
    const found = await this.volume.lookup(dir, name);
    if (this.dentryCount >= MAX_DENTRIES) {
      this.dentries.clear();
      this.dentryCount = 0;
      names = undefined;
    }
    if (!names) this.dentries.set(dir, (names = new Map()));
    names.set(key, found);
    this.dentryCount++;
    return found;
  }

  /** Resolves a path to a node. `follow` decides whether a final symlink is followed (stat vs lstat). */
  async resolve(path: PathLike, follow = true): Promise<FsNode> {
    const { limits, budget } = this.ctx;
    const bytes = toPathBytes(path);
    const shown = typeof path === 'string' ? path : decodeUtf8(path);
    if (bytes.length > limits.pathBytes) throw new LimitExceededError('pathBytes', `path of ${bytes.length} bytes`, limits.pathBytes);
    const root = await this.volume.root();
    // ancestors[i] is the directory we came from, so `..` never needs the driver's help and never leaves the root.
    let ancestors: FsNode[] = [];
    let cur = root;
    // Remaining components, consumed from the end (reversed for O(1) pops).
    let pending = splitPath(bytes).reverse();
    let hops = 0;
    let steps = 0;
    const maxSteps = limits.symlinkHops * 1024 + 4096;
    while (pending.length > 0) {
      if (++steps > maxSteps) throw new LimitExceededError('pathSteps', `path resolution of ${shown} took too many steps`, maxSteps);
      if ((steps & 63) === 0) budget.check();
      const comp = pending.pop() as Uint8Array;
      if (isDot(comp)) continue;
      if (isDotDot(comp)) {
        cur = ancestors.pop() ?? root;
        continue;
      }
      if (comp.length > limits.nameBytes) throw new LimitExceededError('nameBytes', `name of ${comp.length} bytes in ${shown}`, limits.nameBytes);
      if (cur.kind !== 'dir') throw new NotADirectoryError(shown);
      const next = await this.lookup(cur, comp);
      // Charged whether or not the answer was remembered: a walk's cost stays bounded by its steps.
      budget.chargeNode();
      if (!next) throw new NotFoundError(shown);
      const isLast = pending.length === 0;
      if (next.kind === 'symlink' && (follow || !isLast)) {
        if (++hops > limits.symlinkHops) throw new TooManySymlinksError(shown, hops);
        const target = await this.readlinkNode(next);
        const parts = splitPath(target).reverse();
        if (pending.length + parts.length > limits.pathBytes) {
          throw new LimitExceededError('pathBytes', `symlink expansion of ${shown} grew too long`, limits.pathBytes);
        }
        if (target[0] === SLASH) {
          ancestors = [];
          cur = root;
        }
        pending = pending.concat(parts);
        continue;
      }
      ancestors.push(cur);
      if (ancestors.length > limits.pathBytes) throw new LimitExceededError('pathBytes', `path ${shown} too deep`, limits.pathBytes);
      cur = next;
    }
    return cur;
  }

  stat(path: PathLike): Promise<FsNode> {
    return this.resolve(path, true);
  }

  lstat(path: PathLike): Promise<FsNode> {
    return this.resolve(path, false);
  }

  /** True when the path resolves (following symlinks); false for NotFound/NotADirectory/TooManySymlinks. */
  async exists(path: PathLike): Promise<boolean> {
    try {
      await this.resolve(path, true);
      return true;
    } catch (e) {
      if (isTsgrubError(e) && (e.code === 'NotFound' || e.code === 'NotADirectory' || e.code === 'TooManySymlinks')) return false;
      throw e;
    }
  }

  /** A symlink's target, bounded by the path budget. */
  async readlinkNode(node: FsNode): Promise<Uint8Array> {
    const { limits } = this.ctx;
    if (node.size > limits.pathBytes) throw new LimitExceededError('pathBytes', `symlink target of ${node.size} bytes`, limits.pathBytes);
    const t = await this.volume.readlink(node);
    if (t.length > limits.pathBytes) throw new LimitExceededError('pathBytes', `symlink target of ${t.length} bytes`, limits.pathBytes);
    return t;
  }

  async readlink(path: PathLike): Promise<Uint8Array> {
    const node = await this.lstat(path);
    if (node.kind !== 'symlink') throw new CorruptError('NotASymlink', `${typeof path === 'string' ? path : decodeUtf8(path)} is not a symlink`);
    return this.readlinkNode(node);
  }

  /** Lists a directory (without `.` and `..`), bounded by `dirEntries`. */
  async readdir(path: PathLike | FsNode): Promise<ListedEntry[]> {
    const node = isNode(path) ? path : await this.stat(path);
    if (node.kind !== 'dir') throw new NotADirectoryError(isNode(path) ? String(node.id) : shownPath(path));
    const out: ListedEntry[] = [];
    const max = this.ctx.limits.dirEntries;
    for await (const e of this.volume.readdir(node)) {
      if (isDot(e.name) || isDotDot(e.name) || e.name.length === 0) continue;
      if (out.length >= max) throw new LimitExceededError('dirEntries', `directory has more than ${max} entries`, max);
      out.push({ name: e.name, kind: e.kind });
      if ((out.length & 1023) === 0) this.ctx.budget.check();
    }
    return out;
  }

  /**
   * Streams a regular file's bytes in large chunks. The declared size is checked against the cap
   * before the first byte (a sparse 600 MiB "kernel" stops here), and every chunk is counted.
   */
  async *chunks(node: FsNode, opts: StreamOptions = {}): AsyncGenerator<Uint8Array> {
    if (node.kind === 'dir') throw new IsADirectoryError(String(node.id));
    if (node.kind !== 'file') throw new CorruptError('NotAFile', `node ${node.id} is not a regular file`);
    const chunk = opts.chunkBytes ?? 1 << 20;
    let size = node.size;
    if (opts.truncateAt !== undefined) size = Math.min(size, opts.truncateAt);
    else {
      const max = opts.maxBytes ?? this.ctx.limits.fileBytes;
      if (size > max) throw new LimitExceededError('fileBytes', `file of ${size} bytes`, max);
    }
    let off = 0;
    while (off < size) {
      this.ctx.budget.check();
      const want = Math.min(chunk, size - off);
      const data = await this.volume.read(node, off, want);
      if (data.length !== want) {
        throw new CorruptError('ShortRead', `file ${node.id}: got ${data.length} of ${want} bytes at ${off} before its end`);
      }
      off += want;
      yield data;
    }
  }

  /** Reads a whole (small) file into memory, bounded by `maxBytes` or truncated at `truncateAt`. */
  async readFile(path: PathLike | FsNode, opts: StreamOptions = {}): Promise<Uint8Array> {
    const node = isNode(path) ? path : await this.stat(path);
    const parts: Uint8Array[] = [];
    for await (const c of this.chunks(node, opts)) parts.push(c);
    return parts.length === 0 ? new Uint8Array(0) : concatBytes(parts);
  }
}

function isNode(x: unknown): x is FsNode {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && 'kind' in x;
}

function shownPath(p: PathLike): string {
  return typeof p === 'string' ? p : decodeUtf8(p);
}
