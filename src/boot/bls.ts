/**
 * Boot Loader Specification type #1 entries (https://uapi-group.org/specifications/specs/boot_loader_specification/):
 * one `*.conf` per entry in `/loader/entries` (or `/boot/loader/entries`), lines `key value`.
 * Keys are matched against a closed list; unknown keys are ignored. Entries are ordered as the
 * spec and GRUB's blscfg order them: by `sort-key` (entries with one first, ascending), then
 * `machine-id` ascending, then `version` descending (newest first), then file name descending.
 * `$var`/`${var}` in `options` (Fedora's `$kernelopts`) are expanded from the GRUB environment.
 */
import { LimitExceededError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { BootEntry, BootMenu, ConfigFs } from './types.ts';
import { parseGrubenv } from './grubenv.ts';
import { checkConfigText, splitDevice, splitLines, Warnings } from './text.ts';

export interface BlsEntry {
  readonly fileName: string;
  /** File name without `.conf`: the entry id GRUB's `saved_entry` stores. */
  readonly id: string;
  readonly title: string | null;
  readonly version: string | null;
  readonly machineId: string | null;
  readonly sortKey: string | null;
  readonly linux: string | null;
  readonly efi: string | null;
  readonly initrd: readonly string[];
  /** `options` lines joined by a space (the spec allows several). */
  readonly options: string | null;
  readonly lines: readonly string[];
}

export function parseBlsEntry(text: string, fileName: string): BlsEntry {
  let title: string | null = null;
  let version: string | null = null;
  let machineId: string | null = null;
  let sortKey: string | null = null;
  let linux: string | null = null;
  let efi: string | null = null;
  const initrd: string[] = [];
  const options: string[] = [];
  const lines: string[] = [];
  for (const raw of splitLines(text)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    lines.push(line);
    let i = 0;
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') i++;
    const key = line.slice(0, i);
    const value = line.slice(i).trim();
    switch (key) {
      case 'title': title = value; break;
      case 'version': version = value; break;
      case 'machine-id': machineId = value; break;
      case 'sort-key': sortKey = value; break;
      case 'linux': linux = value; break;
      case 'efi': efi = value; break;
      case 'initrd':
        // GRUB's blscfg also accepts several paths on one line.
        for (const p of value.split(/[ \t]+/)) if (p !== '') initrd.push(p);
        break;
      case 'options': if (value !== '') options.push(value); break;
      default: break; // devicetree, architecture, grub_users, grub_class, unknown keys: ignored
    }
  }
  const id = fileName.endsWith('.conf') ? fileName.slice(0, -5) : fileName;
  return { fileName, id, title, version, machineId, sortKey, linux, efi, initrd, options: options.length ? options.join(' ') : null, lines };
}

/**
 * Version comparison in the spirit of rpmvercmp / systemd's strverscmp_improved: alternating runs
 * of digits (compared numerically) and letters (compared as strings); other characters separate.
 */
export function compareVersions(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const isD = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
  const isA = (c: string | undefined): boolean => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
  for (;;) {
    while (i < a.length && !isD(a[i]) && !isA(a[i])) i++;
    while (j < b.length && !isD(b[j]) && !isA(b[j])) j++;
    if (i >= a.length || j >= b.length) return (i < a.length ? 1 : 0) - (j < b.length ? 1 : 0);
    const numeric = isD(a[i]);
    if (numeric !== isD(b[j])) return numeric ? 1 : -1;
    const take = (s: string, k: number): [string, number] => {
      let e = k;
      while (e < s.length && (numeric ? isD(s[e]) : isA(s[e]))) e++;
      return [s.slice(k, e), e];
    };
    const [x, ni] = take(a, i);
    const [y, nj] = take(b, j);
    i = ni;
    j = nj;
    if (numeric) {
      const xs = x.replace(/^0+/, '');
      const ys = y.replace(/^0+/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
    } else if (x !== y) return x < y ? -1 : 1;
  }
}

export function sortBlsEntries(entries: readonly BlsEntry[]): BlsEntry[] {
  const cmpStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...entries].sort((a, b) => {
    if (a.sortKey !== null || b.sortKey !== null) {
      if (a.sortKey === null) return 1;
      if (b.sortKey === null) return -1;
      const r = cmpStr(a.sortKey, b.sortKey);
      if (r !== 0) return r;
      const m = cmpStr(a.machineId ?? '', b.machineId ?? '');
      if (m !== 0) return m;
    }
    if (a.version !== null && b.version === null) return -1;
    if (a.version === null && b.version !== null) return 1;
    if (a.version !== null && b.version !== null) {
      const v = compareVersions(a.version, b.version);
      if (v !== 0) return -v;
    }
    return -compareVersions(a.fileName, b.fileName) || -cmpStr(a.fileName, b.fileName);
  });
}

/** Expands `$name` and `${name}` (GRUB variable syntax) in a BLS value; unknown names become empty. */
export function expandVars(s: string, lookup: (name: string) => string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    if (s[i + 1] === '{') {
      const close = s.indexOf('}', i + 2);
      if (close < 0) {
        out += s.slice(i);
        break;
      }
      out += lookup(s.slice(i + 2, close));
      i = close + 1;
      continue;
    }
    let j = i + 1;
    while (j < s.length && /[A-Za-z0-9_]/.test(s[j]!)) j++;
    if (j === i + 1) {
      out += '$';
      i++;
      continue;
    }
    out += lookup(s.slice(i + 1, j));
    i = j;
  }
  return out;
}

export interface BlsLoadResult {
  readonly dir: string;
  readonly entries: readonly BlsEntry[];
}

/** Reads and sorts the entries of the first existing directory of `dirs`, or null when none exists. */
export async function readBlsDir(fs: ConfigFs, dirs: readonly string[], limits: Limits, warnings: Warnings): Promise<BlsLoadResult | null> {
  for (const dir of dirs) {
    const names = await fs.list(dir);
    if (names === null) continue;
    const confs = names.filter((n) => n.endsWith('.conf') && !n.startsWith('.')).sort();
    if (confs.length > limits.menuEntries) {
      throw new LimitExceededError('menuEntries', `${dir} has ${confs.length} entries`, limits.menuEntries);
    }
    const entries: BlsEntry[] = [];
    for (const name of confs) {
      const path = `${dir}/${name}`;
      const text = await fs.readText(path);
      if (text === null) {
        warnings.add(`${path}: unreadable`);
        continue;
      }
      checkConfigText(text, limits, path);
      entries.push(parseBlsEntry(text, name));
    }
    return { dir, entries: sortBlsEntries(entries) };
  }
  return null;
}

/**
 * BLS paths are relative to the partition holding the entries. When the entries live in
 * `/boot/loader/entries` of a root filesystem, a `linux /vmlinuz-…` means `/boot/vmlinuz-…`: try the
 * path as written first, then under `/boot`.
 */
async function locate(fs: ConfigFs | undefined, dir: string, p: string): Promise<string> {
  const { path } = splitDevice(p);
  if (!fs || !dir.startsWith('/boot/') || path.startsWith('/boot/')) return path;
  if (await fs.exists(path)) return path;
  const alt = `/boot${path.startsWith('/') ? '' : '/'}${path}`;
  return (await fs.exists(alt)) ? alt : path;
}

export async function blsToBootEntry(
  e: BlsEntry,
  dir: string,
  lookup: (name: string) => string,
  fs: ConfigFs | undefined,
): Promise<BootEntry> {
  const title = e.title ?? (e.version !== null ? e.version : e.id);
  const base = { title, id: e.id, lines: e.lines, source: `${dir}/${e.fileName}` };
  const args = e.options === null ? null : expandVars(e.options, lookup).trim();
  if (e.linux === null) {
    return { ...base, kernel: null, initrd: [], args, unbootable: e.efi !== null ? 'BLS entry boots an EFI program' : 'BLS entry has no linux key' };
  }
  const initrd: string[] = [];
  for (const p of e.initrd) initrd.push(await locate(fs, dir, p));
  return { ...base, kernel: await locate(fs, dir, e.linux), kernelDevice: splitDevice(e.linux).device, initrd, args: args === '' ? null : args };
}

export const BLS_DIRS: readonly string[] = ['/loader/entries', '/boot/loader/entries'];
const GRUBENV_PATHS: readonly string[] = ['/boot/grub2/grubenv', '/grub2/grubenv', '/boot/grub/grubenv', '/grub/grubenv'];

/**
 * A menu made from BLS entries alone (no grub.cfg on the filesystem). The default is the entry
 * whose id equals grubenv's `saved_entry`, else the first after sorting (the newest kernel).
 */
export async function parseBlsMenu(fs: ConfigFs, limits: Limits, dirs: readonly string[] = BLS_DIRS): Promise<BootMenu | null> {
  const warnings = new Warnings();
  const loaded = await readBlsDir(fs, dirs, limits, warnings);
  if (loaded === null) return null;
  let env = new Map<string, string>();
  for (const p of GRUBENV_PATHS) {
    const t = await fs.readText(p);
    if (t !== null) {
      checkConfigText(t, limits, p);
      env = parseGrubenv(t);
      break;
    }
  }
  const lookup = (name: string): string => env.get(name) ?? '';
  const entries: BootEntry[] = [];
  for (const e of loaded.entries) entries.push(await blsToBootEntry(e, loaded.dir, lookup, fs));
  const saved = env.get('saved_entry');
  let defaultIndex = 0;
  if (saved !== undefined) {
    const k = entries.findIndex((e) => e.id === saved);
    if (k >= 0) defaultIndex = k;
  }
  return { format: 'bls', configPath: loaded.dir, entries, defaultIndex, timeout: null, warnings: warnings.list };
}
