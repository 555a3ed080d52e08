/**
 * xz (.xz container, LZMA2) through `xz-decompress` (xz-embedded compiled to wasm, ReadableStream
 * API). squashfs stores one whole .xz stream per block. The output is bounded by the caller's
 * `maxOutput` (the block size), never by the stream: decoding stops as soon as it is passed.
 */
import type * as XzModule from 'xz-decompress';
import { CorruptError, LimitExceededError, TsgrubError } from '../errors.ts';
import { concatBytes } from '../io/bytes.ts';
import type { AsyncDecoder } from './types.ts';

// Loaded on first use: the wasm bundle is only needed for xz-compressed images, and importing it
// eagerly would cost every run (and every browser bundle) its startup time.
type XzCtor = typeof XzModule.XzReadableStream;
let ctor: Promise<XzCtor> | null = null;
function loadXz(): Promise<XzCtor> {
  ctor ??= import('xz-decompress').then((m) => {
    // The package is a CommonJS webpack bundle: Node's ESM loader exposes its exports under
    // `default`, bundlers under the namespace itself.
    const ns = m as unknown as { XzReadableStream?: XzCtor; default?: { XzReadableStream?: XzCtor } };
    const c = ns.default?.XzReadableStream ?? ns.XzReadableStream;
    if (!c) throw new CorruptError('xz', 'xz-decompress does not export XzReadableStream');
    return c;
  });
  return ctor;
}

export const xzDecode: AsyncDecoder = async (input, maxOutput) => {
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      // A copy: the stream may transfer/detach what it is given.
      controller.enqueue(input.slice());
      controller.close();
    },
  });
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    const XzReadableStream = await loadXz();
    reader = new XzReadableStream(source).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!value || value.length === 0) continue;
      total += value.length;
      if (total > maxOutput) throw new LimitExceededError('codecOutput', `xz output exceeds ${maxOutput} bytes`, maxOutput);
      parts.push(value);
    }
  } catch (e) {
    if (reader) reader.cancel().catch(() => undefined);
    if (e instanceof TsgrubError) throw e;
    throw new CorruptError('xz', e instanceof Error ? e.message : String(e));
  }
  return concatBytes(parts);
};
