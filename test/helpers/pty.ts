/**
 * Runs a program on a real pseudo-terminal, the way libxl runs the bootloader (pygrub-spec §2): a
 * new session with the pty slave as controlling terminal and stdin/stdout/stderr, TERM=vt100, and
 * no window size set (0×0). The relay is a small Python program (the `pty`/`termios` modules); it
 * copies our writes to the master, the master's bytes to us, and at the end reports the child's
 * exit status and the slave's termios state (is it back in cooked mode?).
 *
 * `VtScreen` is a minimal vt100 screen model for reading what the menu drew; it records every escape
 * sequence it does not know, so tests can also assert that only vt100 sequences were sent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PTY_PYTHON = '/usr/bin/python3';

const RELAY = String.raw`
import fcntl, json, os, pty, select, signal, struct, sys, termios
argv = json.loads(sys.argv[1]); env = json.loads(sys.argv[2])
master, slave = pty.openpty()          # no TIOCSWINSZ: the window stays 0x0, as under libxl
pid = os.fork()
if pid == 0:
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    try:
        os.execve(argv[0], argv, env)
    finally:
        os._exit(127)
rows, cols = struct.unpack('HHHH', fcntl.ioctl(slave, termios.TIOCGWINSZ, b'\0' * 8))[:2]
sys.stderr.write(json.dumps({'pid': pid, 'rows': rows, 'cols': cols}) + '\n'); sys.stderr.flush()
status = None
stdin_open = True
while True:
    fds = [master] + ([0] if stdin_open else [])
    r, _, _ = select.select(fds, [], [], 0.05)
    if master in r:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b''
        if data:
            os.write(1, data)
    if stdin_open and 0 in r:
        data = os.read(0, 65536)
        if data:
            os.write(master, data)
        else:
            stdin_open = False
    if status is None:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            status = st
    elif master not in r:
        break
attrs = termios.tcgetattr(slave)
lflag = attrs[3]
sys.stderr.write(json.dumps({
    'exit': os.waitstatus_to_exitcode(status),
    'icanon': bool(lflag & termios.ICANON), 'echo': bool(lflag & termios.ECHO), 'isig': bool(lflag & termios.ISIG),
}) + '\n')
`;

export interface PtyExit {
  /** Exit code, or -signal when killed. */
  exit: number;
  icanon: boolean;
  echo: boolean;
  isig: boolean;
}

export function ptyAvailable(): boolean {
  return existsSync(PTY_PYTHON);
}

export class PtySession {
  readonly proc: ChildProcess;
  private out: Buffer[] = [];
  private err = '';
  private waiters: Array<() => void> = [];
  private lastData = 0;
  readonly started: Promise<{ pid: number; rows: number; cols: number }>;
  readonly done: Promise<PtyExit>;

  constructor(argv: string[], env: Record<string, string> = {}) {
    const fullEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', TERM: 'vt100', ...env };
    this.proc = spawn(PTY_PYTHON, ['-c', RELAY, JSON.stringify(argv), JSON.stringify(fullEnv)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout?.on('data', (b: Buffer) => {
      this.out.push(b);
      this.lastData = Date.now();
      for (const w of this.waiters.splice(0)) w();
    });
    const lines: Array<(l: unknown) => void> = [];
    const first = new Promise<unknown>((r) => lines.push(r));
    const last = new Promise<unknown>((r) => lines.push(r));
    this.proc.stderr?.on('data', (b: Buffer) => {
      this.err += b.toString('utf8');
      let nl: number;
      while ((nl = this.err.indexOf('\n')) >= 0) {
        const line = this.err.slice(0, nl);
        this.err = this.err.slice(nl + 1);
        try {
          const v = JSON.parse(line);
          lines.shift()?.(v);
        } catch {
          /* python traceback: surfaces through `done` rejecting */
        }
      }
    });
    this.started = first as Promise<{ pid: number; rows: number; cols: number }>;
    this.done = new Promise<PtyExit>((resolve, reject) => {
      void last.then((v) => resolve(v as PtyExit));
      this.proc.on('close', (code) => setTimeout(() => reject(new Error(`pty relay ended (${code}): ${this.err}`)), 50));
    });
  }

  /** Every byte the program wrote to the terminal so far. */
  raw(): Buffer {
    return Buffer.concat(this.out);
  }

  text(): string {
    return this.raw().toString('utf8');
  }

  write(s: string): void {
    this.proc.stdin?.write(s);
  }

  /**
   * Waits until the screen (as VtScreen renders the stream) satisfies `pred`. The screen is judged
   * only once the output has been quiet for 40 ms, so a frame that arrived in pieces is not read
   * half-drawn.
   */
  async waitScreen(pred: (s: VtScreen) => boolean, ms = 10_000, what = 'screen condition'): Promise<VtScreen> {
    const deadline = Date.now() + ms;
    for (;;) {
      const quiet = Date.now() - this.lastData >= 40;
      const scr = new VtScreen().feed(this.text());
      if (quiet && pred(scr)) return scr;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${scr.dump()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits until `needle` appears on the screen. */
  waitFor(needle: string, ms = 10_000): Promise<VtScreen> {
    return this.waitScreen((s) => s.dump().includes(needle), ms, JSON.stringify(needle));
  }

  screen(): VtScreen {
    return new VtScreen().feed(this.text());
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

/** A vt100 screen (80×24 unless told): CUP, ED, EL, SGR 0/7, CR, LF, BS; anything else is recorded. */
export class VtScreen {
  readonly cells: string[][];
  readonly rev: boolean[][];
  row = 0;
  col = 0;
  private reverse = false;
  /** Escape sequences this model does not know (and a vt100 may not either). */
  readonly unknown: string[] = [];
  clears = 0;

  constructor(readonly rows = 24, readonly cols = 80) {
    this.cells = Array.from({ length: rows }, () => Array<string>(cols).fill(' '));
    this.rev = Array.from({ length: rows }, () => Array<boolean>(cols).fill(false));
  }

  feed(s: string): this {
    const re = /\x1b\[([0-9;]*)([A-Za-z])|\x1b(.)|([\s\S])/gu;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s))) {
      if (m[2] !== undefined) this.csi(m[1] as string, m[2]);
      else if (m[3] !== undefined) this.unknown.push(`ESC ${m[3]}`);
      else this.char(m[4] as string);
    }
    return this;
  }

  private csi(params: string, fin: string): void {
    const p = params.split(';').map((x) => (x === '' ? 0 : Number(x)));
    switch (fin) {
      case 'H':
      case 'f':
        this.row = Math.min(this.rows - 1, Math.max(1, p[0] ?? 1) - 1);
        this.col = Math.min(this.cols - 1, Math.max(1, p[1] ?? 1) - 1);
        return;
      case 'J':
        if ((p[0] ?? 0) === 2) {
          this.clears++;
          for (let r = 0; r < this.rows; r++) this.clearRow(r, 0);
        } else this.unknown.push(`CSI ${params}J`);
        return;
      case 'K':
        if ((p[0] ?? 0) === 0) this.clearRow(this.row, this.col);
        else this.unknown.push(`CSI ${params}K`);
        return;
      case 'm':
        for (const x of p) {
          if (x === 0) this.reverse = false;
          else if (x === 7) this.reverse = true;
          else this.unknown.push(`CSI ${params}m`);
        }
        return;
    }
    this.unknown.push(`CSI ${params}${fin}`);
  }

  private clearRow(r: number, from: number): void {
    for (let c = from; c < this.cols; c++) {
      (this.cells[r] as string[])[c] = ' ';
      (this.rev[r] as boolean[])[c] = false;
    }
  }

  private char(ch: string): void {
    const cp = ch.codePointAt(0) as number;
    if (ch === '\r') this.col = 0;
    else if (ch === '\n') this.lineFeed();
    else if (ch === '\b') this.col = Math.max(0, this.col - 1);
    else if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp <= 0x9f)) this.unknown.push(`control 0x${cp.toString(16)}`);
    else {
      if (this.col >= this.cols) {
        this.col = 0;
        this.lineFeed();
      }
      (this.cells[this.row] as string[])[this.col] = ch;
      (this.rev[this.row] as boolean[])[this.col] = this.reverse;
      this.col++;
    }
  }

  private lineFeed(): void {
    if (this.row < this.rows - 1) this.row++;
    else {
      this.cells.push(this.cells.shift() as string[]);
      this.rev.push(this.rev.shift() as boolean[]);
      this.clearRow(this.rows - 1, 0);
    }
  }

  line(r: number): string {
    return (this.cells[r] as string[]).join('').trimEnd();
  }

  dump(): string {
    return Array.from({ length: this.rows }, (_, r) => this.line(r)).join('\n');
  }

  /** Text of the reverse-video cells of row r. */
  reversed(r: number): string {
    return (this.cells[r] as string[]).filter((_, c) => (this.rev[r] as boolean[])[c]).join('');
  }

  /** Rows that have reverse-video cells. */
  reverseRows(): number[] {
    return this.rev.map((r, i) => (r.some(Boolean) ? i : -1)).filter((i) => i >= 0);
  }
}
