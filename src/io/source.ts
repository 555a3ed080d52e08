/**
 * One positional-read interface for everything: image files, partitions, containers, memory.
 * `read` returns exactly `length` bytes or throws; a range outside [0, size) is a CorruptError,
 * because it always means some on-disk structure pointed outside its container.
 */
import { CorruptError, LimitExceededError } from '../errors.ts';
import type { Budget } from '../limits.ts';

export interface ByteSource {
  /** Size in bytes (exact integer ≤ 2^53). */
  readonly size: number;
  /** Exactly `length` bytes at `offset`, in a buffer the caller may keep. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** A short human name for messages ("image", "p1", "p5/s0"). */
  readonly name?: string;
}

export function checkRange(src: { size: number; name?: string | undefined }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new CorruptError(
      'OutOfBounds',
      `read of ${length} bytes at ${offset} outside ${src.name ?? 'source'} of ${src.size} bytes`,
      Number.isFinite(offset) ? offset : undefined,
    );
  }
}

export class MemorySource implements ByteSource {
  readonly size: number;
  readonly name: string;
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array, name = 'memory') {
    // A plain Uint8Array view: Buffer#slice would return a view, not the copy `read` promises.
    this.bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = bytes.length;
    this.name = name;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.bytes.slice(offset, offset + length);
  }
}

/** A window of a parent source. Reads are clamped to the window: a partition cannot read past itself. */
export class SliceSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  readonly parent: ByteSource;
  readonly start: number;
  constructor(parent: ByteSource, start: number, size: number, name = 'slice') {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || start < 0 || size < 0 || start + size > parent.size) {
      throw new CorruptError('OutOfBounds', `slice ${start}+${size} outside ${parent.name ?? 'source'} of ${parent.size} bytes`, start);
    }
    this.parent = parent;
    this.start = start;
    this.size = size;
    this.name = name;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.parent.read(this.start + offset, length);
  }
}

/** Counts bytes and calls reaching a source (read amplification in benchmarks). */
export class CountingSource implements ByteSource {
  readonly size: number;
  readonly name: string | undefined;
  bytesRead = 0;
  readCalls = 0;
  constructor(private readonly inner: ByteSource) {
    this.size = inner.size;
    this.name = inner.name;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.bytesRead += length;
    this.readCalls++;
    return this.inner.read(offset, length);
  }
}

/**
 * A small LRU block cache for metadata, with read-once semantics within a run (a block is fetched
 * once and every decision uses those bytes: no validate-then-reread TOCTOU). Misses are fetched in
 * contiguous runs with one read each and charged to the metadata budget. Large reads bypass it.
 */
export class BlockCache implements ByteSource {
  readonly size: number;
  readonly name: string | undefined;
  private readonly blocks = new Map<number, Uint8Array>();
  private readonly maxBlocks: number;
  static readonly BYPASS = 1 << 20;

  constructor(
    readonly inner: ByteSource,
    private readonly budget: Budget,
    readonly blockSize = 4096,
  ) {
    this.size = inner.size;
    this.name = inner.name;
    this.maxBlocks = Math.max(16, Math.floor(budget.limits.cacheBytes / blockSize));
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (length > this.budget.limits.allocBytes) {
      throw new LimitExceededError('allocBytes', `metadata read of ${length} bytes at ${offset}`, this.budget.limits.allocBytes);
    }
    // Every metadata read counts, hits included: the budget bounds metadata *work*, so a cycle that
    // keeps re-reading cached blocks still runs out.
    this.budget.chargeMetadata(length);
    if (length === 0) return new Uint8Array(0);
    const bs = this.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    if (length >= BlockCache.BYPASS || (last - first + 1) * 2 > this.maxBlocks) return this.inner.read(offset, length);
    // Fetch missing blocks in contiguous runs.
    let b = first;
    while (b <= last) {
      if (this.blocks.has(b)) {
        b++;
        continue;
      }
      let e = b;
      while (e + 1 <= last && !this.blocks.has(e + 1)) e++;
      const start = b * bs;
      const end = Math.min((e + 1) * bs, this.size);
      const data = await this.inner.read(start, end - start);
      for (let k = b; k <= e; k++) {
        const o = (k - b) * bs;
        this.put(k, data.subarray(o, Math.min(o + bs, data.length)));
      }
      b = e + 1;
    }
    if (first === last) {
      const blk = this.get(first);
      const o = offset - first * bs;
      return Uint8Array.prototype.slice.call(blk, o, o + length);
    }
    const out = new Uint8Array(length);
    let pos = 0;
    for (let k = first; k <= last; k++) {
      const blk = this.get(k);
      const o = k === first ? offset - first * bs : 0;
      const n = Math.min(blk.length - o, length - pos);
      out.set(blk.subarray(o, o + n), pos);
      pos += n;
    }
    return out;
  }

  private get(k: number): Uint8Array {
    const blk = this.blocks.get(k);
    if (!blk) throw new CorruptError('BlockCache', `block ${k} evicted during read`);
    // refresh LRU position
    this.blocks.delete(k);
    this.blocks.set(k, blk);
    return blk;
  }

  private put(k: number, data: Uint8Array): void {
    this.blocks.set(k, data);
    while (this.blocks.size > this.maxBlocks) {
      const oldest = this.blocks.keys().next().value as number;
      this.blocks.delete(oldest);
    }
  }
}
