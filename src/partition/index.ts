/**
 * Partition-table entry point: tries each scheme on the whole disk and returns the first table found.
 * Order: GPT (only when sector 0 is a protective MBR or none), MBR (with logicals and nested
 * VTOC/BSD labels), then a whole-disk Solaris VTOC and a whole-disk BSD label.
 */
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { bsdScheme } from './bsd.ts';
import { gptScheme } from './gpt.ts';
import { mbrScheme } from './mbr.ts';
import type { PartitionScheme, PartitionTable } from './types.ts';
import { vtocScheme } from './vtoc.ts';

export { bsdScheme } from './bsd.ts';
export { gptScheme } from './gpt.ts';
export { mbrScheme } from './mbr.ts';
export { vtocScheme } from './vtoc.ts';
export type { Partition, PartitionScheme, PartitionTable, SchemeId } from './types.ts';

export const PARTITION_SCHEMES: readonly PartitionScheme[] = Object.freeze([gptScheme, mbrScheme, vtocScheme, bsdScheme]);

/**
 * Scans `src` for a partition table; `{scheme: null, partitions: []}` when there is none. An MBR
 * that lists no partitions still lets the whole-disk labels be tried, and is returned if none match.
 * Errors from a table that is present but unusable (a GPT whose headers all fail) propagate, typed.
 */
export async function scanPartitions(
  src: ByteSource,
  ctx: Context,
  schemes: readonly PartitionScheme[] = PARTITION_SCHEMES,
): Promise<PartitionTable> {
  let empty: PartitionTable | null = null;
  for (const scheme of schemes) {
    ctx.budget.check();
    const table = await scheme.scan(src, ctx);
    if (!table) continue;
    if (table.partitions.length > 0) return table;
    empty ??= table;
  }
  return empty ?? { scheme: null, partitions: [], warnings: [] };
}
