/**
 * GRUB legacy `menu.lst` / `grub.conf` (GRUB 0.97 manual; pygrub-spec §3.3), with the Solaris GRUB
 * extensions (`findroot`, `bootfs`, `kernel$`, `module$`, `$ISADIR`; spec §5).
 *
 * Line rules follow pygrub: lines stripped, `#` comments, pygrub's `=` splitting, `title` opens an
 * entry and everything up to the next `title` belongs to it, `(hdX,Y)` prefixes dropped from paths.
 * Differences (README): tabs also separate kernel path and args; several initrds are split; Xen
 * entries (`kernel /xen.gz` + `module`s) boot the first module as kernel and the second as ramdisk;
 * an unparseable `root` or negative `default` is a warning instead of rejecting the partition.
 */
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { LimitExceededError } from '../errors.ts';
import type { BootEntry, BootMenu } from './types.ts';
import { checkConfigText, grubSplit, pythonInt, splitDevice, splitKernelLine, splitLines, Warnings } from './text.ts';

export interface LegacyOptions {
  readonly configPath: string;
  readonly limits?: Limits;
}

const IGNORED_GLOBALS: ReadonlySet<string> = new Set([
  'bootp', 'color', 'device', 'dhcp', 'hide', 'ifconfig', 'pager', 'partnew', 'parttype', 'rarp', 'serial', 'setkey',
  'terminal', 'terminfo', 'tftpserver', 'unhide', 'splashimage', 'foreground', 'background', 'gfxmenu',
]);
const IGNORED_IN_ENTRY: ReadonlySet<string> = new Set(['savedefault', 'lock', 'makeactive', 'chainloader', 'boot', 'quiet', 'map', 'hide', 'unhide']);

/** Solaris `$ISADIR`: we always boot 64-bit. `$ZFS-BOOTFS` is left for the boot layer (it knows the pool). */
function solarisExpand(s: string): string {
  return s.split('$ISADIR').join('amd64');
}

interface Draft {
  title: string;
  kernel: string | null;
  kernelDevice: string | null;
  args: string | null;
  initrd: string[];
  modules: { path: string; args: string | null }[];
  root: string | null;
  bootfs?: string;
  solaris: boolean;
  lines: string[];
}

export function parseGrubLegacy(text: string, opts: LegacyOptions): BootMenu {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  checkConfigText(text, limits, opts.configPath);
  const warnings = new Warnings();
  const drafts: Draft[] = [];
  let cur: Draft | null = null;
  let defaultRaw: string | null = null;
  let timeout: number | null = null;
  let fallback: number | null = null;
  let hidden = false;
  let password = false;
  let solaris = false;

  splitLines(text).forEach((raw, n) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('title')) {
      if (drafts.length >= limits.menuEntries) {
        throw new LimitExceededError('menuEntries', `${opts.configPath}: more than ${limits.menuEntries} entries`, limits.menuEntries);
      }
      cur = { title: line.slice(6).trim(), kernel: null, kernelDevice: null, args: null, initrd: [], modules: [], root: null, solaris: false, lines: [] };
      drafts.push(cur);
      return;
    }
    const [kw, value] = grubSplit(line);
    const where = `${opts.configPath}:${n + 1}`;
    if (cur === null) {
      switch (kw) {
        case 'default': defaultRaw = value; return;
        case 'timeout': timeout = pythonInt(value); return;
        case 'fallback': fallback = pythonInt(value.split(/[ \t]/)[0] ?? ''); return;
        case 'hiddenmenu': hidden = true; return;
        case 'password': password = true; return;
        default:
          if (!IGNORED_GLOBALS.has(kw)) warnings.add(`${where}: unknown directive ${kw}`);
          return;
      }
    }
    const e: Draft = cur;
    e.lines.push(line);
    switch (kw) {
      case 'root':
      case 'rootnoverify':
        e.root = value.split(/[ \t]/)[0] ?? null;
        return;
      case 'findroot':
        e.solaris = solaris = true;
        e.root = value;
        return;
      case 'bootfs':
        e.solaris = solaris = true;
        e.bootfs = value;
        return;
      case 'kernel':
      case 'kernel$': {
        const dollar = kw === 'kernel$';
        if (dollar) e.solaris = solaris = true;
        // Solaris: `kernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS`.
        const { path, args } = splitKernelLine(dollar ? solarisExpand(value) : value);
        const d = splitDevice(path);
        e.kernel = d.path;
        e.kernelDevice = d.device;
        e.args = args;
        if (d.path.startsWith('/platform/')) e.solaris = true;
        return;
      }
      case 'initrd':
        e.initrd = value.split(/[ \t]+/).filter((x) => x !== '').map((x) => splitDevice(x).path);
        return;
      case 'module':
      case 'module$': {
        if (kw === 'module$') e.solaris = solaris = true;
        const { path, args } = splitKernelLine(kw === 'module$' ? solarisExpand(value) : value);
        e.modules.push({ path: splitDevice(path).path, args });
        return;
      }
      case 'default': case 'timeout': case 'hiddenmenu': case 'fallback': case 'password':
        return; // global directives inside an entry are ignored, as in pygrub
      default:
        if (!IGNORED_IN_ENTRY.has(kw) && !IGNORED_GLOBALS.has(kw)) warnings.add(`${where}: unknown directive ${kw}`);
    }
  });

  const entries: BootEntry[] = drafts.map((d) => {
    let { kernel, kernelDevice, args, initrd } = d;
    let unbootable: string | undefined;
    if (d.modules.length > 0 && kernel !== null && !d.solaris) {
      // Xen: `kernel /xen.gz` loads the hypervisor; the first module is dom0's kernel, the second
      // its ramdisk. pygrub boots xen.gz itself (spec §3.8); we boot the guest kernel instead.
      const [k, r] = d.modules;
      kernel = k!.path;
      kernelDevice = null;
      args = k!.args;
      initrd = r ? [r.path] : [];
    } else if (d.solaris && d.modules.length > 0 && initrd.length === 0) {
      initrd = [d.modules[0]!.path];
    }
    if (kernel === null) unbootable = 'no kernel line';
    return {
      title: d.title,
      kernel,
      kernelDevice,
      initrd,
      args,
      root: d.root,
      lines: d.lines,
      ...(d.bootfs !== undefined ? { bootfs: d.bootfs } : {}),
      ...(unbootable !== undefined ? { unbootable } : {}),
      source: opts.configPath,
    };
  });

  let defaultIndex = 0;
  if (defaultRaw !== null) {
    const dr: string = defaultRaw;
    if (dr === 'saved') defaultIndex = 0; // the saved number lives in /boot/grub/default; pygrub uses 0 too
    else {
      const v = pythonInt(dr);
      if (v === null) warnings.add(`default ${JSON.stringify(dr)} is not a number; using 0`);
      else if (v < 0 || v >= entries.length) warnings.add(`default ${v} out of range; using 0`);
      else defaultIndex = v;
    }
  }
  return {
    format: solaris ? 'solaris' : 'grub-legacy',
    configPath: opts.configPath,
    entries,
    defaultIndex,
    timeout,
    hidden,
    fallback: fallback !== null && fallback >= 0 && fallback < entries.length ? fallback : null,
    password,
    warnings: warnings.list,
  };
}
