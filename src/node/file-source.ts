/** Node adapter: a ByteSource over a file descriptor (image file or block device), large positional reads. */
import { fstatSync, openSync, readSync, closeSync, constants, read as readCb } from 'node:fs';
import { IoError } from '../errors.ts';
import { checkRange, type ByteSource } from '../io/source.ts';

function readAsync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    readCb(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

export class FileSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  readonly fd: number;
  private readonly ownsFd: boolean;
  /**
   * Serve `read` with blocking preads on this thread instead of libuv's pool. For a process that has
   * nothing else to do while it waits — tsgrub's worker — this saves a thread hand-off per read
   * (~20–100 µs; a boot makes a few dozen metadata reads). Off by default: a library call must not
   * block its caller's event loop on a slow device.
   */
  syncReads = false;
  /** Counters for benchmarks (read amplification): bytes and calls that reached the descriptor. */
  bytesRead = 0;
  readCalls = 0;

  private constructor(fd: number, size: number, name: string, ownsFd: boolean) {
    this.fd = fd;
    this.size = size;
    this.name = name;
    this.ownsFd = ownsFd;
  }

  /** Opens read-only. Block devices report size 0 from fstat, so their size is found by seeking reads. */
  static open(path: string, name = 'image'): FileSource {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY);
    try {
      return FileSource.fromFd(fd, name, true);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  static fromFd(fd: number, name = 'image', ownsFd = false): FileSource {
    const st = fstatSync(fd);
    let size = st.size;
    if (st.isBlockDevice()) size = blockDeviceSize(fd);
    else if (!st.isFile()) throw new IoError(`${name} is not a regular file or block device`);
    return new FileSource(fd, size, name, ownsFd);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const buf = new Uint8Array(length);
    if (this.syncReads) {
      this.readIntoSync(buf, 0, offset, length);
      return buf;
    }
    this.bytesRead += length;
    this.readCalls++;
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = await readAsync(this.fd, buf, done, length - done, offset + done);
      } catch (e) {
        throw new IoError(`read failed: ${(e as Error).message}`, offset + done);
      }
      if (n === 0) throw new IoError(`short read (${done} of ${length} bytes)`, offset + done);
      done += n;
    }
    return buf;
  }

  /**
   * Reads exactly `length` bytes at `offset` into `dst[dstOffset…]`, synchronously: the copy fast
   * path (copy.ts) reuses one buffer and has nothing else to do while it waits.
   */
  readIntoSync(dst: Uint8Array, dstOffset: number, offset: number, length: number): void {
    checkRange(this, offset, length);
    if (!Number.isSafeInteger(dstOffset) || dstOffset < 0 || dstOffset + length > dst.length) {
      throw new RangeError(`readIntoSync: ${length} bytes at ${dstOffset} do not fit a buffer of ${dst.length}`);
    }
    this.bytesRead += length;
    this.readCalls++;
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd, dst, dstOffset + done, length - done, offset + done);
      } catch (e) {
        throw new IoError(`read failed: ${(e as Error).message}`, offset + done);
      }
      if (n === 0) throw new IoError(`short read (${done} of ${length} bytes)`, offset + done);
      done += n;
    }
  }

  close(): void {
    if (this.ownsFd) closeSync(this.fd);
  }
}

/** Size of a block device by binary search on 1-byte reads (no ioctl from Node). */
function blockDeviceSize(fd: number): number {
  const b = new Uint8Array(1);
  const has = (pos: number) => {
    try {
      return readSync(fd, b, 0, 1, pos) === 1;
    } catch {
      return false;
    }
  };
  let lo = 0;
  let hi = 1;
  while (has(hi * 512 - 1) && hi < 2 ** 43) hi *= 2;
  // size in sectors in [lo, hi)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (has(mid * 512 - 1)) lo = mid;
    else hi = mid;
  }
  return lo * 512;
}
