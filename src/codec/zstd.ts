/**
 * zstd frames through fzstd (pure JS), with the output cap enforced here: fzstd sizes its window
 * (and, without content size, its output) from the frame header, so every frame header and block
 * header is walked first (RFC 8878 §3.1) and refused when it would exceed the cap; the output is
 * then counted block by block while decoding. The optional content checksum is not verified
 * (fzstd's streaming decoder skips it); frames naming a dictionary are Unsupported.
 */
import { Decompress } from 'fzstd';
import { CorruptError, LimitExceededError, UnsupportedError, isTsgrubError } from '../errors.ts';

/** Largest window we let fzstd allocate (RFC 8878 §3.1.1.1.2 recommends decoders support 8 MiB). */
const MAX_WINDOW = 8 << 20;

function fail(detail: string, offset?: number): never {
  throw new CorruptError('zstd', detail, offset);
}

function le(b: Uint8Array, off: number, n: number): number {
  if (off + n > b.length) fail('input ends inside a frame header', off);
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + (b[off + i] as number);
  return v;
}

function allZero(b: Uint8Array, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Walks the frames' headers and block headers without decoding; throws on anything over the cap.
 * Returns the length of the frames: zero bytes after a complete frame are padding (btrfs stores a
 * compressed extent rounded up to its sector size) and are not passed to the decoder.
 */
function checkFrames(input: Uint8Array, maxOutput: number): number {
  let pos = 0;
  let declared = 0;
  if (input.length === 0) fail('empty input');
  while (pos < input.length) {
    if (pos > 0 && allZero(input, pos)) return pos;
    const magic = le(input, pos, 4);
    if (magic >= 0x184d2a50 && magic <= 0x184d2a5f) {
      const size = le(input, pos + 4, 4);
      if (size > input.length - pos - 8) fail('skippable frame past the end of input', pos);
      pos += 8 + size;
      continue;
    }
    if (magic !== 0xfd2fb528) fail(`bad frame magic 0x${magic.toString(16)}`, pos);
    const fhd = le(input, pos + 4, 1);
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    const dictFlag = fhd & 3;
    if (fhd & 8) fail('reserved frame header bit set', pos + 4);
    let p = pos + 5;
    let window = 0;
    if (!single) {
      const wd = le(input, p, 1);
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
      p++;
    }
    const dictBytes = [0, 1, 2, 4][dictFlag] as number;
    if (dictBytes > 0 && le(input, p, dictBytes) !== 0) throw new UnsupportedError('zstd', ['dictionary']);
    p += dictBytes;
    const fcsBytes = fcsFlag === 0 ? single : 2 ** fcsFlag;
    let contentSize = -1;
    if (fcsBytes > 0) {
      contentSize = le(input, p, fcsBytes) + (fcsBytes === 2 ? 256 : 0);
      p += fcsBytes;
    }
    if (single) window = contentSize;
    if (contentSize >= 0) {
      declared += contentSize;
      if (declared > maxOutput) {
        throw new LimitExceededError('codecOutput', `zstd frame declares ${contentSize} bytes, cap ${maxOutput}`, maxOutput);
      }
    }
    if (window > Math.max(MAX_WINDOW, maxOutput)) {
      throw new LimitExceededError('codecOutput', `zstd window of ${window} bytes`, Math.max(MAX_WINDOW, maxOutput));
    }
    for (;;) {
      const bh = le(input, p, 3);
      const last = bh & 1;
      const type = (bh >> 1) & 3;
      const size = Math.floor(bh / 8);
      if (type === 3) fail('reserved block type', p);
      p += 3 + (type === 1 ? 1 : size);
      if (p > input.length) fail('block past the end of input', p);
      if (last) break;
    }
    p += checksum * 4;
    if (p > input.length) fail('checksum past the end of input', p);
    pos = p;
  }
  return pos;
}

export function zstdDecode(input: Uint8Array, maxOutput: number): Uint8Array {
  const framed = input.subarray(0, checkFrames(input, maxOutput));
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    const d = new Decompress((chunk) => {
      total += chunk.length;
      if (total > maxOutput) throw new LimitExceededError('codecOutput', `zstd output exceeds ${maxOutput} bytes`, maxOutput);
      if (chunk.length) chunks.push(chunk.slice());
    });
    d.push(framed, true);
  } catch (e) {
    if (isTsgrubError(e)) throw e;
    fail(`fzstd: ${e instanceof Error ? e.message : String(e)}`);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
