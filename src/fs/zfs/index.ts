/**
 * The ZFS driver: pool → MOS → DSL (datasets by name, by object number, or the pool's `bootfs`) →
 * object set → ZPL (master node, directories as ZAPs, znodes with system attributes or the older
 * znode_phys_t). See README.md for the specs followed and what is not supported yet.
 */
import { CorruptError, LimitExceededError, NotFoundError, UnsupportedError, isTsgrubError } from '../../errors.ts';
import { bound, bytesEqual, u16be, u16le, u32be, u32le, u64be, u64le } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, FilesystemDriver, FsNode, NodeKind, OpenOptions, ProbeResult, Volume } from '../types.ts';
import { decodeBlkptr, type BlockPtr } from './blkptr.ts';
import { decodeNvlist, nvStr, nvU64 } from './nvlist.ts';
import { blockPtrFor, ObjectSet, readObjectBlock, zapEntries, zapGet, zapU64, type Dnode, type ZapEntry } from './objset.ts';
import { LABEL_SIZE, Pool, SPA_VERSION_FEATURES, verifyEmbedded } from './pool.ts';
import { kindOfMode } from '../filetype.ts';

const DMU_OT_DSL_DIR = 12;
const DMU_OT_DSL_DATASET = 16;
const DMU_OT_ZNODE = 17;
const DMU_OT_SA = 44;
const DMU_OST_ZFS = 2;
const SA_MAGIC = 0x2f505a;
const ZNODE_PHYS_SIZE = 264;

/**
 * Read features we handle (zfeature_common.c names). Any other feature active in
 * `features_for_read` makes the pool Unsupported. Checksum/encryption features are accepted here
 * and refused per block/dataset when actually used.
 */
const READ_FEATURES = new Set([
  'com.delphix:hole_birth', 'com.delphix:embedded_data', 'com.delphix:extensible_dataset', 'org.open-zfs:large_blocks',
  'org.zfsonlinux:large_dnode', 'org.illumos:lz4_compress', 'org.freebsd:zstd_compress', 'com.delphix:bookmarks',
  'com.delphix:bookmark_v2', 'com.delphix:bookmark_written', 'org.illumos:sha512', 'org.illumos:skein', 'org.illumos:edonr',
  'org.openzfs:blake3', 'com.datto:encryption', 'org.illumos:multi_vdev_crash_dump', 'com.delphix:zpool_checkpoint',
  'org.openzfs:zilsaxattr', 'org.openzfs:large_microzap', 'com.delphix:head_errlog', 'org.openzfs:longname',
  'com.joyent:multi_vdev_crash_dump', 'org.zfsonlinux:project_quota', 'org.zfsonlinux:userobj_accounting',
  'com.delphix:async_destroy', 'com.delphix:empty_bpobj', 'com.delphix:spacemap_histogram', 'com.delphix:enabled_txg',
  'com.joyent:filesystem_limits', 'com.delphix:spacemap_v2', 'com.delphix:log_spacemap', 'com.delphix:livelist',
  'com.datto:resilver_defer', 'com.datto:bookmark_v2', 'org.zfsonlinux:allocation_classes', 'com.delphix:obsolete_counts',
  'com.fudosecurity:block_cloning', 'com.klarasystems:vdev_zaps_v2', 'org.openzfs:device_rebuild',
]);

interface ZNode extends FsNode {
  readonly dn: Dnode;
  readonly symlink?: Uint8Array | undefined;
}

function kindOfDirent(t: number): NodeKind | 'unknown' {
  return t === 4 ? 'dir' : t === 8 ? 'file' : t === 10 ? 'symlink' : t === 0 ? 'unknown' : 'other';
}

const dec = new TextDecoder();

interface SaAttr {
  readonly num: number;
  readonly len: number;
}

export class ZfsVolume implements Volume {
  readonly type = 'zfs';
  readonly label: string;
  readonly uuid: string;
  private readonly zapCache = new Map<number, ZapEntry[]>();
  private saByName = new Map<string, SaAttr>();
  private saByNum = new Map<number, SaAttr & { name: string }>();
  private saLayouts = new Map<number, number[]>();
  private rootObj = 0;

  private constructor(
    readonly pool: Pool,
    readonly os: ObjectSet,
    readonly source: ByteSource,
    /** Object number of the dataset (as zfs-bootfs names it) and its full name when known. */
    readonly datasetObj: number,
    readonly datasetName: string,
    readonly ctx: Context,
  ) {
    this.label = pool.name;
    this.uuid = pool.guid.toString(16).padStart(16, '0');
  }

  static async open(pool: Pool, ctx: Context, source: ByteSource, options: OpenOptions = {}): Promise<ZfsVolume> {
    const { mos, objdir } = await openMos(pool);
    if (pool.ub.version >= SPA_VERSION_FEATURES) {
      const ffr = zapU64(objdir, 'features_for_read');
      if (ffr === undefined) throw new CorruptError('zfs.mos', 'feature-flag pool without features_for_read');
      const active = await zapEntries(mos, await mos.dnode(ffr));
      const missing = active.filter((e) => (e.values[0] ?? 0n) > 0n && !READ_FEATURES.has(dec.decode(e.name))).map((e) => dec.decode(e.name));
      if (missing.length) throw new UnsupportedError(`zfs pool ${pool.name}`, missing);
    }
    const rootDir = zapU64(objdir, 'root_dataset');
    if (rootDir === undefined) throw new CorruptError('zfs.mos', 'object directory has no root_dataset');
    let dsObj: number;
    let dsName = pool.name;
    const want = options.dataset;
    if (want !== undefined && want !== '') {
      const parts = want.split('/').filter((p) => p.length > 0);
      if (parts[0] !== pool.name) throw new NotFoundError(`zfs dataset ${want} (pool is ${pool.name})`);
      if (parts.length === 2 && /^[0-9]+$/.test(parts[1]!)) {
        // zfs-bootfs=<pool>/<dataset object number>
        dsObj = bound(Number(parts[1]), 1, Number.MAX_SAFE_INTEGER, 'zfs.dataset');
      } else {
        let dir = rootDir;
        for (const comp of parts.slice(1)) {
          const dd = await dslDir(mos, dir);
          const childZap = dd.childZap;
          if (!childZap) throw new NotFoundError(`zfs dataset ${want}`);
          const e = zapGet(await zapEntries(mos, await mos.dnode(childZap)), comp);
          if (!e || e.values[0] === undefined) throw new NotFoundError(`zfs dataset ${want}`);
          dir = Number(e.values[0]);
        }
        dsObj = (await dslDir(mos, dir)).head;
        dsName = parts.join('/');
      }
    } else {
      const props = zapU64(objdir, 'pool_props');
      const bootfs = props !== undefined ? zapU64(await zapEntries(mos, await mos.dnode(props)), 'bootfs') : undefined;
      dsObj = bootfs !== undefined && bootfs !== 0 ? bootfs : (await dslDir(mos, rootDir)).head;
    }
    const dsDn = await mos.dnode(dsObj);
    if (dsDn.bonustype !== DMU_OT_DSL_DATASET || dsDn.bonus.length < 256) {
      throw new CorruptError('zfs.dataset', `object ${dsObj} is not a dataset (bonus type ${dsDn.bonustype})`);
    }
    const dsBp: BlockPtr = decodeBlkptr(dsDn.bonus, 128, dsDn.le);
    if (dsBp.encrypted) throw new UnsupportedError(`zfs dataset ${dsName}: native encryption`);
    const os = await ObjectSet.open(pool, dsBp);
    if (os.type !== DMU_OST_ZFS) throw new UnsupportedError(`zfs dataset ${dsName}: object set type ${os.type} (not a filesystem)`);
    const vol = new ZfsVolume(pool, os, source, dsObj, dsName, ctx);
    await vol.init();
    return vol;
  }

  private async init(): Promise<void> {
    const master = await this.zap(1);
    const root = zapU64(master, 'ROOT');
    if (root === undefined) throw new CorruptError('zfs.master', 'master node has no ROOT');
    this.rootObj = root;
    const saAttrs = zapU64(master, 'SA_ATTRS');
    if (saAttrs !== undefined) {
      const sa = await this.zap(saAttrs);
      const reg = zapU64(sa, 'REGISTRY');
      const lay = zapU64(sa, 'LAYOUTS');
      if (reg !== undefined) {
        for (const e of await this.zap(reg)) {
          const v = e.values[0] ?? 0n;
          // ATTR_ENCODE: number in bits 0–15, byteswap function 16–23, length 24–39.
          const a = { num: Number(v & 0xffffn), len: Number((v >> 24n) & 0xffffn) };
          const name = dec.decode(e.name);
          this.saByName.set(name, a);
          this.saByNum.set(a.num, { ...a, name });
        }
      }
      if (lay !== undefined) {
        for (const e of await this.zap(lay)) {
          const n = Number(dec.decode(e.name));
          if (Number.isSafeInteger(n)) this.saLayouts.set(n, e.values.map((x) => Number(x)));
        }
      }
    }
  }

  private async zap(obj: number): Promise<ZapEntry[]> {
    const hit = this.zapCache.get(obj);
    if (hit) return hit;
    const entries = await zapEntries(this.os, await this.os.dnode(obj));
    this.zapCache.set(obj, entries);
    if (this.zapCache.size > 64) this.zapCache.delete(this.zapCache.keys().next().value as number);
    return entries;
  }

  /** Attributes of a system-attribute buffer (module/zfs/sa.c sa_attr_iter), name → bytes. */
  private parseSa(buf: Uint8Array, le: boolean, out: Map<string, Uint8Array>): void {
    const W = 'zfs.sa';
    let l = le;
    if ((l ? u32le(buf, 0, W) : u32be(buf, 0, W)) !== SA_MAGIC) {
      l = !l;
      if ((l ? u32le(buf, 0, W) : u32be(buf, 0, W)) !== SA_MAGIC) throw new CorruptError(W, 'bad magic');
    }
    const info = l ? u16le(buf, 4, W) : u16be(buf, 4, W);
    const layoutNum = info % 1024;
    const hdrSize = Math.floor(info / 1024) * 8;
    const layout = this.saLayouts.get(layoutNum);
    if (!layout) throw new CorruptError(W, `unknown layout ${layoutNum}`);
    bound(hdrSize, 8, buf.length, `${W}.hdrsize`);
    let pos = hdrSize;
    let vi = 0;
    for (const num of layout) {
      const a = this.saByNum.get(num);
      if (!a) throw new CorruptError(W, `attribute ${num} not registered`);
      let len = a.len;
      if (len === 0) {
        const lo = 6 + 2 * vi++;
        if (lo + 2 > hdrSize) throw new CorruptError(W, 'more variable-size attributes than header lengths');
        len = l ? u16le(buf, lo, W) : u16be(buf, lo, W);
      }
      if (pos + len > buf.length) throw new CorruptError(W, `attribute ${a.name} (${len} bytes at ${pos}) overruns the ${buf.length}-byte buffer`);
      out.set(a.name, buf.subarray(pos, pos + len));
      pos = Math.ceil((pos + len) / 8) * 8;
    }
  }

  private async node(obj: number): Promise<ZNode> {
    const dn = await this.os.dnode(obj);
    const le = dn.le;
    const n64 = (b: Uint8Array | undefined, o = 0): number => {
      if (!b || b.length < o + 8) return 0;
      const v = le ? u64le(b, o) : u64be(b, o);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    };
    if (dn.bonustype === DMU_OT_ZNODE) {
      const b = dn.bonus;
      if (b.length < ZNODE_PHYS_SIZE) throw new CorruptError('zfs.znode', `bonus of ${b.length} bytes`);
      const mode = n64(b, 72);
      const size = n64(b, 80);
      const kind = kindOfMode(mode);
      const symlink = kind === 'symlink' && b.length >= ZNODE_PHYS_SIZE + size ? b.slice(ZNODE_PHYS_SIZE, ZNODE_PHYS_SIZE + size) : undefined;
      return { kind, size, id: obj, mode, uid: n64(b, 128), gid: n64(b, 136), nlink: n64(b, 96), mtime: n64(b, 16), dn, symlink };
    }
    if (dn.bonustype === DMU_OT_SA) {
      const attrs = new Map<string, Uint8Array>();
      this.parseSa(dn.bonus, le, attrs);
      if ((!attrs.has('ZPL_MODE') || !attrs.has('ZPL_SIZE') || !attrs.has('ZPL_SYMLINK')) && dn.spill && !dn.spill.hole) {
        const spill = await this.pool.readBlock(dn.spill, true);
        this.parseSa(spill, dn.spill.le, attrs);
      }
      if (!attrs.has('ZPL_MODE') || !attrs.has('ZPL_SIZE')) throw new CorruptError('zfs.sa', `object ${obj} has no mode/size`);
      const mode = n64(attrs.get('ZPL_MODE'));
      const size = n64(attrs.get('ZPL_SIZE'));
      const kind = kindOfMode(mode);
      const symlink = kind === 'symlink' ? attrs.get('ZPL_SYMLINK')?.slice() : undefined;
      return {
        kind, size, id: obj, mode, uid: n64(attrs.get('ZPL_UID')), gid: n64(attrs.get('ZPL_GID')),
        nlink: n64(attrs.get('ZPL_LINKS')), mtime: n64(attrs.get('ZPL_MTIME')), dn, symlink,
      };
    }
    throw new CorruptError('zfs.znode', `object ${obj} has bonus type ${dn.bonustype}`);
  }

  root(): Promise<FsNode> {
    return this.node(this.rootObj);
  }

  private async dirEntries(dir: FsNode): Promise<ZapEntry[]> {
    if (dir.kind !== 'dir') throw new CorruptError('zfs.dir', `object ${dir.id} is not a directory`);
    return this.zap(Number(dir.id));
  }

  async lookup(dir: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const e = (await this.dirEntries(dir)).find((x) => bytesEqual(x.name, name));
    if (!e || e.values[0] === undefined) return null;
    return this.node(Number(e.values[0] & 0xffffffffffffn));
  }

  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    for (const e of await this.dirEntries(dir)) {
      yield { name: e.name, kind: kindOfDirent(Number((e.values[0] ?? 0n) >> 60n)) };
    }
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const zn = file as ZNode;
    const dn = zn.dn;
    if (offset >= file.size || length <= 0) return new Uint8Array(0);
    const end = Math.min(file.size, offset + length);
    const n = end - offset;
    if (n > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${n} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(n);
    const bs = dn.datablksz;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    const bps: (BlockPtr | null)[] = [];
    for (let b = first; b <= last; b++) bps.push(b > dn.maxblkid ? null : await blockPtrFor(this.pool, dn, b));
    const present = bps.filter((x): x is BlockPtr => x !== null);
    const datas = await this.pool.readDataBlocks(present);
    let k = 0;
    for (let i = 0; i < bps.length; i++) {
      const bp = bps[i];
      const blkStart = (first + i) * bs;
      if (!bp) continue; // hole: zeros
      const data = datas[k++]!;
      const from = Math.max(offset, blkStart);
      const to = Math.min(end, blkStart + bs);
      const src = data.subarray(from - blkStart, Math.min(to - blkStart, data.length));
      out.set(src, from - offset);
    }
    return out;
  }

  async readlink(link: FsNode): Promise<Uint8Array> {
    const zn = link as ZNode;
    if (zn.symlink) return zn.symlink;
    // Old znodes keep long targets in the object's first data block.
    const bound_ = Math.min(link.size, this.ctx.limits.pathBytes);
    const blk = await readObjectBlock(this.pool, zn.dn, 0);
    return blk.slice(0, bound_);
  }

  bootstring(): string {
    // As libfsimage's zfs plugin builds it (tools/libfsimage/zfs/fsi_zfs.c): pool/dataset-object + the leaf's phys_path.
    return `zfs-bootfs=${this.pool.name}/${this.datasetObj},bootpath='${this.pool.physPath}'`;
  }
}

async function openMos(pool: Pool): Promise<{ mos: ObjectSet; objdir: ZapEntry[] }> {
  let lastErr: unknown = null;
  // The best uberblock first; an older one when the newest root does not verify.
  for (const ub of pool.uberblocks.slice(0, 8)) {
    try {
      pool.ub = ub;
      const mos = await ObjectSet.open(pool, ub.rootbp);
      const objdir = await zapEntries(mos, await mos.dnode(1));
      return { mos, objdir };
    } catch (e) {
      if (!isTsgrubError(e) || e.code !== 'Corrupt') throw e;
      lastErr = e;
    }
  }
  throw lastErr ?? new CorruptError('zfs.uberblock', 'no usable uberblock');
}

async function dslDir(mos: ObjectSet, obj: number): Promise<{ head: number; childZap: number }> {
  const dn = await mos.dnode(obj);
  if (dn.bonustype !== DMU_OT_DSL_DIR || dn.bonus.length < 40) throw new CorruptError('zfs.dsl_dir', `object ${obj} is not a DSL directory (bonus type ${dn.bonustype})`);
  const r = (o: number) => Number(dn.le ? u64le(dn.bonus, o) : u64be(dn.bonus, o));
  return { head: r(8), childZap: r(32) };
}

/** Opens a pool given all its device images (mirror sides, raidz children); `zfs.open` uses one. */
export async function openZfsPool(sources: readonly ByteSource[], ctx: Context, options: OpenOptions = {}): Promise<ZfsVolume> {
  const pool = await Pool.open(sources, ctx);
  return ZfsVolume.open(pool, ctx, sources[0]!, options);
}

export const zfs: FilesystemDriver = {
  id: 'zfs',
  async probe(src: ByteSource, ctx: Context): Promise<ProbeResult | null> {
    if (src.size < 4 * LABEL_SIZE) return null;
    // Label 0's config (112 KiB at 16 KiB), checksummed; then the back labels if it is damaged.
    const psize = Math.floor(src.size / LABEL_SIZE) * LABEL_SIZE;
    for (const lo of [0, LABEL_SIZE, psize - 2 * LABEL_SIZE, psize - LABEL_SIZE]) {
      ctx.budget.chargeMetadata(112 * 1024);
      const nv = await src.read(lo + 16 * 1024, 112 * 1024);
      if (nv[0] !== 1 || verifyEmbedded(nv, [BigInt(lo + 16 * 1024)]) === null) continue;
      const cfg = decodeNvlist(nv.subarray(0, nv.length - 40), lo + 16 * 1024);
      const name = nvStr(cfg, 'name');
      const guid = nvU64(cfg, 'pool_guid');
      if (name === undefined || guid === undefined) continue;
      return { type: 'zfs', label: name, uuid: guid.toString(16).padStart(16, '0') };
    }
    return null;
  },
  async open(src: ByteSource, ctx: Context, options?: OpenOptions): Promise<Volume> {
    return openZfsPool([src], ctx, options);
  },
};

export { Pool } from './pool.ts';
