/**
 * ISO 9660 driver (ECMA-119) with Rock Ridge (SUSP/RRIP 1.12), Joliet and El Torito. Names come from
 * Rock Ridge when the root's "." record carries SUSP SP, else from a Joliet SVD, else from the
 * plain identifiers mapped as Linux `map=normal` does. See README.md.
 */
import { CorruptError, LimitExceededError, UnsupportedError } from '../../errors.ts';
import { addSafe, bytesEqual, textEncoder } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, Extent, FilesystemDriver, FsNode, NodeKind, ProbeResult, Volume } from '../types.ts';
import { SECTOR, decodeUcs2, readDescriptors, type PrimaryDescriptor } from './descriptors.ts';
import { FLAG_ASSOCIATED, FLAG_DIRECTORY, FLAG_MULTI_EXTENT, decDatetimeUuid, decodeRecord, type DirectoryRecord } from './record.ts';
import { parseSystemUse, type RockRidge } from './susp.ts';
import { kindOfMode } from '../filetype.ts';

export { readElTorito, readBootCatalog, type ElToritoEntry } from './eltorito.ts';

type NameMode = 'rockridge' | 'joliet' | 'plain';

interface IsoExtent {
  readonly lba: number;
  readonly length: number;
}

export interface IsoNode extends FsNode {
  readonly extents: readonly IsoExtent[];
  readonly symlink: Uint8Array | null;
  /** Extent LBAs of the directories above this one (cycle detection). */
  readonly ancestors: readonly number[];
  readonly zisofs: boolean;
  readonly interleaved: boolean;
}


/** Linux `map=normal`: drop the ";version", a trailing ".", and lower-case ASCII. */
function plainName(id: Uint8Array): Uint8Array {
  let end = id.indexOf(0x3b);
  if (end < 0) end = id.length;
  if (end > 0 && id[end - 1] === 0x2e) end--;
  const out = id.slice(0, end);
  for (let i = 0; i < out.length; i++) {
    const c = out[i] as number;
    if (c >= 0x41 && c <= 0x5a) out[i] = c + 0x20;
  }
  return out;
}

function jolietName(id: Uint8Array): Uint8Array {
  let s = decodeUcs2(id);
  s = s.replace(/;[0-9]*$/, '');
  if (s.endsWith('.')) s = s.slice(0, -1);
  return textEncoder.encode(s);
}

function asciiLowerEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a[i] as number;
    let y = b[i] as number;
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}

interface Entry {
  readonly name: Uint8Array;
  readonly node: IsoNode;
}

export class IsoVolume implements Volume {
  readonly type = 'iso9660';
  readonly label: string | undefined;
  readonly uuid: string | undefined;
  private readonly meta: BlockCache;
  private rootNode: IsoNode | null = null;

  constructor(
    readonly source: ByteSource,
    private readonly ctx: Context,
    readonly pvd: PrimaryDescriptor,
    private readonly rootDescriptor: PrimaryDescriptor,
    readonly nameMode: NameMode,
    private readonly suspSkip: number,
    meta: BlockCache,
  ) {
    this.label = pvd.volumeId || undefined;
    // GRUB's iso9660 UUID is the volume modification date (grub_iso9660_uuid), falling back here to creation.
    this.uuid = decDatetimeUuid(pvd.modificationDate) ?? decDatetimeUuid(pvd.creationDate);
    this.meta = meta;
  }

  async root(): Promise<IsoNode> {
    if (this.rootNode) return this.rootNode;
    const d = this.rootDescriptor;
    const rec = decodeRecord(d.rootRecord, 0, d.sector * SECTOR + 156);
    if (!(rec.flags & FLAG_DIRECTORY)) throw new CorruptError('iso9660.RootDirectory', 'root record is not a directory', rec.at);
    this.rootNode = {
      kind: 'dir', size: rec.dataLength, id: rec.at, mtime: rec.mtime,
      extents: [{ lba: rec.extentLba, length: rec.dataLength }],
      symlink: null, ancestors: [], zisofs: false, interleaved: false,
    };
    return this.rootNode;
  }

  /** The records of a directory, sector by sector (ECMA-119 §6.8.1.1: records never cross a sector). */
  private async *records(dir: IsoNode): AsyncGenerator<DirectoryRecord> {
    const ext = dir.extents[0];
    if (dir.kind !== 'dir' || !ext) throw new CorruptError('iso9660.Directory', `node ${dir.id} is not a directory`);
    const sectors = Math.ceil(ext.length / SECTOR);
    const start = ext.lba * SECTOR;
    if (!Number.isSafeInteger(start) || start + sectors * SECTOR > this.source.size) {
      throw new CorruptError('iso9660.Directory', `extent ${ext.lba}+${ext.length} outside the image`, start);
    }
    const max = this.ctx.limits.dirEntries;
    let count = 0;
    for (let s = 0; s < sectors; s++) {
      this.ctx.budget.chargeNode();
      const at = start + s * SECTOR;
      const buf = await this.meta.read(at, SECTOR);
      const limit = Math.min(SECTOR, ext.length - s * SECTOR);
      let off = 0;
      while (off < limit) {
        const len = buf[off] as number;
        // §6.8.1.1: a zero length byte means the rest of this sector is unused.
        if (len === 0) break;
        if (off + len > SECTOR) throw new CorruptError('iso9660.DirectoryRecord', `record of ${len} bytes crosses the sector end`, at + off);
        const rec = decodeRecord(buf, off, at);
        off += len; // len ≥ 34 (decodeRecord checked it), so the walk progresses
        if (++count > max) throw new LimitExceededError('dirEntries', `directory ${dir.id} has more than ${max} records`, max);
        yield rec;
      }
    }
  }

  private async rockRidge(rec: DirectoryRecord): Promise<RockRidge | null> {
    if (this.nameMode !== 'rockridge') return null;
    if (rec.systemUse.length <= this.suspSkip) return null;
    const area = rec.systemUse.subarray(this.suspSkip);
    return parseSystemUse(area, rec.at + (rec.length - area.length), this.meta, this.ctx);
  }

  /** Every visible entry of `dir` with its node (multi-extent files joined, RE dirs hidden, CL followed). */
  private async *entries(dir: IsoNode): AsyncGenerator<Entry> {
    const dirLba = (dir.extents[0] as IsoExtent).lba;
    const ancestors = [...dir.ancestors, dirLba];
    let pending: IsoExtent[] = [];
    let pendingId: Uint8Array | null = null;
    for await (const rec of this.records(dir)) {
      const id = rec.identifier;
      if (id.length === 1 && (id[0] === 0 || id[0] === 1)) continue; // "." and ".."
      if (rec.flags & FLAG_ASSOCIATED) continue; // associated files are hidden, as Linux does by default
      if (pendingId && !bytesEqual(pendingId, id)) {
        throw new CorruptError('iso9660.MultiExtent', 'multi-extent file interrupted by another name', rec.at);
      }
      // §6.5.1 / §9.1.6 bit 7: more records of this file follow; its extents concatenate in order.
      if (rec.flags & FLAG_MULTI_EXTENT) {
        pending.push({ lba: rec.extentLba, length: rec.dataLength });
        pendingId = id;
        continue;
      }
      const extents = [...pending, { lba: rec.extentLba, length: rec.dataLength }];
      pending = [];
      pendingId = null;
      const rr = await this.rockRidge(rec);
      if (rr?.relocated) continue; // RRIP §4.1.5.2: the RE directory is shown where its CL points from
      const name = this.nameOf(rec, rr);
      if (name.length === 0) continue;
      const node = await this.makeNode(rec, rr, extents, ancestors);
      yield { name, node };
    }
    if (pendingId) throw new CorruptError('iso9660.MultiExtent', 'directory ends inside a multi-extent file', (dir.extents[0] as IsoExtent).lba * SECTOR);
  }

  private nameOf(rec: DirectoryRecord, rr: RockRidge | null): Uint8Array {
    if (rr?.name) return rr.name;
    if (this.nameMode === 'joliet') return jolietName(rec.identifier);
    return plainName(rec.identifier);
  }

  private async makeNode(rec: DirectoryRecord, rr: RockRidge | null, extents: IsoExtent[], ancestors: number[]): Promise<IsoNode> {
    let kind: NodeKind = rec.flags & FLAG_DIRECTORY ? 'dir' : 'file';
    if (rr?.mode !== null && rr?.mode !== undefined) kind = kindOfMode(rr.mode);
    let size = 0;
    for (const e of extents) size = addSafe(size, e.length, 'iso9660.MultiExtent');
    if (rr && rr.childLink !== null) {
      // RRIP §4.1.5.1: this placeholder file stands for the directory relocated to `childLink`;
      // its real size is in that directory's own "." record.
      const lba = rr.childLink;
      const at = lba * SECTOR;
      if (!Number.isSafeInteger(at) || at + SECTOR > this.source.size) throw new CorruptError('iso9660.SUSP.CL', `child link ${lba} outside the image`, rec.at);
      const buf = await this.meta.read(at, SECTOR);
      const dot = decodeRecord(buf, 0, at);
      if (!(dot.identifier.length === 1 && dot.identifier[0] === 0) || dot.extentLba !== lba || !(dot.flags & FLAG_DIRECTORY)) {
        throw new CorruptError('iso9660.SUSP.CL', `child link ${lba} does not point at a directory`, rec.at);
      }
      kind = 'dir';
      extents = [{ lba, length: dot.dataLength }];
      size = dot.dataLength;
    }
    if (kind === 'dir') {
      const lba = (extents[0] as IsoExtent).lba;
      if (extents.length !== 1) throw new CorruptError('iso9660.Directory', 'multi-extent directory', rec.at);
      if (ancestors.includes(lba)) throw new CorruptError('iso9660.DirectoryCycle', `directory extent ${lba} is its own ancestor`, rec.at);
    }
    const symlink = kind === 'symlink' ? (rr?.symlink ?? new Uint8Array(0)) : null;
    return {
      kind,
      size: symlink ? symlink.length : size,
      id: rec.at,
      ...(rr?.mode != null ? { mode: rr.mode } : {}),
      ...(rr?.nlink != null ? { nlink: rr.nlink } : {}),
      ...(rr?.uid != null ? { uid: rr.uid } : {}),
      ...(rr?.gid != null ? { gid: rr.gid } : {}),
      mtime: rr?.mtime ?? rec.mtime,
      extents,
      symlink,
      ancestors: kind === 'dir' ? ancestors : [],
      zisofs: rr?.zisofs ?? false,
      interleaved: rec.fileUnitSize !== 0 || rec.interleaveGap !== 0,
    };
  }

  async lookup(dir: FsNode, name: Uint8Array): Promise<IsoNode | null> {
    const loose = this.nameMode === 'plain';
    for await (const e of this.entries(dir as IsoNode)) {
      if (loose ? asciiLowerEqual(e.name, name) : bytesEqual(e.name, name)) return e.node;
    }
    return null;
  }

  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    for await (const e of this.entries(dir as IsoNode)) yield { name: e.name, kind: e.node.kind };
  }

  async readlink(link: FsNode): Promise<Uint8Array> {
    const n = link as IsoNode;
    if (n.kind !== 'symlink' || !n.symlink) throw new CorruptError('NotASymlink', `node ${n.id} is not a symlink`);
    return n.symlink;
  }

  /** File extents merged where physically contiguous. */
  private runs(n: IsoNode): Extent[] {
    if (n.zisofs) throw new UnsupportedError('iso9660', ['zisofs compressed file']);
    if (n.interleaved) throw new UnsupportedError('iso9660', ['interleaved file']);
    const out: Extent[] = [];
    let logical = 0;
    for (const e of n.extents) {
      if (e.length === 0) continue;
      const physical = e.lba * SECTOR;
      if (!Number.isSafeInteger(physical) || physical + e.length > this.source.size) {
        throw new CorruptError('iso9660.Extent', `extent ${e.lba}+${e.length} of node ${n.id} outside the image`, physical);
      }
      const last = out[out.length - 1];
      if (last && last.physical !== null && last.physical + last.length === physical) {
        out[out.length - 1] = { logical: last.logical, length: last.length + e.length, physical: last.physical };
      } else {
        out.push({ logical, length: e.length, physical });
      }
      logical += e.length;
    }
    return out;
  }

  async *extents(file: FsNode): AsyncIterable<Extent> {
    yield* this.runs(file as IsoNode);
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const n = file as IsoNode;
    if (n.kind !== 'file') throw new CorruptError('NotAFile', `node ${n.id} is not a regular file`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new CorruptError('iso9660.Read', `bad read range ${offset}+${length}`);
    }
    const end = Math.min(n.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if (end - offset > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${end - offset} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(end - offset);
    for (const r of this.runs(n)) {
      const a = Math.max(offset, r.logical);
      const b = Math.min(end, r.logical + r.length);
      if (a >= b) continue;
      const data = await this.source.read((r.physical as number) + (a - r.logical), b - a);
      out.set(data, a - offset);
    }
    return out;
  }
}

async function probe(src: ByteSource): Promise<ProbeResult | null> {
  const d = await readDescriptors(src);
  if (!d) return null;
  const uuid = decDatetimeUuid(d.pvd.modificationDate) ?? decDatetimeUuid(d.pvd.creationDate);
  return { type: 'iso9660', ...(d.pvd.volumeId ? { label: d.pvd.volumeId } : {}), ...(uuid ? { uuid } : {}) };
}

async function open(src: ByteSource, ctx: Context): Promise<IsoVolume> {
  const meta = new BlockCache(src, ctx.budget, SECTOR);
  const d = await readDescriptors(meta);
  if (!d) throw new UnsupportedError(`${src.name ?? 'source'}: not an ISO 9660 image`);
  // Rock Ridge: SUSP SP must be the first entry of the root's "." record (SUSP §5.3).
  const rootRec = decodeRecord(d.pvd.rootRecord, 0, d.pvd.sector * SECTOR + 156);
  const rootAt = rootRec.extentLba * SECTOR;
  let skip: number | null = null;
  if (Number.isSafeInteger(rootAt) && rootAt + SECTOR <= src.size) {
    const buf = await meta.read(rootAt, SECTOR);
    if ((buf[0] as number) > 0) {
      const dot = decodeRecord(buf, 0, rootAt);
      const su = dot.systemUse;
      if (su.length >= 7 && su[0] === 0x53 && su[1] === 0x50 && su[2] === 7 && su[4] === 0xbe && su[5] === 0xef) {
        skip = su[6] as number;
      }
    }
  } else {
    throw new CorruptError('iso9660.RootDirectory', `root extent ${rootRec.extentLba} outside the image`, d.pvd.sector * SECTOR + 156);
  }
  if (skip !== null) return new IsoVolume(src, ctx, d.pvd, d.pvd, 'rockridge', skip, meta);
  if (d.joliet) return new IsoVolume(src, ctx, d.pvd, d.joliet, 'joliet', 0, meta);
  return new IsoVolume(src, ctx, d.pvd, d.pvd, 'plain', 0, meta);
}

export const iso9660: FilesystemDriver = {
  id: 'iso9660',
  probe: (src) => probe(src),
  open: (src, ctx) => open(src, ctx),
};
