/**
 * Named budgets (threat-model.md §4.6). Every number read from an image that can make us loop,
 * allocate, recurse or write is checked against one of these; exceeding one is a LimitExceededError
 * naming it. Callers override any of them; the defaults are the documented ones.
 */
import type { CodecTable } from './codec/types.ts';
import { LimitExceededError } from './errors.ts';

export interface Limits {
  /** Bytes of a boot config read (pygrub FS_READ_MAX). */
  readonly configBytes: number;
  /** Longest config line. */
  readonly configLineBytes: number;
  /** Menu entries per config. */
  readonly menuEntries: number;
  /** Nesting of submenus, `source`/`configfile`, `INCLUDE`. */
  readonly configDepth: number;
  /** Kernel and ramdisk size each. */
  readonly fileBytes: number;
  /** Kernel argument bytes (hard cap). */
  readonly argsBytes: number;
  /** Metadata bytes read from the image (everything but file data). */
  readonly metadataBytes: number;
  /** Symlink hops per path resolution. */
  readonly symlinkHops: number;
  /** Path length and one component's length. */
  readonly pathBytes: number;
  readonly nameBytes: number;
  /** Depth of on-disk trees (extents, B-trees) and of directory nesting in a walk. */
  readonly treeDepth: number;
  /** Directory entries scanned per lookup/readdir. */
  readonly dirEntries: number;
  /** Inodes/nodes visited in one run. */
  readonly nodesVisited: number;
  /** Partition entries (GPT array entries, MBR logical partitions, slices). */
  readonly partitionEntries: number;
  /** Bytes of block cache. */
  readonly cacheBytes: number;
  /** Largest single read/allocation sized by the image. */
  readonly allocBytes: number;
  /** Wall time in milliseconds for a whole run (0 = none). */
  readonly wallMs: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  configBytes: 1 << 20,
  configLineBytes: 64 << 10,
  menuEntries: 1024,
  configDepth: 8,
  fileBytes: 256 << 20,
  argsBytes: 4096,
  metadataBytes: 64 << 20,
  symlinkHops: 8,
  pathBytes: 4096,
  nameBytes: 255,
  treeDepth: 16,
  dirEntries: 1_000_000,
  nodesVisited: 100_000,
  partitionEntries: 1024,
  cacheBytes: 32 << 20,
  allocBytes: 64 << 20,
  wallMs: 60_000,
});

export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const out: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
    const v = overrides[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`limit ${key} must be a non-negative integer`);
    out[key] = v;
  }
  return Object.freeze(out) as unknown as Limits;
}

/**
 * Running counters for one run (one open image). Shared by every layer so that a hostile image
 * cannot spread its cost across structures to stay under each local cap.
 */
export class Budget {
  readonly limits: Limits;
  readonly signal: AbortSignal | undefined;
  private deadline: number;
  metadataBytes = 0;
  nodesVisited = 0;
  /** Counters for benchmarks: bytes and calls that reached the underlying source. */
  bytesRead = 0;
  readCalls = 0;

  constructor(limits: Limits = DEFAULT_LIMITS, signal?: AbortSignal) {
    this.limits = limits;
    this.signal = signal;
    this.deadline = limits.wallMs > 0 ? Date.now() + limits.wallMs : Number.POSITIVE_INFINITY;
  }

  /** Charges metadata reads; called by drivers for every non-data read. */
  chargeMetadata(bytes: number): void {
    this.metadataBytes += bytes;
    if (this.metadataBytes > this.limits.metadataBytes) {
      throw new LimitExceededError('metadataBytes', `read ${this.metadataBytes} bytes of metadata`, this.limits.metadataBytes);
    }
    this.check();
  }

  /** Charges one visited inode/tree node. */
  chargeNode(count = 1): void {
    this.nodesVisited += count;
    if (this.nodesVisited > this.limits.nodesVisited) {
      throw new LimitExceededError('nodesVisited', `visited ${this.nodesVisited} nodes`, this.limits.nodesVisited);
    }
    if ((this.nodesVisited & 255) === 0) this.check();
  }

  /**
   * Starts the wall-clock budget again: time a person spends in the interactive menu is not parsing
   * time (the worker only waits for the choice).
   */
  restartClock(): void {
    this.deadline = this.limits.wallMs > 0 ? Date.now() + this.limits.wallMs : Number.POSITIVE_INFINITY;
  }

  /** Throws when the wall-clock budget is spent or the caller aborted. */
  check(): void {
    if (this.signal?.aborted) throw new LimitExceededError('aborted', 'operation aborted');
    if (Date.now() > this.deadline) throw new LimitExceededError('wallMs', 'time budget spent', this.limits.wallMs);
  }
}

/** The standard per-call context every layer receives. */
export interface Context {
  readonly limits: Limits;
  readonly budget: Budget;
  /** Decompressors available to drivers (src/codec); a missing one means Unsupported. */
  readonly codecs: CodecTable;
}

export function createContext(overrides: Partial<Limits> = {}, codecs: CodecTable = {}, signal?: AbortSignal): Context {
  const limits = resolveLimits(overrides);
  return { limits, budget: new Budget(limits, signal), codecs };
}
