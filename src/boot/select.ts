/**
 * Entry selection: pygrub's `--entry` (spec §3.7, `get_entry_idx`), GRUB 2's `default` forms
 * (grub-core/normal/menu.c: number, title or id, `>`-separated submenu paths) and the final
 * argument string (spec §3.10).
 */
import type { BootEntry, BootMenu } from './types.ts';
import { pythonInt } from './text.ts';

/**
 * The entry pygrub would boot for `--entry=E` (or the default when E is absent): `int(E)` in range
 * first, then the first entry whose stripped title equals E; anything else silently falls back to
 * the default. An out-of-range default becomes 0. Returns -1 only for an empty menu.
 */
export function resolveEntry(menu: BootMenu, entryArg?: string): number {
  const n = menu.entries.length;
  if (n === 0) return -1;
  let def = menu.defaultIndex;
  if (!Number.isSafeInteger(def) || def < 0 || def >= n) def = 0;
  if (entryArg === undefined) return def;
  const i = pythonInt(entryArg);
  if (i !== null) {
    if (i >= 0 && i < n) return i;
    // pygrub: an int outside the range is ignored; it is not tried as a title.
    return def;
  }
  for (let k = 0; k < n; k++) if (menu.entries[k]!.title.trim() === entryArg) return k;
  return def;
}

/** pygrub's `args = (entry.args or "")` + `" " + --args` when given: no entry args give a leading space. */
export function buildArgs(entryArgs: string | null | undefined, extraArgs?: string | null): string {
  let a = entryArgs ?? '';
  if (extraArgs) a += ' ' + extraArgs;
  return a;
}

function isDecimal(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (s[i]! < '0' || s[i]! > '9') return false;
  return true;
}

/**
 * GRUB 2 `default`/`fallback` value → index into the flattened `entries`, or null when it names
 * nothing. Each `>`-separated component picks an item at that menu level: a decimal number is its
 * position (submenus count as one item, as in GRUB), anything else is matched against titles and
 * `--id`s. A path that ends on a submenu picks the first entry inside it. Entries without
 * `menuPath` are treated as a flat top-level list.
 */
export function resolveGrubDefault(entries: readonly BootEntry[], value: string): number | null {
  if (value === '') return null;
  const comps = value.split('>');
  const prefix: number[] = [];
  const pathOf = (e: BootEntry, k: number): readonly number[] => e.menuPath ?? [k];
  const under = (p: readonly number[]): boolean => {
    for (let j = 0; j < prefix.length; j++) if (p[j] !== prefix[j]) return false;
    return true;
  };
  for (let level = 0; level < comps.length; level++) {
    const comp = comps[level]!;
    let found: number | null = null;
    for (let k = 0; k < entries.length && found === null; k++) {
      const e = entries[k]!;
      const p = pathOf(e, k);
      if (p.length <= level || !under(p)) continue;
      const idx = p[level]!;
      if (isDecimal(comp)) {
        if (idx === Number(comp)) found = idx;
      } else if (p.length === level + 1) {
        if (e.title === comp || (e.id !== undefined && e.id === comp)) found = idx;
      } else if (e.submenu?.[level] === comp || (e.submenuIds?.[level] !== undefined && e.submenuIds[level] === comp)) {
        found = idx;
      }
    }
    if (found === null) return null;
    prefix.push(found);
  }
  for (let k = 0; k < entries.length; k++) if (under(pathOf(entries[k]!, k))) return k;
  return null;
}
