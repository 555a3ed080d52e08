/** One model for every boot-config format. */

export type ConfigFormat = 'grub2' | 'grub-legacy' | 'extlinux' | 'bls' | 'lilo' | 'solaris';

export interface BootEntry {
  /** Title as shown in the menu (guest text: escape before printing). */
  readonly title: string;
  /** Kernel path in the guest, as the config names it after expansion (device prefix removed), or null when the entry has none (unbootable). */
  readonly kernel: string | null;
  /** GRUB device the kernel path named (`(hd0,gpt2)`, `($root)` expanded), when one was given. */
  readonly kernelDevice?: string | null;
  /**
   * GRUB device the kernel is read from (its explicit prefix, else `$root` when the config set one,
   * by `set root=` or `search`), with any `loopback` it names; null/absent = the config's filesystem.
   * Added for GRUB 2 device semantics (src/boot/devices.ts).
   */
  readonly kernelFrom?: GrubDeviceRef | null;
  /** Ramdisk paths; pygrub boots the first. */
  readonly initrd: readonly string[];
  /** Devices of `initrd`, parallel to it (see `kernelFrom`). */
  readonly initrdFrom?: readonly (GrubDeviceRef | null)[];
  /** Why `$root` may not be what the config meant (a `search` that found nothing), for error messages. */
  readonly deviceNotes?: readonly string[];
  /** Kernel arguments, or null when the config gives none (pygrub prints None). */
  readonly args: string | null;
  /** GRUB root device of the entry for `-l` (`d0p1` style is the caller's job), null when none. */
  readonly root?: string | null;
  /** menuentry --id / BLS id / extlinux label. */
  readonly id?: string;
  /** Titles of enclosing submenus, outermost first. */
  readonly submenu?: readonly string[];
  /** `--id`s of enclosing submenus, parallel to `submenu` (added for GRUB 2 `default=a>b` paths). */
  readonly submenuIds?: readonly (string | undefined)[];
  /**
   * Position in the GRUB 2 menu tree: index of the item at each level, outermost first (a submenu
   * counts as one item of its parent). Absent for flat formats. Added for GRUB 2 `default` semantics.
   */
  readonly menuPath?: readonly number[];
  /** Solaris `bootfs` of the entry (the boot layer substitutes `$ZFS-BOOTFS`). Added for Solaris GRUB. */
  readonly bootfs?: string;
  /** Raw lines of the entry (for the menu editor and `a`). */
  readonly lines: readonly string[];
  /** Why the entry cannot boot when kernel is null (multiboot, linuxefi unsupported, …). */
  readonly unbootable?: string;
  /** Config file that defined it. */
  readonly source: string;
}

export interface BootMenu {
  readonly format: ConfigFormat;
  /** Path of the config inside the filesystem. */
  readonly configPath: string;
  readonly entries: readonly BootEntry[];
  /** Index into `entries` of the default entry. */
  readonly defaultIndex: number;
  /** Menu timeout in seconds; null when absent. */
  readonly timeout: number | null;
  /** hiddenmenu / timeout_style=hidden. */
  readonly hidden?: boolean;
  readonly fallback?: number | null;
  /** GRUB legacy `password` present (locks editing keys). */
  readonly password?: boolean;
  /** Non-fatal findings, guest text inside: escape before printing. */
  readonly warnings: readonly string[];
}

/** What parsers may read from the filesystem holding the config (for source, INCLUDE, grubenv, BLS). */
export interface ConfigFs {
  /** Text of a file (strict UTF-8, bounded by the config budget), or null when absent. */
  readText(path: string): Promise<string | null>;
  /** File names in a directory, or null when absent. */
  list(dir: string): Promise<string[] | null>;
  exists(path: string): Promise<boolean>;
  /** GRUB device lookups over the image (`search`); without it `search` decides nothing. */
  readonly devices?: DeviceResolver;
}

/**
 * A GRUB device name as an entry uses it, resolved as far as the config alone can: a name made by
 * `loopback` carries the file it maps (and that file's own device), captured when `loopback` ran.
 */
export interface GrubDeviceRef {
  /** Without parentheses: "hd0,gpt2", "hd0,msdos1,bsd1", "lvm/vg-root", "loop0", "loop0,msdos1". */
  readonly name: string;
  /** Set when the name's disk part was made by `loopback NAME FILE`: the file, on `device` (null = the config's filesystem). */
  readonly loop?: { readonly path: string; readonly device: GrubDeviceRef | null };
  /** The loopback chain was cut at the `configDepth` budget: resolving it is a LimitExceeded error. */
  readonly tooDeep?: true;
  /** The name was a loopback device that `loopback -d` removed before the command ran. */
  readonly removed?: true;
}

export type SearchKind = 'fs-uuid' | 'label' | 'file';

/** What the GRUB 2 evaluator may ask about the image's devices while it runs (src/boot/devices.ts). */
export interface DeviceResolver {
  /** GRUB's `search`: the first device (in GRUB's order) whose filesystem matches, as "hd0,gpt2", or null. */
  search(kind: SearchKind, value: string): Promise<string | null>;
  /** True when `path` exists on the filesystem of `device` ("hd0,msdos1"); false when either does not. */
  exists(device: string, path: string): Promise<boolean>;
}
