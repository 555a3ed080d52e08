/**
 * The codec table for Node: zlib/deflate/gzip from node:zlib with `maxOutputLength` (a bomb stops at
 * the cap, threat-model C8), zstd from fzstd, lz4 and lzo from our own decoders.
 */
import type * as Zlib from 'node:zlib';
import { CorruptError, LimitExceededError } from '../errors.ts';
import { lz4BlockDecode } from './lz4.ts';
import { lzo1xDecode } from './lzo.ts';
import { xzDecode } from './xz.ts';
import type { CodecTable, Decoder } from './types.ts';
import { zstdDecode } from './zstd.ts';

type ZlibName = 'inflateSync' | 'inflateRawSync' | 'gunzipSync';

/**
 * node:zlib, loaded on first use: it pulls in the stream machinery, and most boots decode nothing
 * (bench/README.md, "Startup").
 */
let zlib: typeof Zlib | undefined;

function viaZlib(kind: string, name: ZlibName): Decoder {
  return (input, maxOutput) => {
    if (maxOutput === 0) {
      // node:zlib refuses maxOutputLength 0; a stream that decodes to nothing is still checked.
      const out = viaZlib(kind, name)(input, 1);
      if (out.length > 0) throw new LimitExceededError('codecOutput', `${kind} output exceeds 0 bytes`, 0);
      return out;
    }
    zlib ??= process.getBuiltinModule('node:zlib');
    try {
      const b = zlib[name](input, { maxOutputLength: maxOutput });
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new LimitExceededError('codecOutput', `${kind} output exceeds ${maxOutput} bytes`, maxOutput);
      throw new CorruptError(kind, e instanceof Error ? e.message : String(e));
    }
  };
}

export const nodeCodecs: CodecTable = Object.freeze({
  zlib: viaZlib('zlib', 'inflateSync'),
  deflate: viaZlib('deflate', 'inflateRawSync'),
  gzip: viaZlib('gzip', 'gunzipSync'),
  zstd: zstdDecode,
  lz4: lz4BlockDecode,
  lzo: lzo1xDecode,
  xz: xzDecode,
});
