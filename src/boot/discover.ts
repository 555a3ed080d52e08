/**
 * Where boot configs live, in pygrub's order (spec §3.2): the first existing path wins and no other
 * format is tried on the same filesystem. After pygrub's 13 paths: BLS entry directories (only when
 * no other config exists), then `/etc/lilo.conf`.
 */
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { parseBlsMenu } from './bls.ts';
import { parseExtlinux } from './extlinux.ts';
import { parseGrubLegacy } from './grub-legacy.ts';
import { parseGrub2 } from './grub2/parser.ts';
import { parseLilo } from './lilo.ts';
import type { BootMenu, ConfigFormat, ConfigFs } from './types.ts';

export const CONFIG_PATHS: readonly { readonly path: string; readonly format: ConfigFormat }[] = [
  { path: '/boot/grub/grub.cfg', format: 'grub2' },
  { path: '/grub/grub.cfg', format: 'grub2' },
  { path: '/boot/grub2/grub.cfg', format: 'grub2' },
  { path: '/grub2/grub.cfg', format: 'grub2' },
  { path: '/boot/isolinux/isolinux.cfg', format: 'extlinux' },
  { path: '/boot/extlinux/extlinux.conf', format: 'extlinux' },
  { path: '/boot/extlinux.conf', format: 'extlinux' },
  { path: '/extlinux/extlinux.conf', format: 'extlinux' },
  { path: '/extlinux.conf', format: 'extlinux' },
  { path: '/boot/grub/menu.lst', format: 'grub-legacy' },
  { path: '/boot/grub/grub.conf', format: 'grub-legacy' },
  { path: '/grub/menu.lst', format: 'grub-legacy' },
  { path: '/grub/grub.conf', format: 'grub-legacy' },
];

export const LILO_PATH = '/etc/lilo.conf';

/** Parses a config text of a known format. */
export async function parseConfig(format: ConfigFormat, text: string, configPath: string, fs?: ConfigFs, limits: Limits = DEFAULT_LIMITS): Promise<BootMenu> {
  switch (format) {
    case 'grub2':
      return parseGrub2(text, { configPath, limits, ...(fs ? { fs } : {}) });
    case 'extlinux':
      return parseExtlinux(text, { configPath, limits, ...(fs ? { fs } : {}) });
    case 'grub-legacy':
    case 'solaris':
      return parseGrubLegacy(text, { configPath, limits });
    case 'lilo':
      return parseLilo(text, { configPath, limits });
    case 'bls':
      throw new Error('BLS menus are read from a directory: use parseBlsMenu');
  }
}

/** The boot menu of a filesystem, or null when it has no boot config at all. */
export async function findBootConfig(fs: ConfigFs, limits: Limits = DEFAULT_LIMITS): Promise<BootMenu | null> {
  for (const { path, format } of CONFIG_PATHS) {
    if (!(await fs.exists(path))) continue;
    const text = await fs.readText(path);
    if (text === null) continue; // exists but is not a regular file
    return parseConfig(format, text, path, fs, limits);
  }
  const bls = await parseBlsMenu(fs, limits);
  if (bls !== null) return bls;
  if (await fs.exists(LILO_PATH)) {
    const text = await fs.readText(LILO_PATH);
    if (text !== null) return parseLilo(text, { configPath: LILO_PATH, limits });
  }
  return null;
}
