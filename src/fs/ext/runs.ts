/**
 * A file's block mapping as sorted runs of physically contiguous, initialised blocks. Holes and
 * unwritten extents are simply absent (read as zeros). Adjacent runs that are also physically
 * contiguous are merged, so a read turns into one source read per run.
 *
 * Packed, three numbers a run (Triples): a file in 4 KiB fragments has tens of thousands of runs, and
 * one object each cost more in allocation and garbage collection than the whole walk of its extent tree.
 */
import { LimitExceededError } from '../../errors.ts';
import type { Context } from '../../limits.ts';
import { Triples } from '../../io/triples.ts';

/** Runs kept per file; a mapping larger than this is refused rather than allocated. */
export const MAX_RUNS = 1 << 22;

export class RunList extends Triples {
  constructor() {
    super(MAX_RUNS);
  }

  /** Run i: first logical block, number of blocks, first physical block. */
  logical(i: number): number {
    return this.data[3 * i] as number;
  }

  blocks(i: number): number {
    return this.data[3 * i + 1] as number;
  }

  physical(i: number): number {
    return this.data[3 * i + 2] as number;
  }

  /**
   * The last run's end, logical and physical, and length, kept apart from `data`: the merge test then
   * reads no Float64Array element (each such read makes a heap number in unoptimized code, and a map
   * is built once, mostly before V8 has optimized it).
   */
  private lastLogicalEnd = -1;
  private lastPhysicalEnd = -1;
  private lastBlocks = 0;

  /** Appends a run (callers add in ascending logical order), merging it with the previous when contiguous. */
  add(logical: number, count: number, physical: number, ctx: Context): void {
    const n = this.count;
    if (n > 0 && this.lastLogicalEnd === logical && this.lastPhysicalEnd === physical) {
      const blocks = this.lastBlocks + count;
      this.data[3 * (n - 1) + 1] = blocks;
      this.lastBlocks = blocks;
      this.lastLogicalEnd = logical + count;
      this.lastPhysicalEnd = physical + count;
      return;
    }
    if (n >= MAX_RUNS) throw new LimitExceededError('allocBytes', `file mapping of more than ${MAX_RUNS} runs`);
    if ((n & 1023) === 1023) ctx.budget.check();
    this.push(logical, count, physical);
    this.lastBlocks = count;
    this.lastLogicalEnd = logical + count;
    this.lastPhysicalEnd = physical + count;
  }

  /** Index of the first run whose end lies after logical block `lb` (binary search). */
  firstAfter(lb: number): number {
    const d = this.data;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((d[3 * mid] as number) + (d[3 * mid + 1] as number) <= lb) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
