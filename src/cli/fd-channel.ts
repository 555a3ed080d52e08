/**
 * The worker's end of the parent⇄worker channel (protocol.ts), over the inherited socket descriptor
 * (or pipe pair) with plain blocking reads and writes: the worker has nothing else to do while it waits for the
 * parent, and this keeps node:net and the stream machinery (~8–10 ms of module loading, bench/README.md
 * "Startup") out of its start.
 */
import { readSync, writeSync } from 'node:fs';
import { IoError } from '../errors.ts';
import { MAX_MESSAGE, type WorkerMessage } from './protocol.ts';

export class FdChannel {
  private readonly rfd: number;
  private readonly wfd: number;
  private pending = '';
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  /** One socket (spawned worker) or a pair of pipes (prestarted worker, bin/tsgrub). */
  constructor(rfd: number, wfd = rfd) {
    this.rfd = rfd;
    this.wfd = wfd;
  }

  /** Writes one message as one JSON line (at most MAX_MESSAGE bytes). */
  send(msg: WorkerMessage): void {
    const bytes = Buffer.from(`${JSON.stringify(msg)}\n`, 'utf8');
    if (bytes.length > MAX_MESSAGE) throw new IoError(`message of ${bytes.length} bytes exceeds ${MAX_MESSAGE}`);
    for (let done = 0; done < bytes.length; ) {
      const n = writeSync(this.wfd, bytes, done, bytes.length - done);
      if (n <= 0) throw new IoError('channel write made no progress');
      done += n;
    }
  }

  /** Blocks until the parent's next message (one JSON line); fails on EOF, oversize or bad JSON. */
  next(): unknown {
    const buf = Buffer.allocUnsafe(4096);
    for (;;) {
      const nl = this.pending.indexOf('\n');
      if (nl >= 0) {
        const line = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        try {
          return JSON.parse(line);
        } catch {
          throw new IoError('malformed message from the parent');
        }
      }
      if (this.pending.length > MAX_MESSAGE) throw new IoError('message from the parent too large');
      const n = readSync(this.rfd, buf, 0, buf.length, null);
      if (n === 0) throw new IoError('channel closed by the parent');
      this.pending += this.decoder.decode(buf.subarray(0, n), { stream: true });
    }
  }
}
