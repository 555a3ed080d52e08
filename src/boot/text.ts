/**
 * Small helpers shared by the boot-config parsers: limit checks on guest text, Python `int()`
 * semantics (pygrub compatibility), GRUB device prefixes and guest path arithmetic.
 * Every function here is linear in its input and never builds an object keyed by guest text.
 */
import { ConfigError, LimitExceededError } from '../errors.ts';
import type { Limits } from '../limits.ts';

/** Warnings kept per menu; guest text could otherwise make this list grow with the config. */
export const MAX_WARNINGS = 100;

export class Warnings {
  readonly list: string[] = [];
  add(message: string): void {
    if (this.list.length < MAX_WARNINGS) this.list.push(message);
    else if (this.list.length === MAX_WARNINGS) this.list.push('further warnings suppressed');
  }
}

/**
 * Checks a config text against `configBytes` (UTF-8 bytes) and `configLineBytes` (bytes per line).
 * Over-long lines are a ConfigError (pygrub has no such limit but reads at most 1 MiB; a 64 KiB line
 * is never legitimate), an over-long file a LimitExceededError. UTF-8 takes at most three bytes per
 * UTF-16 unit, so only a line (or a file) longer than a third of its limit in units is measured; lines
 * are found with indexOf. This runs once per boot in a process where every loop is still cold, and a
 * loop over each character cost ~2 ms of a 3 KiB grub.cfg there.
 */
export function checkConfigText(text: string, limits: Limits, path: string): void {
  const lineMax = limits.configLineBytes;
  let lineNo = 1;
  for (let start = 0; start <= text.length; lineNo++) {
    let nl = text.indexOf('\n', start);
    if (nl < 0) nl = text.length;
    if ((nl - start) * 3 > lineMax && utf8Bytes(text, start, nl) > lineMax) {
      throw new ConfigError('LineTooLong', `${path}: line ${lineNo} is longer than ${lineMax} bytes`);
    }
    start = nl + 1;
  }
  if (text.length * 3 > limits.configBytes) {
    const total = utf8Bytes(text, 0, text.length);
    if (total > limits.configBytes) throw new LimitExceededError('configBytes', `${path} is ${total} bytes`, limits.configBytes);
  }
}

/** UTF-8 length of text[from, to) (a surrogate pair is one 4-byte code point, a lone surrogate 3 bytes). */
function utf8Bytes(text: string, from: number, to: number): number {
  let total = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) total += 1;
    else if (c < 0x800) total += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < to && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      total += 4;
      i++;
    } else total += 3;
  }
  return total;
}

/** Physical lines, without their `\n` / `\r\n`. */
export function splitLines(text: string): string[] {
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function isPyWhitespace(c: string): boolean {
  return /^\s$/u.test(c);
}

/**
 * Python 3 `int(s)` for base 10, as pygrub applies it to `--entry` and `default`: surrounding
 * whitespace allowed, an optional sign, ASCII digits with single `_` separators between digits.
 * Returns null where Python raises ValueError. (Python also accepts non-ASCII Unicode digits; we
 * do not, see README.)
 */
export function pythonInt(s: string): number | null {
  let a = 0;
  let b = s.length;
  while (a < b && isPyWhitespace(s[a]!)) a++;
  while (b > a && isPyWhitespace(s[b - 1]!)) b--;
  let i = a;
  let sign = 1;
  if (s[i] === '+' || s[i] === '-') {
    if (s[i] === '-') sign = -1;
    i++;
  }
  if (i >= b) return null;
  let digits = '';
  let prevDigit = false;
  for (; i < b; i++) {
    const c = s[i]!;
    if (c >= '0' && c <= '9') {
      digits += c;
      prevDigit = true;
    } else if (c === '_' && prevDigit && i + 1 < b && s[i + 1]! >= '0' && s[i + 1]! <= '9') {
      prevDigit = false;
    } else return null;
  }
  const v = Number(digits) * sign;
  // Huge values stay "some integer out of range": callers only compare against small counts.
  return Number.isFinite(v) ? (Object.is(v, -0) ? 0 : v) : sign * Number.MAX_VALUE;
}

/** `(hd0,msdos1)/vmlinuz` → device `(hd0,msdos1)` and path `/vmlinuz`. A `(` without `)` keeps the text as a path. */
export function splitDevice(p: string): { device: string | null; path: string } {
  if (!p.startsWith('(')) return { device: null, path: p };
  const close = p.indexOf(')');
  if (close < 0) return { device: null, path: p };
  const device = p.slice(0, close + 1);
  return { device: device === '()' ? null : device, path: p.slice(close + 1) };
}

/** Directory part of an absolute guest path (`/boot/grub/grub.cfg` → `/boot/grub`, `/x` → `/`). */
export function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function joinPath(dir: string, name: string): string {
  if (name.startsWith('/')) return name;
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/**
 * A guest path as ConfigFs expects it: device prefix dropped (everything is read from the
 * filesystem holding the config, as pygrub does, spec §3.9), relative names taken from `base`,
 * runs of `/` collapsed. `..` is left to the vfs.
 */
export function toFsPath(p: string, base = '/'): string | null {
  const { path } = splitDevice(p);
  if (path === '') return null;
  const abs = joinPath(base, path);
  let out = '';
  for (let i = 0; i < abs.length; i++) {
    const c = abs[i]!;
    if (c === '/' && out.endsWith('/')) continue;
    out += c;
  }
  return out;
}

/**
 * pygrub's kernel-line split (spec §3.3), except that a tab also separates the path from the args
 * (pygrub only splits on a space; a tab-separated line fails there — documented improvement).
 * Internal spacing of the args is kept; the ends are stripped.
 */
export function splitKernelLine(value: string): { path: string; args: string | null } {
  const v = value.trim();
  let i = 0;
  while (i < v.length && v[i] !== ' ' && v[i] !== '\t') i++;
  if (i >= v.length) return { path: v, args: null };
  const rest = v.slice(i).trim();
  return { path: v.slice(0, i), args: rest === '' ? null : rest };
}

/**
 * pygrub's `grub_split` (spec §3.3): a `=` before the first space or tab splits there, otherwise
 * the first whitespace run does. Returns [keyword, value].
 */
export function grubSplit(line: string): [string, string] {
  let ws = -1;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === ' ' || line[i] === '\t') {
      ws = i;
      break;
    }
  }
  const eq = line.indexOf('=');
  if (eq >= 0 && (ws < 0 || eq < ws)) return [line.slice(0, eq).trim(), line.slice(eq + 1).trim()];
  if (ws < 0) return [line, ''];
  return [line.slice(0, ws), line.slice(ws).trim()];
}
