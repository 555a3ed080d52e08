/**
 * Decompression of one btrfs extent (kernel fs/btrfs/{zlib,lzo,zstd}.c). Output is capped by the
 * extent's ram_bytes (≤ 128 KiB, checked by the item parser); a shorter output is zero-filled as
 * the kernel does.
 * LZO framing (fs/btrfs/lzo.c): le32 total length (including itself), then segments of
 * le32 length + LZO1X data; a segment header never straddles a sector boundary, so when fewer than
 * 4 bytes remain in the sector the rest of it is padding.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { u32le } from '../../io/bytes.ts';
import type { CodecTable, Decoder } from '../../codec/types.ts';
import { COMPRESS_LZO, COMPRESS_ZLIB, COMPRESS_ZSTD } from './items.ts';

const NAMES = ['none', 'zlib', 'lzo', 'zstd'] as const;

function codec(codecs: CodecTable, type: number): Decoder {
  const d = type === COMPRESS_ZLIB ? codecs.zlib : type === COMPRESS_LZO ? codecs.lzo : type === COMPRESS_ZSTD ? codecs.zstd : undefined;
  if (!d) throw new UnsupportedError('btrfs compression', [NAMES[type] ?? `type ${type}`]);
  return d;
}

function lzoFramed(lzo: Decoder, input: Uint8Array, ramBytes: number, sectorsize: number, where: number): Uint8Array {
  const what = 'btrfs.LzoFrame';
  const total = u32le(input, 0, what);
  if (total < 4 || total > input.length) throw new CorruptError(what, `total length ${total} outside [4, ${input.length}]`, where);
  const out = new Uint8Array(ramBytes);
  let pos = 4;
  let op = 0;
  while (pos < total && op < ramBytes) {
    const left = sectorsize - (pos % sectorsize);
    if (left < 4) pos += left; // padding to the next sector
    if (pos + 4 > total) break;
    const len = u32le(input, pos, what);
    pos += 4;
    if (len === 0 || len > total - pos) throw new CorruptError(what, `segment of ${len} bytes past the ${total}-byte frame`, where + pos);
    const seg = lzo(input.subarray(pos, pos + len), ramBytes - op);
    out.set(seg, op);
    op += seg.length;
    pos += len; // len ≥ 1: progress
  }
  return out;
}

export function decompressExtent(codecs: CodecTable, type: number, input: Uint8Array, ramBytes: number, sectorsize: number, where: number): Uint8Array {
  const d = codec(codecs, type);
  if (type === COMPRESS_LZO) return lzoFramed(d, input, ramBytes, sectorsize, where);
  const got = d(input, ramBytes);
  if (got.length === ramBytes) return got;
  const out = new Uint8Array(ramBytes);
  out.set(got);
  return out;
}
