/**
 * pygrub's three result formats, byte for byte (pygrub-spec §1.4). Values that contain the format's
 * delimiter are refused (XSA-198): libxl unlinks whatever paths it is handed, so a guest must never be
 * able to inject a record.
 */
import { TsgrubError } from '../errors.ts';
import { pyRepr } from './pyrepr.ts';

export type OutputFormat = 'sxp' | 'simple' | 'simple0';

export interface BootResult {
  /** Our temp file paths, or null with -n (printed as None). */
  readonly kernel: string | null;
  readonly ramdisk: string | null;
  /** Final args; empty/null is omitted. */
  readonly args: string | null;
}

export function formatResult(r: BootResult, format: OutputFormat): string {
  if (format === 'sxp') {
    let s = `linux (kernel ${pyRepr(r.kernel)})`;
    if (r.ramdisk) s += `(ramdisk ${pyRepr(r.ramdisk)})`;
    if (r.args) s += `(args ${pyRepr(r.args)})`;
    return s;
  }
  const sep = format === 'simple' ? '\n' : '\0';
  for (const v of [r.kernel, r.ramdisk, r.args]) {
    if (v !== null && v.includes(sep)) {
      throw new TsgrubError('InvalidArgument', 'simple format cannot represent delimiter-containing value', { format });
    }
  }
  let s = `kernel ${r.kernel === null ? 'None' : r.kernel}${sep}`;
  if (r.ramdisk) s += `ramdisk ${r.ramdisk}${sep}`;
  if (r.args) s += `args ${r.args}${sep}`;
  return s + sep;
}
