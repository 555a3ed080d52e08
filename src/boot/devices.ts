/**
 * GRUB 2 device semantics over one image (GRUB manual §13.1 "How to specify devices", §16.3
 * `search`, `loopback`): names such as `hd0`, `(hd0,1)`, `(hd0,msdos5)`, `(hd0,gpt2)`,
 * `(hd0,msdos1,bsd1)`, `(hd0,msdos1,sunpc1)`, `lvm/vg-lv`, and names made by `loopback` (a file inside
 * a filesystem opened as a disk of its own, partitions and all), mapped to the Disk's candidates.
 *
 * The guest is `hd0`, the only disk. `search` walks the disk in GRUB's order (grub_device_iterate:
 * the disk, then its partitions) and answers the first match. Loopback nesting is bounded by the
 * `configDepth` budget; every opened level shares the run's Context, so its reads are charged to
 * the same metadata/time budgets as the outer disk.
 */
import { ConfigError, CorruptError, LimitExceededError, NotFoundError, isTsgrubError } from '../errors.ts';
import { checkRange, type ByteSource } from '../io/source.ts';
import { Disk, type Candidate } from '../disk.ts';
import type { FsNode, OpenOptions } from '../fs/types.ts';
import type { Vfs } from '../fs/vfs.ts';
import type { Partition } from '../partition/types.ts';
import type { DeviceResolver, GrubDeviceRef, SearchKind } from './types.ts';

/** A regular file of a volume seen as a ByteSource (the disk behind a `loopback` device). */
export class FileByteSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  constructor(
    private readonly vfs: Vfs,
    private readonly node: FsNode,
    name: string,
  ) {
    if (node.kind !== 'file') throw new CorruptError('loopback.NotAFile', `${name} is not a regular file`);
    this.size = node.size;
    this.name = name;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    // Volume.read may return less than asked only at EOF; inside the checked range that is corrupt.
    const data = await this.vfs.volume.read(this.node, offset, length);
    if (data.length !== length) {
      throw new CorruptError('loopback.ShortRead', `${this.name}: got ${data.length} of ${length} bytes at ${offset}`, offset);
    }
    return data;
  }
}

/** One component after the disk name: `msdos5` → {scheme: 'msdos', n: 5}, `2` → {scheme: null, n: 2}. */
export interface GrubPartSpec {
  readonly scheme: string | null;
  readonly n: number;
}

/** `hd0,msdos1,bsd1` → {disk: 'hd0', parts}; null when a partition component is not `[a-z]*N`. */
export function parseGrubDevice(name: string): { disk: string; parts: GrubPartSpec[] } | null {
  let s = name;
  if (s.startsWith('(') && s.endsWith(')')) s = s.slice(1, -1);
  const pieces = s.split(',');
  const disk = pieces[0]!;
  if (disk === '' || pieces.length > 4) return null;
  const parts: GrubPartSpec[] = [];
  for (const p of pieces.slice(1)) {
    const m = /^([a-z]*)([0-9]{1,6})$/.exec(p);
    if (!m) return null;
    parts.push({ scheme: m[1] === '' ? null : m[1]!, n: Number(m[2]) });
  }
  return { disk, parts };
}

/** GRUB's partition-map name and 1-based number of one partition (grub-core/partmap/*.c). */
function grubPart(p: Partition): GrubPartSpec {
  switch (p.scheme) {
    case 'mbr':
      return { scheme: 'msdos', n: p.number };
    case 'gpt':
      return { scheme: 'gpt', n: p.number };
    case 'bsd':
      return { scheme: 'bsd', n: p.number + 1 };
    case 'vtoc':
      return { scheme: 'sunpc', n: p.number + 1 };
  }
}

function partChain(disk: Disk, p: Partition): GrubPartSpec[] {
  const chain: GrubPartSpec[] = [grubPart(p)];
  let cur = p;
  // Nesting is at most MBR → BSD/VTOC; the bound keeps a malformed parent link from looping.
  for (let i = 0; i < 4 && cur.parent !== undefined; i++) {
    const parent = disk.table.partitions.find((x) => x.path === cur.parent);
    if (!parent) break;
    chain.unshift(grubPart(parent));
    cur = parent;
  }
  return chain;
}

/** GRUB's LVM device name: `lvm/VG-LV`, a `-` inside either name doubled (grub-core/disk/lvm.c). */
export function grubLvmName(vg: string, lv: string): string {
  return `lvm/${vg.split('-').join('--')}-${lv.split('-').join('--')}`;
}

/** The GRUB name of a candidate of `disk`, whose own name is `base` (`hd0`, `loop0`). */
export function grubDeviceName(disk: Disk, c: Candidate, base = 'hd0'): string {
  if (c.lv) return grubLvmName(c.lv.vg, c.lv.lv);
  if (!c.partition) return base;
  return [base, ...partChain(disk, c.partition).map((x) => `${x.scheme}${x.n}`)].join(',');
}

/** The candidate of `disk` that `parts` names (`[]` = the whole disk), or null. */
export function findPartition(disk: Disk, parts: readonly GrubPartSpec[]): Candidate | null {
  if (parts.length === 0) return disk.whole();
  for (const p of disk.table.partitions) {
    const chain = partChain(disk, p);
    if (chain.length !== parts.length) continue;
    if (chain.every((x, i) => x.n === parts[i]!.n && (parts[i]!.scheme === null || parts[i]!.scheme === x.scheme))) {
      return { path: p.path, partition: p, source: p.source };
    }
  }
  return null;
}

/** A device that names nothing on this image (GRUB: "no such device" / "no such partition"). */
export class NoSuchDeviceError extends ConfigError {
  constructor(device: string, why: string) {
    super('Device', `cannot resolve GRUB device (${device}): ${why}`);
  }
}

interface Home {
  readonly candidate: Candidate;
  readonly vfs: Vfs;
}

/**
 * The devices of one image, for the evaluator (`search`) and the loader (reading the kernel from the
 * device GRUB would read it from). Probes and opened filesystems are cached per run.
 */
export class DiskDevices implements DeviceResolver {
  private readonly probes = new Map<string, { type: string; label?: string; uuid?: string } | null>();
  private readonly vfsCache = new Map<string, Promise<Vfs>>();
  private readonly loopDisks = new Map<string, Promise<Disk>>();
  private home: Home | null = null;

  constructor(
    readonly disk: Disk,
    private readonly options?: OpenOptions,
  ) {}

  /** The candidate holding the config: its already-open Vfs is reused, and it is `$root`'s default. */
  setHome(candidate: Candidate, vfs: Vfs): void {
    this.home = { candidate, vfs };
  }

  private async candidateVfs(disk: Disk, key: string, c: Candidate): Promise<Vfs> {
    if (disk === this.disk && this.home && this.home.candidate.path === c.path) return this.home.vfs;
    let p = this.vfsCache.get(key);
    if (!p) {
      p = disk.open(c, disk === this.disk ? this.options : undefined);
      this.vfsCache.set(key, p);
    }
    return p;
  }

  async search(kind: SearchKind, value: string): Promise<string | null> {
    const disk = this.disk;
    const cands = [...(await disk.candidates())];
    if (!cands.some((c) => c.path === '0') && (await disk.isHybridIso())) cands.unshift(disk.whole());
    for (const c of cands) {
      disk.ctx.budget.check();
      const name = grubDeviceName(disk, c);
      if (kind === 'file') {
        try {
          const vfs = await this.candidateVfs(disk, `hd0/${c.path}`, c);
          if (await vfs.exists(value)) return name;
        } catch (e) {
          if (!isTsgrubError(e)) throw e;
        }
        continue;
      }
      let fs = this.probes.get(c.path);
      if (fs === undefined) {
        const p = await disk.probe(c);
        fs = p.fs ? { type: p.fs.type, ...(p.fs.label !== undefined ? { label: p.fs.label } : {}), ...(p.fs.uuid !== undefined ? { uuid: p.fs.uuid } : {}) } : null;
        this.probes.set(c.path, fs);
      }
      if (!fs) continue;
      // grub-core/commands/search.c: UUIDs compare case-insensitively, labels exactly.
      if (kind === 'fs-uuid' && fs.uuid !== undefined && fs.uuid.toLowerCase() === value.toLowerCase()) return name;
      if (kind === 'label' && fs.label !== undefined && fs.label === value) return name;
    }
    return null;
  }

  async exists(device: string, path: string): Promise<boolean> {
    try {
      const vfs = await this.open({ name: device });
      return await vfs.exists(path);
    } catch (e) {
      if (isTsgrubError(e)) return false;
      throw e;
    }
  }

  /**
   * Opens the filesystem of a device. Throws NoSuchDeviceError when the name does not exist on this
   * image, LimitExceeded(configDepth) for loopback chains past the budget, and the driver's typed
   * errors when the device exists but cannot be read.
   */
  async open(ref: GrubDeviceRef): Promise<Vfs> {
    const limit = this.disk.ctx.limits.configDepth;
    // Check the whole chain before opening anything: a 20-deep chain fails without 8 levels of I/O.
    let depth = 0;
    for (let r: GrubDeviceRef | null = ref; r; r = r.loop?.device ?? null) {
      if (r.loop) depth++;
      if (r.tooDeep || depth > limit) {
        throw new LimitExceededError('configDepth', `loopback devices nested deeper than ${limit} at (${ref.name})`, limit);
      }
    }
    const parsed = parseGrubDevice(ref.name);
    if (!parsed) throw new NoSuchDeviceError(ref.name, 'not a device name tsgrub understands');
    const { parts } = parsed;
    if (!ref.loop && parsed.disk.startsWith('lvm/')) {
      const lv = this.disk.lvs.find((x) => x.available && grubLvmName(x.vg, x.lv) === parsed.disk);
      const c = lv && parts.length === 0 ? this.disk.candidate(lv.name) : null;
      if (!c) throw new NoSuchDeviceError(ref.name, 'no such logical volume');
      return this.candidateVfs(this.disk, `lvm:${c.path}`, c);
    }
    const { disk, key, shown } = await this.diskOf(ref, parsed.disk);
    const wholeOfTable = parts.length === 0 && disk === this.disk && disk.table.partitions.length > 0 && !(await disk.isHybridIso());
    const c = wholeOfTable ? null : findPartition(disk, parts);
    if (!c) throw new NoSuchDeviceError(ref.name, parts.length === 0 ? `${shown} is partitioned; name a partition` : `no such partition on ${shown}`);
    return this.candidateVfs(disk, `${key}/${c.path}`, c);
  }

  /** The Disk a device's disk part (`hd0`, a loopback name) names, with a cache key. */
  private async diskOf(ref: GrubDeviceRef, diskName: string): Promise<{ disk: Disk; key: string; shown: string }> {
    if (ref.loop) {
      const loop = ref.loop;
      // The chain was checked against the budget in open(), so this recursion is bounded.
      const parentVfs = loop.device ? await this.open(loop.device) : this.home?.vfs;
      if (!parentVfs) throw new NoSuchDeviceError(ref.name, 'no filesystem holds its file');
      const key = loopKey(ref);
      let p = this.loopDisks.get(key);
      if (!p) {
        p = (async () => {
          const node = await parentVfs.stat(loop.path);
          if (node.kind !== 'file') throw new NoSuchDeviceError(ref.name, `loopback file ${loop.path} is not a regular file`);
          const src = new FileByteSource(parentVfs, node, `(${diskName})${loop.path}`);
          return Disk.open(src, this.disk.ctx, this.disk.registry);
        })();
        this.loopDisks.set(key, p);
      }
      return { disk: await p, key, shown: `loopback ${diskName}` };
    }
    const hd = /^hd([0-9]{1,6})$/.exec(diskName);
    if (hd) {
      if (Number(hd[1]) !== 0) throw new NoSuchDeviceError(ref.name, 'the image is the only disk, hd0');
      return { disk: this.disk, key: 'hd0', shown: 'hd0' };
    }
    throw new NoSuchDeviceError(ref.name, `no disk or loopback device named ${diskName}`);
  }
}

/** A stable key for a loopback chain (its names and file paths, innermost first). */
function loopKey(ref: GrubDeviceRef): string {
  const parts: string[] = [];
  for (let r: GrubDeviceRef | null = ref; r; r = r.loop?.device ?? null) {
    parts.push(`${r.name.split(',')[0]!}\u0000${r.loop?.path ?? ''}`);
    if (parts.length > 64) break;
  }
  return `loop:${parts.join('\u0001')}`;
}

/** A device found for a boot file, or where it was looked for. */
export interface BootFileSource {
  readonly vfs: Vfs;
  /** GRUB device it was read from (null: the config's filesystem, as pygrub does). */
  readonly device: string | null;
  readonly warnings: string[];
}

/**
 * Where GRUB would read `path` from: the entry's device when it names one (`ref`), else the config's
 * filesystem. pygrub compatibility: a disk device that does not exist on this image, or exists without
 * the file, falls back to the config's filesystem when the file is there (Xen guests often boot from a
 * partition image whose grub.cfg says `set root='hd0,msdos1'`), with a warning. Loopback devices never
 * fall back. Errors name the device and why it could not be used.
 */
export async function locateBootFile(devices: DiskDevices, home: Vfs, path: string, ref: GrubDeviceRef | null | undefined, notes: readonly string[] = []): Promise<BootFileSource> {
  const why = notes.length ? ` (${notes.join('; ')})` : '';
  if (!ref) {
    if (notes.length && !(await home.exists(path))) throw new NotFoundError(`${path}${why}`);
    return { vfs: home, device: null, warnings: [] };
  }
  const isLoop = ref.loop !== undefined || ref.tooDeep === true || ref.removed === true;
  if (ref.removed) throw new NoSuchDeviceError(ref.name, 'its loopback device was removed by `loopback -d`');
  let vfs: Vfs;
  try {
    vfs = await devices.open(ref);
  } catch (e) {
    if (!isTsgrubError(e)) throw e;
    if (!isLoop && e instanceof NoSuchDeviceError && (await home.exists(path))) {
      return { vfs: home, device: null, warnings: [`${e.message}; ${path} read from the config's filesystem as pygrub does`] };
    }
    if (e.code === 'NotFound' || e.code === 'NotADirectory') throw new NotFoundError(`loopback file of (${ref.name}): ${e.message}${why}`);
    throw e;
  }
  if (await vfs.exists(path)) return { vfs, device: ref.name, warnings: [] };
  if (!isLoop && vfs !== home && (await home.exists(path))) {
    return { vfs: home, device: null, warnings: [`${path} is not on (${ref.name}); read from the config's filesystem as pygrub does`] };
  }
  throw new NotFoundError(`${path} on (${ref.name})${why}`);
}
