/**
 * `tsgrub`: pygrub's command line and libxl contract (pygrub-spec §1, §2, §10), with the parsing of
 * guest bytes done in a confined child (worker.ts). This process — which may be root — parses argv,
 * creates the output files (O_EXCL|O_NOFOLLOW, 0600), opens the image read-only, starts the worker with
 * only those descriptors, checks what the worker claims against the files, formats the result and
 * writes it once. Nothing it created is left behind on failure.
 */
import {
  closeSync,
  constants as C,
  existsSync,
  fstatSync,
  ftruncateSync,
  readFileSync,
  mkdirSync,
  openSync,
  read,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeForTerminal } from '../boot/escape.ts';
import { DEFAULT_LIMITS, type Limits } from '../limits.ts';
import { GetoptError, gnuGetopt, pyInt } from './getopt.ts';
import { formatResult, type OutputFormat } from './output.ts';
import { MAX_MESSAGE, MessageReader, send, type ParentMessage, type WorkerMessage } from './protocol.ts';
import { FileSource } from '../node/file-source.ts';
import { copyRunStream, RunsReceiver, type Runs } from '../node/copy.ts';
import type { WorkerRequest } from './worker.ts';
import { chooseEntry } from './menu-driver.ts';
import { WORKER_V8_FLAGS, workerPermissionFlags } from './worker-flags.ts';

const SHORT = 'qilnh::';
const LONG = [
  'quiet', 'interactive', 'list-entries', 'not-really', 'help', 'output=', 'output-format=', 'output-directory=',
  'offset=', 'runas=', 'entry=', 'kernel=', 'ramdisk=', 'args=', 'isconfig', 'debug',
  // tsgrub's own (no pygrub option starts with these letters, so pygrub's prefixes stay unique)
  'max-file-size=', 'filesystems=',
];

/** pygrub's log line names the parser class; tools grepping bootloader logs may rely on it. */
const CONFIG_CLASS: ReadonlyMap<string, string> = new Map([
  ['grub2', 'grub.GrubConf.Grub2ConfigFile'],
  ['grub-legacy', 'grub.GrubConf.GrubConfigFile'],
  ['solaris', 'grub.GrubConf.GrubConfigFile'],
  ['extlinux', 'grub.ExtLinuxConf.ExtLinuxConfigFile'],
  ['lilo', 'grub.LiloConf.LiloConfigFile'],
  ['bls', 'tsgrub.BootLoaderSpec'],
]);

class Exit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

interface Io {
  out(s: string): void;
  err(s: string): void;
}

const argv0 = process.argv[1] ?? 'tsgrub';

function usage(io: Io): void {
  io.err(
    `Usage: ${argv0} [-q|--quiet] [-i|--interactive] [-l|--list-entries] [-n|--not-really] [--output=] [--kernel=] [--ramdisk=] [--args=] [--entry=] [--output-directory=] [--output-format=sxp|simple|simple0] [--runas=] [--offset=] <image>\n`,
  );
}

/** Random suffix as Python's tempfile: 8 characters of [a-z0-9_]. */
function tempName(prefix: string): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789_';
  let s = prefix;
  for (const b of urandom(8)) s += alphabet[b % alphabet.length];
  return s;
}

/** Bytes from the kernel's CSPRNG, without loading node:crypto (~3 ms of a boot, bench/README.md). */
function urandom(n: number): Uint8Array {
  const b = new Uint8Array(n);
  const fd = openSync('/dev/urandom', C.O_RDONLY);
  try {
    for (let done = 0; done < n; ) {
      const got = readSync(fd, b, done, n - done, null);
      if (got <= 0) throw new Error('/dev/urandom returned no bytes');
      done += got;
    }
  } finally {
    closeSync(fd);
  }
  return b;
}

function mkstemp(dir: string, prefix: string): { fd: number; path: string } {
  for (let i = 0; i < 100; i++) {
    const path = dir + tempName(prefix);
    try {
      const fd = openSync(path, C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
      return { fd, path };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new Error(`cannot create a temporary file in ${dir}`);
}

export interface Options {
  interactive: boolean;
  listEntries: boolean;
  notReally: boolean;
  output: string | null;
  runas: number | null;
  kernel?: string;
  ramdisk?: string;
  args: string;
  offset?: number;
  entry?: string;
  isconfig: boolean;
  debug: boolean;
  format: OutputFormat;
  outdir: string;
  limits: Partial<Limits>;
  /** --filesystems: driver ids allowed to run (GRUB-lockdown-style allowlist); undefined = all. */
  filesystems?: string[];
  image: string;
}

/** Parses argv exactly as pygrub does (messages, streams, exit codes), throwing Exit. */
export function parseCommandLine(args: readonly string[], io: Io, env: NodeJS.ProcessEnv): Options {
  let parsed;
  try {
    parsed = gnuGetopt(args, SHORT, LONG);
  } catch (e) {
    if (e instanceof GetoptError) {
      usage(io);
      throw new Exit(1);
    }
    throw e;
  }
  if (parsed.args.length < 1) {
    usage(io);
    throw new Exit(1);
  }
  const o: Options = {
    interactive: true,
    listEntries: false,
    notReally: false,
    output: null,
    runas: null,
    args: '',
    isconfig: false,
    debug: false,
    format: 'sxp',
    outdir: '/var/run/xen/pygrub/',
    limits: {},
    image: parsed.args[0] as string,
  };
  const mb = pyInt(env.PYGRUB_MAX_FILE_SIZE_MB ?? '');
  if (env.PYGRUB_MAX_FILE_SIZE_MB !== undefined && mb !== null && mb > 0 && mb <= 1024) o.limits = { ...o.limits, fileBytes: mb * 2 ** 20 };
  for (const [opt, a] of parsed.opts) {
    switch (opt) {
      case '-q':
      case '--quiet':
        o.interactive = false;
        break;
      case '-i':
      case '--interactive':
        o.interactive = true;
        break;
      case '-l':
      case '--list-entries':
        o.listEntries = true;
        break;
      case '-n':
      case '--not-really':
        o.notReally = true;
        break;
      case '-h':
      case '--help':
        usage(io);
        throw new Exit(0);
      case '--output':
        if (a !== '-') o.output = a;
        break;
      case '--runas': {
        const v = pyInt(a);
        if (v === null) {
          io.out('runas value must be an integer user id\n');
          usage(io);
          throw new Exit(1);
        }
        o.runas = v;
        break;
      }
      case '--kernel':
        o.kernel = a;
        break;
      case '--ramdisk':
        o.ramdisk = a;
        break;
      case '--args':
        o.args = a;
        break;
      case '--offset': {
        const v = pyInt(a);
        if (v === null) {
          io.out('offset value must be an integer\n');
          usage(io);
          throw new Exit(1);
        }
        o.offset = v;
        break;
      }
      case '--entry':
        o.entry = a;
        o.interactive = false;
        break;
      case '--isconfig':
        o.isconfig = true;
        break;
      case '--debug':
        o.debug = true;
        break;
      case '--output-format':
        if (a !== 'sxp' && a !== 'simple' && a !== 'simple0') {
          io.out(`unknown output format ${a}\n`);
          usage(io);
          throw new Exit(1);
        }
        o.format = a;
        break;
      case '--output-directory': {
        let ok = false;
        try {
          ok = statSync(a).isDirectory();
        } catch {
          ok = false;
        }
        if (!ok) {
          io.out(`${a} is not an existing directory\n`);
          throw new Exit(1);
        }
        o.outdir = `${a}/`;
        break;
      }
      case '--max-file-size': {
        const v = pyInt(a);
        if (v === null || v <= 0 || v > 1024) {
          io.out('max-file-size must be an integer number of MiB in 1..1024\n');
          usage(io);
          throw new Exit(1);
        }
        o.limits = { ...o.limits, fileBytes: v * 2 ** 20 };
        break;
      }
      case '--filesystems': {
        // Checked against the registry by the worker (the parent loads no driver code).
        o.filesystems = a.split(',').map((x) => x.trim()).filter(Boolean);
        break;
      }
    }
  }
  if (o.interactive && o.runas) {
    io.err('In order to use --runas, you must also set --entry or -q\n');
    throw new Exit(1);
  }
  if (o.listEntries) o.interactive = false;
  return o;
}

function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../..');
}

let prlimitPath: string | null | undefined;
function findPrlimit(): string | null {
  if (prlimitPath !== undefined) return prlimitPath;
  prlimitPath = null;
  for (const p of ['/usr/bin/prlimit', '/bin/prlimit']) if (existsSync(p)) prlimitPath = p;
  return prlimitPath;
}

function ramLimitBytes(env: NodeJS.ProcessEnv): number {
  const mb = pyInt(env.PYGRUB_MAX_RAM_USAGE_MB ?? '');
  return (mb !== null && mb >= 512 && mb <= 65536 ? mb : 1024) * 2 ** 20;
}

/**
 * A worker that bin/tsgrub started at the same time as this process (its Node start then overlaps
 * ours): its pid, the one image path it may open, and the pipes to it (read, write).
 */
export interface Launch {
  pid: number;
  image: string;
  rfd: number;
  wfd: number;
}

/** How the parent talks to a worker, spawned or prestarted. */
interface Link {
  readonly reader: MessageReader;
  send(m: ParentMessage): Promise<void>;
  kill(): void;
  /** Its exit status once it has gone (128 = killed by a signal; null = not known). */
  readonly exited: Promise<number | null>;
  /** After kill(): resolves once it can no longer touch anything of ours. */
  gone(): Promise<void>;
  /** What it printed (spawned only; shown with --debug). */
  log(): string;
  /** A prestarted worker plans and the parent copies; a spawned one copies into the descriptors. */
  readonly plans: boolean;
}

type Fds = { image: number; kernel: number | null; ramdisk: number | null };

/**
 * /proc/<pid>/stat: [state, ppid, exit status (Linux ≥ 3.5; meaningful for a zombie)], or null. The
 * command name comes before them in parentheses and may contain anything, so fields are counted
 * from the last ')'.
 */
function procStat(pid: number): { state: string; ppid: number; exitCode: number | null } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).trim().split(' ');
    const exit = f.length >= 50 ? Number(f[f.length - 1]) : NaN;
    return { state: f[0] ?? '', ppid: Number(f[1]), exitCode: Number.isSafeInteger(exit) ? exit : null };
  } catch {
    return null;
  }
}

/** The launch's worker, if it really is this process's child and its pipes are pipes. */
function verifiedLaunch(launch: Launch | undefined): Launch | null {
  if (!launch || !Number.isSafeInteger(launch.pid) || launch.pid <= 1) return null;
  if (procStat(launch.pid)?.ppid !== process.pid) return null;
  try {
    if (!fstatSync(launch.rfd).isFIFO() || !fstatSync(launch.wfd).isFIFO()) return null;
  } catch {
    return null;
  }
  return launch;
}

/** Whether every uid and gid of the process (real, effective, saved, fs) is `id`. */
function runsAs(pid: number, id: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const ids = (key: 'Uid' | 'Gid') => (new RegExp(`^${key}:\\t(.*)$`, 'm').exec(status)?.[1] ?? '').split('\t').map(Number);
    const all = [...ids('Uid'), ...ids('Gid')];
    return all.length === 8 && all.every((v) => v === id);
  } catch {
    return false;
  }
}

/** Stops a prestarted worker this run does not use (it would also end on EOF once we exit). */
function discardLaunch(launch: Launch | null): void {
  if (!launch) return;
  try {
    process.kill(launch.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * A MessageReader over a pipe, read with fs.read (one pool thread waits on it): a prestarted run then
 * loads neither node:net nor node:child_process (≈ 2.4 ms of the parent's start). `onEnd` runs once
 * the pipe is closed (the worker is gone) or failed.
 */
function pipeReader(fd: number, onEnd: () => void): MessageReader {
  const reader = new MessageReader();
  const buf = Buffer.allocUnsafe(64 << 10);
  const decoder = new TextDecoder('utf-8');
  const step = (): void =>
    read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err || n === 0) {
        reader.fail(err ?? new Error('channel closed'));
        onEnd();
        return;
      }
      reader.push(decoder.decode(buf.subarray(0, n), { stream: true }));
      if (!reader.closed) step();
    });
  step();
  return reader;
}

function prestartedLink(launch: Launch): Link {
  let ended!: () => void;
  const closed = new Promise<void>((res) => (ended = res));
  const reader = pipeReader(launch.rfd, () => ended());
  const exited = closed.then(() => {
    const st = procStat(launch.pid);
    const status = st?.state === 'Z' ? st.exitCode : null;
    return status === null ? null : status & 0x7f ? 128 : (status >> 8) & 0xff;
  });
  return {
    reader,
    plans: true,
    send: async (m) => {
      const line = Buffer.from(`${JSON.stringify(m)}\n`, 'utf8');
      if (line.length > MAX_MESSAGE) throw new Error('message too large');
      for (let done = 0; done < line.length; ) done += writeSync(launch.wfd, line, done, line.length - done);
    },
    kill: () => discardLaunch(launch),
    exited,
    // It holds no descriptor of ours but its pipes: once killed it can change nothing.
    gone: async () => undefined,
    log: () => '',
  };
}

function spawnedLink(o: Options, fds: Fds, env: NodeJS.ProcessEnv, req: WorkerRequest, limits: Limits): Link {
  const root = packageRoot();
  // The single-file bundle with its code cache when the build made them (worker-main.cjs), else the
  // modules tsc wrote.
  const bundled = join(root, 'dist/cli/worker-main.cjs');
  const workerJs = existsSync(bundled) ? bundled : join(root, 'dist/cli/worker.js');
  const nodeFlags = [...workerPermissionFlags(root), ...WORKER_V8_FLAGS, '--no-warnings'];
  // (bin/tsgrub starts a prestarted worker with the same flags, from dist/cli/worker.flags.)
  let cmd = process.execPath;
  let argv = [...nodeFlags, workerJs, JSON.stringify(req)];
  const prlimit = findPrlimit();
  if (prlimit) {
    const fsize = Math.max(limits.fileBytes, 1) + 4096;
    argv = [`--data=${ramLimitBytes(env)}`, `--fsize=${fsize}`, '--core=0', '--nofile=512', '--', cmd, ...argv];
    cmd = prlimit;
  }
  traceMark('spawning the worker');
  // Loaded here, not at start: a prestarted run never spawns (node:child_process ≈ 2.4 ms to load).
  const { spawn } = process.getBuiltinModule('node:child_process') as typeof import('node:child_process');
  const child = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe', fds.image, fds.kernel ?? 'ignore', fds.ramdisk ?? 'ignore', 'pipe'],
    env: {},
    cwd: '/',
    ...(o.runas ? { uid: o.runas, gid: o.runas } : {}),
  });
  const chan = (child.stdio as unknown as Socket[])[6] as Socket;
  let log = '';
  const collect = (b: Buffer) => {
    if (log.length < 64 << 10) log += b.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((res) => child.on('close', (code, sig) => res(sig ? 128 : code)));
  // Reaped: it can no longer write anything (its pipes may still drain; only --debug reads them).
  const reaped = new Promise<void>((res) => child.on('exit', () => res()));
  return {
    reader: new MessageReader(chan),
    plans: false,
    send: (m) => send(chan, m),
    kill: () => child.kill('SIGKILL'),
    exited,
    gone: () => (o.debug ? exited.then(() => undefined) : reaped),
    log: () => log,
  };
}

/** Runs handed from the channel to a copy in progress, in order; ends, or fails, once. */
class RunQueue implements AsyncIterable<Runs> {
  private readonly chunks: Runs[] = [];
  private ended = false;
  private error: Error | null = null;
  private wake: (() => void) | null = null;

  push(runs: Runs): void {
    if (this.ended || this.error) return;
    this.chunks.push(runs);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  fail(e: Error): void {
    if (!this.ended && !this.error) this.error = e;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Runs> {
    for (;;) {
      if (this.error) throw this.error;
      const next = this.chunks.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((res) => (this.wake = res));
      this.wake = null;
    }
  }
}

/**
 * The copies a prestarted worker planned, run here: each chunk of a plan is rebuilt and checked
 * (RunsReceiver: inside the image, never past the file, within the size cap) before its bytes move,
 * and the copy starts with the first chunk, from this process's own descriptor of the image, while
 * the worker is still mapping the rest (both files at once). A plan that does not end exactly at the
 * file's size fails its copy, and then the whole run.
 */
class ParentCopies {
  private readonly image: FileSource;
  private readonly receiving = new Map<string, { rx: RunsReceiver; queue: RunQueue }>();
  private readonly jobs = new Map<string, Promise<number>>();

  constructor(
    fds: Fds,
    private readonly out: { kernel: number | null; ramdisk: number | null },
    private readonly cap: number,
  ) {
    this.image = FileSource.fromFd(fds.image, 'image');
  }

  onMap(m: { file: 'kernel' | 'ramdisk'; size: number; runs: number[]; done: boolean }): void {
    const fd = this.out[m.file];
    let cur = this.receiving.get(m.file);
    if (fd === null || (!cur && this.jobs.has(m.file))) throw new Error(`unexpected map of the ${m.file}`);
    if (!cur) {
      if (!isNat(m.size) || m.size > this.cap) throw new Error(`the ${m.file} is ${String(m.size)} bytes, over the ${this.cap}-byte cap`);
      traceMark(`${m.file} first runs`);
      cur = { rx: new RunsReceiver(m.size, this.image.size), queue: new RunQueue() };
      this.receiving.set(m.file, cur);
      const job = copyRunStream(this.image, cur.queue, m.size, fd).finally(() => traceMark(`${m.file} copied`));
      job.catch(() => undefined); // observed by results() or settle()
      this.jobs.set(m.file, job);
    } else if (m.size !== cur.rx.size) throw new Error(`the ${m.file}'s map changed size`);
    cur.queue.push(cur.rx.add(m.runs));
    if (!m.done) return;
    cur.rx.finish();
    cur.queue.end();
    this.receiving.delete(m.file);
  }

  /** Waits for every copy; throws the first failure (a map left incomplete included). */
  async results(): Promise<void> {
    if (this.receiving.size) {
      await this.settle();
      throw new Error('a map was left incomplete');
    }
    for (const job of this.jobs.values()) await job;
  }

  /** Stops the copies still waiting for runs and waits for all of them, whatever their outcome. */
  async settle(): Promise<void> {
    for (const { queue } of this.receiving.values()) queue.fail(new Error('the plan was abandoned'));
    this.receiving.clear();
    await Promise.allSettled(this.jobs.values());
  }

  get reads(): { calls: number; bytes: number } {
    return { calls: this.image.readCalls, bytes: this.image.bytesRead };
  }
}

/**
 * Runs the worker with the descriptors (or, prestarted, the one image path) it needs and nothing
 * else; resolves with its final message once the output files hold what it reported.
 */
async function runWorker(o: Options, fds: Fds, io: Io, env: NodeJS.ProcessEnv, launch?: Launch): Promise<WorkerMessage> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...o.limits };
  const req: WorkerRequest = {
    ...(o.entry !== undefined ? { entry: o.entry } : {}),
    ...(o.kernel !== undefined ? { kernel: o.kernel } : {}),
    ...(o.ramdisk !== undefined ? { ramdisk: o.ramdisk } : {}),
    ...(o.offset !== undefined ? { offset: o.offset } : {}),
    ...(o.isconfig ? { isconfig: o.image } : {}),
    ...(o.filesystems ? { filesystems: o.filesystems } : {}),
    args: o.args,
    listEntries: o.listEntries,
    notReally: o.notReally,
    interactive: o.interactive,
    limits: o.limits,
    ...(env.TSGRUB_TRACE ? { trace: true } : {}),
    ...(o.debug ? { debug: true } : {}),
  };
  let pre = verifiedLaunch(launch);
  let start: ParentMessage | null = null;
  if (pre) {
    // Only if the path bin/tsgrub granted it is the very file this process opened.
    const mine = fstatSync(fds.image, { bigint: true });
    let granted: ReturnType<typeof statSync> | undefined;
    try {
      granted = statSync(pre.image, { bigint: true });
    } catch {
      granted = undefined;
    }
    if (granted && granted.dev === mine.dev && granted.ino === mine.ino) {
      start = { type: 'start', request: req, image: { path: pre.image, dev: String(mine.dev), ino: String(mine.ino) }, runas: o.runas };
    } else {
      discardLaunch(pre);
      pre = null;
    }
  }
  if (pre && start) {
    traceMark('starting the prestarted worker');
    const link = prestartedLink(pre);
    const copies = new ParentCopies(fds, { kernel: fds.kernel, ramdisk: fds.ramdisk }, limits.fileBytes);
    try {
      await link.send(start);
    } catch {
      // It is gone (node missing, killed): start one the usual way.
      discardLaunch(pre);
      return converseSpawned(o, fds, io, env, req, limits);
    }
    // It drops to the --runas uid itself before reading the image: check that from outside, at its
    // first message, before believing anything it says.
    const check = o.runas ? () => runsAs(pre.pid, o.runas as number) : null;
    const msg = await converse(link, o, io, limits, copies, check);
    if (msg !== 'fallback') {
      if (msg.type === 'result' && msg.reads && isNat(msg.reads.calls) && isNat(msg.reads.bytes)) {
        const mine = copies.reads;
        msg.reads = { calls: msg.reads.calls + mine.calls, bytes: msg.reads.bytes + mine.bytes };
      }
      return msg;
    }
    // It could not plan a file: start over with a worker that copies, on emptied files.
    await copies.settle();
    for (const fd of [fds.kernel, fds.ramdisk]) if (fd !== null) ftruncateSync(fd, 0);
    traceMark('falling back to a spawned worker');
  } else discardLaunch(pre);
  return converseSpawned(o, fds, io, env, req, limits);
}

async function converseSpawned(o: Options, fds: Fds, io: Io, env: NodeJS.ProcessEnv, req: WorkerRequest, limits: Limits): Promise<WorkerMessage> {
  const msg = await converse(spawnedLink(o, fds, env, req, limits), o, io, limits, null);
  if (msg === 'fallback') throw new Error('the worker asked for a fallback it cannot have');
  return msg;
}

/** The message loop with one worker: menu round trips, maps (prestarted), then the final message. */
async function converse(
  link: Link,
  o: Options,
  io: Io,
  limits: Limits,
  copies: ParentCopies | null,
  check: (() => boolean) | null = null,
): Promise<WorkerMessage | 'fallback'> {
  // The worker's wall-clock limit, enforced from outside; paused while a person is at the menu.
  let expired = false;
  const arm = () =>
    setTimeout(() => {
      expired = true;
      link.kill();
    }, limits.wallMs + 5000);
  let timer = arm();
  stopWorker = () => link.kill();
  let heard = false;
  try {
    for (;;) {
      let msg: WorkerMessage;
      let raw: unknown;
      try {
        raw = await link.reader.next();
      } catch (e) {
        link.kill();
        // A prestarted worker that never said a word may not have started at all (no node on its
        // PATH, its code missing): a spawned one gets the same chance the usual way.
        // Not when it was stopped at the deadline: the image had its time.
        if (link.plans && !heard && !expired) {
          await copies?.settle();
          return 'fallback';
        }
        const code = await link.exited;
        // The worker died without a verdict (killed at a limit, out of memory): say so in one fixed
        // line; what it printed is guest-influenced noise, shown only with --debug.
        const log = link.log();
        if (o.debug && log) io.err(escapeForTerminal(log).replace(/\\x0A/g, '\n'));
        if (o.debug) io.err(`tsgrub: worker channel: ${escapeForTerminal((e as Error).message)}\n`);
        const why = code === 128 ? 'was killed (a time or memory limit)' : code === null ? 'ended' : `exited with status ${code}`;
        await copies?.settle();
        return { type: 'error', error: { code: 'Io', message: `the image parser ${why} without a result`, data: {} }, failures: [] };
      }
      heard = true;
      try {
        msg = validateMessage(raw, link.plans);
        if (check) {
          if (!check()) throw new Error('it does not run as the --runas uid');
          check = null;
        }
        if (msg.type === 'map') {
          (copies as ParentCopies).onMap(msg);
          continue;
        }
      } catch (e) {
        // Something it must not say (a plan outside the image, a second map of a file, …): believe
        // nothing more from it.
        link.kill();
        await copies?.settle();
        return { type: 'error', error: { code: 'Io', message: `the image parser is not believed: ${(e as Error).message}`, data: {} }, failures: [] };
      }
      if (msg.type === 'menu') {
        clearTimeout(timer);
        const choice = await chooseEntry(msg, io);
        timer = arm();
        await link.send({ type: 'choose', index: choice.index, edited: choice.edited });
        continue;
      }
      // The verdict is in (and, spawned, the copies are complete): stop the worker now rather than
      // wait for its orderly exit (~5–10 ms of Node teardown), so nothing can touch the files afterwards.
      traceMark('worker reported');
      link.kill();
      await link.gone();
      const log = link.log();
      if (o.debug && log) io.err(escapeForTerminal(log));
      if (msg.type === 'unmappable') return 'fallback';
      if (copies && msg.type === 'error') {
        // It failed while planning (a corrupt extent leaf after the first runs went out): its error is
        // the verdict, and the copies along the runs already sent are dropped (their files removed).
        await copies.settle();
        return msg;
      }
      if (copies) {
        try {
          await copies.results();
        } catch (e) {
          return { type: 'error', error: { code: 'Io', message: `copy failed: ${(e as Error).message}`, data: {} }, failures: [] };
        }
      }
      return msg;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Stops the worker of the moment (signals); null when none runs. */
let stopWorker: (() => void) | null = null;

/**
 * libxl sends SIGTERM when the domain dies or the console goes away: stop the worker, remove what
 * we created, and go. Installed before the first output file exists.
 */
function onSignal(sig: NodeJS.Signals): void {
  stopWorker?.();
  removeCreated();
  process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGHUP' ? 129 : 143);
}
const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** TSGRUB_TRACE: when the parent's phases ended (monotonic clock, ms; the worker's marks use it too). */
const parentTrace: Array<[string, number]> = [];
let tracing = false;
function traceMark(label: string): void {
  if (tracing) parentTrace.push([label, Number(process.hrtime.bigint()) / 1e6]);
}

/** Files this run created and has not reported: removed on every failure path. */
const created: string[] = [];
function removeCreated(): void {
  for (const p of created.splice(0)) {
    try {
      unlinkSync(p);
    } catch {
      /* gone */
    }
  }
}

function isStr(x: unknown): x is string {
  return typeof x === 'string';
}
function isNat(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** The worker's account of its confinement (--debug): a closed shape, each list short. */
function isIdentity(v: unknown): boolean {
  const id = v as Record<string, unknown>;
  const id32 = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= -1 && (n as number) < 2 ** 32;
  const shortList = (a: unknown, each: (x: unknown) => boolean) => Array.isArray(a) && a.length <= 64 && a.every(each);
  return (
    typeof id === 'object' && id !== null && id32(id.uid) && id32(id.gid) && shortList(id.groups, id32) && typeof id.pathsDenied === 'boolean' &&
    shortList(id.limits, (l) => isStr(l) && l.length <= 200) && (id.envVars === undefined || isNat(id.envVars))
  );
}

/** Closed-shape check of everything the worker says; anything else is a worker failure. */
function validateMessage(m: unknown, plans: boolean): WorkerMessage {
  const x = m as Record<string, unknown>;
  const bad = () => new Error('malformed worker message');
  if (typeof x !== 'object' || x === null) throw bad();
  const strs = (a: unknown) => Array.isArray(a) && a.every(isStr);
  switch (x.type) {
    case 'result':
      if (
        isNat(x.kernelBytes) && (x.ramdiskBytes === null || isNat(x.ramdiskBytes)) && isStr(x.args) && isStr(x.listing) && strs(x.warnings) &&
        isStr(x.partition) && isStr(x.how) && (x.config === null || (typeof x.config === 'object' && isStr((x.config as { format?: unknown }).format) && isStr((x.config as { path?: unknown }).path))) &&
        (x.identity === undefined || isIdentity(x.identity))
      )
        return x as WorkerMessage;
      break;
    case 'listing':
      if (isStr(x.listing) && strs(x.failures)) return x as WorkerMessage;
      break;
    case 'error': {
      const e = x.error as Record<string, unknown> | null;
      if (e && isStr(e.code) && isStr(e.message) && strs(x.failures)) return x as WorkerMessage;
      break;
    }
    case 'menu':
      if (Array.isArray(x.entries) && isNat(x.defaultIndex)) return x as WorkerMessage;
      break;
    // Only a prestarted worker plans; ParentCopies checks the runs themselves.
    case 'map':
      if (plans && (x.file === 'kernel' || x.file === 'ramdisk') && isNat(x.size) && Array.isArray(x.runs) && typeof x.done === 'boolean') return x as WorkerMessage;
      break;
    case 'unmappable':
      if (plans && (x.file === 'kernel' || x.file === 'ramdisk')) return x as WorkerMessage;
      break;
  }
  throw bad();
}

export async function main(args: readonly string[], env: NodeJS.ProcessEnv, launch?: Launch): Promise<number> {
  const io: Io = {
    out: (s) => writeSync(1, s),
    err: (s) => writeSync(2, s),
  };
  const fdsToClose: number[] = [];
  let launchTaken = false;
  tracing = !!env.TSGRUB_TRACE;
  // bin/tsgrub-main.cjs says whether the bundle came with its code cache.
  const parentCache = (globalThis as Record<symbol, unknown>)[Symbol.for('tsgrub.parentCodeCache')];
  traceMark(typeof parentCache === 'string' ? `parent code loaded (code cache ${parentCache})` : 'parent code loaded');
  try {
    const o = parseCommandLine(args, io, env);
    for (const sig of SIGNALS) process.once(sig, onSignal);
    // A prestarted worker stops with us too (it would also end on EOF once we exit).
    stopWorker = () => discardLaunch(verifiedLaunch(launch));
    mkdirSync(o.outdir, { recursive: true, mode: 0o700 });
    let kernel: { fd: number; path: string } | null = null;
    let ramdisk: { fd: number; path: string } | null = null;
    if (!o.notReally && !o.listEntries && !o.isconfig) {
      kernel = mkstemp(o.outdir, 'boot_kernel.');
      created.push(kernel.path);
      fdsToClose.push(kernel.fd);
      ramdisk = mkstemp(o.outdir, 'boot_ramdisk.');
      created.push(ramdisk.path);
      fdsToClose.push(ramdisk.fd);
    }
    const outFd = o.output === null ? 1 : openSync(o.output, C.O_WRONLY);
    if (outFd !== 1) fdsToClose.push(outFd);
    let imageFd: number;
    try {
      imageFd = openSync(o.image, C.O_RDONLY | C.O_NOCTTY);
    } catch (e) {
      io.err(`tsgrub: cannot open ${escapeForTerminal(o.image)}: ${(e as Error).message}\n`);
      throw new Exit(1);
    }
    fdsToClose.push(imageFd);
    launchTaken = true;
    const msg = await runWorker(o, { image: imageFd, kernel: kernel?.fd ?? null, ramdisk: ramdisk?.fd ?? null }, io, env, launch);
    if (msg.type === 'listing') {
      io.out(sanitizeBlock(msg.listing));
      for (const f of msg.failures) if (o.debug) io.err(`${escapeForTerminal(f)}\n`);
      return 0;
    }
    // TSGRUB_TRACE: the phases on one clock, the worker's marks (its claims: only [string, number]
    // pairs, at most 64, labels escaped) with the parent's; after an error, the parent's alone.
    const printTrace = (theirs: unknown): void => {
      const t0 = Number(process.hrtime.bigint()) / 1e6 - process.uptime() * 1000;
      const marks = Array.isArray(theirs) ? (theirs.slice(0, 64).filter((t) => Array.isArray(t) && isStr(t[0]) && typeof t[1] === 'number' && Number.isFinite(t[1])) as Array<[string, number]>) : [];
      const all = [...parentTrace, ...marks];
      for (const [label, at] of all.sort((a, b) => a[1] - b[1])) io.err(`tsgrub trace: ${(at - t0).toFixed(1).padStart(7)} ms  ${escapeForTerminal(label.slice(0, 200))}\n`);
      // Where 0 is on CLOCK_MONOTONIC (process.hrtime's clock in every process), so that a caller
      // can place the launcher's start before it and the exit after the last mark.
      io.err(`tsgrub trace: clock origin: ${t0.toFixed(3)} ms monotonic\n`);
    };
    if (msg.type === 'error') {
      io.err(`tsgrub: ${escapeForTerminal(msg.error.message)}\n`);
      for (const f of msg.failures) io.err(`  ${escapeForTerminal(f)}\n`);
      if (env.TSGRUB_TRACE) printTrace(null);
      return 1;
    }
    if (msg.type !== 'result') return 1;
    if (env.TSGRUB_TRACE) {
      traceMark('worker exited');
      printTrace(msg.trace);
      const reads = typeof msg.reads === 'object' && msg.reads !== null ? msg.reads : null;
      const copied = msg.kernelBytes + (msg.ramdiskBytes ?? 0);
      if (reads && isNat(reads.calls) && isNat(reads.bytes)) {
        io.err(`tsgrub trace: image reads: ${reads.calls} calls, ${reads.bytes} bytes${copied ? `, ${(reads.bytes / copied).toFixed(4)} per byte copied` : ''}\n`);
      }
      if (typeof msg.cpuMs === 'number' && Number.isFinite(msg.cpuMs) && msg.cpuMs >= 0) io.err(`tsgrub trace: worker CPU: ${msg.cpuMs.toFixed(1)} ms\n`);
    }
    if (o.debug && msg.identity) {
      const id = msg.identity;
      const envNote = typeof id.envVars === 'number' ? `, ${id.envVars === 0 ? 'empty environment' : `${id.envVars} environment variables`}` : '';
      io.err(`tsgrub: worker ran as uid ${id.uid} gid ${id.gid} groups [${id.groups.join(',')}], path access ${id.pathsDenied ? 'denied' : 'ALLOWED'}${envNote}; ${escapeForTerminal(id.limits.join('; '))}\n`);
    }
    if (msg.config) io.err(`Using <class '${CONFIG_CLASS.get(msg.config.format) ?? 'tsgrub.Config'}'> to parse ${escapeForTerminal(msg.config.path)}\n`);
    for (const w of msg.warnings) io.err(`WARNING: ${escapeForTerminal(w)}\n`);
    // Check the worker's claims against the files themselves.
    const cap = { ...DEFAULT_LIMITS, ...o.limits }.fileBytes;
    if (kernel) {
      const size = fstatSync(kernel.fd).size;
      if (size !== msg.kernelBytes || size > cap || size === 0) {
        io.err(`tsgrub: kernel copy is inconsistent (${size} bytes written, ${msg.kernelBytes} claimed)\n`);
        return 1;
      }
    }
    let ramdiskPath: string | null = null;
    if (ramdisk) {
      const size = fstatSync(ramdisk.fd).size;
      if (msg.ramdiskBytes === null) {
        closeSync(ramdisk.fd);
        fdsToClose.splice(fdsToClose.indexOf(ramdisk.fd), 1);
        unlinkSync(ramdisk.path);
        created.splice(created.indexOf(ramdisk.path), 1);
      } else {
        if (size !== msg.ramdiskBytes || size > cap) {
          io.err(`tsgrub: ramdisk copy is inconsistent (${size} bytes written, ${msg.ramdiskBytes} claimed)\n`);
          return 1;
        }
        ramdiskPath = ramdisk.path;
      }
    }
    const argsBytes = Buffer.byteLength(msg.args);
    if (argsBytes > 1023) io.err(`WARNING: kernel arguments are ${argsBytes} bytes; the domain builder keeps only 1023\n`);
    let text: string;
    try {
      text = formatResult({ kernel: kernel?.path ?? null, ramdisk: ramdiskPath, args: msg.args || null }, o.format);
    } catch (e) {
      io.err(`tsgrub: ${(e as Error).message}\n`);
      return 1;
    }
    writeSync(outFd, Buffer.from(text, 'utf8'));
    created.length = 0; // reported: never remove
    return 0;
  } catch (e) {
    if (e instanceof Exit) return e.status;
    io.err(`tsgrub: ${escapeForTerminal((e as Error).message)}\n`);
    return 1;
  } finally {
    for (const sig of SIGNALS) process.removeListener(sig, onSignal);
    stopWorker = null;
    if (!launchTaken) discardLaunch(verifiedLaunch(launch));
    for (const fd of fdsToClose) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
    removeCreated();
  }
}

function sanitizeBlock(s: string): string {
  return s
    .split('\n')
    .map((l) => escapeForTerminal(l))
    .join('\n');
}
