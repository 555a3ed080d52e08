/**
 * LVM2 logical volumes over the PVs given (LVM2 lib/format_text, "Text Format Volume Group"):
 * each PV's label and metadata area are read, the VG metadata (highest seqno per VG id) is parsed
 * by config.ts, and every visible LV becomes a ByteSource over the PVs present: linear and striped
 * segments, plus `zero`/`error`. Thin, RAID, mirror, cache and snapshot segments are Unsupported;
 * an LV over a missing PV is reported unavailable with the reason.
 */
import { CorruptError, type TsgrubError, UnsupportedError, toTsgrubError } from '../errors.ts';
import { type ByteSource, SliceSource, checkRange } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { type ConfigSection, type ConfigValue, parseConfig } from './config.ts';
import { type PvLabel, readLabel, readMetadataText } from './label.ts';

export { parseConfig, ConfigSection, DEFAULT_CONFIG_LIMITS } from './config.ts';
export { lvmCrc, readLabel, readMetadataText } from './label.ts';

const SECTOR = 512;
const MAX_SEGMENTS = 10_000;
const MAX_STRIPES = 128;

export interface LvArea {
  /** Name of the PV in the VG metadata ("pv0") and the path of the device it was found on. */
  readonly pv: string;
  readonly path: string | null;
  /** First physical extent of this area on the PV. */
  readonly startExtent: number;
}

export interface LvSegment {
  readonly type: string;
  /** Logical extents [startExtent, startExtent + extentCount) of the LV. */
  readonly startExtent: number;
  readonly extentCount: number;
  /** Striped only: chunk size in bytes (one area = linear). */
  readonly stripeSize: number;
  readonly areas: readonly LvArea[];
}

export interface LogicalVolume {
  /** "vg/lv". */
  readonly name: string;
  readonly vg: string;
  readonly lv: string;
  readonly uuid: string;
  /** Size in bytes. */
  readonly size: number;
  readonly segments: readonly LvSegment[];
  /** False when the LV cannot be read (a PV is missing, an unsupported segment type): see `error`. */
  readonly available: boolean;
  readonly error?: TsgrubError;
  /** The LV's bytes; for an unavailable LV every read throws `error`. */
  readonly source: ByteSource;
}

interface FoundPv {
  readonly path: string;
  readonly source: ByteSource;
  readonly label: PvLabel;
}

interface PvPlace {
  readonly name: string;
  readonly found: FoundPv | null;
  readonly peStart: number;
  readonly peCount: number;
}

const int = (s: ConfigSection, key: string, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
  const v = s.number(key);
  if (v === null || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new CorruptError(`lvm.${what}`, `${s.name}: ${key} = ${String(v)} is not an integer in [${min}, ${max}]`);
  }
  return v;
};

/** Stored PV ids have dashes (6-4-4-4-4-4-6); the label has the bare 32 characters. */
const bareUuid = (id: string): string => id.replace(/-/g, '');

class FailingSource implements ByteSource {
  constructor(
    readonly size: number,
    readonly name: string,
    private readonly error: TsgrubError,
  ) {}
  async read(): Promise<Uint8Array> {
    throw this.error;
  }
}

/** Striped/linear LV: segments in order, each split across its areas in stripe-size chunks. */
class LvSource implements ByteSource {
  constructor(
    readonly size: number,
    readonly name: string,
    private readonly extentBytes: number,
    private readonly segs: readonly { seg: LvSegment; places: readonly (PvPlace & { found: FoundPv })[] }[],
    private readonly ctx: Context,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const out = new Uint8Array(length);
    let pos = 0;
    for (let steps = 0; pos < length; steps++) {
      if ((steps & 1023) === 1023) this.ctx.budget.check();
      const at = offset + pos;
      const extent = Math.floor(at / this.extentBytes);
      const s = this.segs.find((x) => extent >= x.seg.startExtent && extent < x.seg.startExtent + x.seg.extentCount);
      if (!s) throw new CorruptError('lvm.Segments', `no segment maps extent ${extent} of ${this.name}`);
      const segStart = s.seg.startExtent * this.extentBytes;
      const segEnd = segStart + s.seg.extentCount * this.extentBytes;
      const inSeg = at - segStart;
      let n = Math.min(length - pos, segEnd - at);
      let area = 0;
      let inArea = inSeg;
      const stripes = s.places.length;
      if (stripes > 1) {
        // Chunk c of the segment lives on stripe c % N, row floor(c / N) of that stripe's area.
        const chunk = Math.floor(inSeg / s.seg.stripeSize);
        area = chunk % stripes;
        inArea = Math.floor(chunk / stripes) * s.seg.stripeSize + (inSeg % s.seg.stripeSize);
        n = Math.min(n, s.seg.stripeSize - (inSeg % s.seg.stripeSize));
      }
      const place = s.places[area]!;
      const a = s.seg.areas[area]!;
      const dev = place.peStart + a.startExtent * this.extentBytes + inArea;
      out.set(await place.found.source.read(dev, n), pos);
      pos += n;
    }
    return out;
  }
}

function buildLv(
  vgName: string,
  lvSec: ConfigSection,
  extentBytes: number,
  pvs: Map<string, PvPlace>,
  ctx: Context,
): LogicalVolume {
  const segCount = int(lvSec, 'segment_count', 'SegmentCount', 1, MAX_SEGMENTS);
  const segments: LvSegment[] = [];
  let problem: TsgrubError | null = null;
  let nextExtent = 0;
  for (let k = 1; k <= segCount; k++) {
    const s = lvSec.section(`segment${k}`);
    if (!s) throw new CorruptError('lvm.Segment', `${vgName}/${lvSec.name}: segment${k} missing`);
    const type = s.string('type') ?? '';
    const startExtent = int(s, 'start_extent', 'Segment');
    const extentCount = int(s, 'extent_count', 'Segment', 1);
    if (startExtent !== nextExtent) throw new CorruptError('lvm.Segment', `${vgName}/${lvSec.name}: segment${k} starts at extent ${startExtent}, expected ${nextExtent}`);
    nextExtent = startExtent + extentCount;
    const areas: LvArea[] = [];
    let stripeSize = 0;
    if (type === 'striped' || type === 'linear') {
      const count = int(s, 'stripe_count', 'Segment', 1, MAX_STRIPES);
      if (count > 1) stripeSize = int(s, 'stripe_size', 'Segment', 1, 2 ** 31) * SECTOR;
      if (extentCount % count !== 0) throw new CorruptError('lvm.Segment', `${extentCount} extents do not split over ${count} stripes`);
      const list: ConfigValue[] = s.array('stripes') ?? [];
      if (list.length !== count * 2) throw new CorruptError('lvm.Segment', `stripes lists ${list.length / 2} areas, stripe_count is ${count}`);
      for (let j = 0; j < count; j++) {
        const pv = list[2 * j];
        const pe = list[2 * j + 1];
        if (typeof pv !== 'string' || typeof pe !== 'number' || !Number.isSafeInteger(pe) || pe < 0) {
          throw new CorruptError('lvm.Segment', `stripe ${j} is not a "pv", extent pair`);
        }
        const place = pvs.get(pv);
        areas.push({ pv, path: place?.found?.path ?? null, startExtent: pe });
        const perArea = extentCount / count;
        if (!place) {
          problem ??= new CorruptError('lvm.Segment', `${vgName}/${lvSec.name} names PV ${JSON.stringify(pv)} absent from the VG`);
        } else if (pe + perArea > place.peCount) {
          throw new CorruptError('lvm.Segment', `${vgName}/${lvSec.name} extents ${pe}+${perArea} lie past the ${place.peCount} extents of ${pv}`);
        } else if (!place.found) {
          problem ??= new UnsupportedError(`${vgName}/${lvSec.name}`, [`PV ${pv} is missing`]);
        } else if (place.peStart + (pe + perArea) * extentBytes > place.found.source.size) {
          throw new CorruptError('lvm.Segment', `${vgName}/${lvSec.name} extents ${pe}+${perArea} lie past the end of ${place.found.path}`);
        }
      }
    } else if (type !== 'zero' && type !== 'error') {
      problem ??= new UnsupportedError(`${vgName}/${lvSec.name}`, [`segment type ${JSON.stringify(type)}`]);
    }
    segments.push({ type, startExtent, extentCount, stripeSize, areas });
  }
  const size = nextExtent * extentBytes;
  if (!Number.isSafeInteger(size)) throw new CorruptError('lvm.Segment', 'LV size overflows');
  const name = `${vgName}/${lvSec.name}`;
  const uuid = lvSec.string('id') ?? '';
  if (problem) return { name, vg: vgName, lv: lvSec.name, uuid, size, segments, available: false, error: problem, source: new FailingSource(size, name, problem) };
  const withPlaces = segments.map((seg) => ({ seg, places: seg.areas.map((a) => pvs.get(a.pv) as PvPlace & { found: FoundPv }) }));
  let source: ByteSource;
  const only = withPlaces[0];
  if (withPlaces.length === 1 && only && only.seg.areas.length === 1 && only.seg.type !== 'zero') {
    const p = only.places[0]!;
    source = new SliceSource(p.found.source, p.peStart + only.seg.areas[0]!.startExtent * extentBytes, size, name);
  } else if (segments.some((s) => s.type === 'zero' || s.type === 'error')) {
    const err = new UnsupportedError(name, ['zero/error segments mixed with data']);
    return { name, vg: vgName, lv: lvSec.name, uuid, size, segments, available: false, error: err, source: new FailingSource(size, name, err) };
  } else {
    source = new LvSource(size, name, extentBytes, withPlaces, ctx);
  }
  return { name, vg: vgName, lv: lvSec.name, uuid, size, segments, available: true, source };
}

function buildVg(vgName: string, vg: ConfigSection, found: FoundPv[], ctx: Context): LogicalVolume[] {
  const extentSectors = int(vg, 'extent_size', 'ExtentSize', 1, 2 ** 32);
  const extentBytes = extentSectors * SECTOR;
  const pvs = new Map<string, PvPlace>();
  for (const pv of vg.section('physical_volumes')?.sections() ?? []) {
    const id = bareUuid(pv.string('id') ?? '');
    const match = found.find((f) => f.label.uuid === id) ?? null;
    pvs.set(pv.name, { name: pv.name, found: match, peStart: int(pv, 'pe_start', 'PeStart') * SECTOR, peCount: int(pv, 'pe_count', 'PeCount') });
  }
  const out: LogicalVolume[] = [];
  for (const lv of vg.section('logical_volumes')?.sections() ?? []) {
    ctx.budget.chargeNode();
    const status = lv.array('status') ?? [];
    if (!status.includes('VISIBLE')) continue; // internal LVs (thin pool data, RAID images, …)
    out.push(buildLv(vgName, lv, extentBytes, pvs, ctx));
  }
  return out;
}

/**
 * Finds the LVs of every VG whose metadata is on one of `pvs` (whole disks or partitions). Devices
 * without an LVM label are skipped; a label or metadata that is present but corrupt throws.
 */
export async function scanLvm(pvs: ReadonlyArray<{ path: string; source: ByteSource }>, ctx: Context): Promise<LogicalVolume[]> {
  const found: FoundPv[] = [];
  const vgs = new Map<string, { seqno: number; name: string; section: ConfigSection }>();
  for (const pv of pvs) {
    ctx.budget.check();
    const label = await readLabel(pv.source);
    if (!label) continue;
    found.push({ path: pv.path, source: pv.source, label });
    for (const area of label.metadataAreas) {
      const text = await readMetadataText(pv.source, area, ctx);
      if (text === null) continue;
      const root = parseConfig(text);
      // The VG is the one top-level section; the rest are plain keys (contents, version, …).
      for (const vg of root.sections()) {
        const id = vg.string('id') ?? vg.name;
        const seqno = int(vg, 'seqno', 'Seqno');
        const prev = vgs.get(id);
        if (!prev || seqno > prev.seqno) vgs.set(id, { seqno, name: vg.name, section: vg });
      }
    }
  }
  const out: LogicalVolume[] = [];
  for (const vg of vgs.values()) {
    try {
      out.push(...buildVg(vg.name, vg.section, found, ctx));
    } catch (e) {
      throw toTsgrubError(e);
    }
  }
  return out;
}
