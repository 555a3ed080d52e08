/**
 * The read engine shared by every sparse container: a format only answers "what backs the virtual
 * byte at `offset`, and for how long" (a `Run`); this source turns runs into reads. Unallocated and
 * zero runs cost no I/O, physically contiguous data runs are merged into one large `source.read`,
 * compressed clusters are decoded once into a small LRU, and unallocated runs fall through to the
 * backing/parent source when there is one (zeros past its end).
 */
import { CorruptError, LimitExceededError } from '../errors.ts';
import { checkRange, type ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';

export type Run =
  /** Reads as zeros, no I/O. */
  | { readonly kind: 'zero'; readonly length: number }
  /** Not allocated here: the backing file's bytes at the same virtual offset, or zeros without one. */
  | { readonly kind: 'backing'; readonly length: number }
  /** Raw bytes at `offset` in `source` (the image file, or a VMDK extent file). */
  | { readonly kind: 'data'; readonly source: ByteSource; readonly offset: number; readonly length: number }
  /** Bytes `skip .. skip+length` of a decoded unit (a compressed cluster/grain) identified by `key`. */
  | {
      readonly kind: 'decoded';
      readonly key: string;
      readonly load: () => Promise<Uint8Array>;
      readonly skip: number;
      readonly length: number;
    };

export interface BlockMap {
  /** The run that starts at virtual `offset`; its length is in [1, maxLength]. */
  lookup(offset: number, maxLength: number): Promise<Run>;
}

interface Pending {
  source: ByteSource;
  offset: number;
  outPos: number;
  length: number;
}

const DECODED_SLOTS = 8;

export class MappedSource implements ByteSource {
  private readonly decoded = new Map<string, Uint8Array>();

  constructor(
    readonly size: number,
    private readonly map: BlockMap,
    private readonly backing: ByteSource | null,
    private readonly ctx: Context,
    readonly name: string,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (length > this.ctx.limits.allocBytes) {
      throw new LimitExceededError('allocBytes', `read of ${length} bytes from ${this.name}`, this.ctx.limits.allocBytes);
    }
    const out = new Uint8Array(length);
    let pending: Pending | null = null;
    const flush = async (): Promise<void> => {
      if (!pending) return;
      const p = pending;
      pending = null;
      out.set(await p.source.read(p.offset, p.length), p.outPos);
    };
    let pos = 0;
    let steps = 0;
    while (pos < length) {
      if ((++steps & 1023) === 0) this.ctx.budget.check();
      const want = length - pos;
      const run = await this.map.lookup(offset + pos, want);
      // Progress check: every run must advance and stay inside the request (threat-model C5).
      if (!Number.isSafeInteger(run.length) || run.length < 1 || run.length > want) {
        throw new CorruptError(`${this.name}.Map`, `run of ${run.length} bytes at virtual ${offset + pos}`);
      }
      if (run.kind === 'zero') {
        await flush();
      } else if (run.kind === 'data' || run.kind === 'backing') {
        let src: ByteSource | null;
        let at: number;
        let len = run.length;
        if (run.kind === 'data') {
          src = run.source;
          at = run.offset;
        } else {
          src = this.backing;
          at = offset + pos;
          // Past the end of a smaller backing file the disk reads as zeros (qcow2 spec, "backing file").
          if (src) len = Math.max(0, Math.min(len, src.size - at));
        }
        const cur = pending as Pending | null;
        if (src && len > 0) {
          if (cur && cur.source === src && cur.offset + cur.length === at && cur.outPos + cur.length === pos) {
            cur.length += len;
          } else {
            await flush();
            pending = { source: src, offset: at, outPos: pos, length: len };
          }
        } else {
          await flush();
        }
      } else {
        await flush();
        const unit = await this.decode(run.key, run.load);
        if (run.skip + run.length > unit.length) {
          throw new CorruptError(`${this.name}.Compressed`, `decoded unit of ${unit.length} bytes is shorter than ${run.skip + run.length}`);
        }
        out.set(unit.subarray(run.skip, run.skip + run.length), pos);
      }
      pos += run.length;
    }
    await flush();
    return out;
  }

  private async decode(key: string, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = this.decoded.get(key);
    if (hit) {
      this.decoded.delete(key);
      this.decoded.set(key, hit);
      return hit;
    }
    const unit = await load();
    this.decoded.set(key, unit);
    while (this.decoded.size > DECODED_SLOTS) this.decoded.delete(this.decoded.keys().next().value as string);
    return unit;
  }
}

/**
 * A bounded LRU of metadata tables (qcow2 L2 tables, VMDK grain tables), read through the
 * container's BlockCache so every miss is charged to the metadata budget.
 */
export class TableCache {
  private readonly tables = new Map<number, Uint8Array>();
  private readonly maxTables: number;

  constructor(
    private readonly meta: ByteSource,
    tableBytes: number,
    ctx: Context,
  ) {
    this.maxTables = Math.max(4, Math.floor(ctx.limits.cacheBytes / 4 / Math.max(1, tableBytes)));
  }

  async get(offset: number, bytes: number): Promise<Uint8Array> {
    const hit = this.tables.get(offset);
    if (hit) {
      this.tables.delete(offset);
      this.tables.set(offset, hit);
      return hit;
    }
    const t = await this.meta.read(offset, bytes);
    this.tables.set(offset, t);
    while (this.tables.size > this.maxTables) this.tables.delete(this.tables.keys().next().value as number);
    return t;
  }
}
