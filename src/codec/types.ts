/**
 * Decompressors, injected as a table (hyparquet's pattern) so the browser build never sees node:zlib.
 * Every decoder takes the exact or maximal output size from the caller (never from the compressed
 * data), throws a typed error on malformed input, and never returns more than `maxOutput` bytes.
 */
export type Decoder = (input: Uint8Array, maxOutput: number) => Uint8Array;
/** For codecs only available asynchronously (wasm streams: xz). */
export type AsyncDecoder = (input: Uint8Array, maxOutput: number) => Promise<Uint8Array>;

export interface CodecTable {
  /** zlib-wrapped deflate (RFC 1950), adler32 verified. */
  readonly zlib?: Decoder;
  /** raw deflate (RFC 1951). */
  readonly deflate?: Decoder;
  /** gzip member (RFC 1952). */
  readonly gzip?: Decoder;
  /** zstd frame(s). */
  readonly zstd?: Decoder;
  /** xz stream (async: wasm xz-embedded). */
  readonly xz?: AsyncDecoder;
  /** raw LZ4 block. */
  readonly lz4?: Decoder;
  /** LZO1X. */
  readonly lzo?: Decoder;
}
