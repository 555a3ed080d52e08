/**
 * A file's block mapping as sorted runs of physically contiguous, initialised blocks. Holes and
 * unwritten extents are simply absent (read as zeros). Adjacent runs that are also physically
 * contiguous are merged, so a read turns into one source read per run.
 */
import { LimitExceededError } from '../../errors.ts';
import type { Context } from '../../limits.ts';

export interface Run {
  /** First logical block. */
  logical: number;
  /** Number of blocks. */
  count: number;
  /** First physical block. */
  physical: number;
}

export type RunList = Run[];

/** Runs kept per file; a mapping larger than this is refused rather than allocated. */
export const MAX_RUNS = 1 << 22;

/** Appends a run (callers add in ascending logical order), merging it with the previous when contiguous. */
export function addRun(runs: RunList, logical: number, count: number, physical: number, ctx: Context): void {
  const last = runs[runs.length - 1];
  if (last && last.logical + last.count === logical && last.physical + last.count === physical) {
    last.count += count;
    return;
  }
  if (runs.length >= MAX_RUNS) throw new LimitExceededError('allocBytes', `file mapping of more than ${MAX_RUNS} runs`);
  if ((runs.length & 1023) === 1023) ctx.budget.check();
  runs.push({ logical, count, physical });
}

/** Index of the first run whose end lies after logical block `lb` (binary search). */
export function firstRunAfter(runs: RunList, lb: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const r = runs[mid] as Run;
    if (r.logical + r.count <= lb) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
