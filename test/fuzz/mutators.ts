/**
 * Seeded, structure-aware mutation for the in-suite fuzzer (threat-model.md §4.2 B, §4.5 fallback).
 * Where the metadata lives is learnt by walking the clean image through a recording ByteSource: the
 * byte ranges the partition scanners and drivers read while opening, listing and resolving
 * (metadata), and, with a lower weight, while reading files (extent/indirect blocks mixed with
 * data). Mutations (bit flips, boundary values, block copies, point-at-self) land inside those ranges
 * and are undone after each case, so one buffer serves thousands of cases.
 */
import { Disk } from '../../src/disk.ts';
import { isTsgrubError } from '../../src/errors.ts';
import { builtinDrivers } from '../../src/fs/drivers.ts';
import { FilesystemRegistry } from '../../src/fs/registry.ts';
import type { FilesystemDriver, FsNode } from '../../src/fs/types.ts';
import { Vfs } from '../../src/fs/vfs.ts';
import { MemorySource, type ByteSource } from '../../src/io/source.ts';
import { createContext, type Context, type Limits } from '../../src/limits.ts';
import { nodeCodecs } from '../../src/codec/node.ts';
import { parseConfig } from '../../src/boot/discover.ts';
import { resolveEntry, buildArgs } from '../../src/boot/select.ts';
import { listEntries } from '../../src/boot/list.ts';
import type { ConfigFormat, ConfigFs } from '../../src/boot/types.ts';

/** mulberry32: small, fast, seedable; good enough to pick offsets and values. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)] as T;
  }
}

/** A case seed from the run seed and the case number (so any single case can be replayed). */
export function caseSeed(runSeed: number, image: string, i: number): number {
  let h = 2166136261 ^ runSeed;
  for (const c of `${image}#${i}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

export interface Range {
  readonly offset: number;
  readonly length: number;
}

/** Logs (offset, length) of reads while `recording` is set, into `meta` or `file` by phase. */
export class RecordingSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  phase: 'meta' | 'file' | 'off' = 'meta';
  readonly meta: Range[] = [];
  readonly file: Range[] = [];
  constructor(private readonly inner: ByteSource) {
    this.size = inner.size;
    this.name = inner.name ?? 'image';
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    // Large reads are file data (drivers merge contiguous blocks); metadata reads are block-sized.
    if (length > 0 && length <= 64 << 10 && this.phase !== 'off') (this.phase === 'meta' ? this.meta : this.file).push({ offset, length });
    return this.inner.read(offset, length);
  }
}

export const FUZZ_LIMITS: Partial<Limits> = {
  fileBytes: 8 << 20,
  metadataBytes: 32 << 20,
  nodesVisited: 20_000,
  wallMs: 4_000,
  cacheBytes: 8 << 20,
};

export interface VolumeOutcome {
  readonly path: string;
  readonly driver: string;
  files: number;
  bytes: number;
  readonly errors: string[];
}

export interface WalkStats {
  readonly perVolume: VolumeOutcome[];
  volumes: number;
  files: number;
  dirs: number;
  typedErrors: Map<string, number>;
}

/** Anything that is not a TsgrubError: the invariant violation the fuzzer hunts. */
export class Untyped extends Error {
  constructor(readonly where: string, override readonly cause: unknown) {
    super(`${where}: untyped ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}`);
  }
}

function errorKey(e: unknown): string {
  if (!isTsgrubError(e)) return 'untyped';
  return `${e.code}${typeof e.data.kind === 'string' ? `:${e.data.kind}` : typeof e.data.limit === 'string' ? `:${e.data.limit}` : ''}`;
}

function typedError(stats: WalkStats, where: string, e: unknown): void {
  if (!isTsgrubError(e)) throw new Untyped(where, e);
  const k = errorKey(e);
  stats.typedErrors.set(k, (stats.typedErrors.get(k) ?? 0) + 1);
}
const typed = typedError;

export interface WalkLimits {
  /** Nodes visited per volume. */
  readonly maxNodes: number;
  /** Entries followed per directory: the standard tree's 300-file dir-many/ would otherwise dominate each case. */
  readonly perDir: number;
}
export const FUZZ_WALK: WalkLimits = { maxNodes: 200, perDir: 24 };
const MAX_WALK_DEPTH = 24;
/** Walks one volume breadth-first (bounded), reading every file and symlink. */
async function walkVolume(vfs: Vfs, stats: WalkStats, rec: RecordingSource | null, vo: VolumeOutcome, lim: WalkLimits): Promise<void> {
  const typed = (s: WalkStats, where: string, e: unknown) => {
    typedError(s, where, e);
    if (vo.errors.length < 8) vo.errors.push(errorKey(e));
  };
  let root: FsNode;
  try {
    root = await vfs.volume.root();
  } catch (e) {
    return typed(stats, 'root', e);
  }
  const queue: Array<{ node: FsNode; depth: number }> = [{ node: root, depth: 0 }];
  let seen = 0;
  while (queue.length && seen < lim.maxNodes) {
    const { node, depth } = queue.shift() as { node: FsNode; depth: number };
    seen++;
    if (node.kind === 'dir') {
      stats.dirs++;
      if (depth >= MAX_WALK_DEPTH) continue;
      let entries;
      try {
        if (rec) rec.phase = 'meta';
        entries = await vfs.readdir(node);
      } catch (e) {
        typed(stats, 'readdir', e);
        continue;
      }
      for (const ent of entries.slice(0, lim.perDir)) {
        try {
          const child = await vfs.volume.lookup(node, ent.name);
          if (child) queue.push({ node: child, depth: depth + 1 });
        } catch (e) {
          typed(stats, 'lookup', e);
        }
      }
    } else if (node.kind === 'file') {
      stats.files++;
      try {
        if (rec) rec.phase = 'file';
        const data = await vfs.readFile(node, { maxBytes: 8 << 20 });
        vo.files++;
        vo.bytes += data.length;
      } catch (e) {
        typed(stats, 'read', e);
      } finally {
        if (rec) rec.phase = 'meta';
      }
    } else if (node.kind === 'symlink') {
      try {
        await vfs.readlinkNode(node);
      } catch (e) {
        typed(stats, 'readlink', e);
      }
    }
  }
}

/**
 * Opens the image the way tsgrub does (partition scan, every candidate) and, for every candidate,
 * every registered driver whose probe claims it; walks each volume. Typed errors are counted;
 * anything else throws Untyped.
 */
export async function exerciseImage(
  source: ByteSource,
  drivers: readonly FilesystemDriver[] = builtinDrivers,
  rec: RecordingSource | null = null,
  lim: WalkLimits = FUZZ_WALK,
): Promise<WalkStats> {
  const stats: WalkStats = { perVolume: [], volumes: 0, files: 0, dirs: 0, typedErrors: new Map() };
  const ctx: Context = createContext(FUZZ_LIMITS, nodeCodecs);
  let disk: Disk;
  try {
    disk = await Disk.open(source, ctx, new FilesystemRegistry(drivers));
  } catch (e) {
    typed(stats, 'partitions', e);
    return stats;
  }
  let cands;
  try {
    cands = await disk.candidates();
  } catch (e) {
    typed(stats, 'candidates', e);
    return stats;
  }
  for (const c of cands) {
    for (const d of drivers) {
      // A fresh budget per volume: one exhausted volume must not hide bugs in the next.
      const vctx: Context = createContext(FUZZ_LIMITS, nodeCodecs);
      try {
        if (!(await d.probe(c.source, vctx))) continue;
      } catch (e) {
        typed(stats, `probe ${d.id}`, e);
        continue;
      }
      const vo: VolumeOutcome = { path: c.path, driver: d.id, files: 0, bytes: 0, errors: [] };
      stats.perVolume.push(vo);
      try {
        const vol = await d.open(c.source, vctx);
        stats.volumes++;
        await walkVolume(new Vfs(vol, vctx), stats, rec, vo, lim);
      } catch (e) {
        typed(stats, `open ${d.id} on ${c.path}`, e);
        vo.errors.push(errorKey(e));
      }
    }
  }
  return stats;
}

/** Merges overlapping ranges (sorted) so sampling is by bytes, not by read calls. */
export function mergeRanges(rs: readonly Range[]): Range[] {
  const s = [...rs].sort((a, b) => a.offset - b.offset);
  const out: Range[] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last && r.offset <= last.offset + last.length) {
      const end = Math.max(last.offset + last.length, r.offset + r.length);
      out[out.length - 1] = { offset: last.offset, length: end - last.offset };
    } else out.push(r);
  }
  return out;
}

export interface Regions {
  readonly meta: Range[];
  readonly file: Range[];
}

/** Baseline walk of the clean image: where its metadata is. */
export async function recordRegions(bytes: Uint8Array): Promise<{ regions: Regions; stats: WalkStats }> {
  const rec = new RecordingSource(new MemorySource(bytes, 'image'));
  const stats = await exerciseImage(rec, builtinDrivers, rec);
  const meta = mergeRanges(rec.meta);
  // Partition tables (MBR/EBR/GPT/VTOC/BSD labels) live in the first 64 KiB.
  meta.push({ offset: 0, length: Math.min(64 << 10, bytes.length) });
  return { regions: { meta: mergeRanges(meta), file: mergeRanges(rec.file) }, stats };
}

const BOUNDARY: readonly number[] = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** One mutation, recorded so it can be undone and reported. */
export interface Mutation {
  readonly op: string;
  readonly offset: number;
  readonly before: Uint8Array;
}

function pickOffset(rng: Rng, regions: Regions, size: number): number {
  const pool = regions.file.length && rng.int(5) === 0 ? regions.file : regions.meta;
  // Weight by bytes: pick a range with probability ∝ its length.
  let total = 0;
  for (const r of pool) total += r.length;
  let x = rng.int(Math.max(1, total));
  for (const r of pool) {
    if (x < r.length) return Math.min(size - 1, r.offset + x);
    x -= r.length;
  }
  return rng.int(size);
}

function putLE(b: Uint8Array, off: number, v: number, width: number, be: boolean): void {
  for (let i = 0; i < width; i++) {
    const byte = Math.floor(v / 2 ** (8 * i)) % 256;
    b[be ? off + width - 1 - i : off + i] = byte;
  }
}

/** Applies 1..maxOps mutations in place; returns them (for undo and for the report). */
export function mutate(bytes: Uint8Array, regions: Regions, rng: Rng, maxOps = 4): Mutation[] {
  const n = 1 + rng.int(maxOps);
  const done: Mutation[] = [];
  for (let k = 0; k < n; k++) {
    const kind = rng.int(6);
    let off = pickOffset(rng, regions, bytes.length);
    let len = 1;
    let op = '';
    let write: (b: Uint8Array, at: number) => void;
    switch (kind) {
      case 0: {
        const bit = rng.int(8);
        op = `flip bit ${bit}`;
        write = (b, at) => {
          b[at] = (b[at] as number) ^ (1 << bit);
        };
        break;
      }
      case 1:
      case 2: {
        len = rng.pick([1, 2, 4, 8]);
        off -= off % len; // aligned: fields are
        const base = rng.pick(BOUNDARY);
        const v = len === 8 ? base : base % 2 ** (8 * len);
        const be = rng.int(4) === 0;
        const hi = len === 8 && rng.int(2) === 0; // 64-bit: also put the value in the high half
        op = `set ${len}B ${be ? 'be' : 'le'} ${hi ? 'hi ' : ''}0x${v.toString(16)}`;
        write = (b, at) => {
          if (len === 8) {
            putLE(b, at, hi ? 0 : v, 4, be);
            putLE(b, at + 4, hi ? v : rng.pick([0, 0, 0xffffffff]), 4, be);
          } else putLE(b, at, v, len, be);
        };
        break;
      }
      case 3: {
        // Copy one block-sized piece of metadata over another (e2fuzz's "copy block").
        len = rng.pick([512, 1024, 4096]);
        off -= off % len;
        const from = pickOffset(rng, regions, bytes.length);
        const src = from - (from % len);
        op = `copy ${len}B from ${src}`;
        write = (b, at) => {
          b.copyWithin(at, src, Math.min(src + len, b.length));
        };
        break;
      }
      case 4: {
        // Point at self: a 32-bit block number naming the block this field lives in.
        len = 4;
        off -= off % 4;
        const bs = rng.pick([512, 1024, 2048, 4096]);
        const v = Math.floor(off / bs) % 2 ** 32;
        op = `self-pointer bs ${bs} = ${v}`;
        write = (b, at) => putLE(b, at, v, 4, false);
        break;
      }
      default: {
        const v = rng.int(256);
        op = `byte 0x${v.toString(16)}`;
        write = (b, at) => {
          b[at] = v;
        };
      }
    }
    if (off < 0) off = 0;
    len = Math.min(len, bytes.length - off);
    if (len <= 0) continue;
    const before = bytes.slice(off, off + len);
    write(bytes, off);
    done.push({ op, offset: off, before });
  }
  return done;
}

export function undo(bytes: Uint8Array, ms: readonly Mutation[]): void {
  for (let i = ms.length - 1; i >= 0; i--) {
    const m = ms[i] as Mutation;
    bytes.set(m.before, m.offset);
  }
}

export function describeMutations(ms: readonly Mutation[]): string {
  return ms.map((m) => `${m.op} @${m.offset}`).join('; ');
}

/** Snapshot of Object.prototype (and friends) to prove no pollution after a case. */
export function protoSnapshot(): string {
  const keys = (o: object) => Reflect.ownKeys(o).map(String).sort().join(',');
  return [keys(Object.prototype), keys(Array.prototype), keys(Function.prototype), String(Object.getPrototypeOf({}) === Object.prototype)].join('|');
}

// ---------------------------------------------------------------------------------------------
// Configs: token-level mutation of real-looking GRUB 2 / legacy / extlinux / lilo files.

export const SEED_CONFIGS: ReadonlyArray<{ format: ConfigFormat; path: string; text: string }> = [
  {
    format: 'grub2',
    path: '/boot/grub/grub.cfg',
    text: `if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "\${next_entry}" ] ; then
   set default="\${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi
export menuentry_id_option
set timeout=5
function load_video {
  insmod all_video
}
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option 'gnulinux-simple-1234' {
	load_video
	insmod gzio
	set root='hd0,msdos1'
	search --no-floppy --fs-uuid --set=root 1234-abcd
	echo	'Loading Linux 6.1.0-13-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-13-amd64 root=UUID=1234 ro  quiet "with space" \${extra}
	initrd	/boot/initrd.img-6.1.0-13-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-1234' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)' --class debian {
		linux	/boot/vmlinuz-6.1.0-13-amd64 root=UUID=1234 ro single
		initrd	/boot/initrd.img-6.1.0-13-amd64
	}
	submenu 'nested' {
		menuentry 'deep' { linux /vmlinuz; initrd /initrd.img }
	}
}
source /boot/grub/custom.cfg
`,
  },
  {
    format: 'grub-legacy',
    path: '/boot/grub/menu.lst',
    text: `default 1
timeout 5
fallback 0
hiddenmenu
password --md5 $1$abc$def
title Fedora (2.6.32)
	root (hd0,0)
	kernel /vmlinuz-2.6.32 ro root=/dev/VolGroup/lv_root rhgb quiet
	initrd /initramfs-2.6.32.img
title Other
	rootnoverify (hd0,1)
	chainloader +1
title Solaris
	kernel$ /platform/i86pv/kernel/$ISADIR/unix -B $ZFS-BOOTFS
	module$ /platform/i86pc/$ISADIR/boot_archive
`,
  },
  {
    format: 'extlinux',
    path: '/boot/extlinux/extlinux.conf',
    text: `DEFAULT linux
PROMPT 0
TIMEOUT 50
MENU TITLE Boot menu
INCLUDE /boot/extlinux/more.conf
LABEL linux
  MENU LABEL Linux
  KERNEL /boot/vmlinuz
  APPEND root=/dev/xvda1 ro console=hvc0 initrd=/boot/initrd.img
LABEL rescue
  LINUX /boot/vmlinuz-rescue
  INITRD /boot/initrd-rescue.img,/boot/extra.img
  APPEND single
  MENU DEFAULT
`,
  },
  {
    format: 'lilo',
    path: '/etc/lilo.conf',
    text: `boot=/dev/xvda
default=linux
timeout=50
image=/boot/vmlinuz
  label=linux
  root=/dev/xvda1
  initrd=/boot/initrd.img
  append="console=hvc0 quiet"
  read-only
image=/boot/vmlinuz.old
  label="old one"
  optional
`,
  },
];

/** A tiny in-memory ConfigFs so `source`/`configfile`/`INCLUDE` are exercised (including loops). */
export function memConfigFs(files: Map<string, string>): ConfigFs {
  return {
    async readText(p) {
      return files.get(p) ?? null;
    },
    async list(dir) {
      const pre = dir.endsWith('/') ? dir : `${dir}/`;
      const names = [...files.keys()].filter((k) => k.startsWith(pre)).map((k) => k.slice(pre.length).split('/')[0] as string);
      return names.length ? [...new Set(names)] : null;
    },
    async exists(p) {
      return files.has(p);
    },
  };
}

const INTERESTING_TOKENS: readonly string[] = [
  '{', '}', '"', "'", '\\', '$', '${', '}', ';', '\n', '\t', ' ', '#', '=', '[', ']', '&&', '||', '(', ')',
  'menuentry', 'submenu', 'set', 'default', 'default=', 'timeout=', 'linux', 'initrd', 'kernel', 'title', 'LABEL',
  'KERNEL', 'APPEND', 'INCLUDE', 'MENU', 'image=', 'label=', 'append=', 'source', 'configfile', 'function', 'if',
  'then', 'else', 'fi', 'while', 'do', 'done', 'export', '__proto__', 'constructor', 'prototype', 'toString',
  'hasOwnProperty', '__proto__=x', 'constructor=1', '-1', '0', '99999999999999999999', '1e400', 'NaN', '0x10',
  '\u0000', '\u001b[2J', '\u001b]0;x\u0007', '\u009b', '\u202e', '\ud800', '/boot/grub/grub.cfg', '/boot/grub/custom.cfg',
  '../../../../etc/shadow', '>', 'a>b>c', '--id', '--class', '$menuentry_id_option', '${next_entry}', '"${x}"',
];

/** Tokens: runs of word characters, runs of blanks, or single other characters. */
export function tokenize(s: string): string[] {
  return s.match(/[A-Za-z0-9_./-]+|[ \t]+|[^]/g) ?? [];
}

/** Token-level mutation: delete/duplicate/swap/insert/repeat/truncate. */
export function mutateConfig(text: string, rng: Rng): string {
  let t = tokenize(text);
  const n = 1 + rng.int(5);
  for (let k = 0; k < n; k++) {
    const i = rng.int(Math.max(1, t.length));
    switch (rng.int(7)) {
      case 0:
        t.splice(i, 1 + rng.int(3));
        break;
      case 1:
        t.splice(i, 0, t[rng.int(t.length)] ?? '');
        break;
      case 2: {
        const j = rng.int(t.length);
        [t[i], t[j]] = [t[j] as string, t[i] as string];
        break;
      }
      case 3:
      case 4:
        t.splice(i, 0, rng.pick(INTERESTING_TOKENS));
        break;
      case 5: {
        // Repeat a token many times: long lines, deep nesting, many entries.
        const tok = (rng.int(2) ? rng.pick(['{', '"', "' ", 'submenu x {', 'menuentry x {', 'a', '$', '\\', 'source /boot/grub/grub.cfg\n']) : (t[i] ?? 'x')).slice(0, 32);
        t.splice(i, 0, tok.repeat(1 + rng.int(rng.int(4) === 0 ? 40_000 : 200)));
        break;
      }
      default:
        t = t.slice(0, i);
    }
  }
  // Past the 1 MiB config budget everything is cut anyway; keep cases cheap.
  return t.join('').slice(0, 3 << 20);
}

/** Parses a config through the public path; returns a short outcome. Throws Untyped on a bug. */
export async function exerciseConfig(format: ConfigFormat, text: string, path: string, fs: ConfigFs | undefined): Promise<string> {
  const ctx = createContext({ wallMs: 4_000 });
  try {
    const menu = await parseConfig(format, text, path, fs, ctx.limits);
    const i = resolveEntry(menu, undefined);
    const e = menu.entries[i];
    if (e) buildArgs(e.args, 'extra');
    listEntries(menu);
    return `ok ${menu.entries.length}`;
  } catch (e) {
    if (!isTsgrubError(e)) throw new Untyped(`parse ${format}`, e);
    return e.code;
  }
}
