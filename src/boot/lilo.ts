/**
 * LILO `lilo.conf` (lilo.conf(5)): `image=` opens an entry; `label=`, `initrd=`, `append=`, `root=`,
 * `read-only`/`read-write`, `literal=`; global `default=` (a label), `timeout=` (tenths of a second),
 * and the same per-image keys as defaults for every image. `other=` entries (chain loading) are
 * unbootable. pygrub ships a LILO parser but never calls it (spec §3.6).
 */
import { LimitExceededError } from '../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import type { BootEntry, BootMenu } from './types.ts';
import { checkConfigText, pythonInt, splitLines, Warnings } from './text.ts';

export interface LiloOptions {
  readonly configPath: string;
  readonly limits?: Limits;
}

interface Opts {
  append?: string;
  literal?: string;
  root?: string;
  ro?: boolean;
  initrd?: string;
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

export function parseLilo(text: string, opts: LiloOptions): BootMenu {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  checkConfigText(text, limits, opts.configPath);
  const warnings = new Warnings();
  const global: Opts = {};
  const images: { image: string | null; other: string | null; label: string | null; o: Opts; lines: string[] }[] = [];
  let defaultLabel: string | null = null;
  let timeout: number | null = null;
  for (const raw of splitLines(text)) {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') continue;
    const eq = line.indexOf('=');
    const key = (eq >= 0 ? line.slice(0, eq) : line).trim().toLowerCase();
    const value = eq >= 0 ? unquote(line.slice(eq + 1).trim()) : '';
    if (key === 'image' || key === 'other') {
      if (images.length >= limits.menuEntries) {
        throw new LimitExceededError('menuEntries', `${opts.configPath}: more than ${limits.menuEntries} entries`, limits.menuEntries);
      }
      images.push({ image: key === 'image' ? value : null, other: key === 'other' ? value : null, label: null, o: {}, lines: [line] });
      continue;
    }
    const cur = images[images.length - 1];
    const o = cur ? cur.o : global;
    if (cur) cur.lines.push(line);
    switch (key) {
      case 'label': if (cur) cur.label = value; break;
      case 'append': o.append = value; break;
      case 'literal': o.literal = value; break;
      case 'root': o.root = value; break;
      case 'initrd': o.initrd = value; break;
      case 'read-only': o.ro = true; break;
      case 'read-write': o.ro = false; break;
      case 'default': if (!cur) defaultLabel = value; break;
      case 'timeout': if (!cur) { const t = pythonInt(value); timeout = t === null ? null : Math.ceil(t / 10); } break;
      default: break; // boot=, map=, install=, prompt, lba32, … concern the LILO installer
    }
  }
  const entries: BootEntry[] = images.map((im) => {
    const o: Opts = { ...global, ...im.o };
    let args: string;
    if (o.literal !== undefined) args = o.literal;
    else {
      args = o.append ?? '';
      if (o.root !== undefined) args += ` root=${o.root}`;
      if (o.ro === true) args += ' ro';
      else if (o.ro === false) args += ' rw';
    }
    args = args.trim();
    const title = im.label ?? (im.image ?? im.other ?? '').split('/').pop() ?? '';
    return {
      title,
      kernel: im.image,
      initrd: o.initrd !== undefined ? [o.initrd] : [],
      args: args === '' ? null : args,
      root: o.root ?? null,
      ...(im.label !== null ? { id: im.label } : {}),
      lines: im.lines,
      ...(im.image === null ? { unbootable: 'other= (chain loading) entry' } : {}),
      source: opts.configPath,
    };
  });
  let defaultIndex = 0;
  if (defaultLabel !== null) {
    const k = entries.findIndex((e) => e.title === defaultLabel);
    if (k >= 0) defaultIndex = k;
    else warnings.add(`default ${JSON.stringify(defaultLabel)} matches no label`);
  }
  return { format: 'lilo', configPath: opts.configPath, entries, defaultIndex, timeout, warnings: warnings.list };
}
