/**
 * FAT boot sector / BIOS Parameter Block (Microsoft "FAT: General Overview of On-Disk Format" 1.03,
 * §3.1–3.3) and the FAT type determination by cluster count (§3.5: the only correct rule).
 */
import { CorruptError } from '../../errors.ts';
import { cString, u16le, u32le, u8 } from '../../io/bytes.ts';

export type FatType = 'fat12' | 'fat16' | 'fat32';

export interface Bpb {
  readonly type: FatType;
  readonly bytesPerSector: number;
  readonly sectorsPerCluster: number;
  readonly clusterBytes: number;
  readonly reservedSectors: number;
  readonly numFats: number;
  readonly rootEntries: number;
  readonly totalSectors: number;
  readonly fatSectors: number;
  /** Byte offsets inside the volume. */
  readonly fatOffset: number;
  readonly rootDirOffset: number;
  readonly rootDirBytes: number;
  readonly dataOffset: number;
  readonly clusterCount: number;
  /** Highest valid cluster number (clusterCount + 1, limited by what the FAT can hold). */
  readonly maxCluster: number;
  readonly rootCluster: number;
  readonly volumeId: number | null;
  readonly volumeLabel: string | null;
}

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Decodes and validates the boot sector; null when it is clearly not FAT (probe), Corrupt when inconsistent. */
export function decodeBpb(b: Uint8Array, volumeSize: number): Bpb | null {
  const what = 'fat.BPB';
  const BS_jmpBoot = u8(b, 0, what);
  // §3.1: EB xx 90 or E9 xx xx. Without it this is not a FAT boot sector (MBRs, other filesystems).
  if (!(BS_jmpBoot === 0xeb && b[2] === 0x90) && BS_jmpBoot !== 0xe9) return null;
  const BPB_BytsPerSec = u16le(b, 11, what);
  const BPB_SecPerClus = u8(b, 13, what);
  const BPB_RsvdSecCnt = u16le(b, 14, what);
  const BPB_NumFATs = u8(b, 16, what);
  const BPB_RootEntCnt = u16le(b, 17, what);
  const BPB_TotSec16 = u16le(b, 19, what);
  const BPB_Media = u8(b, 21, what);
  const BPB_FATSz16 = u16le(b, 22, what);
  const BPB_TotSec32 = u32le(b, 32, what);
  // Not FAT at all (another filesystem's sector 0): say "not mine" rather than corrupt.
  if (BPB_BytsPerSec < 512 || BPB_BytsPerSec > 4096 || !isPow2(BPB_BytsPerSec)) return null;
  if (!isPow2(BPB_SecPerClus) || BPB_SecPerClus > 128) return null;
  if (BPB_RsvdSecCnt < 1 || BPB_NumFATs < 1 || BPB_NumFATs > 4) return null;
  if (BPB_Media !== 0xf0 && BPB_Media < 0xf8) return null;
  const fat32 = BPB_FATSz16 === 0;
  const BPB_FATSz32 = fat32 ? u32le(b, 36, what) : 0;
  const BPB_RootClus = fat32 ? u32le(b, 44, what) : 0;
  const fatSectors = fat32 ? BPB_FATSz32 : BPB_FATSz16;
  const totalSectors = BPB_TotSec16 !== 0 ? BPB_TotSec16 : BPB_TotSec32;
  if (fatSectors === 0 || totalSectors === 0) return null;
  const bps = BPB_BytsPerSec;
  // §3.5: root directory sectors, then the data region and its cluster count.
  const rootDirSectors = Math.ceil((BPB_RootEntCnt * 32) / bps);
  const metaSectors = BPB_RsvdSecCnt + BPB_NumFATs * fatSectors + rootDirSectors;
  if (metaSectors >= totalSectors) {
    throw new CorruptError(what, `reserved, FAT and root regions (${metaSectors} sectors) fill the ${totalSectors}-sector volume`, 0);
  }
  const clusterCount = Math.floor((totalSectors - metaSectors) / BPB_SecPerClus);
  const type: FatType = clusterCount < 4085 ? 'fat12' : clusterCount < 65525 ? 'fat16' : 'fat32';
  if (type === 'fat32' && (!fat32 || BPB_RootEntCnt !== 0)) {
    throw new CorruptError(what, `${clusterCount} clusters need FAT32 but the BPB is FAT12/16-shaped`, 0);
  }
  if (type !== 'fat32' && fat32) throw new CorruptError(what, `${clusterCount} clusters is FAT12/16 but BPB_FATSz16 is 0`, 0);
  const fatBytes = fatSectors * bps;
  // What the FAT can describe: entries beyond it do not exist, whatever the cluster count says.
  const fatEntries = type === 'fat12' ? Math.floor((fatBytes * 2) / 3) : type === 'fat16' ? fatBytes / 2 : fatBytes / 4;
  const maxCluster = Math.min(clusterCount + 1, fatEntries - 1);
  if (maxCluster < 2) throw new CorruptError(what, 'no data clusters', 0);
  const metaBytes = metaSectors * bps;
  if (metaBytes > volumeSize) throw new CorruptError(what, `metadata regions end at ${metaBytes}, past the ${volumeSize}-byte image`, 0);
  if (type === 'fat32' && (BPB_RootClus < 2 || BPB_RootClus > maxCluster)) {
    throw new CorruptError(what, `root cluster ${BPB_RootClus} outside 2..${maxCluster}`, 44);
  }
  // Extended boot signature 0x29 (0x28 on old DOS) means BS_VolID/BS_VolLab are present (§3.2, §3.3).
  const ext = fat32 ? 64 : 36;
  const BS_BootSig = u8(b, ext + 2, what);
  const hasId = BS_BootSig === 0x29 || BS_BootSig === 0x28;
  const label = BS_BootSig === 0x29 ? cString(b, ext + 7, 11, what).replace(/ +$/, '') : '';
  return {
    type,
    bytesPerSector: bps,
    sectorsPerCluster: BPB_SecPerClus,
    clusterBytes: bps * BPB_SecPerClus,
    reservedSectors: BPB_RsvdSecCnt,
    numFats: BPB_NumFATs,
    rootEntries: BPB_RootEntCnt,
    totalSectors,
    fatSectors,
    fatOffset: BPB_RsvdSecCnt * bps,
    rootDirOffset: (BPB_RsvdSecCnt + BPB_NumFATs * fatSectors) * bps,
    rootDirBytes: BPB_RootEntCnt * 32,
    dataOffset: metaBytes,
    clusterCount,
    maxCluster,
    rootCluster: BPB_RootClus,
    volumeId: hasId ? u32le(b, ext + 3, what) : null,
    volumeLabel: label && label !== 'NO NAME' ? label : null,
  };
}

/** blkid/Linux style volume serial: XXXX-XXXX, upper-case hex. */
export function serialString(id: number): string {
  const h = id.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}
