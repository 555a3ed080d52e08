/**
 * The filesystem plugin API (the stable contract, libfsimage's promise). A driver implements
 * inode-level operations; path walking, symlinks and limits live once, in the vfs.
 */
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';

export type NodeKind = 'file' | 'dir' | 'symlink' | 'other';

/** An inode as the driver sees it. Drivers may subclass/extend with their private fields. */
export interface FsNode {
  readonly kind: NodeKind;
  /** Size in bytes (a file's logical size, a symlink's target length). Exact integer. */
  readonly size: number;
  /** Inode number or other stable identity within the volume (for display and loop detection). */
  readonly id: number | string;
  /** POSIX mode bits (type and permissions) when the format has them. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly nlink?: number;
  /** Modification time, seconds since the epoch. */
  readonly mtime?: number;
}

export interface DirEntry {
  /** Raw name bytes as stored (no '/', not '.' or '..'; the vfs filters those out). */
  readonly name: Uint8Array;
  /** The entry's type when the directory records it, else 'unknown' (vfs then looks it up). */
  readonly kind: NodeKind | 'unknown';
}

/** Where a file's bytes live: `physical` is a byte offset in `Volume.source`, null for a hole. */
export interface Extent {
  readonly logical: number;
  readonly length: number;
  readonly physical: number | null;
}

/**
 * `count` extents packed three numbers each in `data`: extent i is data[3i] (`logical`), data[3i + 1]
 * (`length`) and data[3i + 2] (`physical`, −1 for a hole). Every value is a safe integer.
 */
export interface ExtentBatch {
  readonly count: number;
  readonly data: Float64Array;
}

export interface Volume {
  /** The driver id ("ext4", "iso9660"). */
  readonly type: string;
  readonly label?: string;
  readonly uuid?: string;
  /** The source the volume was opened on (extents refer to it). */
  readonly source: ByteSource;
  root(): Promise<FsNode>;
  /** Looks up one name in a directory; null when absent. */
  lookup(dir: FsNode, name: Uint8Array): Promise<FsNode | null>;
  readdir(dir: FsNode): AsyncIterable<DirEntry>;
  /**
   * Reads up to `length` bytes at `offset` of a regular file (short only at EOF). Holes are zeros.
   * Drivers merge contiguous blocks so one call makes few, large source reads.
   */
  read(file: FsNode, offset: number, length: number): Promise<Uint8Array>;
  readlink(link: FsNode): Promise<Uint8Array>;
  /**
   * Optional fast path for big copies: the file's mapping, ascending and non-overlapping, physical
   * offsets in `source`; a gap or a null `physical` is a hole (zeros). A driver that cannot map a
   * file (inline, compressed data) throws Unsupported — it never yields nothing, which would mean
   * "all holes" — and the copy falls back to `read`.
   */
  extents?(file: FsNode): AsyncIterable<Extent>;
  /**
   * Optional: the same mapping as `extents`, many extents at a time and packed (ExtentBatch). For
   * drivers whose maps can be long (a file in 4 KiB fragments has tens of thousands of extents): one
   * promise and one object per extent then cost more than the extent itself. The copy fast path
   * prefers it when present.
   */
  extentBatches?(file: FsNode): AsyncIterable<ExtentBatch>;
  /** The ZFS boot string (`zfs-bootfs=pool/obj,bootpath=…`), null for other formats. */
  bootstring?(): string | null;
}

export interface ProbeResult {
  readonly type: string;
  readonly label?: string;
  readonly uuid?: string;
}

/** Options a caller passes to a driver's open (e.g. ZFS dataset, btrfs subvolume). */
export interface OpenOptions {
  readonly dataset?: string;
  readonly subvolume?: string;
}

export interface FilesystemDriver {
  readonly id: string;
  /** Bounded: reads a few KiB, allocates nothing sized by the image. null = not mine. */
  probe(src: ByteSource, ctx: Context): Promise<ProbeResult | null>;
  /** Opens the filesystem; throws typed errors. */
  open(src: ByteSource, ctx: Context, options?: OpenOptions): Promise<Volume>;
}
