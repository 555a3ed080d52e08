/**
 * squashfs block decompression through `ctx.codecs`. gzip (id 1) is zlib-wrapped deflate; xz is a
 * whole .xz stream per block; lz4 is a raw block; lzo is LZO1X; zstd a frame. lzma (id 2, the
 * legacy lzma-alone format) is not supported. Every call is bounded by the caller's maximum (the
 * block size, or 8 KiB for metadata), never by anything in the compressed stream.
 */
import { LimitExceededError, CorruptError, UnsupportedError, isTsgrubError } from '../../errors.ts';
import type { Context } from '../../limits.ts';

export async function decompress(ctx: Context, compressor: string, input: Uint8Array, max: number, what: string, offset: number): Promise<Uint8Array> {
  const c = ctx.codecs;
  let out: Uint8Array;
  try {
    switch (compressor) {
      case 'gzip':
        if (!c.zlib) throw new UnsupportedError('squashfs', ['codec-zlib']);
        out = c.zlib(input, max);
        break;
      case 'xz':
        if (!c.xz) throw new UnsupportedError('squashfs', ['codec-xz']);
        out = await c.xz(input, max);
        break;
      case 'lzo':
        if (!c.lzo) throw new UnsupportedError('squashfs', ['codec-lzo']);
        out = c.lzo(input, max);
        break;
      case 'lz4':
        if (!c.lz4) throw new UnsupportedError('squashfs', ['codec-lz4']);
        out = c.lz4(input, max);
        break;
      case 'zstd':
        if (!c.zstd) throw new UnsupportedError('squashfs', ['codec-zstd']);
        out = c.zstd(input, max);
        break;
      default:
        throw new UnsupportedError('squashfs', [`compression-${compressor}`]);
    }
  } catch (e) {
    // Name the squashfs structure that failed; a bomb stays a LimitExceeded, a missing codec Unsupported.
    if (isTsgrubError(e) && (e.code === 'Unsupported' || e.code === 'LimitExceeded')) {
      if (e instanceof LimitExceededError) throw new LimitExceededError('codecOutput', `${what} at byte ${offset} inflates beyond ${max} bytes`, max);
      throw e;
    }
    throw new CorruptError(what, `${compressor} block of ${input.length} bytes does not decode: ${e instanceof Error ? e.message : String(e)}`, offset);
  }
  if (out.length > max) throw new LimitExceededError('codecOutput', `${what} at byte ${offset} inflates beyond ${max} bytes`, max);
  return out;
}
