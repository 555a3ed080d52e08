/** Messages between the page and its worker (structured-clone friendly: plain data, Blobs, Files). */
import type { ErrorData } from '../src/browser/index.ts';

export type Request =
  | { readonly id: number; readonly op: 'open'; readonly file: File }
  | { readonly id: number; readonly op: 'readdir'; readonly fs: string; readonly path: readonly number[] }
  | { readonly id: number; readonly op: 'download'; readonly fs: string; readonly path: readonly number[] };

export interface SerializedError {
  readonly code: string;
  readonly message: string;
  readonly data: ErrorData;
}

export type Reply = { readonly id: number; readonly ok: true; readonly result: unknown } | { readonly id: number; readonly ok: false; readonly error: SerializedError };

export interface PartitionRow {
  readonly path: string;
  readonly type: string;
  readonly typeName: string | null;
  readonly start: number;
  readonly size: number;
  readonly bootable: boolean;
  readonly name: string | null;
  readonly container: boolean;
}

export interface FilesystemRow {
  readonly path: string;
  /** null for an LVM logical volume. */
  readonly start: number | null;
  readonly size: number;
  readonly type: string | null;
  readonly label: string | null;
  readonly uuid: string | null;
  readonly error: string | null;
}

export interface MenuRow {
  readonly title: string;
  readonly kernel: string | null;
  readonly initrd: readonly string[];
  readonly args: string | null;
}

export interface Summary {
  readonly name: string;
  readonly size: number;
  readonly container: string | null;
  readonly scheme: string | null;
  readonly tableId: string | null;
  readonly warnings: readonly string[];
  readonly partitions: readonly PartitionRow[];
  readonly filesystems: readonly FilesystemRow[];
  readonly boot: {
    readonly fs: string;
    readonly format: string;
    readonly configPath: string;
    readonly entries: readonly MenuRow[];
    readonly selected: number;
    readonly timeout: number | null;
    readonly kernel: string;
    readonly ramdisk: string | null;
    readonly args: string;
  } | null;
  readonly bootFailures: readonly string[];
}

export interface DirRow {
  readonly name: string;
  /** Name bytes that are not UTF-8 are shown with U+FFFD; `raw` keeps the exact bytes for lookups. */
  readonly raw: readonly number[];
  readonly kind: string;
  readonly size: number | null;
}
