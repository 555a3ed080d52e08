/**
 * The browser entry: the platform-free API plus Blob/File and HTTP-range sources and a codec table
 * with zlib (fflate). No Node built-in is reachable from here (test/web/bundle.test.ts).
 */
import { openDisk, type DiskImage, type DiskOptions } from '../index.ts';
import { BlobSource, type BlobLike } from './blob-source.ts';
import { browserCodecs } from './codecs.ts';
import { HttpRangeSource, type HttpSourceOptions } from './http-source.ts';

export * from '../index.ts';
export { BlobSource, type BlobLike } from './blob-source.ts';
export { HttpRangeSource, type HttpSourceOptions, type FetchLike } from './http-source.ts';
export { browserCodecs, adler32 } from './codecs.ts';

/** Opens a Blob or File (read range by range, never whole) with the built-ins and browser codecs. */
export function openBlob(blob: BlobLike, options: DiskOptions = {}): Promise<DiskImage> {
  return openDisk(new BlobSource(blob, options.name), { ...options, codecs: options.codecs ?? browserCodecs });
}

/** Opens an image served over HTTP(S) with range requests. */
export async function openUrl(url: string, options: DiskOptions & HttpSourceOptions = {}): Promise<DiskImage> {
  const src = await HttpRangeSource.open(url, options);
  return openDisk(src, { ...options, codecs: options.codecs ?? browserCodecs });
}
