/**
 * A ByteSource over a Blob or File: each read slices the blob and reads only that range, so a
 * 2 GiB image is never in memory whole (the browser keeps it on disk behind the File object).
 */
import { IoError } from '../errors.ts';
import { checkRange, type ByteSource } from '../io/source.ts';

/** The part of the Blob interface we use (also met by Node's Blob and by test doubles). */
export interface BlobLike {
  readonly size: number;
  slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> };
  readonly name?: string;
}

export class BlobSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  constructor(
    readonly blob: BlobLike,
    name?: string,
  ) {
    if (!Number.isSafeInteger(blob.size) || blob.size < 0) throw new IoError(`blob size ${String(blob.size)} is not a byte count`);
    this.size = blob.size;
    this.name = name ?? blob.name ?? 'blob';
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (length === 0) return new Uint8Array(0);
    let ab: ArrayBuffer;
    try {
      ab = await this.blob.slice(offset, offset + length).arrayBuffer();
    } catch (e) {
      // NotReadableError when the file changed or vanished after it was picked.
      throw new IoError(`reading ${this.name}: ${e instanceof Error ? e.message : String(e)}`, offset);
    }
    if (ab.byteLength !== length) throw new IoError(`short read of ${this.name} (${ab.byteLength} of ${length} bytes)`, offset);
    return new Uint8Array(ab);
  }
}
