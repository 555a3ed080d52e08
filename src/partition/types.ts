/** Partition tables: each scheme scans a source and yields partitions with clamped sub-sources. */
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';

export type SchemeId = 'mbr' | 'gpt' | 'vtoc' | 'bsd';

export interface Partition {
  /** Scheme that described this partition. */
  readonly scheme: SchemeId;
  /**
   * Its number as Linux and GRUB count it: MBR primaries 1–4, logicals from 5; GPT entries from 1;
   * VTOC slices and BSD partitions from 0 / 'a' within their parent (see `path`).
   */
  readonly number: number;
  /** Stable human/CLI name: "1", "5", "gpt3" is just "3"; nested: "1s0" (VTOC slice 0), "1a" (BSD a). */
  readonly path: string;
  /** Type code as text: "0x83", a GPT type GUID, a VTOC tag name ("root"), a BSD fstype. */
  readonly type: string;
  /** Readable type name when known ("Linux", "EFI System", "Solaris root"). */
  readonly typeName?: string;
  /** Absolute byte offset within the scanned disk, and size in bytes. */
  readonly start: number;
  readonly size: number;
  readonly bootable?: boolean;
  readonly name?: string;
  readonly uuid?: string;
  /** Holds other partitions (an extended partition, an fdisk 0xBF/0xA5 slice carrying a label). */
  readonly container?: boolean;
  /** Path of the containing partition for nested ones. */
  readonly parent?: string;
  /** For VTOC slices: the tag number (2 = root). */
  readonly tag?: number;
  /** A source clamped to this partition (reads cannot leave it). */
  readonly source: ByteSource;
}

export interface PartitionTable {
  /** Outer scheme ('mbr', 'gpt', 'vtoc', 'bsd'), or null for a disk with no table. */
  readonly scheme: SchemeId | null;
  /** Every partition in table order, nested ones right after their container. */
  readonly partitions: readonly Partition[];
  /** Non-fatal findings (backup GPT used, overlapping logical skipped, …). */
  readonly warnings: readonly string[];
  /** MBR disk signature or GPT disk GUID. */
  readonly id?: string;
}

export interface PartitionScheme {
  readonly id: SchemeId;
  /** Scans `src` (a whole disk, or a container partition for nested schemes); null = not this scheme. */
  scan(src: ByteSource, ctx: Context): Promise<PartitionTable | null>;
}
