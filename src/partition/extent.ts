/**
 * Where a partition lies, checked against its container. Every scheme reports extents read from the
 * image; a hostile table may point past the disk or past its container, so each extent is clamped (it
 * overhangs the end) or skipped (it starts outside), with a warning — never trusted, never a crash.
 */
import { BlockCache, SliceSource, type ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import type { Partition, PartitionScheme, PartitionTable } from './types.ts';

/** A byte range [start, start + size) inside a container that itself lies at [base, base + limit). */
export interface Extent {
  readonly start: number;
  readonly size: number;
}

/**
 * Checks the absolute byte range [start, start + size) (computed by the caller from on-disk sectors)
 * against the container [base, base + limit). Returns it, clamped to the container's end, or null
 * (with a warning) when it starts outside the container or its numbers are not exact integers.
 */
export function placeExtent(start: number, size: number, base: number, limit: number, what: string, warnings: string[]): Extent | null {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || !Number.isSafeInteger(start + size) || size <= 0) {
    warnings.push(`${what}: extent ${start}+${size} bytes is not a valid range; skipped`);
    return null;
  }
  if (start < base || start >= base + limit) {
    warnings.push(`${what}: starts at byte ${start}, outside its container [${base}, ${base + limit}); skipped`);
    return null;
  }
  const room = base + limit - start;
  if (size > room) {
    warnings.push(`${what}: ${size} bytes at ${start} run past the end of its container; clamped to ${room}`);
    return { start, size: room };
  }
  return { start, size };
}

/** True when two non-empty extents share a byte. */
export function overlaps(a: Extent, b: Extent): boolean {
  return a.start < b.start + b.size && b.start < a.start + a.size;
}

/** A partition record with its clamped sub-source of the whole disk. */
export function makePartition(disk: ByteSource, fields: Omit<Partition, 'source'>): Partition {
  const source = new SliceSource(disk, fields.start, fields.size, `${disk.name ?? 'disk'}:p${fields.path}`);
  return { ...fields, source };
}

/** Reads a nested label (VTOC, BSD) of the container [base, base + limit) of `disk`. */
export type LabelReader = (
  disk: ByteSource,
  cache: ByteSource,
  base: number,
  limit: number,
  parent: string | undefined,
  ctx: Context,
  warnings: string[],
) => Promise<Partition[] | null>;

/** The same label found at the start of a whole disk with no fdisk table. */
export function wholeDiskScheme(id: 'vtoc' | 'bsd', read: LabelReader): PartitionScheme {
  return {
    id,
    async scan(src: ByteSource, ctx: Context): Promise<PartitionTable | null> {
      const warnings: string[] = [];
      const parts = await read(src, new BlockCache(src, ctx.budget), 0, src.size, undefined, ctx, warnings);
      return parts === null ? null : { scheme: id, partitions: parts, warnings };
    },
  };
}
