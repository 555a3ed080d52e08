/**
 * Streams a file out of an image into a file descriptor with memory that does not grow with the file.
 *
 * Fast path (bench/README.md): when the driver maps the file (`Volume.extentBatches` or `extents`) and
 * the volume sits on a FileSource (through any number of SliceSources, i.e. partitions), the extents
 * are validated and coalesced into packed runs (`Runs`) first, then copied through two reused 1 MiB buffers: physically contiguous extents become
 * reads of up to 1 MiB straight into a buffer; runs of small fragments that lie close together are
 * read as one window (gaps included, never past the partition) and gathered from it; holes are written
 * as zeros; each full buffer is written by libuv's pool while this thread fills the other. No
 * per-chunk allocation. Everything else (compressed or unmapped files, other sources) goes through
 * `Vfs.chunks`. */
import { write, writeSync } from 'node:fs';
import { CorruptError, IoError, LimitExceededError, UnsupportedError } from '../errors.ts';
import { SliceSource, type ByteSource } from '../io/source.ts';
import type { Extent, ExtentBatch, FsNode } from '../fs/types.ts';
import type { StreamOptions, Vfs } from '../fs/vfs.ts';
import { FileSource } from './file-source.ts';
import { Triples } from '../io/triples.ts';

/** Buffer of the fast path and chunk of the fallback: the floor's size; larger buys nothing measurable. */
const COPY_BYTES = 1 << 20;
/** Mapped runs kept per file before copying (a hostile map is refused, not allocated). */
const MAX_RUNS = 1 << 22;
/**
 * Fragment gathering (bench/README.md): runs shorter than SMALL_RUN that follow each other forward on
 * disk with gaps of at most MAX_GAP are read as one window of up to WINDOW_BYTES — gaps included — and
 * copied out of it. A pread from Node costs ~3–5 µs; copying 32 KiB of gap costs less than one.
 */
const SMALL_RUN = 64 << 10;
const MAX_GAP = 32 << 10;
/** Size of one window read (a file in 4 KiB fragments: ~64 fragments and their gaps per pread). */
const WINDOW_BYTES = 512 << 10;

/**
 * Fragment gathering: the runs from `i` on that one window would serve (a data run shorter than
 * SMALL_RUN, then every following one that is also small and lies forward on disk within MAX_GAP of
 * the previous, all within WINDOW_BYTES of the first). Returns the index after the last such run, or
 * i + 1 when run i does not start a window. A window only serves two runs or more, so an isolated
 * fragment is never read with its gap.
 */
function windowEnd(d: Float64Array, n: number, i: number): number {
  const first = d[3 * i + 2] as number;
  const firstLen = d[3 * i + 1] as number;
  if (first < 0 || firstLen >= SMALL_RUN) return i + 1;
  let end = first + firstLen;
  let j = i + 1;
  for (; j < n; j++) {
    const len = d[3 * j + 1] as number;
    const at = d[3 * j + 2] as number;
    if (at < 0 || len >= SMALL_RUN || at < end || at - end > MAX_GAP || at + len - first > WINDOW_BYTES) break;
    end = at + len;
  }
  return j;
}

/** Whether any window forms in `runs` (else the copy needs no room to gather). */
function anyWindow(runs: Runs): boolean {
  for (let i = 0; i < runs.count; ) {
    const j = windowEnd(runs.data, runs.count, i);
    if (j - i >= 2) return true;
    i = j;
  }
  return false;
}

function writeAll(fd: number, data: Uint8Array, position: number | null): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = () => {
      write(fd, data, done, data.length - done, position === null ? null : position + done, (err, n) => {
        if (err) return reject(new IoError(`write failed: ${err.message}`));
        done += n;
        if (done < data.length) step();
        else resolve();
      });
    };
    step();
  });
}

function writeAllSync(fd: number, data: Uint8Array, length: number, position: number | null): void {
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = writeSync(fd, data, done, length - done, position === null ? null : position + done);
    } catch (e) {
      throw new IoError(`write failed: ${(e as Error).message}`);
    }
    if (n <= 0) throw new IoError('write made no progress');
    done += n;
  }
}

/** The FileSource under a chain of SliceSources and the byte offset of `src`'s 0 in it; null otherwise. */
function underlyingFile(src: ByteSource): { file: FileSource; base: number; size: number } | null {
  let base = 0;
  let cur: ByteSource = src;
  for (let depth = 0; depth < 64; depth++) {
    if (cur instanceof FileSource) return { file: cur, base, size: src.size };
    if (!(cur instanceof SliceSource)) return null;
    base += cur.start;
    cur = cur.parent;
  }
  return null;
}

/**
 * A file's runs, packed three numbers each in `data` (a file in fragments has tens of thousands, and
 * one object each cost more than the copy's work on them): run i starts at file offset data[3i], is
 * data[3i + 1] bytes long and lies at data[3i + 2] in the image file (an absolute offset), −1 for a
 * hole. Ascending and contiguous from offset 0.
 */
export type Runs = ExtentBatch;


/** A driver's one-at-a-time `extents` as packed batches. */
async function* packExtents(extents: AsyncIterable<Extent>): AsyncIterable<ExtentBatch> {
  let data = new Float64Array(3 * 256);
  let k = 0;
  for await (const e of extents) {
    data[k] = e.logical;
    data[k + 1] = e.length;
    // A driver's bad physical offset (not null, not a safe integer ≥ 0) must stay bad, not turn into a hole.
    data[k + 2] = e.physical === null ? -1 : e.physical < 0 ? Number.NaN : e.physical;
    k += 3;
    if (k === data.length) {
      yield { count: k / 3, data };
      data = new Float64Array(data.length);
      k = 0;
    }
  }
  if (k) yield { count: k / 3, data };
}

/**
 * The file's map as ascending, non-overlapping runs covering [0, size): gaps become holes, extents
 * past `size` are clipped, contiguous neighbours are merged, every physical range is checked against
 * the volume's source (a partition cannot read past itself). Null when the driver mapped no data at
 * all: squashfs and erofs say "cannot map this file" (compressed, tail-packed) by yielding nothing,
 * which must not be taken for a file of zeros; a truly all-hole file just takes the chunked path.
 */
async function mapFile(
  vfs: Vfs,
  node: FsNode,
  size: number,
  within: { base: number; size: number },
  onRuns?: (runs: Runs) => void,
): Promise<Runs | null> {
  const vol = vfs.volume;
  // Batches when the driver has them (one promise per batch, not per extent).
  const batches: AsyncIterable<ExtentBatch> =
    typeof vol.extentBatches === 'function'
      ? vol.extentBatches(node)
      : packExtents((vol.extents as (f: FsNode) => AsyncIterable<Extent>).call(vol, node));
  const map = new RunMap(String(node.id), size, within, () => vfs.ctx.budget.check());
  for await (const batch of batches) {
    const more = map.add(batch);
    if (onRuns) {
      const ready = map.settled();
      if (ready.count) onRuns(ready);
    }
    if (!more) break;
  }
  const runs = map.finish();
  if (runs !== null && onRuns) {
    const tail = map.rest();
    if (tail.count) onRuns(tail);
  }
  return runs;
}

/**
 * Builds a file's runs from its extents (mapFile), packed (Runs). Synchronous on purpose: V8
 * optimizes a long loop while it runs (OSR) in a plain method, never in an async function, and a file
 * in 4 KiB fragments has tens of thousands of extents.
 */
class RunMap {
  private readonly rows = new Triples(MAX_RUNS);
  /** Runs already handed out by `settled`/`rest`. */
  private sent = 0;
  private pos = 0;
  private seen = 0;
  private mapped = 0;

  constructor(
    private readonly id: string,
    private readonly size: number,
    private readonly within: { base: number; size: number },
    private readonly check: () => void,
  ) {}

  /**
   * The last run, kept apart from `rows` so that the merge test reads no Float64Array element (each
   * such read makes a heap number in unoptimized code, and a plan is made once per boot).
   */
  private lastEnd = -1;
  private lastLength = 0;
  private lastPhysical = -1;

  /** Appends a run (physical −1: a hole), merged into the previous one when they continue each other. */
  private push(logical: number, length: number, physical: number): void {
    const n = this.rows.count;
    const lastPhys = this.lastPhysical;
    if (n > 0 && this.lastEnd === logical && (physical < 0 ? lastPhys < 0 : lastPhys >= 0 && lastPhys + this.lastLength === physical)) {
      const merged = this.lastLength + length;
      this.rows.data[3 * (n - 1) + 1] = merged;
      this.lastLength = merged;
      this.lastEnd = logical + length;
      return;
    }
    if (n >= MAX_RUNS) throw new LimitExceededError('allocBytes', `file ${this.id} maps to more than ${MAX_RUNS} runs`);
    this.rows.push(logical, length, physical);
    this.lastEnd = logical + length;
    this.lastLength = length;
    this.lastPhysical = physical;
  }

  /** Takes a batch of extents; false once the file's end is reached (the rest is ignored). */
  add(batch: ExtentBatch): boolean {
    const { size, within } = this;
    const src = batch.data;
    const end = 3 * Math.min(batch.count, Math.floor(src.length / 3));
    for (let k = 0; k < end; k += 3) {
      if ((++this.seen & 1023) === 0) this.check();
      const logical = src[k] as number;
      const length = src[k + 1] as number;
      const physical = src[k + 2] as number;
      if (!Number.isSafeInteger(logical) || !Number.isSafeInteger(length) || logical < 0 || length < 0) {
        throw new CorruptError('Extent', `file ${this.id}: bad extent ${logical}+${length}`);
      }
      if (logical < this.pos) throw new CorruptError('Extent', `file ${this.id}: extent at ${logical} overlaps the previous one (ends at ${this.pos})`);
      if (logical >= size) return false;
      if (logical > this.pos) this.push(this.pos, logical - this.pos, -1);
      const len = Math.min(length, size - logical);
      if (len === 0) continue;
      if (physical === -1) this.push(logical, len, -1);
      else {
        if (!Number.isSafeInteger(physical) || physical < 0 || physical + len > within.size) {
          throw new CorruptError('Extent', `file ${this.id}: extent ${physical}+${len} outside the volume of ${within.size} bytes`, Number.isSafeInteger(physical) ? physical : undefined);
        }
        this.push(logical, len, within.base + physical);
        this.mapped += len;
      }
      this.pos = logical + len;
    }
    return true;
  }

  /** Runs that can no longer change (all but the last, which the next extent may extend), once each. */
  settled(): Runs {
    const end = Math.max(this.sent, this.rows.count - 1);
    const out = this.rows.view(this.sent, end);
    this.sent = end;
    return out;
  }

  /** What `finish` added to the runs `settled` has not returned yet. */
  rest(): Runs {
    const out = this.rows.view(this.sent, this.rows.count);
    this.sent = this.rows.count;
    return out;
  }

  /** The runs covering [0, size), or null when no byte was mapped (see mapFile). */
  finish(): Runs | null {
    if (this.size > 0 && this.mapped === 0) return null;
    if (this.pos < this.size) this.push(this.pos, this.size - this.pos, -1);
    return this.rows.view(0, this.rows.count);
  }
}

/** Copies `node` to `fd` (from its current position when `positional` is false). Returns bytes written. */
export async function copyToFd(vfs: Vfs, node: FsNode, fd: number, opts: StreamOptions & { positional?: boolean } = {}): Promise<number> {
  const fast = await copyMapped(vfs, node, fd, opts);
  if (fast !== null) return fast;
  let off = 0;
  for await (const chunk of vfs.chunks(node, { chunkBytes: COPY_BYTES, ...opts })) {
    await writeAll(fd, chunk, opts.positional === false ? null : off);
    off += chunk.length;
  }
  return off;
}

/** A file's copy plan: its runs in the image file (absolute offsets), checked against the volume. */
export interface CopyPlan {
  readonly file: FileSource;
  readonly runs: Runs;
  readonly size: number;
}

export interface PlanOptions extends StreamOptions {
  /** Plan only a file that lies in this FileSource (else null, before anything is mapped). */
  only?: FileSource;
  /**
   * Runs as they become final, in order, while the plan is being made (the copy may start along
   * them). When planCopy then returns null (a driver found it cannot map the file after all), the
   * runs already handed out must be dropped.
   */
  onRuns?: (runs: Runs) => void;
}

/**
 * Maps `node` for the fast path; null when it does not apply (not a mapped driver, not on a
 * FileSource, compressed or unmapped data). Throws when the file exceeds its size cap.
 */
export async function planCopy(vfs: Vfs, node: FsNode, opts: PlanOptions = {}): Promise<CopyPlan | null> {
  if (node.kind !== 'file' || (typeof vfs.volume.extents !== 'function' && typeof vfs.volume.extentBatches !== 'function') || opts.truncateAt !== undefined || opts.chunkBytes !== undefined) return null;
  const under = underlyingFile(vfs.volume.source);
  if (!under || (opts.only !== undefined && under.file !== opts.only)) return null;
  const size = node.size;
  const max = opts.maxBytes ?? vfs.ctx.limits.fileBytes;
  if (size > max) throw new LimitExceededError('fileBytes', `file of ${size} bytes`, max);
  let runs: Runs | null;
  try {
    runs = await mapFile(vfs, node, size, under, opts.onRuns);
  } catch (e) {
    // A driver that cannot map this file (compressed, inline, …) still reads it.
    if (e instanceof UnsupportedError) return null;
    throw e;
  }
  return runs === null ? null : { file: under.file, runs, size };
}

/** The fast path; null when it does not apply (then nothing was written). */
async function copyMapped(vfs: Vfs, node: FsNode, fd: number, opts: StreamOptions & { positional?: boolean }): Promise<number | null> {
  const plan = await planCopy(vfs, node, opts);
  if (plan === null) return null;
  return copyRuns(plan.file, plan.runs, plan.size, fd, { positional: opts.positional, check: () => vfs.ctx.budget.check() });
}

/**
 * A source the copy reads from: FileSource, or anything else with a synchronous positional read
 * (tsgrub's parent copies from its own descriptor of the image along runs the worker planned).
 */
export interface SyncReader {
  readIntoSync(dst: Uint8Array, dstOffset: number, offset: number, length: number): void;
}

/**
 * Copies `runs` (ascending, contiguous from 0, covering `size` bytes; see `RunsReceiver` for a map from
 * elsewhere) from `file` into `fd`. Returns the bytes written.
 */
export async function copyRuns(
  file: SyncReader,
  runs: Runs,
  size: number,
  fd: number,
  opts: { positional?: boolean | undefined; check?: (() => void) | undefined } = {},
): Promise<number> {
  return copyRunStream(file, [runs], size, fd, { ...opts, windows: anyWindow(runs) });
}

/**
 * `copyRuns` over runs that arrive in order, chunk by chunk (a plan still being made: tsgrub's
 * parent starts copying along a prestarted worker's first runs while it maps the rest). The chunks
 * together must be ascending, contiguous from 0 and cover `size` bytes (`RunsReceiver` checks a
 * plan from elsewhere). `windows`: whether to keep room for gathering fragments (512 KiB).
 */
export async function copyRunStream(
  file: SyncReader,
  chunks: Iterable<Runs> | AsyncIterable<Runs>,
  size: number,
  fd: number,
  opts: { positional?: boolean | undefined; check?: (() => void) | undefined; windows?: boolean } = {},
): Promise<number> {
  // Two buffers: while one is being written by libuv's thread pool, the other is filled by reads on
  // this thread, so reading and writing (both memory copies in the kernel) overlap on two cores.
  const cap = Math.min(COPY_BYTES, Math.max(size, 1));
  // Fragments are gathered through windows (windowEnd); everything else is read straight into a buffer.
  const windowed = opts.windows ?? true;
  // One allocation for both buffers and the window, so gathering a fragment is one copyWithin
  // (a native memmove that allocates nothing) from the window into the buffer being filled.
  const second = size > cap ? cap : 0;
  const scratchAt = cap + second;
  const whole = new Uint8Array(scratchAt + (windowed ? WINDOW_BYTES : 0));
  const bufs = [whole.subarray(0, cap), second ? whole.subarray(cap, cap + second) : null];
  let cur = 0;
  let buf = bufs[0] as Uint8Array;
  const position = (logical: number) => (opts.positional === false ? null : logical);
  let fill = 0; // bytes gathered in buf, not yet written
  let fillStart = 0; // file offset of buf[0]
  let pending: Promise<void> | null = null; // the write of the other buffer
  const flush = async () => {
    if (pending) await pending;
    pending = null;
    if (fill > 0) {
      const other = bufs[cur ^ 1];
      if (other) {
        pending = writeAll(fd, fill === buf.length ? buf : buf.subarray(0, fill), position(fillStart));
        // A rejection is observed by the next flush; keep Node from reporting it as unhandled first.
        pending.catch(() => undefined);
        cur ^= 1;
        buf = other;
      } else writeAllSync(fd, buf, fill, position(fillStart));
    }
    fillStart += fill;
    fill = 0;
  };
  let d: Float64Array = new Float64Array(0); // the chunk being copied
  let n = 0; // its runs
  let i = 0; // run being copied
  let done = 0; // bytes of it copied
  // The window: runs [i, winTo) were decided on together (windowEnd); winStart ≥ 0 when they are
  // served from image bytes [winStart, winEnd), read into `whole` at scratchAt.
  let winTo = 0;
  let winStart = -1;
  // Copies runs into `buf` until it is full (false) or the chunk is done (true). A plain function, so
  // that V8 optimizes its loop while it runs (it never does in an async function), and a file in
  // fragments has tens of thousands of runs.
  const step = (): boolean => {
    for (; i < n; i++, done = 0) {
      const length = d[3 * i + 1] as number;
      const physical = d[3 * i + 2] as number;
      if (i >= winTo) {
        winStart = -1;
        winTo = i + 1;
        if (windowed) {
          const j = windowEnd(d, n, i);
          if (j - i >= 2) {
            const last = 3 * (j - 1);
            const winEnd = (d[last + 2] as number) + (d[last + 1] as number);
            file.readIntoSync(whole, scratchAt, physical, winEnd - physical);
            winStart = physical;
          }
          winTo = j;
        }
      }
      while (done < length) {
        if (fill === buf.length) return false;
        const m = Math.min(length - done, buf.length - fill);
        if (physical < 0) buf.fill(0, fill, fill + m);
        else if (winStart >= 0) {
          const at = scratchAt + physical + done - winStart;
          whole.copyWithin(cur * cap + fill, at, at + m); // buffer `cur` starts at cur × cap in `whole`
        } else file.readIntoSync(buf, fill, physical + done, m);
        fill += m;
        done += m;
      }
    }
    return true;
  };
  try {
    for await (const chunk of chunks) {
      d = chunk.data;
      n = chunk.count;
      i = 0;
      done = 0;
      winTo = 0;
      winStart = -1;
      while (!step()) {
        opts.check?.();
        await flush();
      }
    }
    await flush();
    await flush();
  } finally {
    // Never leave a write in flight into a buffer we return from (errors included).
    if (pending) await (pending as Promise<void>).catch(() => undefined);
  }
  return fillStart;
}

/**
 * A file's runs as they cross a process boundary: pairs of (length, physical offset or -1 for a hole)
 * in file order, so the logical offsets are implied and cannot overlap. `appendPairs` writes runs
 * [from, to) of `runs` to `out` and returns their bytes; `RunsReceiver` rebuilds and checks them on
 * the other side.
 */
export function appendPairs(runs: Runs, out: number[], from = 0, to = runs.count): number {
  const d = runs.data;
  let bytes = 0;
  for (let i = from; i < to && i < runs.count; i++) {
    const length = d[3 * i + 1] as number;
    out.push(length, d[3 * i + 2] as number);
    bytes += length;
  }
  return bytes;
}

/**
 * RunsReceiver's check of one chunk: each (length, physical) pair into row `from + k` of `rows` (room
 * reserved) as (logical, length, physical); returns the file offset after them. A plain function with
 * one loop, so that V8 optimizes it while it runs (a fragmented file's map is 25,000 pairs or more,
 * received once per boot).
 */
function checkPairs(pairs: unknown[], rows: Float64Array, from: number, pos: number, size: number, imageSize: number): number {
  for (let k = 0, r = 3 * from; k < pairs.length; k += 2, r += 3) {
    const length = pairs[k];
    const physical = pairs[k + 1];
    if (!Number.isSafeInteger(length) || (length as number) <= 0 || (length as number) > size - pos) {
      throw new CorruptError('Map', `run ${from + k / 2}: bad length ${String(length)} at file offset ${pos} of ${size}`, pos);
    }
    if (physical !== -1 && (!Number.isSafeInteger(physical) || (physical as number) < 0 || (physical as number) > imageSize - (length as number))) {
      throw new CorruptError('Map', `run ${from + k / 2}: ${String(physical)}+${length as number} is outside the image of ${imageSize} bytes`, pos);
    }
    rows[r] = pos;
    rows[r + 1] = length as number;
    rows[r + 2] = physical as number;
    pos += length as number;
  }
  return pos;
}

/**
 * Rebuilds a map sent by a process that is not trusted (tsgrub's worker): every length a positive
 * safe integer, every data run inside the image, no more than `maxRuns` runs, and the runs covering
 * exactly `size` bytes. Anything else is refused before a byte is copied.
 */
export class RunsReceiver {
  private readonly rows = new Triples(MAX_RUNS);
  private pos = 0;
  readonly size: number;
  private readonly imageSize: number;
  private readonly maxRuns: number;

  constructor(size: number, imageSize: number, maxRuns = MAX_RUNS) {
    if (!Number.isSafeInteger(size) || size < 0) throw new CorruptError('Map', `bad file size ${String(size)}`);
    this.size = size;
    this.imageSize = imageSize;
    this.maxRuns = Math.min(maxRuns, MAX_RUNS);
  }

  /** Checks and adds a chunk of pairs; returns its runs (a view that stays valid). */
  add(pairs: unknown): Runs {
    if (!Array.isArray(pairs) || pairs.length % 2 !== 0) throw new CorruptError('Map', 'runs are not (length, offset) pairs');
    const from = this.rows.count;
    const n = pairs.length / 2;
    if (from + n > this.maxRuns) throw new LimitExceededError('allocBytes', `map of more than ${this.maxRuns} runs`);
    // Rows are never changed once added: the chunks returned stay valid as the array grows.
    this.rows.reserve(from + n);
    this.pos = checkPairs(pairs, this.rows.data, from, this.pos, this.size, this.imageSize);
    this.rows.count = from + n;
    return this.rows.view(from, this.rows.count);
  }

  /** The complete map; throws unless the runs cover the whole file. */
  finish(): Runs {
    if (this.pos !== this.size) throw new CorruptError('Map', `runs cover ${this.pos} of ${this.size} bytes`, this.pos);
    return this.rows.view(0, this.rows.count);
  }
}

/** Runs as objects (physical null for a hole): for tests and diagnostics, never on the copy path. */
export function unpackRuns(runs: Runs): Array<{ logical: number; length: number; physical: number | null }> {
  const out: Array<{ logical: number; length: number; physical: number | null }> = [];
  for (let i = 0; i < runs.count; i++) {
    const physical = runs.data[3 * i + 2] as number;
    out.push({ logical: runs.data[3 * i] as number, length: runs.data[3 * i + 1] as number, physical: physical < 0 ? null : physical });
  }
  return out;
}
