/**
 * Streams a file out of an image into a file descriptor with memory that does not grow with the file.
 *
 * Fast path (bench/README.md): when the driver maps the file with `Volume.extents` and the volume sits
 * on a FileSource (through any number of SliceSources, i.e. partitions), the extents are validated and
 * coalesced first, then copied through two reused 1 MiB buffers: physically contiguous extents become
 * reads of up to 1 MiB straight into a buffer; runs of small fragments that lie close together are
 * read as one window (gaps included, never past the partition) and gathered from it; holes are written
 * as zeros; each full buffer is written by libuv's pool while this thread fills the other. No
 * per-chunk allocation. Everything else (compressed or unmapped files, other sources) goes through
 * `Vfs.chunks`. */
import { write, writeSync } from 'node:fs';
import { CorruptError, IoError, LimitExceededError, UnsupportedError } from '../errors.ts';
import { SliceSource, type ByteSource } from '../io/source.ts';
import type { Extent, FsNode } from '../fs/types.ts';
import type { StreamOptions, Vfs } from '../fs/vfs.ts';
import { FileSource } from './file-source.ts';

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

/** A stretch of the image read whole, and the runs it serves. */
interface Window {
  start: number;
  end: number;
}

/**
 * Groups consecutive small data runs into windows (index-aligned with `runs`; null = read directly).
 * A window only forms for two or more runs, so an isolated fragment is never read with its gap.
 */
function planWindows(runs: readonly Run[]): Array<Window | null> {
  const plan: Array<Window | null> = new Array<Window | null>(runs.length).fill(null);
  let i = 0;
  while (i < runs.length) {
    const first = runs[i] as Run;
    if (first.physical === null || first.length >= SMALL_RUN) {
      i++;
      continue;
    }
    const w: Window = { start: first.physical, end: first.physical + first.length };
    let j = i + 1;
    for (; j < runs.length; j++) {
      const r = runs[j] as Run;
      if (r.physical === null || r.length >= SMALL_RUN || r.physical < w.end || r.physical - w.end > MAX_GAP) break;
      if (r.physical + r.length - w.start > WINDOW_BYTES) break;
      w.end = r.physical + r.length;
    }
    if (j - i >= 2) for (let k = i; k < j; k++) plan[k] = w;
    i = j;
  }
  return plan;
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

export interface Run {
  /** Byte offset in the file. */
  logical: number;
  length: number;
  /** Absolute byte offset in the FileSource, null for a hole. */
  physical: number | null;
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
  onRuns?: (runs: readonly Run[]) => void,
): Promise<Run[] | null> {
  const vol = vfs.volume;
  // Batches when the driver has them (one promise per batch, not per extent).
  const batches: AsyncIterable<readonly Extent[]> =
    typeof vol.extentBatches === 'function'
      ? vol.extentBatches(node)
      : (async function* () {
          for await (const e of (vol.extents as (f: FsNode) => AsyncIterable<Extent>).call(vol, node)) yield [e];
        })();
  const map = new RunMap(String(node.id), size, within, () => vfs.ctx.budget.check());
  for await (const batch of batches) {
    const more = map.add(batch);
    if (onRuns) {
      const ready = map.settled();
      if (ready.length) onRuns(ready);
    }
    if (!more) break;
  }
  const runs = map.finish();
  if (runs !== null && onRuns) {
    const tail = map.rest();
    if (tail.length) onRuns(tail);
  }
  return runs;
}

/**
 * Builds a file's runs from its extents (mapFile). Synchronous on purpose: V8 optimizes a long loop
 * while it runs (OSR) in a plain method, never in an async function, and a file in 4 KiB fragments
 * has tens of thousands of extents.
 */
class RunMap {
  private readonly runs: Run[] = [];
  /** Runs already handed out by `settled`/`rest`. */
  private sent = 0;
  private pos = 0;
  private count = 0;
  private mapped = 0;

  constructor(
    private readonly id: string,
    private readonly size: number,
    private readonly within: { base: number; size: number },
    private readonly check: () => void,
  ) {}

  private push(logical: number, length: number, physical: number | null): void {
    const { runs } = this;
    const last = runs[runs.length - 1];
    if (last && last.logical + last.length === logical) {
      if (physical === null ? last.physical === null : last.physical !== null && last.physical + last.length === physical) {
        last.length += length;
        return;
      }
    }
    if (runs.length >= MAX_RUNS) throw new LimitExceededError('allocBytes', `file ${this.id} maps to more than ${MAX_RUNS} runs`);
    runs.push({ logical, length, physical });
  }

  /** Takes a batch of extents; false once the file's end is reached (the rest is ignored). */
  add(batch: readonly Extent[]): boolean {
    const { size, within } = this;
    for (const e of batch) {
      if ((++this.count & 1023) === 0) this.check();
      const { logical, length, physical } = e;
      if (!Number.isSafeInteger(logical) || !Number.isSafeInteger(length) || logical < 0 || length < 0) {
        throw new CorruptError('Extent', `file ${this.id}: bad extent ${logical}+${length}`);
      }
      if (logical < this.pos) throw new CorruptError('Extent', `file ${this.id}: extent at ${logical} overlaps the previous one (ends at ${this.pos})`);
      if (logical >= size) return false;
      if (logical > this.pos) this.push(this.pos, logical - this.pos, null);
      const len = Math.min(length, size - logical);
      if (len === 0) continue;
      if (physical === null) this.push(logical, len, null);
      else {
        if (!Number.isSafeInteger(physical) || physical < 0 || physical + len > within.size) {
          throw new CorruptError('Extent', `file ${this.id}: extent ${physical}+${len} outside the volume of ${within.size} bytes`, physical);
        }
        this.push(logical, len, within.base + physical);
        this.mapped += len;
      }
      this.pos = logical + len;
    }
    return true;
  }

  /** Runs that can no longer change (all but the last, which the next extent may extend), once each. */
  settled(): Run[] {
    const end = Math.max(this.sent, this.runs.length - 1);
    const out = this.runs.slice(this.sent, end);
    this.sent = end;
    return out;
  }

  /** What `finish` added to the runs `settled` has not returned yet. */
  rest(): Run[] {
    const out = this.runs.slice(this.sent);
    this.sent = this.runs.length;
    return out;
  }

  /** The runs covering [0, size), or null when no byte was mapped (see mapFile). */
  finish(): Run[] | null {
    if (this.size > 0 && this.mapped === 0) return null;
    if (this.pos < this.size) this.push(this.pos, this.size - this.pos, null);
    return this.runs;
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
  readonly runs: Run[];
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
  onRuns?: (runs: readonly Run[]) => void;
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
  let runs: Run[] | null;
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
  runs: readonly Run[],
  size: number,
  fd: number,
  opts: { positional?: boolean | undefined; check?: (() => void) | undefined } = {},
): Promise<number> {
  return copyRunStream(file, [runs], size, fd, { ...opts, windows: planWindows(runs).some((w) => w !== null) });
}

/**
 * `copyRuns` over runs that arrive in order, chunk by chunk (a plan still being made: tsgrub's
 * parent starts copying along a prestarted worker's first runs while it maps the rest). The chunks
 * together must be ascending, contiguous from 0 and cover `size` bytes (`RunsReceiver` checks a
 * plan from elsewhere). `windows`: whether to keep room for gathering fragments (512 KiB).
 */
export async function copyRunStream(
  file: SyncReader,
  chunks: Iterable<readonly Run[]> | AsyncIterable<readonly Run[]>,
  size: number,
  fd: number,
  opts: { positional?: boolean | undefined; check?: (() => void) | undefined; windows?: boolean } = {},
): Promise<number> {
  // Two buffers: while one is being written by libuv's thread pool, the other is filled by reads on
  // this thread, so reading and writing (both memory copies in the kernel) overlap on two cores.
  const cap = Math.min(COPY_BYTES, Math.max(size, 1));
  // Fragments are gathered through windows (planWindows); everything else is read straight into a buffer.
  const windowed = opts.windows ?? true;
  let runs: readonly Run[] = [];
  let plan: Array<Window | null> = [];
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
  let loaded: Window | null = null;
  let i = 0; // run being copied
  let done = 0; // bytes of it copied
  // Copies runs into `buf` until it is full (false) or the file is done (true). A plain function, so
  // that V8 optimizes its loop while it runs (it never does in an async function), and a file in
  // fragments has tens of thousands of runs.
  const step = (): boolean => {
    for (; i < runs.length; i++, done = 0) {
      const r = runs[i] as Run;
      const w = plan[i] ?? null;
      if (w !== null && w !== loaded) {
        file.readIntoSync(whole, scratchAt, w.start, w.end - w.start);
        loaded = w;
      }
      while (done < r.length) {
        if (fill === buf.length) return false;
        const n = Math.min(r.length - done, buf.length - fill);
        if (r.physical === null) buf.fill(0, fill, fill + n);
        else if (w !== null) {
          const at = scratchAt + r.physical + done - w.start;
          whole.copyWithin(cur * cap + fill, at, at + n); // buffer `cur` starts at cur × cap in `whole`
        } else file.readIntoSync(buf, fill, r.physical + done, n);
        fill += n;
        done += n;
      }
    }
    return true;
  };
  try {
    for await (const chunk of chunks) {
      runs = chunk;
      plan = windowed ? planWindows(runs) : new Array<Window | null>(runs.length).fill(null);
      i = 0;
      done = 0;
      loaded = null;
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
 * in file order, so the logical offsets are implied and cannot overlap. `runsToPairs` writes them;
 * `RunsReceiver` rebuilds and checks them on the other side.
 */
export function runsToPairs(runs: readonly Run[], from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to && i < runs.length; i++) {
    const r = runs[i] as Run;
    out.push(r.length, r.physical ?? -1);
  }
  return out;
}

/**
 * Rebuilds a map sent by a process that is not trusted (tsgrub's worker): every length a positive
 * safe integer, every data run inside the image, no more than `maxRuns` runs, and the runs covering
 * exactly `size` bytes. Anything else is refused before a byte is copied.
 */
export class RunsReceiver {
  readonly runs: Run[] = [];
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

  add(pairs: unknown): void {
    if (!Array.isArray(pairs) || pairs.length % 2 !== 0) throw new CorruptError('Map', 'runs are not (length, offset) pairs');
    for (let i = 0; i < pairs.length; i += 2) {
      const length: unknown = pairs[i];
      const physical: unknown = pairs[i + 1];
      if (typeof length !== 'number' || !Number.isSafeInteger(length) || length <= 0 || length > this.size - this.pos) {
        throw new CorruptError('Map', `run ${this.runs.length}: bad length ${String(length)} at file offset ${this.pos} of ${this.size}`, this.pos);
      }
      if (physical !== -1 && (typeof physical !== 'number' || !Number.isSafeInteger(physical) || physical < 0 || physical > this.imageSize - length)) {
        throw new CorruptError('Map', `run ${this.runs.length}: ${String(physical)}+${length} is outside the image of ${this.imageSize} bytes`, this.pos);
      }
      if (this.runs.length >= this.maxRuns) throw new LimitExceededError('allocBytes', `map of more than ${this.maxRuns} runs`);
      this.runs.push({ logical: this.pos, length, physical: physical === -1 ? null : (physical as number) });
      this.pos += length;
    }
  }

  /** The complete map; throws unless the runs cover the whole file. */
  finish(): Run[] {
    if (this.pos !== this.size) throw new CorruptError('Map', `runs cover ${this.pos} of ${this.size} bytes`, this.pos);
    return this.runs;
  }
}
