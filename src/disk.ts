/**
 * A disk: its partition table and the places a filesystem may live (the whole disk, or each
 * partition). Filesystems are probed through a registry; each candidate is opened on its own
 * clamped source, so a filesystem can never read outside its partition.
 */
import { isTsgrubError, TsgrubError, toTsgrubError } from './errors.ts';
import type { ByteSource } from './io/source.ts';
import type { Context } from './limits.ts';
import { scanPartitions } from './partition/index.ts';
import { openContainer } from './image/index.ts';
import type { ContainerOptions } from './image/types.ts';
import { scanLvm, type LogicalVolume } from './lvm/index.ts';
import type { Partition, PartitionTable } from './partition/types.ts';
import type { FilesystemRegistry } from './fs/registry.ts';
import type { FilesystemDriver, OpenOptions, ProbeResult, Volume } from './fs/types.ts';
import { Vfs } from './fs/vfs.ts';

/**
 * A place a filesystem may live: the whole disk (`partition` null, path "0"), one partition, or an
 * LVM logical volume (path "vg/lv").
 */
export interface Candidate {
  readonly path: string;
  readonly partition: Partition | null;
  readonly source: ByteSource;
  readonly lv?: LogicalVolume;
}

export interface DiskOptions {
  /** Container options (backing files are only followed when `allowBacking` and a resolver are given). */
  readonly container?: ContainerOptions;
}

/** Partition types that carry an LVM physical volume. */
const LVM_MBR_TYPE = '0x8e';
const LVM_GPT_TYPE = 'e6d6d379-f507-44c2-a23c-238f2a3df928';

export interface ProbedCandidate extends Candidate {
  readonly fs: ProbeResult | null;
  readonly driver: FilesystemDriver | null;
  readonly error?: TsgrubError;
}

const ISO_MAGIC = [0x43, 0x44, 0x30, 0x30, 0x31]; // "CD001"

export class Disk {
  private constructor(
    /** The virtual disk (after any container). */
    readonly source: ByteSource,
    readonly table: PartitionTable,
    readonly ctx: Context,
    readonly registry: FilesystemRegistry,
    /** Container format (qcow2, vhd, …) or null for a raw image, and the backing chain followed. */
    readonly container: { format: string | null; chain: readonly string[] },
    /** LVM logical volumes found on the disk's PVs. */
    readonly lvs: readonly LogicalVolume[],
  ) {}

  static async open(image: ByteSource, ctx: Context, registry: FilesystemRegistry, options: DiskOptions = {}): Promise<Disk> {
    const opened = await openContainer(image, ctx, options.container ?? {});
    const source = opened.source;
    const table = await scanPartitions(source, ctx);
    const pvs = table.partitions.filter((p) => !p.container && (p.type.toLowerCase() === LVM_MBR_TYPE || p.type.toLowerCase() === LVM_GPT_TYPE)).map((p) => ({ path: p.path, source: p.source }));
    if (table.partitions.length === 0) pvs.push({ path: '0', source });
    let lvs: LogicalVolume[] = [];
    try {
      lvs = await scanLvm(pvs, ctx);
    } catch (e) {
      // A broken PV on the whole disk of an unpartitioned image must not hide its filesystem.
      if (!isTsgrubError(e) || table.partitions.length > 0) throw e;
    }
    return new Disk(source, table, ctx, registry, { format: opened.format, chain: opened.chain }, lvs);
  }

  whole(): Candidate {
    return { path: '0', partition: null, source: this.source };
  }

  /** Every partition that may hold a filesystem (containers excluded), in table order, then the LVs. */
  partitions(): Candidate[] {
    const parts: Candidate[] = this.table.partitions.filter((p) => !p.container).map((p) => ({ path: p.path, partition: p, source: p.source }));
    const lvs: Candidate[] = this.lvs.filter((lv) => lv.available).map((lv) => ({ path: lv.name, partition: null, source: lv.source, lv }));
    return [...parts, ...lvs];
  }

  /** True when the disk carries an ISO 9660 volume at offset 0 (a hybrid ISO behind an MBR/GPT). */
  async isHybridIso(): Promise<boolean> {
    if (this.source.size < 0x8006) return false;
    const b = await this.source.read(0x8001, 5);
    return ISO_MAGIC.every((c, i) => b[i] === c);
  }

  /**
   * Candidates for "where is the filesystem": every partition, then the whole disk when there is no
   * table (or as a last resort). A hybrid ISO's whole-disk volume comes first.
   */
  async candidates(): Promise<Candidate[]> {
    const parts = this.partitions();
    if (parts.length === 0) return [this.whole()];
    if (await this.isHybridIso()) return [this.whole(), ...parts.filter((p) => p.partition?.start !== 0)];
    return parts;
  }

  /** Finds a candidate by its path ("0" = whole disk, "1", "5", "1s0"). */
  candidate(path: string): Candidate | null {
    if (path === '0') return this.whole();
    const p = this.table.partitions.find((x) => x.path === path);
    if (p) return { path: p.path, partition: p, source: p.source };
    const lv = this.lvs.find((x) => x.name === path);
    return lv ? { path: lv.name, partition: null, source: lv.source, lv } : null;
  }

  async probe(c: Candidate): Promise<ProbedCandidate> {
    try {
      const m = await this.registry.probe(c.source, this.ctx);
      return { ...c, fs: m?.result ?? null, driver: m?.driver ?? null };
    } catch (e) {
      return { ...c, fs: null, driver: null, error: toTsgrubError(e) };
    }
  }

  async open(c: Candidate, options?: OpenOptions): Promise<Vfs> {
    const m = await this.registry.probe(c.source, this.ctx);
    if (!m) throw new TsgrubError('Unsupported', c.partition || c.lv ? 'no known filesystem' : 'no partition table or known filesystem', { path: c.path });
    const volume: Volume = await m.driver.open(c.source, this.ctx, options);
    return new Vfs(volume, this.ctx);
  }

  /**
   * Opens candidates in order and returns the first whose filesystem satisfies `accept`
   * (e.g. "holds this path"); errors on one candidate move on to the next and are kept.
   */
  async findVolume(accept: (vfs: Vfs) => Promise<boolean>, options?: OpenOptions): Promise<{ vfs: Vfs; candidate: Candidate } | { errors: Array<{ path: string; error: TsgrubError }> }> {
    const errors: Array<{ path: string; error: TsgrubError }> = [];
    for (const c of await this.candidates()) {
      try {
        const vfs = await this.open(c, options);
        if (await accept(vfs)) return { vfs, candidate: c };
      } catch (e) {
        const err = toTsgrubError(e);
        if (!isTsgrubError(e)) throw e;
        errors.push({ path: c.path, error: err });
      }
    }
    return { errors };
  }
}
