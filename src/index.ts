/**
 * tsgrub's public, platform-free entry (docs/api.md). Everything here runs unchanged in Node and in a
 * browser: no `node:` import, no Buffer, no process. The platform entries add sources and codecs:
 * `tsgrub/node` (paths, descriptors, node:zlib) and `tsgrub/browser` (Blob/File, HTTP ranges, fflate).
 *
 * Semantic versioning covers every name exported here (test/api/surface.test.ts fails when the
 * surface changes and package.json's version does not say so).
 */
import { InvalidArgumentError, NotFoundError, isTsgrubError, toTsgrubError, type TsgrubError } from './errors.ts';
import { MemorySource, type ByteSource } from './io/source.ts';
import { createContext, type Context, type Limits } from './limits.ts';
import type { CodecTable } from './codec/types.ts';
import { webCodecs } from './codec/web.ts';
import { Disk, type Candidate } from './disk.ts';
import { builtinDrivers } from './fs/drivers.ts';
import { FilesystemRegistry } from './fs/registry.ts';
import type { FilesystemDriver, FsNode, OpenOptions as VolumeOptions } from './fs/types.ts';
import type { PathLike, StreamOptions, Vfs } from './fs/vfs.ts';
import type { ContainerOptions } from './image/types.ts';
import type { Partition, PartitionTable } from './partition/types.ts';
import { loadBoot, type LoaderOptions, type LoaderOutcome } from './boot/loader.ts';
import type { BootEntry, BootMenu } from './boot/types.ts';

// ── Errors and budgets ──────────────────────────────────────────────────────────────────────────
export {
  TsgrubError,
  NotFoundError,
  NotADirectoryError,
  IsADirectoryError,
  TooManySymlinksError,
  UnsupportedError,
  CorruptError,
  LimitExceededError,
  IoError,
  InvalidArgumentError,
  ConfigError,
  isTsgrubError,
  isErrorCode,
  toTsgrubError,
  type ErrorCode,
  type ErrorData,
} from './errors.ts';
export { DEFAULT_LIMITS, resolveLimits, createContext, Budget, type Limits, type Context } from './limits.ts';

// ── Sources ─────────────────────────────────────────────────────────────────────────────────────
export { MemorySource, SliceSource, BlockCache, CountingSource, checkRange, type ByteSource } from './io/source.ts';

// ── Codecs ──────────────────────────────────────────────────────────────────────────────────────
export type { CodecTable, Decoder, AsyncDecoder } from './codec/types.ts';
/** The codecs that need no platform help (zstd, lz4, lzo); zlib comes from a platform entry. */
export const portableCodecs: CodecTable = webCodecs;

// ── Containers, partitions, filesystems (the plugin API) ───────────────────────────────────────
export { openContainer, containerFormats, qcow2, vhd, vhdx, vmdk, type OpenedContainer } from './image/index.ts';
export type { ContainerFormat, ContainerId, ContainerOptions } from './image/types.ts';
export { scanPartitions, PARTITION_SCHEMES, gptScheme, mbrScheme, vtocScheme, bsdScheme } from './partition/index.ts';
export type { Partition, PartitionScheme, PartitionTable, SchemeId } from './partition/types.ts';
export type { FilesystemDriver, Volume, FsNode, DirEntry, Extent, ExtentBatch, NodeKind, ProbeResult, OpenOptions as VolumeOptions } from './fs/types.ts';
export { FilesystemRegistry, type ProbeMatch } from './fs/registry.ts';
export { builtinDrivers } from './fs/drivers.ts';
export { ext } from './fs/ext/index.ts';
export { xfs } from './fs/xfs/index.ts';
export { btrfs } from './fs/btrfs/index.ts';
export { ufs } from './fs/ufs/index.ts';
export { iso9660 } from './fs/iso9660/index.ts';
export { fat } from './fs/fat/index.ts';
export { zfs } from './fs/zfs/index.ts';
export { reiserfs } from './fs/reiserfs/index.ts';
export { squashfs } from './fs/squashfs/index.ts';
export { erofs } from './fs/erofs/index.ts';
export { Vfs, type PathLike, type ListedEntry, type StreamOptions } from './fs/vfs.ts';
export { Disk, type Candidate, type ProbedCandidate } from './disk.ts';

// ── Boot configs and entry selection ───────────────────────────────────────────────────────────
export { findBootConfig, parseConfig, CONFIG_PATHS } from './boot/discover.ts';
export { loadBoot, configFs, type LoaderOptions, type LoaderOutcome, type BootChoice } from './boot/loader.ts';
export { resolveEntry, buildArgs } from './boot/select.ts';
export type { BootMenu, BootEntry, ConfigFormat, ConfigFs } from './boot/types.ts';

// ── The high-level API ─────────────────────────────────────────────────────────────────────────

/** Anything an image can be opened from without platform help. */
export type ImageInput = ByteSource | Uint8Array | ArrayBuffer;

export interface DiskOptions {
  /** Budget overrides (DEFAULT_LIMITS otherwise). */
  readonly limits?: Partial<Limits>;
  /** Aborts every later read of this disk (LimitExceeded `aborted`). */
  readonly signal?: AbortSignal;
  /** Decompressors; `portableCodecs` by default (platform entries pass theirs). */
  readonly codecs?: CodecTable;
  /** Filesystem drivers, probed in order; `builtinDrivers` by default with `openDisk`. */
  readonly drivers?: readonly FilesystemDriver[];
  /** Container options: backing files are followed only with `allowBacking` and a `resolveBacking` (Node's entry has one). */
  readonly container?: ContainerOptions;
  /** A short name for messages. */
  readonly name?: string;
}

/** One place a filesystem may live, as `DiskImage.filesystems()` reports it. */
export interface FilesystemInfo {
  /** "0" for the whole disk, a partition's path ("1", "5", "1s0") or an LVM volume ("vg/lv"): what `mount()` takes. */
  readonly path: string;
  readonly partition: Partition | null;
  /** Byte offset on the disk (null for an LVM logical volume, which need not be contiguous) and size. */
  readonly start: number | null;
  readonly size: number;
  /** The driver id that claimed it ("ext4", "iso9660"), null when none did. */
  readonly type: string | null;
  readonly label?: string;
  readonly uuid?: string;
  /** Why probing failed, when it did (a filesystem that is there but broken). */
  readonly error?: TsgrubError;
}

/** The boot menu tsgrub would show, and what it would boot without a choice. */
export interface BootMenuInfo {
  /** The partition path holding the config (as in `filesystems()`). */
  readonly path: string;
  readonly menu: BootMenu;
  /** The entry tsgrub boots by default (pygrub's rules: `default`, saved entry, out of range → 0). */
  readonly selected: number;
  readonly entry: BootEntry;
  readonly kernel: string;
  readonly ramdisk: string | null;
  readonly args: string;
}

function toSource(input: ImageInput, name: string): ByteSource {
  if (input instanceof Uint8Array) return new MemorySource(input, name);
  if (input instanceof ArrayBuffer) return new MemorySource(new Uint8Array(input), name);
  if (typeof input === 'object' && input !== null && typeof input.read === 'function' && Number.isSafeInteger(input.size) && input.size >= 0) {
    return input;
  }
  throw new InvalidArgumentError('image must be a ByteSource, a Uint8Array or an ArrayBuffer');
}

/**
 * An opened disk image: its container, partition table and filesystems. All reads go through one
 * budget (`ctx`), so a hostile image cannot spread its cost over many calls to stay under each cap.
 */
export class DiskImage {
  private constructor(
    /** The image as given (before the container layer). */
    readonly image: ByteSource,
    readonly disk: Disk,
  ) {}

  /** The detected container format ("qcow2", "vhd", …), null for a raw image. */
  get container(): string | null {
    return this.disk.container.format;
  }

  /**
   * Opens an image with exactly the drivers and codecs given (no other driver is pulled into a
   * bundle). `openDisk` is the same with the built-ins as defaults.
   */
  static async open(input: ImageInput, options: DiskOptions & { readonly drivers: readonly FilesystemDriver[] }): Promise<DiskImage> {
    const image = toSource(input, options.name ?? 'image');
    const ctx = createContext(options.limits, options.codecs ?? {}, options.signal);
    const registry = new FilesystemRegistry(options.drivers);
    const disk = await Disk.open(image, ctx, registry, options.container ? { container: options.container } : {});
    return new DiskImage(image, disk);
  }

  get ctx(): Context {
    return this.disk.ctx;
  }

  /** The virtual disk (after the container layer). */
  get source(): ByteSource {
    return this.disk.source;
  }

  get size(): number {
    return this.disk.source.size;
  }

  get partitionTable(): PartitionTable {
    return this.disk.table;
  }

  /** Every place a filesystem may live (each partition, or the whole disk), probed in table order. */
  async filesystems(): Promise<FilesystemInfo[]> {
    const places: Candidate[] = this.disk.partitions();
    if (places.length === 0 || (await this.disk.isHybridIso())) places.unshift(this.disk.whole());
    const out: FilesystemInfo[] = [];
    for (const c of places) {
      const p = await this.disk.probe(c);
      out.push({
        path: c.path,
        partition: c.partition,
        start: c.partition ? c.partition.start : c.lv ? null : 0,
        size: c.source.size,
        type: p.fs?.type ?? null,
        ...(p.fs?.label !== undefined ? { label: p.fs.label } : {}),
        ...(p.fs?.uuid !== undefined ? { uuid: p.fs.uuid } : {}),
        ...(p.error ? { error: p.error } : {}),
      });
    }
    return out;
  }

  /**
   * Opens the filesystem at `path` ("0" whole disk, "1", "5", "1s0"). Without a path: the first
   * place (in `filesystems()` order) that a driver opens.
   */
  async mount(path?: string, options?: VolumeOptions): Promise<Vfs> {
    if (path !== undefined) {
      const c = this.disk.candidate(path);
      if (!c) throw new NotFoundError(`partition ${path}`);
      return this.disk.open(c, options);
    }
    const failures: string[] = [];
    for (const c of await this.disk.candidates()) {
      try {
        return await this.disk.open(c, options);
      } catch (e) {
        if (!isTsgrubError(e)) throw toTsgrubError(e);
        failures.push(`${c.path}: ${e.message}`);
      }
    }
    throw new NotFoundError(`a filesystem on this disk${failures.length ? ` (${failures.join('; ')})` : ''}`);
  }

  /** tsgrub's whole decision (partition order, config discovery, `--entry`, `--args`, --kernel). */
  boot(options: LoaderOptions = {}): Promise<LoaderOutcome> {
    return loadBoot(this.disk, options);
  }

  /** The boot menu tsgrub would show and the entry it would pick; null (with `failures`) when none. */
  async bootMenu(): Promise<{ menu: BootMenuInfo | null; failures: Array<{ path: string; error: TsgrubError }> }> {
    const out = await loadBoot(this.disk, {});
    const c = out.choice;
    if (!c || !c.menu) return { menu: null, failures: out.failures };
    return {
      menu: {
        path: c.candidate.path,
        menu: c.menu,
        selected: c.index,
        entry: c.menu.entries[c.index] as BootEntry,
        kernel: c.kernel,
        ramdisk: c.ramdisk,
        args: c.args,
      },
      failures: out.failures,
    };
  }
}

/** Opens a disk image with every built-in driver and container format (the common case). */
export function openDisk(input: ImageInput, options: DiskOptions = {}): Promise<DiskImage> {
  return DiskImage.open(input, {
    ...options,
    codecs: options.codecs ?? portableCodecs,
    drivers: options.drivers ?? builtinDrivers,
  });
}

/**
 * A file's bytes as a WHATWG ReadableStream (large chunks, pulled on demand, so memory stays flat
 * whatever the file size). Same caps as `Vfs.chunks` (the `fileBytes` budget unless `maxBytes`).
 */
export function fileStream(vfs: Vfs, path: PathLike | FsNode, options: StreamOptions = {}): ReadableStream<Uint8Array> {
  let it: AsyncGenerator<Uint8Array> | null = null;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!it) {
          const node = typeof path === 'object' && !(path instanceof Uint8Array) ? path : await vfs.stat(path);
          it = vfs.chunks(node, options);
        }
        const r = await it.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        controller.error(toTsgrubError(e));
      }
    },
    async cancel() {
      await it?.return(undefined);
    },
  });
}
