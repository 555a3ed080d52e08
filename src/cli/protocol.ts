/**
 * The parent⇄worker channel: newline-delimited JSON over the inherited socket, each message at most
 * 64 KiB and schema-checked on receipt (threat-model §3.1 C11). The parent never trusts a field it did
 * not validate; guest strings inside are data, re-escaped before they reach a terminal.
 */
import type { Socket } from 'node:net';

export const MAX_MESSAGE = 64 << 10;

export interface MenuEntryView {
  readonly title: string;
  readonly kernel: string | null;
  readonly initrd: string | null;
  readonly args: string | null;
  readonly lines: readonly string[];
}

export interface WorkerIdentity {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  readonly pathsDenied: boolean;
  readonly limits: readonly string[];
  /** How many environment variables it sees (it should see none). */
  readonly envVars?: number;
}

export type WorkerMessage =
  | { type: 'menu'; entries: MenuEntryView[]; defaultIndex: number; timeout: number | null; hidden: boolean; password: boolean; partition: string; configPath: string }
  | { type: 'result'; kernelBytes: number; ramdiskBytes: number | null; args: string; listing: string; warnings: string[]; partition: string; how: string; config: { format: string; path: string } | null; identity?: WorkerIdentity; trace?: Array<[string, number]>; reads?: { calls: number; bytes: number }; cpuMs?: number }
  | { type: 'listing'; listing: string; failures: string[] }
  /** A prestarted worker's plan for one output file: (length, image offset or -1) pairs, in chunks. */
  | { type: 'map'; file: 'kernel' | 'ramdisk'; size: number; runs: number[]; done: boolean }
  /** A prestarted worker cannot plan this file (compressed, in a container): the parent starts a worker that copies. */
  | { type: 'unmappable'; file: 'kernel' | 'ramdisk' }
  | { type: 'error'; error: { code: string; message: string; data: Record<string, unknown> }; failures: string[] };

export type ParentMessage =
  | { type: 'choose'; index: number; edited: { kernel: string; initrd: string | null; args: string } | null }
  /**
   * To a prestarted worker: what to do (a WorkerRequest), the image to open (the path bin/tsgrub
   * granted it, and the device and inode the parent opened, as decimal strings) and the uid to run as.
   */
  | { type: 'start'; request: unknown; image: { path: string; dev: string; ino: string }; runas: number | null };

export class MessageReader {
  private buf = '';
  private readonly queue: unknown[] = [];
  private waiters: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  private ended: Error | null = null;

  /** Reads a socket; without one, the owner feeds `push` and `fail` (a pipe read with fs.read). */
  constructor(sock?: Socket) {
    if (!sock) return;
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.push(chunk));
    sock.on('end', () => this.fail(new Error('channel closed')));
    sock.on('error', (e) => this.fail(e));
  }

  /** Whether the channel has failed or closed (nothing more will be read). */
  get closed(): boolean {
    return this.ended !== null;
  }

  push(chunk: string): void {
    if (this.ended) return;
    this.buf += chunk;
    if (this.buf.length > MAX_MESSAGE * 2) return this.fail(new Error('message too large'));
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.length > MAX_MESSAGE) return this.fail(new Error('message too large'));
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        return this.fail(new Error('malformed message'));
      }
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    }
  }

  fail(e: Error): void {
    if (!this.ended) this.ended = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  next(): Promise<unknown> {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/** A map chunk carries at most this many runs, so that it stays well under MAX_MESSAGE. */
export const MAP_CHUNK_RUNS = 1500;

export function send(sock: Socket, msg: WorkerMessage | ParentMessage): Promise<void> {
  const line = `${JSON.stringify(msg)}\n`;
  if (line.length > MAX_MESSAGE) throw new Error('message too large');
  return new Promise((resolve, reject) => sock.write(line, (e) => (e ? reject(e) : resolve())));
}
