/**
 * The terminal side of the boot menu: raw mode, keys, a 1-second tick for the countdown, and screen
 * updates with vt100 sequences only (CUP `ESC [ r ; c H`, ED `ESC [ 2 J`, EL `ESC [ K`, SGR 0/7):
 * libxl gives the bootloader a pty with TERM=vt100 and no window size (pygrub-spec §2). Only rows
 * that changed are rewritten, because libxl drops the oldest display bytes past 4 KiB.
 *
 * The terminal is restored whatever happens. Ctrl-C (a key in raw mode, not a signal) restores it and
 * then raises SIGINT, SIGTERM/SIGHUP restore it before the other handlers run, so tsgrub's own
 * signal handling (stop the worker, remove the files it created) does the rest.
 */
import { emitKeypressEvents } from 'node:readline';
import type { Choice } from './menu-driver.ts';
import { initialState, reduce, render, ROWS, type Key, type MenuState } from './menu-model.ts';
import type { WorkerMessage } from './protocol.ts';

type MenuMessage = Extract<WorkerMessage, { type: 'menu' }>;

interface KeyInfo {
  name?: string;
  ctrl?: boolean;
  meta?: boolean;
  sequence?: string;
}

/** Maps a Node keypress to a menu key; null for keys the menu ignores (and for Ctrl-C). */
export function toKey(str: string | undefined, k: KeyInfo | undefined): Key | null {
  const name = k?.name;
  if (k?.ctrl && name && /^[a-z]$/.test(name)) {
    if (name === 'c') return null; // handled as interrupt
    return { ctrl: name };
  }
  switch (name) {
    case 'up': return 'up';
    case 'down': return 'down';
    case 'left': return 'left';
    case 'right': return 'right';
    case 'pageup': return 'pageup';
    case 'pagedown': return 'pagedown';
    case 'home': return 'home';
    case 'end': return 'end';
    case 'return': case 'enter': return 'enter';
    case 'escape': return 'escape';
    case 'backspace': return 'backspace';
    case 'delete': return 'delete';
  }
  if (k?.meta || str === undefined || str === '') return null;
  const cp = str.codePointAt(0) as number;
  // One printable code point: no C0, DEL or C1 control can enter an edited line.
  if ([...str].length !== 1 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return null;
  return { char: str };
}

const CSI = '\x1b[';

/** One screen row as terminal bytes: position, text (highlight in reverse video), erase the rest. */
function rowBytes(row: number, text: string, hl: [number, number] | null): string {
  let out = `${CSI}${row + 1};1H`;
  if (hl) out += `${text.slice(0, hl[0])}${CSI}7m${text.slice(hl[0], hl[1])}${CSI}0m${text.slice(hl[1])}`;
  else out += text;
  return `${out}${CSI}K`;
}

/** Bytes that take the terminal from `prev` (null: unknown contents) to the screen of `s`. */
export function frame(s: MenuState, prev: string[] | null): { bytes: string; rows: string[] } {
  const scr = render(s);
  const rows = scr.lines.map((l, i) => (i === scr.reverse ? `\u0000${scr.highlight.join(',')}\u0000${l}` : l));
  let out = prev ? '' : `${CSI}0m${CSI}H${CSI}2J`;
  rows.forEach((key, i) => {
    if (prev && prev[i] === key) return;
    if (!prev && key === '') return;
    out += rowBytes(i, scr.lines[i] as string, i === scr.reverse ? scr.highlight : null);
  });
  out += scr.cursor ? `${CSI}${scr.cursor[0] + 1};${scr.cursor[1] + 1}H` : `${CSI}${ROWS};1H`;
  return { bytes: out, rows };
}

export function runMenu(msg: MenuMessage): Promise<Choice> {
  const input = process.stdin;
  const output = process.stdout;
  let state = initialState(msg.entries, msg.defaultIndex, msg.timeout, msg.password);
  // pygrub-spec §3.7/§4: a hidden menu with an explicit timeout of 0 boots at once.
  if (msg.hidden && msg.timeout === 0) return Promise.resolve({ index: state.selected, edited: null });
  return new Promise((resolve) => {
    const wasRaw = input.isRaw;
    let restored = false;
    let shown: string[] | null = null;
    let timer: NodeJS.Timeout | null = null;
    const write = (s: string) => {
      try {
        output.write(s);
      } catch {
        /* terminal gone: the error listener ends the menu */
      }
    };
    const restore = () => {
      if (restored) return;
      restored = true;
      if (timer) clearInterval(timer);
      input.removeListener('keypress', onKey);
      input.removeListener('end', onGone);
      input.removeListener('error', onGone);
      output.removeListener('error', onGone);
      for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, onSignal);
      try {
        input.setRawMode(wasRaw);
      } catch {
        /* tty gone */
      }
      input.pause();
      write(`${CSI}0m${CSI}H${CSI}2J`);
    };
    const finish = () => {
      restore();
      const d = state.done;
      resolve({ index: d?.index ?? state.selected, edited: d?.edited ?? null });
    };
    const redraw = (full: boolean) => {
      const f = frame(state, full ? null : shown);
      shown = f.rows;
      write(f.bytes);
    };
    const update = (k: Key) => {
      const next = reduce(state, k);
      if (next === state) return;
      state = next;
      if (state.done) return finish();
      if (state.countdown === null && timer) {
        clearInterval(timer);
        timer = null;
      }
      redraw(false);
    };
    /** Raises `sig` again once our handler is gone: tsgrub's handler (or the default action) runs. */
    const reraise = (sig: NodeJS.Signals) => {
      try {
        process.kill(process.pid, sig);
      } catch {
        process.exit(130);
      }
    };
    function onKey(str: string | undefined, k: KeyInfo | undefined): void {
      if (restored) return;
      if (k?.ctrl && k.name === 'c') {
        // Raw mode turned ISIG off, so ^C is a byte: act as the SIGINT it would have been.
        restore();
        reraise('SIGINT');
        return;
      }
      if (k?.ctrl && k.name === 'l') return redraw(true);
      const key = toKey(str, k);
      if (key) update(key);
    }
    function onSignal(sig: NodeJS.Signals): void {
      restore();
      // A hang-up means the console is gone: shut down as on SIGTERM (tsgrub removes its files then).
      if (sig === 'SIGHUP') return reraise('SIGTERM');
      // Other listeners (tsgrub's cleanup) run in this same emit; with none, the default action.
      if (process.listenerCount(sig) === 0) reraise(sig);
    }
    function onGone(): void {
      // The terminal went away (EOF or write error): nobody can choose; clean up as on SIGHUP.
      restore();
      reraise('SIGTERM');
    }
    // Without a readline interface Node never times out a lone ESC (it waits for the next byte to
    // tell Esc from Alt-x); 50 ms is ample for a sequence sent in one write over a pty.
    emitKeypressEvents(input, { escapeCodeTimeout: 50 } as unknown as Parameters<typeof emitKeypressEvents>[1]);
    input.setRawMode(true);
    input.resume();
    timer = setInterval(() => update('tick'), 1000);
    input.on('keypress', onKey);
    input.on('end', onGone);
    input.on('error', onGone);
    output.on('error', onGone);
    // Before tsgrub's handlers, so the terminal is back in cooked mode before they exit.
    for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.prependListener(sig, onSignal);
    redraw(true);
  });
}
