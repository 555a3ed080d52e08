/** Streams a file out of an image into a file descriptor in large chunks (memory stays flat). */
import { write } from 'node:fs';
import { IoError } from '../errors.ts';
import type { FsNode } from '../fs/types.ts';
import type { StreamOptions, Vfs } from '../fs/vfs.ts';

function writeAll(fd: number, data: Uint8Array, position: number | null): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = () => {
      write(fd, data, done, data.length - done, position === null ? null : position + done, (err, n) => {
        if (err) return reject(new IoError(`write failed: ${err.message}`));
        done += n;
        if (done < data.length) step();
        else resolve();
      });
    };
    step();
  });
}

/** Copies `node` to `fd` (from its current position when `positional` is false). Returns bytes written. */
export async function copyToFd(vfs: Vfs, node: FsNode, fd: number, opts: StreamOptions & { positional?: boolean } = {}): Promise<number> {
  let off = 0;
  for await (const chunk of vfs.chunks(node, { chunkBytes: 4 << 20, ...opts })) {
    await writeAll(fd, chunk, opts.positional === false ? null : off);
    off += chunk.length;
  }
  return off;
}
