/**
 * A disk: its partition table and the places a filesystem may live (the whole disk, or each
 * partition). Filesystems are probed through a registry; each candidate is opened on its own
 * clamped source, so a filesystem can never read outside its partition.
 */
import { isTsgrubError, type TsgrubError, toTsgrubError, UnsupportedError } from './errors.ts';
import type { ByteSource } from './io/source.ts';
import type { Context } from './limits.ts';
import { scanPartitions } from './partition/index.ts';
import type { Partition, PartitionTable } from './partition/types.ts';
import type { FilesystemRegistry } from './fs/registry.ts';
import type { FilesystemDriver, OpenOptions, ProbeResult, Volume } from './fs/types.ts';
import { Vfs } from './fs/vfs.ts';

/** A place a filesystem may live: the whole disk (`partition` null, path "0") or one partition. */
export interface Candidate {
  readonly path: string;
  readonly partition: Partition | null;
  readonly source: ByteSource;
}

export interface ProbedCandidate extends Candidate {
  readonly fs: ProbeResult | null;
  readonly driver: FilesystemDriver | null;
  readonly error?: TsgrubError;
}

const ISO_MAGIC = [0x43, 0x44, 0x30, 0x30, 0x31]; // "CD001"

export class Disk {
  private constructor(
    readonly source: ByteSource,
    readonly table: PartitionTable,
    readonly ctx: Context,
    readonly registry: FilesystemRegistry,
  ) {}

  static async open(source: ByteSource, ctx: Context, registry: FilesystemRegistry): Promise<Disk> {
    const table = await scanPartitions(source, ctx);
    return new Disk(source, table, ctx, registry);
  }

  whole(): Candidate {
    return { path: '0', partition: null, source: this.source };
  }

  /** Every partition that may hold a filesystem (containers excluded), in table order. */
  partitions(): Candidate[] {
    return this.table.partitions.filter((p) => !p.container).map((p) => ({ path: p.path, partition: p, source: p.source }));
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
    return p ? { path: p.path, partition: p, source: p.source } : null;
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
    if (!m) throw new UnsupportedError(`partition ${c.path}: no known filesystem`);
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
