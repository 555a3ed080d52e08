/**
 * SYSLINUX / EXTLINUX / ISOLINUX config (syslinux doc/syslinux.txt, doc/menu.txt; pygrub-spec §3.5).
 * Keywords are case-insensitive; pygrub's `=` splitting applies. Supported: DEFAULT, LABEL, KERNEL,
 * LINUX, INITRD (comma list), APPEND (`initrd=` extracted, comma lists split, `APPEND -` = none),
 * MENU LABEL (kept in `lines`; the title stays the label, as pygrub and `--entry=<title>` expect),
 * MENU DEFAULT, TIMEOUT (treated as seconds like pygrub; syslinux means tenths), INCLUDE and
 * MENU INCLUDE (depth-limited), and `mboot.c32` Xen entries.
 *
 * Relative paths: pygrub resolves them from the filesystem root; syslinux from the config's
 * directory. With a ConfigFs both candidates are tried, root first (so every layout pygrub boots
 * still boots the same file), then the config's directory (which fixes pygrub's failure on
 * `/boot/extlinux.conf` with the kernel in `/boot`). Without a ConfigFs the root candidate is used.
 */
import { LimitExceededError } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import type { BootEntry, BootMenu, ConfigFs } from './types.ts';
import { checkConfigText, dirname, grubSplit, joinPath, pythonInt, splitKernelLine, splitLines, toFsPath, Warnings } from './text.ts';

export interface ExtlinuxOptions {
  readonly configPath: string;
  readonly fs?: ConfigFs;
  readonly limits?: Limits;
}

interface Draft {
  label: string;
  kernel: string | null;
  kernelArgs: string | null;
  append: string | null;
  initrdKeyword: string[];
  menuDefault: boolean;
  comboot: boolean;
  lines: string[];
  source: string;
}

const IGNORED: ReadonlySet<string> = new Set(['serial', 'prompt', 'display', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'f10', 'f11', 'f12', 'ui', 'say', 'noescape', 'nocomplete', 'allowoptions', 'implicit', 'totaltimeout', 'ontimeout', 'onerror', 'font', 'kbdmap', 'ipappend', 'sysappend', 'localboot', 'path']);

function unquoteOnce(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

function splitList(v: string): string[] {
  return v.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

class ExtlinuxRun {
  readonly limits: Limits;
  readonly warnings = new Warnings();
  readonly drafts: Draft[] = [];
  defaultLabel: string | null = null;
  timeout: number | null = null;
  hidden = false;

  constructor(readonly opts: ExtlinuxOptions) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
  }

  async file(text: string, path: string, depth: number): Promise<void> {
    checkConfigText(text, this.limits, path);
    const lines = splitLines(text);
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const [kw0, value] = grubSplit(line);
      const kw = kw0.toLowerCase();
      const where = `${path}:${n + 1}`;
      const cur = this.drafts[this.drafts.length - 1];
      if (kw === 'label') {
        if (this.drafts.length >= this.limits.menuEntries) {
          throw new LimitExceededError('menuEntries', `${path}: more than ${this.limits.menuEntries} entries`, this.limits.menuEntries);
        }
        this.drafts.push({ label: value, kernel: null, kernelArgs: null, append: null, initrdKeyword: [], menuDefault: false, comboot: false, lines: [], source: path });
        continue;
      }
      if (cur) cur.lines.push(line);
      if (kw === 'menu') {
        const [sub0, rest] = grubSplit(value);
        const sub = sub0.toLowerCase();
        if (sub === 'default' && cur) cur.menuDefault = true;
        else if (sub === 'hidden') this.hidden = true;
        else if (sub === 'include') await this.include(rest, path, depth, where);
        continue;
      }
      switch (kw) {
        case 'include':
          await this.include(value, path, depth, where);
          break;
        case 'default':
          if (!cur) this.defaultLabel = value;
          break;
        case 'timeout':
          if (!cur) this.timeout = pythonInt(value);
          break;
        case 'kernel':
        case 'linux': {
          if (!cur) break;
          const { path: k, args } = splitKernelLine(value);
          cur.kernel = k;
          cur.kernelArgs = args;
          cur.append = null; // pygrub: a later kernel line resets the args
          cur.comboot = k.toLowerCase().endsWith('.c32') && !k.toLowerCase().endsWith('mboot.c32');
          break;
        }
        case 'com32': case 'boot': case 'bss': case 'pxe': case 'fdimage': case 'comboot': case 'config':
          if (cur) {
            cur.kernel = value;
            cur.comboot = true;
          }
          break;
        case 'append':
          if (cur) cur.append = value === '-' ? '' : unquoteOnce(value);
          break;
        case 'initrd':
          if (cur) cur.initrdKeyword = splitList(value);
          break;
        default:
          if (!IGNORED.has(kw)) this.warnings.add(`${where}: unsupported directive ${kw0}`);
      }
    }
  }

  async include(value: string, from: string, depth: number, where: string): Promise<void> {
    const name = value.split(/[ \t]/)[0] ?? '';
    const fs = this.opts.fs;
    if (!fs || name === '') {
      this.warnings.add(`${where}: INCLUDE ${name} not followed`);
      return;
    }
    if (depth + 1 > this.limits.configDepth) {
      throw new LimitExceededError('configDepth', `${where}: INCLUDE nested deeper than ${this.limits.configDepth}`, this.limits.configDepth);
    }
    for (const cand of candidates(name, from)) {
      const text = await fs.readText(cand);
      if (text !== null) {
        await this.file(text, cand, depth + 1);
        return;
      }
    }
    this.warnings.add(`${where}: INCLUDE ${name}: not found`);
  }
}

/** Where a config names a file: absolute as is; relative from the root (pygrub), then from the config's directory (syslinux). */
function candidates(name: string, configPath: string): string[] {
  if (name.startsWith('/')) return [toFsPath(name) ?? name];
  const out = [toFsPath(name, '/') ?? `/${name}`];
  const rel = toFsPath(joinPath(dirname(configPath), name)) ?? name;
  if (!out.includes(rel)) out.push(rel);
  return out;
}

async function resolve(fs: ConfigFs | undefined, name: string, configPath: string): Promise<string> {
  const c = candidates(name, configPath);
  if (fs) for (const p of c) if (await fs.exists(p)) return p;
  return c[0]!;
}

export async function parseExtlinux(text: string, opts: ExtlinuxOptions): Promise<BootMenu> {
  const run = new ExtlinuxRun(opts);
  await run.file(text, opts.configPath, 0);
  const entries: BootEntry[] = [];
  for (const d of run.drafts) {
    let kernel = d.kernel;
    let args: string | null = d.append !== null ? d.append : d.kernelArgs;
    let initrd: string[] = d.initrdKeyword;
    let unbootable: string | undefined;
    if (kernel !== null && kernel.toLowerCase().endsWith('mboot.c32')) {
      // Xen through syslinux: APPEND xen-args --- kernel kernel-args --- initrd (spec §3.5).
      const parts = (args ?? '').split('---').map((x) => x.trim());
      const rest = parts.length >= 3 ? parts.slice(1) : parts.length === 2 ? parts : [];
      if (rest.length >= 1 && rest[0] !== '') {
        const k = splitKernelLine(rest[0]!);
        kernel = k.path;
        args = k.args;
        initrd = rest[1] ? [splitKernelLine(rest[1]).path] : [];
      } else {
        unbootable = 'mboot.c32 entry without a kernel module';
        kernel = null;
      }
    } else if (args !== null) {
      // initrd= tokens become the ramdisk and leave the args exactly as pygrub cuts them out
      // (ExtLinuxConf.set_from_line: the token's text is removed, the spaces around it stay, then the
      // whole value is stripped), so `ro initrd=/i quiet` gives `ro  quiet` byte for byte.
      if (args.includes('initrd=')) {
        let text = args;
        for (const tok of args.trim().split(' ')) {
          if (!tok.toLowerCase().startsWith('initrd=')) continue;
          initrd = splitList(tok.slice(7));
          text = text.split(tok).join('');
        }
        args = text.trim();
      }
      if (args === '') args = null;
    }
    if (d.comboot && unbootable === undefined) {
      unbootable = `COM32/boot-sector program ${d.kernel ?? ''} cannot be booted as a PV kernel`;
      kernel = null;
    }
    if (kernel === null && unbootable === undefined) unbootable = 'no KERNEL or LINUX line';
    const resolvedKernel = kernel === null ? null : await resolve(opts.fs, kernel, d.source);
    const resolvedInitrd: string[] = [];
    for (const p of initrd) resolvedInitrd.push(await resolve(opts.fs, p, d.source));
    entries.push({
      title: d.label,
      kernel: resolvedKernel,
      initrd: resolvedInitrd,
      args,
      root: null,
      id: d.label,
      lines: d.lines,
      ...(unbootable !== undefined ? { unbootable } : {}),
      source: d.source,
    });
  }
  let defaultIndex = 0;
  const byLabel = run.defaultLabel === null ? -1 : entries.findIndex((e) => e.title === run.defaultLabel);
  if (byLabel >= 0) defaultIndex = byLabel;
  else {
    // DEFAULT names a menu module (menu.c32): the menu then starts on the MENU DEFAULT entry.
    const md = run.drafts.findIndex((d) => d.menuDefault);
    if (md >= 0) defaultIndex = md;
  }
  return { format: 'extlinux', configPath: opts.configPath, entries, defaultIndex, timeout: run.timeout, hidden: run.hidden, warnings: run.warnings.list };
}
