/**
 * `-l` listing (pygrub-spec §1.5): `title: T`, `  root: R`, `  kernel: K`, `  args: A`, `  initrd: I`
 * per entry. Differences from pygrub (README): every entry is listed (pygrub stops at the first
 * entry without an initrd or kernel), missing values print `None`, paths are the resolved guest
 * paths, and guest text is escaped for the terminal.
 */
import { escapeForTerminal } from './escape.ts';
import type { BootEntry, BootMenu } from './types.ts';

/**
 * pygrub's `GrubDiskPart` rendering: `(hd0,msdos1)`, `hd0,gpt2`, `(/dev/xvda,msdos1)` → `d0p1`…,
 * `(hd0)` → `d0`; anything it cannot parse (lvmid/…, (cd), md/0) → null.
 */
export function rootToPygrub(root: string): string | null {
  let s = root.trim();
  if (s.startsWith('(') && s.endsWith(')')) s = s.slice(1, -1);
  const comma = s.indexOf(',');
  const disk = comma >= 0 ? s.slice(0, comma) : s;
  const part = comma >= 0 ? s.slice(comma + 1) : null;
  let d: number;
  if (disk.startsWith('/dev/xvd') && disk.length === 9 && disk[8]! >= 'a' && disk[8]! <= 'z') d = disk.charCodeAt(8) - 97;
  else if (/^hd[0-9]{1,6}$/.test(disk)) d = Number(disk.slice(2));
  else return null;
  if (part === null) return `d${d}`;
  const m = /^(?:msdos|gpt)?([0-9]{1,6})$/.exec(part);
  if (!m) return null;
  return `d${d}p${Number(m[1])}`;
}

function rootText(menu: BootMenu, e: BootEntry): string {
  if (menu.format === 'extlinux') return '';
  if (e.root === null || e.root === undefined) return 'None';
  return rootToPygrub(e.root) ?? 'None';
}

export function listEntries(menu: BootMenu): string {
  let out = '';
  for (const e of menu.entries) {
    out += `title: ${escapeForTerminal(e.title)}\n`;
    out += `  root: ${escapeForTerminal(rootText(menu, e))}\n`;
    out += `  kernel: ${e.kernel === null ? 'None' : escapeForTerminal(e.kernel)}\n`;
    out += `  args: ${e.args === null ? 'None' : escapeForTerminal(e.args)}\n`;
    out += `  initrd: ${e.initrd.length === 0 ? 'None' : escapeForTerminal(e.initrd[0]!)}\n`;
  }
  return out;
}
