/**
 * ReiserFS keys (kernel fs/reiserfs/reiserfs.h `struct reiserfs_key`): 16 bytes, k_dir_id and
 * k_objectid (u32 each) then either the 3.5 pair (k_offset u32, k_uniqueness u32) or the 3.6 packed
 * u64 whose low 60 bits are the offset and high 4 bits the type. Both decode to one canonical form,
 * (dirId, objectId, offset, type), which is how the kernel compares them (comp_keys).
 */
import { CorruptError } from '../../errors.ts';
import { u32le, u64le } from '../../io/bytes.ts';

/** Item types in the 3.6 encoding (reiserfs.h TYPE_*). */
export const TYPE_STAT_DATA = 0;
export const TYPE_INDIRECT = 1;
export const TYPE_DIRECT = 2;
export const TYPE_DIRENTRY = 3;
export const TYPE_ANY = 15;

/** The 3.5 "uniqueness" values (reiserfs.h V1_*_UNIQUENESS). */
const V1_SD_UNIQUENESS = 0;
const V1_INDIRECT_UNIQUENESS = 0xfffffffe;
const V1_DIRECT_UNIQUENESS = 0xffffffff;
const V1_DIRENTRY_UNIQUENESS = 500;
const V1_ANY_UNIQUENESS = 555;

/** ih_version: which key format an item head's key uses. */
export const KEY_FORMAT_3_5 = 0;
export const KEY_FORMAT_3_6 = 1;

export const KEY_SIZE = 16;

export interface Key {
  readonly dirId: number;
  readonly objectId: number;
  /** Exact offset (up to 2^60 in the 3.6 format, hence bigint). */
  readonly offset: bigint;
  readonly type: number;
}

const OFFSET_MASK = (1n << 60n) - 1n;

function v1Type(uniqueness: number, what: string, at: number | undefined): number {
  switch (uniqueness) {
    case V1_SD_UNIQUENESS:
      return TYPE_STAT_DATA;
    case V1_INDIRECT_UNIQUENESS:
      return TYPE_INDIRECT;
    case V1_DIRECT_UNIQUENESS:
      return TYPE_DIRECT;
    case V1_DIRENTRY_UNIQUENESS:
      return TYPE_DIRENTRY;
    case V1_ANY_UNIQUENESS:
      return TYPE_ANY;
    default:
      throw new CorruptError(what, `3.5 key with unknown uniqueness ${uniqueness}`, at);
  }
}

/**
 * Decodes the key at `off` of `b`. `format` is the item head's ih_version; for keys in internal
 * nodes (which carry no version) 'auto' applies the kernel's le_key_version(): a 3.6 type field of
 * indirect/direct/direntry means 3.6, anything else is read as 3.5 (a stat-data key is the same bytes
 * in both formats).
 */
export function decodeKey(b: Uint8Array, off: number, format: number | 'auto', what: string, at?: number): Key {
  const k_dir_id = u32le(b, off, what);
  const k_objectid = u32le(b, off + 4, what);
  const v2 = u64le(b, off + 8, what);
  let fmt = format;
  if (fmt === 'auto') {
    const t = Number(v2 >> 60n);
    fmt = t === TYPE_INDIRECT || t === TYPE_DIRECT || t === TYPE_DIRENTRY ? KEY_FORMAT_3_6 : KEY_FORMAT_3_5;
  }
  if (fmt === KEY_FORMAT_3_6) {
    const type = Number(v2 >> 60n);
    if (type > TYPE_DIRENTRY && type !== TYPE_ANY) throw new CorruptError(what, `3.6 key with unknown type ${type}`, at);
    return { dirId: k_dir_id, objectId: k_objectid, offset: v2 & OFFSET_MASK, type };
  }
  if (fmt !== KEY_FORMAT_3_5) throw new CorruptError(what, `unknown key format ${fmt}`, at);
  const k_offset = u32le(b, off + 8, what);
  const k_uniqueness = u32le(b, off + 12, what);
  return { dirId: k_dir_id, objectId: k_objectid, offset: BigInt(k_offset), type: v1Type(k_uniqueness, what, at) };
}

/** Total order of keys (kernel comp_keys): dir id, object id, offset, type. */
export function compareKeys(a: Key, b: Key): number {
  if (a.dirId !== b.dirId) return a.dirId < b.dirId ? -1 : 1;
  if (a.objectId !== b.objectId) return a.objectId < b.objectId ? -1 : 1;
  if (a.offset !== b.offset) return a.offset < b.offset ? -1 : 1;
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  return 0;
}

/** Orders only by object (kernel comp_short_keys). */
export function compareObject(a: { dirId: number; objectId: number }, b: { dirId: number; objectId: number }): number {
  if (a.dirId !== b.dirId) return a.dirId < b.dirId ? -1 : 1;
  if (a.objectId !== b.objectId) return a.objectId < b.objectId ? -1 : 1;
  return 0;
}

export function keyString(k: Key): string {
  return `[${k.dirId} ${k.objectId} ${k.offset} ${k.type}]`;
}
