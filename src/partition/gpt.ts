/**
 * GUID Partition Table, UEFI 2.10 §5.3: header at LBA 1 (512- or 4096-byte logical sectors; the
 * header's own MyLBA says which), header and entry-array CRC32, backup header at the last LBA used
 * when the primary is bad. The protective MBR is only checked for not being a real MBR (mbr.ts).
 */
import { CorruptError, LimitExceededError } from '../errors.ts';
import { bound, guidString, slice, u32le, u64le } from '../io/bytes.ts';
import { crc32 } from '../io/checksum.ts';
import { BlockCache, type ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { makePartition, overlaps, placeExtent, type Extent } from './extent.ts';
import { classifySector0 } from './mbr.ts';
import type { Partition, PartitionScheme, PartitionTable } from './types.ts';

const SECTOR_SIZES = [512, 4096] as const;
const SIGNATURE = 'EFI PART';
const MIN_HEADER_SIZE = 92;
const MIN_ENTRY_SIZE = 128;
const MAX_ENTRY_SIZE = 4096;
/** Largest entry array we read (threat-model.md §limits: array ≤ 1 MiB). */
const MAX_ARRAY_BYTES = 1 << 20;
const ENTRY_NAME_BYTES = 72;
const LEGACY_BIOS_BOOTABLE = 1n << 2n;
const ZERO_GUID = '00000000-0000-0000-0000-000000000000';

/** Common partition type GUIDs (UEFI spec, freedesktop Discoverable Partitions, gdisk's table). */
export const GPT_TYPES: ReadonlyMap<string, string> = new Map([
  ['c12a7328-f81f-11d2-ba4b-00a0c93ec93b', 'EFI System'],
  ['21686148-6449-6e6f-744e-656564454649', 'BIOS boot'],
  ['024dee41-33e7-11d3-9d69-0008c781f39f', 'MBR partition scheme'],
  ['0fc63daf-8483-4772-8e79-3d69d8477de4', 'Linux filesystem'],
  ['4f68bce3-e8cd-4db1-96e7-fbcaf984b709', 'Linux root (x86-64)'],
  ['44479540-f297-41b2-9af7-d131d5f0458a', 'Linux root (x86)'],
  ['b921b045-1df0-41c3-af44-4c6f280d3fae', 'Linux root (ARM-64)'],
  ['bc13c2ff-59e6-4262-a352-b275fd6f7172', 'Linux extended boot'],
  ['933ac7e1-2eb4-4f13-b844-0e14e2aef915', 'Linux home'],
  ['e6d6d379-f507-44c2-a23c-238f2a3df928', 'Linux LVM'],
  ['a19d880f-05fc-4d3b-a006-743f0f84911e', 'Linux RAID'],
  ['0657fd6d-a4ab-43c4-84e5-0933c84b4f4f', 'Linux swap'],
  ['ebd0a0a2-b9e5-4433-87c0-68b6b72699c7', 'Microsoft basic data'],
  ['e3c9e316-0b5c-4db8-817d-f92df00215ae', 'Microsoft reserved'],
  ['6a82cb45-1dd2-11b2-99a6-080020736631', 'Solaris boot'],
  ['6a85cf4d-1dd2-11b2-99a6-080020736631', 'Solaris root'],
  ['6a898cc3-1dd2-11b2-99a6-080020736631', 'Solaris /usr & Apple ZFS'],
  ['6a87c46f-1dd2-11b2-99a6-080020736631', 'Solaris swap'],
  ['83bd6b9d-7f41-11dc-be0b-001560b84f0f', 'FreeBSD boot'],
  ['516e7cb4-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD data'],
  ['516e7cb5-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD swap'],
  ['516e7cb6-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD UFS'],
  ['516e7cba-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD ZFS'],
  ['49f48d5a-b10e-11dc-b99b-0019d1879648', 'NetBSD FFS'],
]);

/** EFI_PARTITION_TABLE_HEADER, validated; LBAs that index the disk are exact numbers. */
export interface GptHeader {
  readonly Revision: number;
  readonly HeaderSize: number;
  readonly MyLBA: number;
  readonly AlternateLBA: bigint;
  readonly FirstUsableLBA: number;
  readonly LastUsableLBA: number;
  readonly DiskGUID: string;
  readonly PartitionEntryLBA: number;
  readonly NumberOfPartitionEntries: number;
  readonly SizeOfPartitionEntry: number;
  readonly PartitionEntryArrayCRC32: number;
}

export function hasGptSignature(b: Uint8Array): boolean {
  return b.length >= 8 && String.fromCharCode(...b.subarray(0, 8)) === SIGNATURE;
}

/**
 * Decodes the header read from `lba` (one sector `b`) of a disk of `diskSectors` sectors and checks
 * everything that can be checked without the entry array. `at` is its byte offset, for messages.
 */
export function decodeGptHeader(b: Uint8Array, lba: number, diskSectors: number, ctx: Context): GptHeader {
  const ss = b.length;
  const at = lba * ss;
  if (!hasGptSignature(b)) throw new CorruptError('gpt.Signature', 'no "EFI PART" signature', at);
  const Revision = u32le(b, 8, 'gpt.Revision');
  if (Revision < 0x10000 || Revision >= 0x20000) throw new CorruptError('gpt.Revision', `revision 0x${Revision.toString(16)} is not 1.x`, at + 8);
  const HeaderSize = bound(u32le(b, 12, 'gpt.HeaderSize'), MIN_HEADER_SIZE, ss, 'gpt.HeaderSize', at + 12);
  const HeaderCRC32 = u32le(b, 16, 'gpt.HeaderCRC32');
  const copy = slice(b, 0, HeaderSize, 'gpt.Header').slice();
  copy.fill(0, 16, 20);
  if (crc32(copy) !== HeaderCRC32) throw new CorruptError('gpt.HeaderCRC32', 'header checksum mismatch', at + 16);
  const lastLba = BigInt(diskSectors - 1);
  const MyLBA = u64le(b, 24, 'gpt.MyLBA');
  if (MyLBA !== BigInt(lba)) throw new CorruptError('gpt.MyLBA', `header read at LBA ${lba} says it is at LBA ${MyLBA}`, at + 24);
  const AlternateLBA = u64le(b, 32, 'gpt.AlternateLBA');
  const first = u64le(b, 40, 'gpt.FirstUsableLBA');
  const last = u64le(b, 48, 'gpt.LastUsableLBA');
  if (first > last || last > lastLba || first < 1n) {
    throw new CorruptError('gpt.LastUsableLBA', `usable range ${first}..${last} not within the disk's ${diskSectors} sectors`, at + 40);
  }
  const SizeOfPartitionEntry = u32le(b, 84, 'gpt.SizeOfPartitionEntry');
  // 128 × 2^n (UEFI §5.3.2), and at most one 4 KiB sector per entry.
  let sz = SizeOfPartitionEntry;
  while (sz > MIN_ENTRY_SIZE && sz % 2 === 0) sz /= 2;
  if (sz !== MIN_ENTRY_SIZE || SizeOfPartitionEntry > MAX_ENTRY_SIZE) {
    throw new CorruptError('gpt.SizeOfPartitionEntry', `entry size ${SizeOfPartitionEntry} is not 128·2^n ≤ ${MAX_ENTRY_SIZE}`, at + 84);
  }
  const NumberOfPartitionEntries = u32le(b, 80, 'gpt.NumberOfPartitionEntries');
  const arrayBytes = NumberOfPartitionEntries * SizeOfPartitionEntry;
  if (arrayBytes > MAX_ARRAY_BYTES) {
    throw new CorruptError('gpt.NumberOfPartitionEntries', `${NumberOfPartitionEntries} entries of ${SizeOfPartitionEntry} bytes exceed ${MAX_ARRAY_BYTES} bytes`, at + 80);
  }
  if (NumberOfPartitionEntries > ctx.limits.partitionEntries) {
    throw new LimitExceededError('partitionEntries', `GPT header at ${at} declares ${NumberOfPartitionEntries} entries`, ctx.limits.partitionEntries);
  }
  const entryLba = u64le(b, 72, 'gpt.PartitionEntryLBA');
  const arraySectors = BigInt(Math.ceil(arrayBytes / ss));
  const arrayEnd = entryLba + arraySectors; // exclusive
  const inside = entryLba >= 1n && arrayEnd <= lastLba + 1n;
  const clear = arrayEnd <= first || entryLba > last;
  const self = MyLBA >= entryLba && MyLBA < arrayEnd;
  if (!inside || !clear || self) {
    throw new CorruptError('gpt.PartitionEntryLBA', `entry array at LBA ${entryLba} (+${arraySectors}) overlaps the header, the usable range or the disk end`, at + 72);
  }
  return {
    Revision,
    HeaderSize,
    MyLBA: lba,
    AlternateLBA,
    FirstUsableLBA: Number(first),
    LastUsableLBA: Number(last),
    DiskGUID: guidString(slice(b, 56, 16, 'gpt.DiskGUID')),
    PartitionEntryLBA: Number(entryLba),
    NumberOfPartitionEntries,
    SizeOfPartitionEntry,
    PartitionEntryArrayCRC32: u32le(b, 88, 'gpt.PartitionEntryArrayCRC32'),
  };
}

/** GPT_ENTRY fields (UEFI §5.3.3). */
export interface GptEntry {
  readonly PartitionTypeGUID: string;
  readonly UniquePartitionGUID: string;
  readonly StartingLBA: bigint;
  readonly EndingLBA: bigint;
  readonly Attributes: bigint;
  readonly PartitionName: string;
}

const utf16 = new TextDecoder('utf-16le');

export function decodeGptEntry(b: Uint8Array, off: number): GptEntry {
  const name = slice(b, off + 56, ENTRY_NAME_BYTES, 'gpt.PartitionName');
  let end = 0;
  while (end < name.length && (name[end] !== 0 || name[end + 1] !== 0)) end += 2;
  return {
    PartitionTypeGUID: guidString(slice(b, off, 16, 'gpt.PartitionTypeGUID')),
    UniquePartitionGUID: guidString(slice(b, off + 16, 16, 'gpt.UniquePartitionGUID')),
    StartingLBA: u64le(b, off + 32, 'gpt.StartingLBA'),
    EndingLBA: u64le(b, off + 40, 'gpt.EndingLBA'),
    Attributes: u64le(b, off + 48, 'gpt.Attributes'),
    PartitionName: utf16.decode(name.subarray(0, end)),
  };
}

interface GptRead {
  readonly header: GptHeader;
  readonly entries: Uint8Array;
  readonly sectorSize: number;
}

/** Reads and fully validates the header at `lba` and its entry array (CRC included). */
async function readGpt(cache: ByteSource, lba: number, ss: number, diskSectors: number, ctx: Context): Promise<GptRead> {
  ctx.budget.chargeNode();
  const b = await cache.read(lba * ss, ss);
  const header = decodeGptHeader(b, lba, diskSectors, ctx);
  const entries = await cache.read(header.PartitionEntryLBA * ss, header.NumberOfPartitionEntries * header.SizeOfPartitionEntry);
  if (crc32(entries) !== header.PartitionEntryArrayCRC32) {
    throw new CorruptError('gpt.PartitionEntryArrayCRC32', 'entry array checksum mismatch', lba * ss + 88);
  }
  return { header, entries, sectorSize: ss };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Finds a valid GPT: the primary at LBA 1 for each sector size whose sector carries the signature,
 * else the backup (AlternateLBA of a readable primary, then the last LBA). Null when no sector holds
 * a signature; the first error when signatures exist but no header validates.
 */
async function findGpt(src: ByteSource, cache: ByteSource, ctx: Context, warnings: string[]): Promise<GptRead | null> {
  let firstError: unknown;
  const tried = new Set<number>();
  const attempt = async (lba: number, ss: number, diskSectors: number): Promise<GptRead | null> => {
    const at = lba * ss;
    if (lba < 1 || lba >= diskSectors || tried.has(at)) return null;
    tried.add(at);
    const b = await cache.read(at, ss);
    if (!hasGptSignature(b)) return null;
    try {
      return await readGpt(cache, lba, ss, diskSectors, ctx);
    } catch (e) {
      if (e instanceof LimitExceededError) throw e;
      firstError ??= e;
      return null;
    }
  };
  for (const ss of SECTOR_SIZES) {
    const diskSectors = Math.floor(src.size / ss);
    if (diskSectors < 3) continue;
    const primary = await attempt(1, ss, diskSectors);
    if (primary) return primary;
  }
  for (const ss of SECTOR_SIZES) {
    const diskSectors = Math.floor(src.size / ss);
    if (diskSectors < 3) continue;
    const candidates: number[] = [];
    const p = await cache.read(ss, ss);
    if (hasGptSignature(p)) {
      const alt = u64le(p, 32, 'gpt.AlternateLBA');
      if (alt < BigInt(diskSectors)) candidates.push(Number(alt));
    }
    candidates.push(diskSectors - 1);
    for (const lba of candidates) {
      const backup = await attempt(lba, ss, diskSectors);
      if (backup) {
        warnings.push(`primary GPT header invalid (${firstError === undefined ? 'no signature at LBA 1' : message(firstError)}); using the backup at LBA ${lba} (${ss}-byte sectors)`);
        return backup;
      }
    }
  }
  if (firstError !== undefined) throw firstError;
  return null;
}

export const gptScheme: PartitionScheme = {
  id: 'gpt',
  async scan(src: ByteSource, ctx: Context): Promise<PartitionTable | null> {
    if (src.size < 3 * 512) return null;
    const cache = new BlockCache(src, ctx.budget);
    // A real MBR wins over a stale GPT (as Linux requires the 0xEE protective entry).
    const sector0 = await cache.read(0, 512);
    if (classifySector0(sector0, Math.floor(src.size / 512)).kind === 'mbr') return null;
    const warnings: string[] = [];
    const found = await findGpt(src, cache, ctx, warnings);
    if (!found) return null;
    const { header: h, entries, sectorSize: ss } = found;
    const out: Partition[] = [];
    const placed: { ext: Extent; n: number }[] = [];
    for (let i = 0; i < h.NumberOfPartitionEntries; i++) {
      const e = decodeGptEntry(entries, i * h.SizeOfPartitionEntry);
      if (e.PartitionTypeGUID === ZERO_GUID) continue;
      const n = i + 1;
      if (e.StartingLBA < BigInt(h.FirstUsableLBA) || e.EndingLBA > BigInt(h.LastUsableLBA) || e.StartingLBA > e.EndingLBA) {
        warnings.push(`gpt entry ${n}: LBA ${e.StartingLBA}..${e.EndingLBA} outside the usable range ${h.FirstUsableLBA}..${h.LastUsableLBA}; skipped`);
        continue;
      }
      const first = Number(e.StartingLBA);
      const ext = placeExtent(first * ss, (Number(e.EndingLBA) - first + 1) * ss, 0, src.size, `gpt entry ${n}`, warnings);
      if (!ext) continue;
      for (const p of placed) if (overlaps(p.ext, ext)) warnings.push(`gpt entries ${p.n} and ${n} overlap`);
      placed.push({ ext, n });
      const typeName = GPT_TYPES.get(e.PartitionTypeGUID);
      out.push(
        makePartition(src, {
          scheme: 'gpt',
          number: n,
          path: String(n),
          type: e.PartitionTypeGUID,
          ...(typeName ? { typeName } : {}),
          start: ext.start,
          size: ext.size,
          bootable: (e.Attributes & LEGACY_BIOS_BOOTABLE) !== 0n,
          name: e.PartitionName,
          uuid: e.UniquePartitionGUID,
        }),
      );
    }
    return { scheme: 'gpt', partitions: out, warnings, id: h.DiskGUID };
  },
};
