/**
 * The boot menu as a pure state machine: `reduce(state, key) → state` and `render(state) → 24 lines`.
 * Laid out as pygrub's curses screen (pygrub-spec §4: title at row 1 col 4, entry box at (2,1) 10×74,
 * help at (12,5), countdown at (20,5); 0-based curses coordinates) for an 80×24 vt100, because libxl's
 * pty has no window size (pygrub-spec §2). Every guest string goes through `escapeForTerminal` and is
 * cut to its field by display width before it is placed on the screen, so a title can neither emit a
 * control sequence nor push the frame out of shape.
 */
import { escapeForTerminal } from '../boot/escape.ts';
import type { MenuEntryView } from './protocol.ts';

export type Key =
  | 'up' | 'down' | 'pageup' | 'pagedown' | 'home' | 'end' | 'left' | 'right' | 'enter' | 'escape'
  | 'backspace' | 'delete' | 'tick' | { char: string } | { ctrl: string };

export interface EditedEntry {
  kernel: string;
  initrd: string | null;
  args: string;
}

export type Mode =
  | { kind: 'menu'; message: string }
  | { kind: 'entry'; lines: string[]; row: number; message: string }
  | { kind: 'line'; text: string; cursor: number; back: 'entry' | 'args'; row: number; lines: string[]; added: boolean }
  | { kind: 'command'; history: string[]; text: string; cursor: number; message: string };

export interface MenuState {
  readonly entries: readonly MenuEntryView[];
  readonly selected: number;
  readonly top: number;
  /** Seconds left; null once a key was pressed (countdown stopped for good, as pygrub). */
  readonly countdown: number | null;
  readonly mode: Mode;
  readonly password: boolean;
  /** Set when the user decided: boot index (optionally edited). */
  readonly done: { index: number; edited: EditedEntry | null } | null;
}

export const ROWS = 24;
export const COLS = 80;
/** Titles shown at once inside the box (pygrub: a 10-row window with a border). */
export const VISIBLE = 8;
/** Width of a title field (pygrub: `ljust(70)`). */
export const WIDTH = 70;
/** Longest countdown honoured; a larger guest value is cut to this (one day). */
const MAX_TIMEOUT = 86400;
/** Lines an edited entry may grow to, and longest line kept. */
const MAX_LINES = 128;
const MAX_LINE = 4096;
const MENU_MSG = { kind: 'menu', message: '' } as const;

/**
 * pygrub: a timeout that is absent, -1 or 0 boots after about one second (pygrub-spec §4). The
 * immediate boot of `timeout=0` with a hidden menu is decided by the caller (menu.ts), not here.
 */
export function initialState(entries: readonly MenuEntryView[], defaultIndex: number, timeout: number | null, password = false): MenuState {
  const sel = Number.isSafeInteger(defaultIndex) && defaultIndex >= 0 && defaultIndex < entries.length ? defaultIndex : 0;
  const t = timeout === null || !Number.isFinite(timeout) || timeout <= 0 ? 1 : Math.min(Math.floor(timeout), MAX_TIMEOUT) || 1;
  return { entries, selected: sel, top: Math.max(0, sel - VISIBLE + 1), countdown: t, mode: MENU_MSG, password, done: null };
}

function clampTop(sel: number, top: number): number {
  if (sel < top) return sel;
  if (sel >= top + VISIBLE) return sel - VISIBLE + 1;
  return top;
}

function move(s: MenuState, sel: number): MenuState {
  const n = s.entries.length;
  const x = Math.max(0, Math.min(n - 1, sel));
  return { ...s, selected: x, top: clampTop(x, s.top), mode: MENU_MSG };
}

// ---------------------------------------------------------------------------------------------
// Entry lines → kernel/initrd/args

interface Scanned {
  kernel: string | null;
  initrd: string | null;
  args: string | null;
}

/**
 * Splits a config line into keyword and value as the config formats do: GRUB legacy and LILO allow
 * `key=value` when `=` comes before the first blank (pygrub's `grub_split`), the others use blanks.
 * Keywords are case-insensitive (extlinux is; the others have lower-case keywords only).
 */
function splitLine(line: string): [string, string] {
  const t = line.trim();
  const ws = t.search(/\s/);
  const eq = t.indexOf('=');
  if (eq > 0 && (ws < 0 || eq < ws)) return [t.slice(0, eq).toLowerCase(), t.slice(eq + 1).trim()];
  return ws < 0 ? [t.toLowerCase(), ''] : [t.slice(0, ws).toLowerCase(), t.slice(ws).trim()];
}

function unquote(s: string): string {
  return s.length >= 2 && (s[0] === '"' || s[0] === "'") && s.endsWith(s[0]) ? s.slice(1, -1) : s;
}

/** Drops a GRUB device prefix: `(hd0,1)/vmlinuz` → `/vmlinuz`. */
function dropDevice(p: string): string {
  return p.replace(/^\([^)]*\)/, '');
}

/**
 * Reads kernel, first initrd and args from entry lines of any supported format: GRUB 2 and legacy
 * (`linux`/`linux16`/`kernel PATH ARGS`, `initrd PATH…`), extlinux (`kernel`/`linux PATH`,
 * `append ARGS` with `initrd=` inside), BLS (`linux`, `options`, `initrd`), LILO (`image=`,
 * `append=`, `initrd=`). Values are taken literally: no GRUB variable expansion.
 */
function scanLines(lines: readonly string[]): Scanned {
  let kernel: string | null = null;
  let initrd: string | null = null;
  let args: string | null = null;
  let appendInitrd: string | null = null;
  for (const raw of lines) {
    const [kw, rest] = splitLine(raw);
    if (kw === 'linux' || kw === 'linux16' || kw === 'kernel' || kw === 'image') {
      const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
      kernel = m ? dropDevice(unquote(m[1] as string)) : null;
      const a = m ? (m[2] as string).trim() : '';
      if (kw !== 'image' && (args === null || a !== '')) args = a;
    } else if (kw === 'initrd' || kw === 'initrd16') {
      initrd = dropDevice(unquote(rest.split(/\s+/)[0] ?? '')) || null;
    } else if (kw === 'append' || kw === 'options') {
      const a = unquote(rest);
      args = kw === 'options' && args ? `${args} ${a}` : a;
      const m = /(?:^|\s)initrd=([^\s,]+)/.exec(a);
      if (m) appendInitrd = m[1] as string;
    }
  }
  return { kernel: kernel || null, initrd: initrd ?? appendInitrd, args };
}

/**
 * The entry to boot from edited lines. A field whose text is unchanged from the entry's original
 * lines keeps the value the config parser computed (variables expanded, device prefix resolved); a
 * changed field is taken literally. Null when the lines name no kernel.
 */
export function parseEdited(lines: readonly string[], base: MenuEntryView): EditedEntry | null {
  const now = scanLines(lines);
  if (!now.kernel) return null;
  const was = scanLines(base.lines);
  const kernel = now.kernel === was.kernel && base.kernel ? base.kernel : now.kernel;
  const initrd = now.initrd === was.initrd ? (now.initrd === null ? null : base.initrd ?? now.initrd) : now.initrd;
  const args = now.args === was.args && base.args !== null ? base.args : now.args ?? '';
  return { kernel, initrd, args };
}

// ---------------------------------------------------------------------------------------------
// Line editing (cursor is a UTF-16 index that never splits a surrogate pair)

function prevBoundary(t: string, i: number): number {
  if (i <= 0) return 0;
  const c = t.charCodeAt(i - 1);
  return i >= 2 && c >= 0xdc00 && c <= 0xdfff && t.charCodeAt(i - 2) >= 0xd800 && t.charCodeAt(i - 2) <= 0xdbff ? i - 2 : i - 1;
}

function nextBoundary(t: string, i: number): number {
  if (i >= t.length) return t.length;
  const c = t.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < t.length && t.charCodeAt(i + 1) >= 0xdc00 && t.charCodeAt(i + 1) <= 0xdfff ? i + 2 : i + 1;
}

function editLine(text: string, cursor: number, key: Key): { text: string; cursor: number } | null {
  if (typeof key === 'object' && 'char' in key) {
    if (text.length + key.char.length > MAX_LINE) return { text, cursor };
    return { text: text.slice(0, cursor) + key.char + text.slice(cursor), cursor: cursor + key.char.length };
  }
  if (typeof key === 'object') {
    switch (key.ctrl) {
      case 'a': return { text, cursor: 0 };
      case 'e': return { text, cursor: text.length };
      case 'b': return { text, cursor: prevBoundary(text, cursor) };
      case 'f': return { text, cursor: nextBoundary(text, cursor) };
      case 'k': return { text: text.slice(0, cursor), cursor };
      case 'u': return { text: text.slice(cursor), cursor: 0 };
      case 'd': return { text: text.slice(0, cursor) + text.slice(nextBoundary(text, cursor)), cursor };
      case 'h': key = 'backspace'; break;
      default: return null;
    }
  }
  switch (key) {
    case 'left': return { text, cursor: prevBoundary(text, cursor) };
    case 'right': return { text, cursor: nextBoundary(text, cursor) };
    case 'home': return { text, cursor: 0 };
    case 'end': return { text, cursor: text.length };
    case 'backspace': {
      const p = prevBoundary(text, cursor);
      return { text: text.slice(0, p) + text.slice(cursor), cursor: p };
    }
    case 'delete': return { text: text.slice(0, cursor) + text.slice(nextBoundary(text, cursor)), cursor };
  }
  return null;
}

function isChar(key: Key, c: string): boolean {
  return typeof key === 'object' && 'char' in key && key.char === c;
}

function commandMode(): Mode {
  return { kind: 'command', history: [], text: '', cursor: 0, message: '' };
}

const EMPTY_BASE: MenuEntryView = { title: 'entered', kernel: null, initrd: null, args: null, lines: [] };

export function reduce(s: MenuState, key: Key): MenuState {
  if (s.done) return s;
  if (key === 'tick') {
    if (s.countdown === null || s.mode.kind !== 'menu') return s;
    const left = s.countdown - 1;
    return left <= 0 ? { ...s, countdown: 0, done: { index: s.selected, edited: null } } : { ...s, countdown: left };
  }
  // Any key stops the countdown for good, even one that does nothing (pygrub).
  s = s.countdown === null ? s : { ...s, countdown: null };
  const mode = s.mode;
  const cur = s.entries[s.selected];
  if (mode.kind === 'menu') {
    if (key === 'up' || isChar(key, 'k')) return move(s, s.selected - 1);
    if (key === 'down' || isChar(key, 'j')) return move(s, s.selected + 1);
    if (key === 'pageup') return move(s, s.selected - VISIBLE);
    if (key === 'pagedown') return move(s, s.selected + VISIBLE);
    if (key === 'home') return move(s, 0);
    if (key === 'end') return move(s, s.entries.length - 1);
    if (key === 'enter' || isChar(key, 'b')) {
      if (cur && !cur.kernel) return { ...s, mode: { kind: 'menu', message: 'This entry has no Linux kernel to boot.' } };
      return { ...s, done: { index: s.selected, edited: null } };
    }
    // q and Esc do nothing on the main menu (pygrub has them commented out); editing keys are
    // locked by a legacy `password` (tsgrub has no password prompt).
    if (s.password || !cur) return s;
    if (isChar(key, 'e')) return { ...s, mode: { kind: 'entry', lines: cur.lines.slice(0, MAX_LINES), row: 0, message: '' } };
    if (isChar(key, 'a')) {
      // pygrub: edit the first line that starts with `kernel` or `linux`, then boot it.
      const lines = cur.lines.slice(0, MAX_LINES);
      let row = lines.findIndex((l) => /^\s*(kernel|linux)/i.test(l));
      if (row < 0) {
        if (!cur.kernel) return { ...s, mode: { kind: 'menu', message: 'This entry has no kernel line to edit.' } };
        lines.unshift(`linux ${cur.kernel} ${cur.args ?? ''}`.trimEnd());
        row = 0;
      }
      const text = (lines[row] as string).trim();
      return { ...s, mode: { kind: 'line', text, cursor: text.length, back: 'args', row, lines, added: false } };
    }
    if (isChar(key, 'c')) return { ...s, mode: commandMode() };
    return mode.message ? { ...s, mode: MENU_MSG } : s;
  }
  if (mode.kind === 'entry') {
    const n = mode.lines.length;
    if (key === 'up') return { ...s, mode: { ...mode, row: Math.max(0, mode.row - 1), message: '' } };
    if (key === 'down') return { ...s, mode: { ...mode, row: Math.min(Math.max(0, n - 1), mode.row + 1), message: '' } };
    if (key === 'escape' || isChar(key, 'q')) return { ...s, mode: MENU_MSG };
    if ((isChar(key, 'e') || key === 'enter') && n > 0) {
      const text = mode.lines[mode.row] ?? '';
      return { ...s, mode: { kind: 'line', text, cursor: text.length, back: 'entry', row: mode.row, lines: mode.lines, added: false } };
    }
    if (isChar(key, 'd') && n > 0) {
      const lines = mode.lines.filter((_, i) => i !== mode.row);
      return { ...s, mode: { kind: 'entry', lines, row: Math.min(mode.row, Math.max(0, lines.length - 1)), message: '' } };
    }
    if ((isChar(key, 'o') || isChar(key, 'O')) && n < MAX_LINES) {
      const at = n === 0 ? 0 : isChar(key, 'o') ? mode.row + 1 : mode.row;
      const lines = [...mode.lines.slice(0, at), '', ...mode.lines.slice(at)];
      return { ...s, mode: { kind: 'line', text: '', cursor: 0, back: 'entry', row: at, lines, added: true } };
    }
    if (isChar(key, 'c')) return { ...s, mode: commandMode() };
    if (isChar(key, 'b') && cur) {
      const edited = parseEdited(mode.lines, cur);
      return edited ? { ...s, done: { index: s.selected, edited } } : { ...s, mode: { ...mode, message: 'error: no kernel line in this entry' } };
    }
    return s;
  }
  if (mode.kind === 'line') {
    if (key === 'escape') {
      if (mode.back === 'args') return { ...s, mode: MENU_MSG };
      const lines = mode.added ? mode.lines.filter((_, i) => i !== mode.row) : mode.lines;
      return { ...s, mode: { kind: 'entry', lines, row: Math.min(mode.row, Math.max(0, lines.length - 1)), message: '' } };
    }
    if (key === 'enter') {
      const lines = [...mode.lines];
      lines[mode.row] = mode.text;
      if (mode.back === 'args' && cur) {
        const edited = parseEdited(lines, cur);
        return edited ? { ...s, done: { index: s.selected, edited } } : { ...s, mode: { kind: 'menu', message: 'error: the edited line names no kernel' } };
      }
      return { ...s, mode: { kind: 'entry', lines, row: mode.row, message: '' } };
    }
    const e = editLine(mode.text, mode.cursor, key);
    return e ? { ...s, mode: { ...mode, ...e } } : s;
  }
  // Command line: collect `kernel`/`linux`/`initrd` lines, `boot` boots them as entry "entered".
  if (key === 'escape') return { ...s, mode: MENU_MSG };
  if (key === 'enter') {
    const cmd = mode.text.trim();
    const reset = { text: '', cursor: 0 };
    if (cmd === 'boot') {
      const edited = parseEdited(mode.history, EMPTY_BASE);
      if (edited) return { ...s, done: { index: s.selected, edited } };
      return { ...s, mode: { ...mode, ...reset, message: 'error: no kernel given (kernel PATH [ARGS] first)' } };
    }
    if (cmd === 'quit' || cmd === 'return') return { ...s, mode: MENU_MSG };
    if (cmd === 'help') return { ...s, mode: { ...mode, ...reset, message: 'commands: kernel PATH [ARGS], initrd PATH, boot, quit' } };
    if (/^(kernel|linux|linux16|initrd|initrd16)(\s|$)/.test(cmd)) {
      return { ...s, mode: { ...mode, ...reset, history: [...mode.history, cmd].slice(-MAX_LINES), message: '' } };
    }
    if (cmd === '') return s;
    return { ...s, mode: { ...mode, ...reset, message: 'error: unknown command (try help)' } };
  }
  const e = editLine(mode.text, mode.cursor, key);
  return e ? { ...s, mode: { ...mode, ...e } } : s;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** Columns a code point takes on a terminal: 0 for combining marks, 2 for East Asian wide/emoji. */
function charWidth(ch: string): number {
  const cp = ch.codePointAt(0) as number;
  if (/\p{Mn}|\p{Me}/u.test(ch)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) || (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd)
  )
    return 2;
  return 1;
}

/** Guest text as terminal cells: tabs expanded (pygrub `expandtabs`), then escaped. */
function cellsOf(s: string): string[] {
  const out: string[] = [];
  let col = 0;
  for (const ch of s) {
    if (ch === '\t') {
      const n = 8 - (col % 8);
      for (let i = 0; i < n; i++) out.push(' ');
      col += n;
      continue;
    }
    for (const c of escapeForTerminal(ch)) {
      out.push(c);
      col += charWidth(c);
    }
  }
  return out;
}

/** Pads or cuts (with a final `>`, as pygrub) guest text to exactly `width` columns. */
export function fit(s: string, width: number): string {
  const cells = cellsOf(s);
  let total = 0;
  for (const c of cells) total += charWidth(c);
  if (total <= width) return cells.join('') + ' '.repeat(width - total);
  let out = '';
  let col = 0;
  for (const c of cells) {
    const w = charWidth(c);
    if (col + w > width - 1) break;
    out += c;
    col += w;
  }
  return out + ' '.repeat(width - 1 - col) + '>';
}

/** Display width of a line built by render (for tests and the capture). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const c of s) w += charWidth(c);
  return w;
}

export interface Screen {
  /** 24 lines of at most 80 columns; guest text already escaped. */
  lines: string[];
  /** Row in reverse video (-1 for none) and the UTF-16 range of the highlighted field in that line. */
  reverse: number;
  highlight: [number, number];
  /** Where the terminal cursor goes (row, column; 0-based), null to park it. */
  cursor: [number, number] | null;
}

const BOX_LEFT = 1;
const BOX_TOP = 2;

export function render(s: MenuState): Screen {
  const lines = Array.from({ length: ROWS }, () => '');
  /** Places ASCII text (our own, or already fitted) at a column of an empty or ASCII-only row. */
  const put = (row: number, col: number, text: string) => {
    lines[row] = (lines[row] as string).padEnd(col) + text;
  };
  let reverse = -1;
  let highlight: [number, number] = [0, 0];
  let cursor: [number, number] | null = null;
  const mode = s.mode;
  const box = (items: readonly string[], sel: number, top: number) => {
    const border = `+${'-'.repeat(72)}+`;
    put(BOX_TOP, BOX_LEFT, border);
    for (let i = 0; i < VISIBLE; i++) {
      const idx = top + i;
      const text = idx < items.length ? fit(items[idx] as string, WIDTH) : ' '.repeat(WIDTH);
      put(BOX_TOP + 1 + i, BOX_LEFT, `| ${text} |`);
      if (idx === sel && idx < items.length) {
        reverse = BOX_TOP + 1 + i;
        highlight = [BOX_LEFT + 2, BOX_LEFT + 2 + text.length];
      }
    }
    put(BOX_TOP + 1 + VISIBLE, BOX_LEFT, border);
    // Scroll marks in the border, so the user sees there is more (pygrub shows none).
    if (top > 0) lines[BOX_TOP] = `${(lines[BOX_TOP] as string).slice(0, 70)}^^^${(lines[BOX_TOP] as string).slice(73)}`;
    if (top + VISIBLE < items.length) {
      const r = BOX_TOP + 1 + VISIBLE;
      lines[r] = `${(lines[r] as string).slice(0, 70)}vvv${(lines[r] as string).slice(73)}`;
    }
  };
  if (mode.kind === 'menu' || mode.kind === 'entry') put(1, 4, 'tsgrub  (pyGRUB-compatible boot menu)');
  if (mode.kind === 'menu') {
    box(s.entries.map((e) => e.title), s.selected, s.top);
    put(12, 5, 'Use the ^ and v keys to select which entry is highlighted.');
    if (s.password) {
      put(13, 5, 'Press enter to boot the selected OS. Editing is locked by a password.');
    } else {
      put(13, 5, "Press enter to boot the selected OS, 'e' to edit the");
      put(14, 5, "commands before booting, 'a' to modify the kernel arguments");
      put(15, 5, "before booting, or 'c' for a command line.");
    }
    if (mode.message) put(17, 5, mode.message);
    if (s.countdown !== null) put(20, 5, `Will boot selected entry in ${String(s.countdown).padStart(2)} seconds`);
  } else if (mode.kind === 'entry') {
    const top = Math.max(0, mode.row - VISIBLE + 1);
    box(mode.lines, mode.row, top);
    put(12, 5, "Press 'b' to boot, 'e' to edit the selected command in the");
    put(13, 5, "boot sequence, 'c' for a command-line, 'o' to open a new line");
    put(14, 5, "after ('O' for before) the selected line, 'd' to remove the");
    put(15, 5, 'selected line, or escape to go back to the main menu.');
    if (mode.message) put(17, 5, mode.message);
  } else {
    const header =
      mode.kind === 'line'
        ? ['[ Minimal BASH-like line editing is supported.', '  ESC at any time cancels.  ENTER at any time accepts your changes. ]']
        : ['[ Minimal BASH-like line editing is supported.  ESC at any time', "  exits.  Typing 'boot' will boot with your entered commands. ]"];
    put(1, 2, header[0] as string);
    put(2, 2, header[1] as string);
    const prompt = mode.kind === 'command' ? 'grubdom> ' : '> ';
    let row = 5;
    if (mode.kind === 'command') {
      const shown = mode.history.slice(-10);
      shown.forEach((h, i) => put(5 + i, 2, prompt + fit(h, COLS - 3 - prompt.length).trimEnd()));
      row = 5 + shown.length;
      if (mode.message) put(row + 2, 2, fit(mode.message, COLS - 3).trimEnd());
    }
    // Horizontal scrolling in steps of 55 columns, as pygrub's line editor.
    const width = COLS - 3 - prompt.length;
    const before = cellsOf(mode.text.slice(0, mode.cursor));
    const after = cellsOf(mode.text.slice(mode.cursor));
    let col = 0;
    for (const c of before) col += charWidth(c);
    const start = col < width ? 0 : Math.floor((col - width) / 55 + 1) * 55;
    let view = '';
    let vcol = 0;
    let at = 0;
    for (const c of [...before, ...after]) {
      const w = charWidth(c);
      if (at >= start) {
        if (vcol + w > width) break;
        view += c;
        vcol += w;
      }
      at += w;
    }
    put(row, 2, prompt + view);
    cursor = [row, 2 + prompt.length + (col - start)];
  }
  return { lines, reverse, highlight, cursor };
}
