/**
 * Chooses the entry when tsgrub runs interactively. With no terminal on stdin/stdout it behaves as
 * `-q` and says so (pygrub fails there, pygrub-spec §4 "No tty"); with one it runs the menu (menu.ts).
 * The menu message comes from the worker, which parsed guest bytes: every field is re-checked and
 * bounded here before the menu sees it (threat-model: the parent trusts nothing the worker says).
 */
import type { MenuEntryView, WorkerMessage } from './protocol.ts';

export interface Choice {
  index: number;
  edited: { kernel: string; initrd: string | null; args: string } | null;
}

type MenuMessage = Extract<WorkerMessage, { type: 'menu' }>;

const MAX_ENTRIES = 4096;
const MAX_ENTRY_LINES = 128;
const MAX_TEXT = 4096;

function str(x: unknown, max: number): string | null {
  return typeof x === 'string' ? x.slice(0, max) : null;
}

function entryOf(x: unknown): MenuEntryView {
  const e = (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;
  const lines = Array.isArray(e.lines) ? e.lines.slice(0, MAX_ENTRY_LINES).map((l) => str(l, MAX_TEXT) ?? '') : [];
  return {
    title: str(e.title, 1024) ?? '(invalid entry)',
    kernel: str(e.kernel, MAX_TEXT),
    initrd: str(e.initrd, MAX_TEXT),
    args: str(e.args, MAX_TEXT),
    lines,
  };
}

/** The menu message with every field checked and bounded (a shape the menu can rely on). */
export function sanitizeMenu(msg: MenuMessage): MenuMessage {
  const entries = (Array.isArray(msg.entries) ? msg.entries.slice(0, MAX_ENTRIES) : []).map(entryOf);
  const d = msg.defaultIndex;
  const t = msg.timeout;
  return {
    ...msg,
    entries,
    defaultIndex: Number.isSafeInteger(d) && d >= 0 && d < entries.length ? d : 0,
    timeout: typeof t === 'number' && Number.isFinite(t) ? t : null,
    hidden: msg.hidden === true,
    password: msg.password === true,
  };
}

export async function chooseEntry(msg: MenuMessage, io: { err(s: string): void }): Promise<Choice> {
  const m = sanitizeMenu(msg);
  const tty = process.stdin.isTTY && process.stdout.isTTY;
  if (!tty) {
    io.err('tsgrub: no terminal for the interactive menu; booting the default entry (as -q)\n');
    return { index: m.defaultIndex, edited: null };
  }
  if (m.entries.length === 0) return { index: 0, edited: null };
  const { runMenu } = await import('./menu.ts');
  return runMenu(m);
}
