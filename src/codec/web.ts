/** The codec table for browsers: everything but zlib/deflate/gzip (node:zlib is Node-only). */
import { lz4BlockDecode } from './lz4.ts';
import { lzo1xDecode } from './lzo.ts';
import { xzDecode } from './xz.ts';
import type { CodecTable } from './types.ts';
import { zstdDecode } from './zstd.ts';

export const webCodecs: CodecTable = Object.freeze({
  zstd: zstdDecode,
  lz4: lz4BlockDecode,
  lzo: lzo1xDecode,
  xz: xzDecode,
});
