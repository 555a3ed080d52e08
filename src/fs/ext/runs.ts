/**
 * A file's block mapping as sorted runs of physically contiguous, initialised blocks. Holes and
 * unwritten extents are simply absent (read as zeros). Adjacent runs that are also physically
 * contiguous are merged, so a read turns into one source read per run.
 *
 * Packed, three numbers a run in one Float64Array (exact for every block number below 2^53): a file
 * in 4 KiB fragments has tens of thousands of runs, and one object each cost more in allocation and
 * garbage collection than the whole walk of its extent tree.
 */
import { LimitExceededError } from '../../errors.ts';
import type { Context } from '../../limits.ts';

/** Runs kept per file; a mapping larger than this is refused rather than allocated. */
export const MAX_RUNS = 1 << 22;

export class RunList {
  /** Number of runs. */
  length = 0;
  /** Run i is data[3i] (first logical block), data[3i + 1] (blocks), data[3i + 2] (first physical block). */
  data = new Float64Array(3 * 16);

  logical(i: number): number {
    return this.data[3 * i] as number;
  }

  count(i: number): number {
    return this.data[3 * i + 1] as number;
  }

  physical(i: number): number {
    return this.data[3 * i + 2] as number;
  }

  /** Appends a run (callers add in ascending logical order), merging it with the previous when contiguous. */
  add(logical: number, count: number, physical: number, ctx: Context): void {
    let d = this.data;
    const n = this.length;
    if (n > 0) {
      const at = 3 * (n - 1);
      const len = d[at + 1] as number;
      if ((d[at] as number) + len === logical && (d[at + 2] as number) + len === physical) {
        d[at + 1] = len + count;
        return;
      }
    }
    if (n >= MAX_RUNS) throw new LimitExceededError('allocBytes', `file mapping of more than ${MAX_RUNS} runs`);
    if ((n & 1023) === 1023) ctx.budget.check();
    if (3 * n + 3 > d.length) {
      const grown = new Float64Array(Math.min(2 * d.length, 3 * MAX_RUNS));
      grown.set(d);
      this.data = d = grown;
    }
    d[3 * n] = logical;
    d[3 * n + 1] = count;
    d[3 * n + 2] = physical;
    this.length = n + 1;
  }

  /** Index of the first run whose end lies after logical block `lb` (binary search). */
  firstAfter(lb: number): number {
    const d = this.data;
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((d[3 * mid] as number) + (d[3 * mid + 1] as number) <= lb) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
