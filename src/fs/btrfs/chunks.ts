/**
 * The chunk map: btrfs logical addresses → byte offsets in the (single) device. Chunk items
 * (struct btrfs_chunk + num_stripes × struct btrfs_stripe) come from the superblock's
 * sys_chunk_array (enough to read the chunk tree) and then from the chunk tree itself.
 * Profiles: SINGLE, DUP, RAID1/RAID1C3/RAID1C4 (every stripe is a full copy), RAID0 and RAID10
 * (striped by stripe_len). RAID5/6 are refused. Stripes on another device are ignored (this
 * reader opens one device); a stripe outside the image is skipped in favour of another copy.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, u16le, u64le, u64leSafe } from '../../io/bytes.ts';
import { KEY_SIZE, readKey, type Key } from './tree.ts';

export const CHUNK_ITEM_KEY = 228;
const CHUNK_SIZE = 48;
const STRIPE_SIZE = 32;

const BG_RAID0 = 1n << 3n;
const BG_RAID1 = 1n << 4n;
const BG_DUP = 1n << 5n;
const BG_RAID10 = 1n << 6n;
const BG_RAID5 = 1n << 7n;
const BG_RAID6 = 1n << 8n;
const BG_RAID1C3 = 1n << 9n;
const BG_RAID1C4 = 1n << 10n;

export interface Chunk {
  readonly logical: number;
  readonly length: number;
  readonly stripeLen: number;
  readonly profile: 'single' | 'dup' | 'raid1' | 'raid0' | 'raid10';
  readonly subStripes: number;
  /** Physical offset per stripe; null when the stripe is on another device. */
  readonly stripes: readonly (number | null)[];
}

/** One physical place holding a logical range: `length` bytes at `physical`. */
export interface Placement {
  readonly physical: number;
  readonly length: number;
}

/** Decodes one chunk item at `off` of `b` (an item body); returns it and its size in bytes. */
export function parseChunk(b: Uint8Array, off: number, logical: number, devid: bigint, where: number): { chunk: Chunk; size: number } {
  const what = 'btrfs.Chunk';
  const length = u64leSafe(b, off, what);
  const stripe_len = u64leSafe(b, off + 16, what);
  const type = u64le(b, off + 24, what);
  const num_stripes = u16le(b, off + 44, what);
  const sub_stripes = u16le(b, off + 46, what);
  bound(num_stripes, 1, 256, 'btrfs.ChunkNumStripes', where);
  const size = CHUNK_SIZE + num_stripes * STRIPE_SIZE;
  if (off + size > b.length) throw new CorruptError('btrfs.Chunk', `${num_stripes} stripes run past the item`, where);
  bound(length, 1, Number.MAX_SAFE_INTEGER - logical, 'btrfs.ChunkLength', where);
  if ((type & (BG_RAID5 | BG_RAID6)) !== 0n) throw new UnsupportedError('btrfs chunk profile', [(type & BG_RAID5) !== 0n ? 'raid5' : 'raid6']);
  let profile: Chunk['profile'] = 'single';
  if ((type & BG_RAID0) !== 0n) profile = 'raid0';
  else if ((type & BG_RAID10) !== 0n) profile = 'raid10';
  else if ((type & (BG_RAID1 | BG_RAID1C3 | BG_RAID1C4)) !== 0n) profile = 'raid1';
  else if ((type & BG_DUP) !== 0n) profile = 'dup';
  if (profile === 'raid0' || profile === 'raid10') {
    // stripe_len is 64 KiB in practice (BTRFS_STRIPE_LEN); any power of two from 4 KiB to 1 GiB is accepted.
    bound(stripe_len, 4096, 2 ** 30, 'btrfs.ChunkStripeLen', where);
    if (stripe_len & (stripe_len - 1)) throw new CorruptError('btrfs.ChunkStripeLen', `stripe_len ${stripe_len} not a power of two`, where);
  }
  if (profile === 'raid10') {
    bound(sub_stripes, 1, num_stripes, 'btrfs.ChunkSubStripes', where);
    if (num_stripes % sub_stripes !== 0) throw new CorruptError('btrfs.ChunkSubStripes', `${num_stripes} stripes not a multiple of ${sub_stripes}`, where);
  }
  const stripes: (number | null)[] = [];
  for (let i = 0; i < num_stripes; i++) {
    const s = off + CHUNK_SIZE + i * STRIPE_SIZE;
    const stripeDev = u64le(b, s, what);
    stripes.push(stripeDev === devid ? u64leSafe(b, s + 8, what) : null);
  }
  return { chunk: { logical, length, stripeLen: stripe_len, profile, subStripes: sub_stripes, stripes }, size };
}

export class ChunkMap {
  private chunks: Chunk[] = [];

  constructor(readonly deviceSize: number) {}

  get count(): number {
    return this.chunks.length;
  }

  add(c: Chunk): void {
    // Keep sorted by logical start; refuse overlaps (they make the mapping ambiguous).
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.chunks[mid] as Chunk).logical < c.logical) lo = mid + 1;
      else hi = mid;
    }
    const prev = this.chunks[lo - 1];
    const next = this.chunks[lo];
    if (next && next.logical === c.logical && next.length === c.length) return; // sys array and chunk tree repeat items
    if ((prev && prev.logical + prev.length > c.logical) || (next && c.logical + c.length > next.logical)) {
      throw new CorruptError('btrfs.ChunkOverlap', `chunk at logical ${c.logical} (+${c.length}) overlaps another`);
    }
    this.chunks.splice(lo, 0, c);
  }

  find(logical: number): Chunk | null {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = this.chunks[mid] as Chunk;
      if (logical < c.logical) hi = mid - 1;
      else if (logical >= c.logical + c.length) lo = mid + 1;
      else return c;
    }
    return null;
  }

  /**
   * The copies of logical range [logical, logical + length) that lie inside the device, clipped
   * to the longest prefix that is physically contiguous (callers loop). Throws when the address
   * is unmapped or no copy lies inside the image.
   */
  map(logical: number, length: number): Placement[] {
    const c = this.find(logical);
    if (!c) throw new CorruptError('btrfs.ChunkMap', `logical address ${logical} is in no chunk`);
    const off = logical - c.logical;
    let len = Math.min(length, c.length - off);
    const candidates: number[] = [];
    if (c.profile === 'raid0' || c.profile === 'raid10') {
      const stripeNr = Math.floor(off / c.stripeLen);
      const inStripe = off - stripeNr * c.stripeLen;
      len = Math.min(len, c.stripeLen - inStripe);
      const copies = c.profile === 'raid10' ? c.subStripes : 1;
      const factor = c.stripes.length / copies;
      const index = (stripeNr % factor) * copies;
      const row = Math.floor(stripeNr / factor);
      for (let k = 0; k < copies; k++) {
        const p = c.stripes[index + k];
        if (p != null) candidates.push(p + row * c.stripeLen + inStripe);
      }
    } else {
      for (const p of c.stripes) if (p != null) candidates.push(p + off);
    }
    const out: Placement[] = [];
    for (const physical of candidates) {
      if (Number.isSafeInteger(physical + len) && physical + len <= this.deviceSize) out.push({ physical, length: len });
    }
    if (candidates.length === 0) {
      throw new UnsupportedError('btrfs', [`multi-device: logical ${logical} lives only on other devices`]);
    }
    if (out.length === 0) {
      throw new CorruptError('btrfs.ChunkStripe', `no copy of logical ${logical} (+${len}) lies inside the ${this.deviceSize}-byte image`);
    }
    return out;
  }
}

/** The superblock's sys_chunk_array: (disk key, chunk item) pairs, bounded by its size. */
export function parseSysChunkArray(arr: Uint8Array, devid: bigint, map: ChunkMap, sbOffset: number): void {
  let off = 0;
  while (off < arr.length) {
    const where = sbOffset + 0x32b + off;
    const key: Key = readKey(arr, off, 'btrfs.SysChunkArray');
    if (key.type !== CHUNK_ITEM_KEY) throw new CorruptError('btrfs.SysChunkArray', `key type ${key.type} is not a chunk item`, where);
    const logical = Number(key.offset);
    if (!Number.isSafeInteger(logical)) throw new CorruptError('btrfs.SysChunkArray', `logical ${key.offset} beyond 2^53`, where);
    const { chunk, size } = parseChunk(arr, off + KEY_SIZE, logical, devid, where);
    map.add(chunk);
    off += KEY_SIZE + size; // size ≥ 48 + 32: progress on every step
  }
}
