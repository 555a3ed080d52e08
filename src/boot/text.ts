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
 * Checks a config text against `configBytes` (UTF-8 bytes) and `configLineBytes` (bytes per line),
 * in one linear pass. Over-long lines are a ConfigError (pygrub has no such limit but reads at most
 * 1 MiB; a 64 KiB line is never legitimate), an over-long file a LimitExceededError.
 */
export function checkConfigText(text: string, limits: Limits, path: string): void {
  let total = 0;
  let line = 0;
  let lineNo = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let n: number;
    if (c < 0x80) n = 1;
    else if (c < 0x800) n = 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n = 4; // a surrogate pair is one 4-byte code point; count it once
      i++;
    } else n = 3;
    total += n;
    if (c === 0x0a) {
      line = 0;
      lineNo++;
      continue;
    }
    line += n;
    if (line > limits.configLineBytes) {
      throw new ConfigError('LineTooLong', `${path}: line ${lineNo} is longer than ${limits.configLineBytes} bytes`);
    }
  }
  if (total > limits.configBytes) {
    throw new LimitExceededError('configBytes', `${path} is ${total} bytes`, limits.configBytes);
  }
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
