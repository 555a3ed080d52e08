/**
 * The bootloader's main job, platform-free: walk the disk's candidates in pygrub's order (improved),
 * find a boot config (or take --kernel, or sniff Solaris/NetWare), pick the entry and say which guest
 * files to copy with which arguments. pygrub's main loop, pygrub-spec §1.3 steps 7–13 and §3.1.
 */
import { ConfigError, NotFoundError, isTsgrubError, toTsgrubError, type TsgrubError } from '../errors.ts';
import { decodeUtf8Strict } from '../io/bytes.ts';
import type { Disk, Candidate } from '../disk.ts';
import type { Vfs } from '../fs/vfs.ts';
import type { BootEntry, BootMenu, ConfigFs, DeviceResolver } from './types.ts';
import { DiskDevices, locateBootFile } from './devices.ts';
import { findBootConfig } from './discover.ts';
import { resolveEntry, buildArgs } from './select.ts';
import { listEntries } from './list.ts';

export interface LoaderOptions {
  /** --entry (index or title). */
  readonly entry?: string | undefined;
  /** --kernel / --ramdisk: bypass the config; the first mountable filesystem is used. */
  readonly kernel?: string | undefined;
  readonly ramdisk?: string | undefined;
  /** --args (appended to the entry's args). */
  readonly args?: string | undefined;
  /** -l: collect the listing of every partition that has a config. */
  readonly listEntries?: boolean | undefined;
  /** Only this candidate (--offset is turned into a candidate by the caller). */
  readonly only?: Candidate | undefined;
  /** Interactive chooser: given the menu, returns the entry to boot (possibly edited). */
  readonly choose?: ((menu: BootMenu, defaultIndex: number) => Promise<BootEntry>) | undefined;
}

export interface BootChoice {
  readonly candidate: Candidate;
  readonly vfs: Vfs;
  readonly menu: BootMenu | null;
  /** Index of the chosen entry in menu.entries (-1 for --kernel or a sniffed kernel). */
  readonly index: number;
  /** Guest paths to copy. */
  readonly kernel: string;
  readonly ramdisk: string | null;
  /** Final args (after the ZFS boot string step); empty string means none. */
  readonly args: string;
  readonly how: 'config' | 'kernel-option' | 'solaris' | 'netware';
  readonly warnings: string[];
  /**
   * Where the ramdisk is read from when GRUB's device semantics put it on another filesystem than
   * the kernel (`vfs`); absent when it is `vfs`. Callers copy the ramdisk from `ramdiskVfs ?? vfs`.
   */
  readonly ramdiskVfs?: Vfs;
  /** GRUB devices the kernel and ramdisk are read from (null: the config's filesystem). */
  readonly devices?: { readonly kernel: string | null; readonly ramdisk: string | null };
}

export interface LoaderOutcome {
  readonly choice: BootChoice | null;
  /** -l text (escaped), one block per partition with a config. */
  readonly listing: string;
  /** Why each candidate failed, for the final message. */
  readonly failures: Array<{ path: string; error: TsgrubError }>;
}

/** A ConfigFs over a mounted volume: strict UTF-8, truncated at the config budget as pygrub does. */
export function configFs(vfs: Vfs, devices?: DeviceResolver): ConfigFs {
  return {
    ...(devices ? { devices } : {}),
    async readText(path: string): Promise<string | null> {
      let node;
      try {
        node = await vfs.stat(path);
      } catch (e) {
        if (isTsgrubError(e) && (e.code === 'NotFound' || e.code === 'NotADirectory')) return null;
        throw e;
      }
      if (node.kind !== 'file') return null;
      const bytes = await vfs.readFile(node, { truncateAt: vfs.ctx.limits.configBytes });
      const text = decodeUtf8Strict(bytes);
      if (text === null) throw new ConfigError('Encoding', `${path} is not valid UTF-8`);
      return text;
    },
    async list(dir: string): Promise<string[] | null> {
      try {
        const entries = await vfs.readdir(dir);
        const names: string[] = [];
        for (const e of entries) {
          const n = decodeUtf8Strict(e.name);
          if (n !== null) names.push(n);
        }
        return names;
      } catch (e) {
        if (isTsgrubError(e) && (e.code === 'NotFound' || e.code === 'NotADirectory')) return null;
        throw e;
      }
    },
    exists: (path: string) => vfs.exists(path),
  };
}

const SOLARIS_AMD64 = '/platform/i86xpv/kernel/amd64/unix';
const ZFS_BOOTFS_VAR = '$ZFS-BOOTFS';
/** The characters Python's str.split() treats as whitespace. */
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const SOLARIS_32 = '/platform/i86xpv/kernel/unix';

/** Upstream pygrub's sniff_solaris args rewrite (pygrub-spec §5), kept byte for byte. */
export function solarisArgs(kernel: string, args: string): string {
  if (!args) return kernel;
  const head: string[] = [];
  const tail: string[] = [];
  // Python's str.split(): any run of Unicode whitespace separates words.
  for (const tok of args.split(PY_WHITESPACE)) {
    if (tok === '') continue;
    if (tok.startsWith('root=') || tok.startsWith('ip=')) head.push(`${tok} `);
    else if (tok !== kernel) tail.push(`${tok} `);
  }
  return `${head.join('')} ${kernel} ${tail.join('')}`;
}

async function sniffSolaris(vfs: Vfs): Promise<{ kernel: string; ramdisk: string } | null> {
  if (await vfs.exists(SOLARIS_AMD64)) return { kernel: SOLARIS_AMD64, ramdisk: '/platform/i86pc/amd64/boot_archive' };
  if (await vfs.exists(SOLARIS_32)) return { kernel: SOLARIS_32, ramdisk: '/platform/i86pc/boot_archive' };
  return null;
}

/** `zfs-bootfs=` from --args selects the ZFS dataset for every partition (pygrub-spec §5). */
export function zfsBootfsOption(args: string): string | undefined {
  const m = /zfs-bootfs=([^\s,"]*)[\s,"]/.exec(`"${args}"`);
  return m?.[1] || undefined;
}

/** pygrub's final step: replace every `zfs-bootfs=…` with the driver's boot string, or append ` -B …`. */
export function applyBootstring(args: string, bootstring: string | null | undefined): string {
  if (!args || !bootstring) return args;
  let count = 0;
  const out = args.replace(/zfs-bootfs=[\w\-.:@/]+/g, () => {
    count++;
    return bootstring;
  });
  return count === 0 ? `${out} -B ${bootstring}` : out;
}

/** Candidates in boot order: active partitions first (what pygrub means; its py3 check never fires). */
async function bootOrder(disk: Disk): Promise<Candidate[]> {
  const cands = await disk.candidates();
  const active = cands.filter((c) => c.partition?.bootable);
  const rest = cands.filter((c) => !c.partition?.bootable);
  return [...active, ...rest];
}

export async function loadBoot(disk: Disk, opts: LoaderOptions): Promise<LoaderOutcome> {
  const failures: Array<{ path: string; error: TsgrubError }> = [];
  let listing = '';
  const extra = opts.args ?? '';
  const dataset = zfsBootfsOption(extra);
  const candidates = opts.only ? [opts.only] : await bootOrder(disk);
  // GRUB 2 `search` and device names are answered over the whole image, whichever partition holds the config.
  const devices = new DiskDevices(disk, dataset ? { dataset } : undefined);
  for (const cand of candidates) {
    let vfs: Vfs;
    try {
      vfs = await disk.open(cand, dataset ? { dataset } : undefined);
    } catch (e) {
      if (!isTsgrubError(e)) throw e;
      failures.push({ path: cand.path, error: e });
      continue;
    }
    devices.setHome(cand, vfs);
    const finish = (c: Omit<BootChoice, 'candidate' | 'vfs' | 'args'> & { args: string }, from: Vfs = vfs): LoaderOutcome => {
      const bootstring = from.volume.bootstring?.() ?? null;
      // Solaris GRUB's $ZFS-BOOTFS expands to the boot string itself; otherwise pygrub's rule applies.
      const args = bootstring && c.args.includes(ZFS_BOOTFS_VAR) ? c.args.split(ZFS_BOOTFS_VAR).join(bootstring) : applyBootstring(c.args, bootstring);
      return { choice: { ...c, candidate: cand, vfs: from, args }, listing, failures };
    };
    try {
      const solaris = await sniffSolaris(vfs);
      if (opts.kernel) {
        const args = solaris ? solarisArgs(opts.kernel, extra) : extra;
        return finish({ menu: null, index: -1, kernel: opts.kernel, ramdisk: opts.ramdisk ?? null, args, how: 'kernel-option', warnings: [] });
      }
      let menu = await findBootConfig(configFs(vfs, devices), vfs.ctx.limits);
      // Solaris keeps menu.lst in the pool's root dataset (/<pool>/boot/grub/menu.lst) while the
      // kernel lives in the boot dataset the driver opened: look there too.
      if (!menu && vfs.volume.type === 'zfs' && vfs.volume.label) {
        const poolRoot = await disk.open(cand, { dataset: vfs.volume.label });
        menu = await findBootConfig(configFs(poolRoot, devices), vfs.ctx.limits);
      }
      if (!menu) {
        if (solaris) {
          return finish({ menu: null, index: -1, kernel: solaris.kernel, ramdisk: solaris.ramdisk, args: solarisArgs(solaris.kernel, extra), how: 'solaris', warnings: [] });
        }
        if (await vfs.exists('/nwserver/xnloader.sys')) {
          return finish({ menu: null, index: -1, kernel: '/nwserver/xnloader.sys', ramdisk: null, args: extra, how: 'netware', warnings: [] });
        }
        throw new NotFoundError('boot configuration');
      }
      if (opts.listEntries) listing += listEntries(menu);
      if (menu.entries.length === 0) throw new ConfigError('NoEntries', `${menu.configPath} has no boot entries`);
      let entry: BootEntry;
      let index: number;
      if (opts.choose && opts.entry === undefined && !opts.listEntries) {
        entry = await opts.choose(menu, menu.defaultIndex);
        index = menu.entries.indexOf(entry);
      } else {
        index = resolveEntry(menu, opts.entry);
        entry = menu.entries[index] as BootEntry;
      }
      if (!entry.kernel) {
        throw new ConfigError('Unbootable', `entry ${index} has no kernel${entry.unbootable ? ` (${entry.unbootable})` : ''}`);
      }
      let from = vfs;
      let args = buildArgs(entry.args, extra);
      if (menu.format === 'solaris') {
        // A Solaris entry's `bootfs` names the dataset holding its kernel; the Solaris PV kernel
        // takes its own path as the first word of the command line (as pygrub's sniff builds it).
        if (entry.bootfs && vfs.volume.type === 'zfs') from = await disk.open(cand, { dataset: entry.bootfs });
        if (entry.kernel.startsWith('/platform/')) args = solarisArgs(entry.kernel, args.trim());
      }
      const warnings = [...menu.warnings];
      const ramdisk = entry.initrd[0] ?? null;
      if (entry.kernelFrom || entry.deviceNotes?.length || entry.initrdFrom?.some((x) => x)) {
        // GRUB reads each file from its own device (an explicit `(dev)` prefix, else `$root` as set
        // by `set root`/`search`), which may be another partition or a loopback file (devices.ts).
        const k = await locateBootFile(devices, vfs, entry.kernel, entry.kernelFrom, entry.deviceNotes);
        const r = ramdisk === null ? null : await locateBootFile(devices, vfs, ramdisk, entry.initrdFrom?.[0], entry.deviceNotes);
        warnings.push(...k.warnings, ...(r?.warnings ?? []));
        const extraFields = {
          ...(r && r.vfs !== k.vfs ? { ramdiskVfs: r.vfs } : {}),
          devices: { kernel: k.device, ramdisk: r?.device ?? null },
        };
        return finish({ menu, index, kernel: entry.kernel, ramdisk, args, how: 'config', warnings, ...extraFields }, k.vfs);
      }
      return finish({ menu, index, kernel: entry.kernel, ramdisk, args, how: 'config', warnings }, from);
    } catch (e) {
      if (!isTsgrubError(e)) throw e;
      failures.push({ path: cand.path, error: toTsgrubError(e) });
    }
  }
  return { choice: null, listing, failures };
}
