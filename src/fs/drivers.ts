/**
 * The built-in filesystem drivers, in probe order: formats with strong magic numbers first, FAT (whose
 * boot sector is the weakest signature) last. Each is also importable on its own, so a bundle that
 * names one driver keeps only that one.
 */
import { btrfs } from './btrfs/index.ts';
import { erofs } from './erofs/index.ts';
import { ext } from './ext/index.ts';
import { fat } from './fat/index.ts';
import { iso9660 } from './iso9660/index.ts';
import { reiserfs } from './reiserfs/index.ts';
import { squashfs } from './squashfs/index.ts';
import { FilesystemRegistry } from './registry.ts';
import type { FilesystemDriver } from './types.ts';
import { ufs } from './ufs/index.ts';
import { xfs } from './xfs/index.ts';
import { zfs } from './zfs/index.ts';

export const builtinDrivers: readonly FilesystemDriver[] = Object.freeze([ext, xfs, btrfs, zfs, reiserfs, ufs, squashfs, erofs, iso9660, fat]);

export const defaultRegistry = new FilesystemRegistry(builtinDrivers);
