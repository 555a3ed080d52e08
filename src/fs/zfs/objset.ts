/**
 * Object sets, dnodes and ZAPs (OpenZFS include/sys/dnode.h, dmu_objset.h, zap_impl.h, zap_leaf.h;
 * ZFS On-Disk Specification §3–§5). A dnode's blocks form a tree of `dn_nlevels` levels; every
 * child block pointer must be exactly one level below its parent.
 */
import { CorruptError } from '../../errors.ts';
import { bound, u16be, u16le, u32be, u32le, u64be, u64le, u8 } from '../../io/bytes.ts';
import { BLKPTR_SIZE, decodeBlkptr, type BlockPtr } from './blkptr.ts';
import type { Pool } from './pool.ts';

export const DNODE_SIZE = 512;
const DNODE_FLAG_SPILL_BLKPTR = 4;
/** Enough for any real pool (16 levels of 128-pointer blocks cover 2^64 bytes); hostile ones stop here. */
const MAX_LEVELS = 12;

export interface Dnode {
  readonly object: number;
  readonly type: number;
  readonly indblkshift: number;
  readonly nlevels: number;
  readonly nblkptr: number;
  readonly bonustype: number;
  readonly flags: number;
  readonly datablksz: number;
  readonly maxblkid: number;
  readonly blkptrs: readonly BlockPtr[];
  readonly bonus: Uint8Array;
  readonly spill: BlockPtr | null;
  readonly le: boolean;
}

/** Decodes the dnode at `off` of `b` (byte order `le`); `slotsAvail` is how many 512-byte slots remain in the block. */
export function decodeDnode(b: Uint8Array, off: number, le: boolean, object: number, slotsAvail: number): Dnode {
  const W = 'zfs.dnode';
  const u16 = (o: number) => (le ? u16le(b, off + o, W) : u16be(b, off + o, W));
  const u64 = (o: number) => (le ? u64le(b, off + o, W) : u64be(b, off + o, W));
  const type = u8(b, off, W);
  const indblkshift = u8(b, off + 1, W);
  const nlevels = u8(b, off + 2, W);
  const nblkptr = u8(b, off + 3, W);
  const bonustype = u8(b, off + 4, W);
  const flags = u8(b, off + 7, W);
  const datablkszsec = u16(8);
  const bonuslen = u16(10);
  const extra = u8(b, off + 12, W);
  const maxblkid = u64(16);
  const at = off;
  if (type === 0) {
    return { object, type, indblkshift, nlevels: 0, nblkptr: 0, bonustype, flags, datablksz: 0, maxblkid: 0, blkptrs: [], bonus: new Uint8Array(0), spill: null, le };
  }
  const slots = bound(extra + 1, 1, slotsAvail, `${W}.dn_extra_slots`, at);
  const size = slots * DNODE_SIZE;
  bound(nlevels, 1, MAX_LEVELS, `${W}.dn_nlevels`, at);
  bound(nblkptr, 1, 3 + (slots - 1) * 4, `${W}.dn_nblkptr`, at);
  if (nlevels > 1) bound(indblkshift, 10, 17, `${W}.dn_indblkshift`, at);
  const datablksz = bound(datablkszsec, 1, 32768, `${W}.dn_datablkszsec`, at) * 512;
  if (maxblkid > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptError(W, `dn_maxblkid ${maxblkid}`, at);
  const spillFlag = (flags & DNODE_FLAG_SPILL_BLKPTR) !== 0;
  const bonusOff = 64 + nblkptr * BLKPTR_SIZE;
  const bonusMax = size - bonusOff - (spillFlag ? BLKPTR_SIZE : 0);
  bound(bonuslen, 0, Math.max(0, bonusMax), `${W}.dn_bonuslen`, at);
  const blkptrs: BlockPtr[] = [];
  for (let i = 0; i < nblkptr; i++) blkptrs.push(decodeBlkptr(b, off + 64 + i * BLKPTR_SIZE, le));
  const spill = spillFlag ? decodeBlkptr(b, off + size - BLKPTR_SIZE, le) : null;
  return {
    object, type, indblkshift, nlevels, nblkptr, bonustype, flags, datablksz, maxblkid: Number(maxblkid),
    blkptrs, bonus: b.slice(off + bonusOff, off + bonusOff + bonuslen), spill, le,
  };
}

/**
 * The level-0 block pointer for block `blkid` of a dnode, walking down the indirect tree.
 * Returns a hole for blocks past the tree.
 */
export async function blockPtrFor(pool: Pool, dn: Dnode, blkid: number): Promise<BlockPtr | null> {
  const epbs = dn.indblkshift - 7; // block pointers per indirect block = 2^epbs
  const top = dn.nlevels - 1;
  // Which top-level block pointer covers blkid.
  const span = top === 0 ? 1 : 2 ** (epbs * top);
  const idx = Math.floor(blkid / span);
  if (idx >= dn.nblkptr) return null;
  let bp = dn.blkptrs[idx]!;
  let rem = blkid - idx * span;
  for (let level = top; level > 0; level--) {
    if (bp.hole) return null;
    if (!bp.embedded && bp.level !== level) {
      throw new CorruptError('zfs.indirect', `block pointer at level ${bp.level} where level ${level} was expected (object ${dn.object})`, bp.at);
    }
    pool.ctx.budget.chargeNode();
    const ind = await pool.readBlock(bp, true);
    const childSpan = 2 ** (epbs * (level - 1));
    const ci = Math.floor(rem / childSpan);
    rem -= ci * childSpan;
    if ((ci + 1) * BLKPTR_SIZE > ind.length) return null;
    bp = decodeBlkptr(ind, ci * BLKPTR_SIZE, bp.le);
  }
  if (bp.hole) return null;
  if (!bp.embedded && bp.level !== 0) {
    throw new CorruptError('zfs.indirect', `data block pointer at level ${bp.level} (object ${dn.object})`, bp.at);
  }
  return bp;
}

/** Reads data block `blkid` of a dnode (metadata objects), zero-filled holes. */
export async function readObjectBlock(pool: Pool, dn: Dnode, blkid: number): Promise<Uint8Array> {
  return (await readObjectBlockLe(pool, dn, blkid)).data;
}

/** The same, with the block's own byte order (each block pointer records the order it was written in). */
export async function readObjectBlockLe(pool: Pool, dn: Dnode, blkid: number): Promise<{ data: Uint8Array; le: boolean }> {
  const bp = await blockPtrFor(pool, dn, blkid);
  if (!bp) return { data: new Uint8Array(dn.datablksz), le: dn.le };
  const data = await pool.readBlock(bp, true);
  if (data.length < dn.datablksz) {
    const out = new Uint8Array(dn.datablksz);
    out.set(data);
    return { data: out, le: bp.le };
  }
  return { data, le: bp.le };
}

export class ObjectSet {
  readonly meta: Dnode;
  readonly type: number;
  constructor(
    readonly pool: Pool,
    raw: Uint8Array,
    le: boolean,
  ) {
    this.meta = decodeDnode(raw, 0, le, -1, 1);
    if (this.meta.type === 0) throw new CorruptError('zfs.objset', 'meta dnode is empty');
    this.type = raw.length >= 712 ? Number(le ? u64le(raw, 704) : u64be(raw, 704)) : 0;
  }

  static async open(pool: Pool, bp: BlockPtr): Promise<ObjectSet> {
    if (bp.hole) throw new CorruptError('zfs.objset', 'object set block pointer is a hole', bp.at);
    const raw = await pool.readBlock(bp, true);
    if (raw.length < 1024) throw new CorruptError('zfs.objset', `objset block of ${raw.length} bytes`, bp.at);
    return new ObjectSet(pool, raw, bp.le);
  }

  async dnode(object: number): Promise<Dnode> {
    this.pool.ctx.budget.chargeNode();
    const bs = this.meta.datablksz;
    const perBlock = bs / DNODE_SIZE;
    if (!Number.isSafeInteger(object) || object < 0 || object / perBlock > this.meta.maxblkid + 1) {
      throw new CorruptError('zfs.dnode', `object ${object} outside the object set`);
    }
    const blkid = Math.floor(object / perBlock);
    const slot = object - blkid * perBlock;
    const bp = await blockPtrFor(this.pool, this.meta, blkid);
    if (!bp) throw new CorruptError('zfs.dnode', `object ${object} is in a hole`);
    const blk = await this.pool.readBlock(bp, true);
    if (blk.length < (slot + 1) * DNODE_SIZE) throw new CorruptError('zfs.dnode', `object ${object} outside its block`);
    const dn = decodeDnode(blk, slot * DNODE_SIZE, bp.le, object, perBlock - slot);
    if (dn.type === 0) throw new CorruptError('zfs.dnode', `object ${object} is free`);
    return dn;
  }
}

// ---------------------------------------------------------------------------------------- ZAP

const ZBT_LEAF = (1n << 63n) + 0n;
const ZBT_HEADER = (1n << 63n) + 1n;
const ZBT_MICRO = (1n << 63n) + 3n;
const ZAP_MAGIC = 0x2f52ab2abn;
const ZAP_LEAF_MAGIC = 0x2ab1eaf;
const CHUNK = 24;
const CHUNK_ENTRY = 252;
const CHUNK_ARRAY = 251;
const ARRAY_BYTES = 21;

export interface ZapEntry {
  readonly name: Uint8Array;
  /** Integer size (1, 2, 4, 8) and count of the value. */
  readonly intlen: number;
  readonly numints: number;
  /** The value's integers. */
  readonly values: readonly bigint[];
}

const dec = new TextDecoder();

/** All entries of a ZAP object (micro or fat). Bounded by `dirEntries` and visited-leaf sets. */
export async function zapEntries(os: ObjectSet, dn: Dnode): Promise<ZapEntry[]> {
  const pool = os.pool;
  const max = pool.ctx.limits.dirEntries;
  const { data: first, le } = await readObjectBlockLe(pool, dn, 0);
  const u64 = (b: Uint8Array, o: number, w = 'zfs.zap') => (le ? u64le(b, o, w) : u64be(b, o, w));
  const type = u64(first, 0);
  const out: ZapEntry[] = [];
  if (type === ZBT_MICRO) {
    // mzap_phys_t: 64-byte header, then 64-byte entries (u64 value, u32 cd, u16 pad, char name[50]).
    for (let o = 64; o + 64 <= first.length; o += 64) {
      if (first[o + 14] === 0) continue;
      const nameBytes = first.subarray(o + 14, o + 64);
      const nul = nameBytes.indexOf(0);
      const name = nameBytes.slice(0, nul < 0 ? 50 : nul);
      out.push({ name, intlen: 8, numints: 1, values: [u64(first, o)] });
      if (out.length > max) throw new CorruptError('zfs.mzap', `more than ${max} entries`);
    }
    return out;
  }
  if (type !== ZBT_HEADER) throw new CorruptError('zfs.zap', `block type ${type.toString(16)} (object ${dn.object})`);
  if (u64(first, 8) !== ZAP_MAGIC) throw new CorruptError('zfs.zap', `bad magic (object ${dn.object})`);
  const bs = dn.datablksz;
  const bsShift = Math.log2(bs);
  if (!Number.isInteger(bsShift) || bsShift < 9) throw new CorruptError('zfs.zap', `block size ${bs}`);
  const ztBlk = Number(u64(first, 16));
  const ztNumblks = Number(u64(first, 24));
  const ztShift = Number(u64(first, 32));
  // Leaf block numbers: from the pointer table (embedded in the second half of block 0, or external).
  const leafIds = new Set<number>();
  if (ztNumblks === 0) {
    bound(ztShift, 0, bsShift - 4, 'zfs.zap.zt_shift');
    const n = 2 ** ztShift;
    for (let i = 0; i < n; i++) leafIds.add(Number(u64(first, bs / 2 + i * 8)));
  } else {
    bound(ztShift, 0, 40, 'zfs.zap.zt_shift');
    bound(ztNumblks, 1, 2 ** 20, 'zfs.zap.zt_numblks');
    bound(ztBlk, 1, dn.maxblkid, 'zfs.zap.zt_blk');
    if (ztBlk + ztNumblks - 1 > dn.maxblkid) throw new CorruptError('zfs.zap', `pointer table ${ztBlk}+${ztNumblks} past the object`);
    let left = 2 ** ztShift;
    for (let k = 0; k < ztNumblks && left > 0; k++) {
      const { data: blk, le: ble } = await readObjectBlockLe(pool, dn, ztBlk + k);
      for (let o = 0; o + 8 <= blk.length && left > 0; o += 8, left--) {
        leafIds.add(Number(ble ? u64le(blk, o) : u64be(blk, o)));
        if (leafIds.size > dn.maxblkid + 1) throw new CorruptError('zfs.zap', 'pointer table names more leaves than blocks');
      }
    }
  }
  const visited = new Set<number>();
  const queue = [...leafIds];
  while (queue.length) {
    const id = queue.shift()!;
    if (visited.has(id)) continue;
    if (!Number.isSafeInteger(id) || id < 1 || id > dn.maxblkid) throw new CorruptError('zfs.zap', `leaf block ${id} outside the object (0..${dn.maxblkid})`);
    visited.add(id);
    pool.ctx.budget.chargeNode();
    const { data: leaf, le: lle } = await readObjectBlockLe(pool, dn, id);
    const next = readLeaf(leaf, lle, bsShift, out, max, id);
    // Old pools chain leaves through lh_next; follow it, bounded by the visited set.
    if (next !== 0 && !visited.has(next)) queue.push(next);
  }
  return out;
}

/** zap_leaf_phys_t: 48-byte header, 2^(bs-5) u16 hash buckets, then 24-byte chunks. Returns lh_next. */
function readLeaf(b: Uint8Array, le: boolean, bsShift: number, out: ZapEntry[], max: number, id: number): number {
  const W = 'zfs.zap.leaf';
  const u64 = (o: number) => (le ? u64le(b, o, W) : u64be(b, o, W));
  const u16 = (o: number) => (le ? u16le(b, o, W) : u16be(b, o, W));
  const u32 = (o: number) => (le ? u32le(b, o, W) : u32be(b, o, W));
  if (u64(0) !== ZBT_LEAF) throw new CorruptError(W, `block ${id}: type ${u64(0).toString(16)}`);
  if (u32(24) !== ZAP_LEAF_MAGIC) throw new CorruptError(W, `block ${id}: bad magic`);
  const next = Number(u64(8));
  const hashEntries = 2 ** (bsShift - 5);
  const chunksOff = 48 + 2 * hashEntries;
  const numChunks = Math.floor((b.length - 2 * hashEntries) / CHUNK) - 2;
  const chunk = (i: number): number => {
    bound(i, 0, numChunks - 1, `${W}.chunk`, id);
    return chunksOff + i * CHUNK;
  };
  // Reads an array of `len` bytes starting at chunk `c`: exactly ceil(len/21) chunks, so no loop.
  const array = (c: number, len: number): Uint8Array => {
    const res = new Uint8Array(len);
    let pos = 0;
    while (pos < len) {
      const o = chunk(c);
      if (u8(b, o, W) !== CHUNK_ARRAY) throw new CorruptError(W, `block ${id}: chunk ${c} is not an array chunk`);
      const n = Math.min(ARRAY_BYTES, len - pos);
      res.set(b.subarray(o + 1, o + 1 + n), pos);
      pos += n;
      c = u16(o + 22);
    }
    return res;
  };
  for (let i = 0; i < numChunks; i++) {
    const o = chunksOff + i * CHUNK;
    if (b[o] !== CHUNK_ENTRY) continue;
    const intlen = u8(b, o + 1, W);
    const nameChunk = u16(o + 4);
    const nameNum = u16(o + 6);
    const valueChunk = u16(o + 8);
    const valueNum = u16(o + 10);
    if (intlen !== 1 && intlen !== 2 && intlen !== 4 && intlen !== 8) throw new CorruptError(W, `block ${id}: value int size ${intlen}`);
    const nameRaw = array(nameChunk, nameNum);
    const name = nameRaw[nameRaw.length - 1] === 0 ? nameRaw.subarray(0, nameRaw.length - 1) : nameRaw;
    const vb = array(valueChunk, intlen * valueNum);
    // ZAP array integers are stored big-endian whatever the pool's byte order (zap_leaf_array_read).
    const values: bigint[] = [];
    for (let k = 0; k < valueNum && k < 4096; k++) {
      let v = 0n;
      for (let j = 0; j < intlen; j++) v = (v << 8n) | BigInt(vb[k * intlen + j] as number);
      values.push(v);
    }
    out.push({ name, intlen, numints: valueNum, values });
    if (out.length > max) throw new CorruptError(W, `more than ${max} entries`);
  }
  return next;
}

export function zapGet(entries: readonly ZapEntry[], name: string): ZapEntry | undefined {
  return entries.find((e) => dec.decode(e.name) === name);
}
export function zapU64(entries: readonly ZapEntry[], name: string): number | undefined {
  const e = zapGet(entries, name);
  const v = e?.values[0];
  return v !== undefined && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}
