/**
 * `npm run bench`: tsgrub against what a user would otherwise run (pygrub, grub-fstest, debugfs, 7-Zip)
 * and against the floors (`cat`, a 1 MiB-chunk Node copy), on images built by bench/images.sh.
 * See bench/README.md for what is measured and how; results go to bench/results/ and the README.
 *
 * Environment: BENCH_RUNS (timed runs per tool and image, default 5; one warm-up run is added),
 * BENCH_IMAGES (comma list, default all), BENCH_TOOLS (comma list), BENCH_WORK (image folder),
 * BENCH_OUT (output folder, default a fresh one in /dev/shm: Xen hosts write to /run, a tmpfs),
 * BENCH_NO_README=1 (do not rewrite bench/README.md and the README's summary; `--readme-only` rewrites
 * both from results/latest.json), BENCH_CONCURRENCY (default 16, 0 = skip).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeCodecs } from '../src/codec/node.ts';
import { Disk } from '../src/disk.ts';
import { defaultRegistry } from '../src/fs/drivers.ts';
import { createContext } from '../src/limits.ts';
import { FileSource } from '../src/node/file-source.ts';
import { copyToFd } from '../src/node/copy.ts';
import { loadBoot } from '../src/boot/loader.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const WORK = process.env.BENCH_WORK ?? join(HERE, 'work');
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5) | 0);
const KVER = '6.1.0-21-amd64';
const KERNEL = `/boot/vmlinuz-${KVER}`;
const RAMDISK = `/boot/initrd.img-${KVER}`;
const PYGRUB = '/usr/lib/xen-4.17/bin/pygrub';
const TIME = '/usr/bin/time';
const MIB = 2 ** 20;

const IMAGES = ['ext4-4k', 'ext4-1k', 'ext2', 'ext4-mbr', 'ext4-frag', 'ext4-bigdir', 'iso9660', 'fat32', 'xfs-v4', 'xfs-v5', 'btrfs', 'ufs2'];
const selected = process.env.BENCH_IMAGES ? process.env.BENCH_IMAGES.split(',') : IMAGES;

// A child environment without NODE_EXTRA_CA_CERTS (≈80 ms per Node start) or NODE_OPTIONS.
const childEnv: NodeJS.ProcessEnv = { ...process.env };
delete childEnv.NODE_EXTRA_CA_CERTS;
delete childEnv.NODE_OPTIONS;

function which(cmd: string): string | null {
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(d, cmd);
    if (existsSync(p)) return p;
  }
  return null;
}

/** One invocation: argv, and optionally a file its stdout goes to (the `cat` floor). */
interface Cmd {
  argv: string[];
  stdoutTo?: string;
}
interface Tool {
  name: string;
  /** The commands of one run, executed one after the other and timed together. */
  cmds(img: string, out: string): Cmd[];
  /** Where the run leaves the kernel and ramdisk, to check them once. */
  outputs(out: string): [string, string] | null;
}

const fstestDevice = (img: string) => (img.endsWith('ext4-mbr.img') ? '(loop0,msdos1)' : '(loop0)');
const globOut = (out: string): [string, string] | null => {
  const names = existsSync(out) ? readdirSync(out) : [];
  const k = names.find((n) => n.startsWith('boot_kernel.'));
  const r = names.find((n) => n.startsWith('boot_ramdisk.'));
  return k && r ? [join(out, k), join(out, r)] : null;
};
const fixedOut = (out: string): [string, string] => [join(out, 'k'), join(out, 'r')];

function tools(): Tool[] {
  const t: Tool[] = [];
  t.push({ name: 'tsgrub', cmds: (img, out) => [{ argv: [join(ROOT, 'bin/tsgrub'), '-q', `--output-directory=${out}`, img] }], outputs: globOut });
  t.push({
    name: 'tsgrub-kr',
    cmds: (img, out) => [{ argv: [join(ROOT, 'bin/tsgrub'), '-q', `--kernel=${KERNEL}`, `--ramdisk=${RAMDISK}`, `--output-directory=${out}`, img] }],
    outputs: globOut,
  });
  if (existsSync(PYGRUB)) {
    t.push({ name: 'pygrub', cmds: (img, out) => [{ argv: [PYGRUB, '-q', `--output-directory=${out}`, img] }], outputs: globOut });
    t.push({
      name: 'pygrub-kr',
      cmds: (img, out) => [{ argv: [PYGRUB, '-q', `--kernel=${KERNEL}`, `--ramdisk=${RAMDISK}`, `--output-directory=${out}`, img] }],
      outputs: globOut,
    });
  }
  const fstest = which('grub-fstest');
  if (fstest) {
    t.push({
      name: 'grub-fstest',
      cmds: (img, out) => [
        { argv: [fstest, img, 'cp', `${fstestDevice(img)}${KERNEL}`, join(out, 'k')] },
        { argv: [fstest, img, 'cp', `${fstestDevice(img)}${RAMDISK}`, join(out, 'r')] },
      ],
      outputs: fixedOut,
    });
  }
  const debugfs = which('debugfs');
  if (debugfs) {
    t.push({
      name: 'debugfs',
      cmds: (img, out) => {
        if (!/\/ext[^/]*\.img$/.test(img)) return [];
        // e2fsprogs' unix I/O manager takes "?offset=" after the file name: the MBR partition at 1 MiB.
        const dev = img.endsWith('ext4-mbr.img') ? `${img}?offset=${MIB}` : img;
        return [{ argv: [debugfs, '-R', `dump ${KERNEL} ${join(out, 'k')}`, dev] }, { argv: [debugfs, '-R', `dump ${RAMDISK} ${join(out, 'r')}`, dev] }];
      },
      outputs: fixedOut,
    });
  }
  const sz = which('7zz') ?? which('7z');
  if (sz) {
    t.push({
      name: '7z',
      cmds: (img, out) => [{ argv: [sz, 'x', '-y', '-bso0', '-bsp0', `-o${out}`, img, KERNEL.slice(1), RAMDISK.slice(1)] }],
      outputs: (out) => [join(out, KERNEL), join(out, RAMDISK)],
    });
  }
  t.push({
    name: 'cat',
    cmds: (_img, out) => [
      { argv: ['cat', join(WORK, 'vmlinuz')], stdoutTo: join(out, 'k') },
      { argv: ['cat', join(WORK, 'initrd.img')], stdoutTo: join(out, 'r') },
    ],
    outputs: fixedOut,
  });
  t.push({
    name: 'node-floor',
    cmds: (_img, out) => [{ argv: [process.execPath, join(HERE, 'node-floor.mjs'), join(WORK, 'vmlinuz'), join(out, 'k'), join(WORK, 'initrd.img'), join(out, 'r')] }],
    outputs: fixedOut,
  });
  // tsgrub-kr (tsgrub with --kernel/--ramdisk) is opt-in: it only skips the config, which the counters' lookup time shows.
  const only = process.env.BENCH_TOOLS?.split(',');
  return only ? t.filter((x) => only.includes(x.name)) : t.filter((x) => x.name !== 'tsgrub-kr');
}

/**
 * Every timed command runs under this bash wrapper, which takes the wall time itself: `$EPOCHREALTIME`
 * (µs) just before and after the command, written to a file. What the harness spends around it — the
 * spawn from a large Node process, `/usr/bin/time`'s start, noticing the end — is then counted for no
 * tool (it was 10–20 ms a run, the same for all, which pulled every ratio towards 1). Arguments: a
 * cgroup.procs file to join first ('' for none), the file for "start end" (seconds), the command.
 */
const WRAP = 'g=$1 t=$2; shift 2; if [ -n "$g" ]; then echo $$ > "$g" || exit 125; fi; s=$EPOCHREALTIME; "$@"; rc=$?; e=$EPOCHREALTIME; echo "$s $e" > "$t"; exit $rc';
function wrapped(argv: readonly string[], group: string, timesFile: string): string[] {
  return ['/bin/bash', '-c', WRAP, 'bench-wrap', group, timesFile, ...argv];
}
/** The wrapper's "start end" (s, realtime; the decimal point may be the locale's). */
function wrappedTimes(timesFile: string): { start: number; end: number } {
  const [a, b] = readFileSync(timesFile, 'utf8').trim().replace(/,/g, '.').split(/\s+/).map(Number);
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new Error(`bench: no times in ${timesFile}`);
  return { start: a as number, end: b as number };
}
/** Realtime minus monotonic (ms), to put the wrapper's clock and process.hrtime's on one. */
const realMinusMono = (): number => performance.timeOrigin + performance.now() - Number(process.hrtime.bigint()) / 1e6;

interface Sample {
  wall: number;
  cpu: number;
  rssKiB: number;
  /** Peak RSS of each process of the tree seen by /proc polling (VmHWM), KiB, by command name. */
  procs: Record<string, number>;
  ok: boolean;
  err?: string;
}

function peakOf(pid: number): { name: string; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+)/.exec(status);
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // The script a Node process runs (bin/tsgrub, dist/cli/worker-main.cjs), else the program.
    const script = cmd.find((a, i) => i > 0 && !a.startsWith('-') && (/\.[cm]?js$/.test(a) || a.endsWith('/tsgrub'))) ?? cmd[0] ?? '?';
    return hwm ? { name: script.split('/').pop() as string, hwm: Number(hwm[1]) } : null;
  } catch {
    return null;
  }
}
function descendants(pid: number, out: number[] = [], depth = 0): number[] {
  if (depth > 8) return out;
  try {
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)) {
      if (!c) continue;
      out.push(Number(c));
      descendants(Number(c), out, depth + 1);
    }
  } catch {
    /* gone */
  }
  return out;
}

/**
 * Whole-tree CPU time from a cgroup of our own (v2 `cpu.stat` usage_usec, else v1 `cpuacct.usage`): it
 * counts every process a command starts, reaped or not. rusage (/usr/bin/time) cannot: tsgrub's
 * prestarted worker is never waited for by the process time watches. Null where no hierarchy lets us
 * make a group (not root, no cgroupfs); the table then says its CPU column is rusage.
 */
class CpuGroup {
  private constructor(
    readonly dir: string,
    private readonly v2: boolean,
  ) {}

  static open(): CpuGroup | null {
    const self = (() => {
      try {
        return readFileSync('/proc/self/cgroup', 'utf8');
      } catch {
        return '';
      }
    })();
    // Beside our own group, so that it is somewhere we may make one.
    const v2Home = /^0::(.*)$/m.exec(self)?.[1] ?? '/';
    const v1Home = /^\d+:[^:]*\bcpuacct\b[^:]*:(.*)$/m.exec(self)?.[1] ?? '/';
    const roots: Array<[string, boolean]> = [
      [join('/sys/fs/cgroup', v2Home), true],
      [join('/sys/fs/cgroup/unified', v2Home), true],
      [join('/sys/fs/cgroup/cpuacct', v1Home), false],
      [join('/sys/fs/cgroup/cpu,cpuacct', v1Home), false],
    ];
    for (const [root, v2] of roots) {
      if (!existsSync(join(root, v2 ? 'cgroup.controllers' : 'cpuacct.usage'))) continue;
      const dir = join(root, `tsgrub-bench-${process.pid}`);
      try {
        mkdirSync(dir, { recursive: true });
        const g = new CpuGroup(dir, v2);
        g.usage();
        return g;
      } catch {
        try {
          rmdirSync(dir);
        } catch {
          /* not made, or not ours to remove */
        }
      }
    }
    return null;
  }

  /** CPU seconds charged to the group so far. */
  usage(): number {
    if (this.v2) return Number(/^usage_usec (\d+)$/m.exec(readFileSync(join(this.dir, 'cpu.stat'), 'utf8'))?.[1]) / 1e6;
    return Number(readFileSync(join(this.dir, 'cpuacct.usage'), 'utf8').trim()) / 1e9;
  }

  /** The file a process joins the group through (the timing wrapper writes its pid there). */
  get procsFile(): string {
    return join(this.dir, 'cgroup.procs');
  }

  /** Waits (up to 2 s) until no process is left in the group: a killed worker is charged once reaped. */
  async drained(): Promise<void> {
    for (let i = 0; i < 400; i++) {
      if (readFileSync(join(this.dir, 'cgroup.procs'), 'utf8').trim() === '') return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      /* still busy: left for the system */
    }
  }
}

const cpuGroup = CpuGroup.open();

/** Runs one command under /usr/bin/time, polling /proc for the peak RSS of every process in its tree. */
function runCmd(c: Cmd, timeFile: string): Promise<{ code: number | null; wall: number; cpu: number; rssKiB: number; procs: Record<string, number>; stderr: string }> {
  return new Promise((resolveRun) => {
    const outFd = c.stdoutTo ? openSync(c.stdoutTo, 'w') : 'ignore';
    const cpu0 = cpuGroup?.usage() ?? 0;
    const timed = [TIME, '-f', '%U %S %M', '-o', timeFile, ...c.argv];
    const wallFile = `${timeFile}.wall`;
    rmSync(wallFile, { force: true });
    const argv = wrapped(timed, cpuGroup?.procsFile ?? '', wallFile);
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', outFd, 'pipe'], env: childEnv });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 4096) stderr += b.toString();
    });
    const procs: Record<string, number> = {};
    const poll = setInterval(() => {
      for (const pid of descendants(child.pid as number)) {
        const p = peakOf(pid);
        if (p && p.name !== 'time') procs[p.name] = Math.max(procs[p.name] ?? 0, p.hwm);
      }
    }, 10);
    child.on('close', async (code) => {
      clearInterval(poll);
      if (typeof outFd === 'number') closeSync(outFd);
      const [u, s, m] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      let cpu = (u ?? 0) + (s ?? 0);
      if (cpuGroup) {
        await cpuGroup.drained();
        cpu = cpuGroup.usage() - cpu0;
      }
      let wall = NaN;
      try {
        const t = wrappedTimes(wallFile);
        wall = t.end - t.start;
      } catch {
        if (code === 0) code = 1; // the wrapper failed: no time to report
      }
      resolveRun({ code, wall, cpu, rssKiB: m ?? 0, procs, stderr });
    });
  });
}

async function runTool(tool: Tool, img: string, out: string): Promise<Sample> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const cmds = tool.cmds(img, out);
  const s: Sample = { wall: 0, cpu: 0, rssKiB: 0, procs: {}, ok: true };
  for (const c of cmds) {
    const r = await runCmd(c, join(out, '..', 'time.txt'));
    s.wall += r.wall;
    s.cpu += r.cpu;
    s.rssKiB = Math.max(s.rssKiB, r.rssKiB);
    for (const [k, v] of Object.entries(r.procs)) s.procs[k] = Math.max(s.procs[k] ?? 0, v);
    if (r.code !== 0) {
      s.ok = false;
      s.err = r.stderr.trim().split('\n').slice(-1)[0]?.slice(0, 200);
      break;
    }
  }
  return s;
}

/** Byte-compares a tool's outputs with the payload (once per tool and image). */
function sameAsPayload(files: [string, string] | null): boolean {
  if (!files || !files.every((f) => existsSync(f))) return false;
  const eq = (a: string, b: string) => statSync(a).size === statSync(b).size && readFileSync(a).equals(readFileSync(b));
  return eq(files[0], join(WORK, 'vmlinuz')) && eq(files[1], join(WORK, 'initrd.img'));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface ToolResult {
  tool: string;
  ok: boolean;
  verified: boolean;
  error?: string;
  wallMedian: number;
  wallMin: number;
  wallMax: number;
  cpuMedian: number;
  mibPerSec: number;
  rssMaxKiB: number;
  procsKiB: Record<string, number>;
  vsPygrub: number | null;
  vsNodeFloor: number | null;
  vsCat: number | null;
  cpuVsNodeFloor: number | null;
  samples: number[];
}

interface Counters {
  extractedBytes: number;
  dataBytesRead: number;
  dataReadCalls: number;
  readAmplification: number;
  meanDataReadBytes: number;
  totalBytesRead: number;
  totalReadCalls: number;
  metadataBytes: number;
  nodesVisited: number;
  /** In-process time to open the disk, find and parse the config and stat both files (median, ms). */
  lookupMs: number;
  copyMs: number;
}

/**
 * What a boot does before copying, in this process with the library the worker runs (reads
 * synchronous, as the worker's): open the disk, run the config, look the kernel and the ramdisk up.
 */
async function findBootFiles(src: FileSource, ctx: ReturnType<typeof createContext>, img: string) {
  const disk = await Disk.open(src, ctx, defaultRegistry);
  const outcome = await loadBoot(disk, { args: '', listEntries: false });
  const choice = outcome.choice;
  if (!choice || !choice.ramdisk) throw new Error(`no boot entry found in ${img}`);
  const rvfs = choice.ramdiskVfs ?? choice.vfs;
  return { disk, choice, rvfs, k: await choice.vfs.stat(choice.kernel), r: await rvfs.stat(choice.ramdisk) };
}

interface LookupComparison {
  rounds: number;
  /** Medians (ms): open the disk, run the config, look both files up (as `lookupMs`), small vs 50,000-file /boot. */
  bootSmall: number;
  bootBig: number;
  /** Medians (µs): the two lookups alone, on a volume opened for them (its /boot read from the image). */
  statSmall: number;
  statBig: number;
}

/**
 * The 50,000-file /boot against the small one, measured together: alternating between the two
 * images (rounds of one each), so that both see the same state of this process (heap, compiled code),
 * which the per-image `lookupMs` (taken when each image's turn comes) does not guarantee.
 */
async function lookupComparison(): Promise<LookupComparison | null> {
  const small = join(WORK, 'ext4-4k.img');
  const big = join(WORK, 'ext4-bigdir.img');
  if (!selected.includes('ext4-4k') || !selected.includes('ext4-bigdir')) return null;
  const rounds = 41;
  const boot: Record<string, number[]> = { small: [], big: [] };
  const stat: Record<string, number[]> = { small: [], big: [] };
  for (let i = 0; i < rounds; i++) {
    for (const [which, img] of [['small', small], ['big', big]] as const) {
      const ctx = createContext({}, nodeCodecs);
      const src = FileSource.open(img);
      src.syncReads = true;
      try {
        const t0 = performance.now();
        const { disk } = await findBootFiles(src, ctx, img);
        const t1 = performance.now();
        // The lookups alone, on a volume of their own (nothing of /boot cached yet).
        const [cand] = await disk.candidates();
        const vfs = await disk.open(cand as Parameters<typeof disk.open>[0]);
        const t2 = performance.now();
        await vfs.stat(KERNEL);
        await vfs.stat(RAMDISK);
        const t3 = performance.now();
        if (i === 0) continue; // the first round compiles
        (boot[which] as number[]).push(t1 - t0);
        (stat[which] as number[]).push((t3 - t2) * 1000);
      } finally {
        src.close();
      }
    }
  }
  return { rounds: rounds - 1, bootSmall: median(boot.small as number[]), bootBig: median(boot.big as number[]), statSmall: median(stat.small as number[]), statBig: median(stat.big as number[]) };
}

/** tsgrub's own counters, measured in this process with the library the worker runs. */
async function counters(img: string, out: string): Promise<Counters> {
  const lookups: number[] = [];
  let c: Counters | null = null;
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    const ctx = createContext({}, nodeCodecs);
    const src = FileSource.open(img);
    src.syncReads = true; // as the worker reads (src/cli/worker.ts)
    try {
      const { choice, rvfs, k, r } = await findBootFiles(src, ctx, img);
      lookups.push(performance.now() - t0);
      if (i > 0) continue;
      const b0 = src.bytesRead;
      const c0 = src.readCalls;
      const t1 = performance.now();
      mkdirSync(out, { recursive: true });
      let extracted = 0;
      for (const [vfs, node, name] of [[choice.vfs, k, 'k'], [rvfs, r, 'r']] as const) {
        const fd = openSync(join(out, name), 'w');
        try {
          extracted += await copyToFd(vfs, node, fd);
        } finally {
          closeSync(fd);
        }
      }
      const copyMs = performance.now() - t1;
      const data = src.bytesRead - b0;
      const calls = src.readCalls - c0;
      c = {
        extractedBytes: extracted,
        dataBytesRead: data,
        dataReadCalls: calls,
        readAmplification: data / extracted,
        meanDataReadBytes: calls ? data / calls : 0,
        totalBytesRead: src.bytesRead,
        totalReadCalls: src.readCalls,
        metadataBytes: ctx.budget.metadataBytes,
        nodesVisited: ctx.budget.nodesVisited,
        lookupMs: 0,
        copyMs,
      };
      if (!sameAsPayload(fixedOut(out))) throw new Error(`in-process copy of ${img} differs from the payload`);
    } finally {
      src.close();
    }
  }
  const res = c as Counters;
  res.lookupMs = median(lookups.slice(1));
  return res;
}

/**
 * The phases of one tsgrub run as TSGRUB_TRACE reports them. bin/tsgrub starts the worker together
 * with the parent, so the worker's start overlaps the parent's; the worker plans the ramdisk, then the
 * kernel, while the parent copies along each plan as it arrives.
 */
const MARKS = [
  'worker process started',
  'worker code loaded',
  'parent code loaded',
  'request received',
  'disk opened',
  'config parsed, entry chosen',
  'ramdisk planned',
  'kernel planned',
  'kernel copied',
  'ramdisk copied',
  'worker exited',
] as const;
/**
 * Columns of the breakdown along the critical path, each the time since the previous column's end
 * (ms): they add up to the wall time. 'worker ready' is apart: when the worker had loaded its code, on
 * the parent's clock (it starts with the parent, so it overlaps 'parent start').
 */
const PHASE_COLUMNS = ['launch', 'parent start', 'hand-off', 'disk', 'config', 'first plan', 'copy (both files)', 'exit'] as const;
interface Phases {
  /** Median of each PHASE_COLUMNS entry (ms). */
  medians: number[];
  /** When the worker had loaded its code (median, ms on the parent's clock). */
  workerReady: number;
  /** When the parent had the ramdisk's first runs and began copying it (median, ms after the config). */
  firstRuns?: number;
  /** The worker's own CPU time (its report; the parent never reaps a prestarted worker). */
  workerCpuMs: number;
  wallMs: number;
  /** What the worker itself read from the image in the traced runs (all reads: metadata and data). */
  readCalls: number;
  bytesPerByteCopied: number;
}

/** Where tsgrub's time goes: RUNS traced runs (TSGRUB_TRACE=1), medians of each phase. */
async function phases(img: string, out: string): Promise<Phases | null> {
  const per: number[][] = PHASE_COLUMNS.map(() => []);
  const walls: number[] = [];
  const calls: number[] = [];
  const ampl: number[] = [];
  const ready: number[] = [];
  const firstRuns: number[] = [];
  const workerCpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    // Timed by the same wrapper as the table (no cgroup, no /usr/bin/time).
    const wallFile = join(out, '..', 'phases.wall');
    rmSync(wallFile, { force: true });
    const argv = wrapped([join(ROOT, 'bin/tsgrub'), '-q', `--output-directory=${out}`, img], '', wallFile);
    const r = await new Promise<{ code: number | null; err: string }>((res) => {
      const c = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...childEnv, TSGRUB_TRACE: '1' } });
      let err = '';
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.on('close', (code) => res({ code, err }));
    });
    if (r.code !== 0) return null;
    const times = wrappedTimes(wallFile);
    const wall = (times.end - times.start) * 1000;
    // The wrapper's start on the monotonic clock of the trace's origin (ms).
    const t0 = times.start * 1000 - realMinusMono();
    const at = new Map<string, number>();
    for (const m of r.err.matchAll(/^tsgrub trace:\s+(-?[\d.]+) ms\s+(.+)$/gm)) at.set((m[2] as string).replace(/ \(.*\)$/, ''), Number(m[1]));
    if (!MARKS.every((p) => at.has(p))) return null;
    const cpu = /^tsgrub trace: worker CPU: ([\d.]+) ms$/m.exec(r.err);
    if (cpu) workerCpu.push(Number(cpu[1]));
    const reads = /^tsgrub trace: image reads: (\d+) calls, (\d+) bytes, ([\d.]+) per byte copied$/m.exec(r.err);
    if (reads) {
      calls.push(Number(reads[1]));
      ampl.push(Number(reads[3]));
    }
    // Where the parent's clock starts, on the harness's (both CLOCK_MONOTONIC): what came before it
    // is the launch (the bash launcher, exec, Node's own start before its clock).
    const origin = /^tsgrub trace: clock origin: ([\d.]+) ms monotonic$/m.exec(r.err);
    if (!origin) return null;
    const launch = Number(origin[1]) - t0;
    const t = (k: (typeof MARKS)[number]) => launch + (at.get(k) as number);
    const copied = Math.max(t('kernel copied'), t('ramdisk copied'));
    const ends = [launch, t('parent code loaded'), t('request received'), t('disk opened'), t('config parsed, entry chosen'), Math.min(t('kernel planned'), t('ramdisk planned')), copied, wall];
    let prev = 0;
    ends.forEach((e, k) => {
      (per[k] as number[]).push(e - prev);
      prev = e;
    });
    ready.push(t('worker code loaded') - launch);
    const first = at.get('ramdisk first runs');
    if (first !== undefined) firstRuns.push(launch + first - t('config parsed, entry chosen'));
    walls.push(wall);
  }
  return { medians: per.map(median), workerReady: median(ready), ...(firstRuns.length ? { firstRuns: median(firstRuns) } : {}), workerCpuMs: workerCpu.length ? median(workerCpu) : NaN, wallMs: median(walls), readCalls: calls.length ? median(calls) : NaN, bytesPerByteCopied: ampl.length ? median(ampl) : NaN };
}

const fmt = (x: number | null, d = 2) => (x === null || !Number.isFinite(x) ? '—' : x.toFixed(d));

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist/cli/worker.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const built = spawnSync('bash', [join(HERE, 'images.sh'), ...selected], { stdio: 'inherit', env: { ...process.env, BENCH_WORK: WORK, BENCH_KVER: KVER } });
  if (built.status !== 0) throw new Error('bench/images.sh failed');
  const outRoot = process.env.BENCH_OUT ?? mkdtempSync(existsSync('/dev/shm') ? '/dev/shm/tsgrub-bench-' : '/tmp/tsgrub-bench-');
  const out = join(outRoot, 'out');
  const ts = tools();
  const payloadBytes = statSync(join(WORK, 'vmlinuz')).size + statSync(join(WORK, 'initrd.img')).size;
  const started = new Date();
  const results: Array<{ image: string; tools: ToolResult[]; counters: Counters | null; countersError?: string; phases: Phases | null }> = [];
  for (const name of selected) {
    const img = join(WORK, `${name}.img`);
    const applicable = ts.filter((t) => t.cmds(img, out).length > 0);
    const samples = new Map<string, Sample[]>(applicable.map((t) => [t.name, []]));
    const verified = new Map<string, boolean>();
    const failed = new Map<string, string>();
    // Warm-up (run 0, also verifies outputs), then RUNS timed rounds, rotating the order each round.
    for (let run = 0; run <= RUNS; run++) {
      for (let j = 0; j < applicable.length; j++) {
        const tool = applicable[(j + run) % applicable.length] as Tool;
        if (failed.has(tool.name)) continue;
        const s = await runTool(tool, img, out);
        if (!s.ok) {
          failed.set(tool.name, s.err ?? 'failed');
          continue;
        }
        if (run === 0) {
          // A tool that did not copy the payload is not timed: its times would be of something else.
          const same = sameAsPayload(tool.outputs(out));
          verified.set(tool.name, same);
          if (!same) failed.set(tool.name, 'its output differs from the payload');
        } else (samples.get(tool.name) as Sample[]).push(s);
      }
      process.stderr.write('.');
    }
    const med = (t: string) => {
      const ss = samples.get(t);
      return ss && ss.length && !failed.has(t) ? median(ss.map((s) => s.wall)) : null;
    };
    const pyg = med('pygrub');
    const floor = med('node-floor');
    const cat = med('cat');
    const floorCpu = samples.get('node-floor')?.length ? median((samples.get('node-floor') as Sample[]).map((s) => s.cpu)) : null;
    const rows: ToolResult[] = applicable.map((t) => {
      const ss = samples.get(t.name) as Sample[];
      const walls = ss.map((s) => s.wall);
      const ok = !failed.has(t.name) && ss.length > 0;
      const wm = ok ? median(walls) : NaN;
      const procs: Record<string, number> = {};
      for (const s of ss) for (const [k, v] of Object.entries(s.procs)) procs[k] = Math.max(procs[k] ?? 0, v);
      return {
        tool: t.name,
        ok,
        verified: verified.get(t.name) ?? false,
        ...(failed.has(t.name) ? { error: failed.get(t.name) } : {}),
        wallMedian: wm,
        wallMin: ok ? Math.min(...walls) : NaN,
        wallMax: ok ? Math.max(...walls) : NaN,
        cpuMedian: ok ? median(ss.map((s) => s.cpu)) : NaN,
        mibPerSec: ok ? payloadBytes / MIB / wm : NaN,
        rssMaxKiB: ok ? Math.max(...ss.map((s) => s.rssKiB)) : NaN,
        procsKiB: procs,
        vsPygrub: ok && pyg ? wm / pyg : null,
        vsNodeFloor: ok && floor ? wm / floor : null,
        vsCat: ok && cat ? wm / cat : null,
        cpuVsNodeFloor: ok && floorCpu ? median(ss.map((s) => s.cpu)) / floorCpu : null,
        samples: walls,
      };
    });
    let cnt: Counters | null = null;
    let countersError: string | undefined;
    try {
      cnt = await counters(img, join(outRoot, 'counters'));
    } catch (e) {
      countersError = (e as Error).message;
    }
    rmSync(join(outRoot, 'counters'), { recursive: true, force: true });
    const ph = applicable.some((t) => t.name === 'tsgrub') ? await phases(img, out) : null;
    results.push({ image: name, tools: rows, counters: cnt, ...(countersError ? { countersError } : {}), phases: ph });
    process.stderr.write(` ${name}\n`);
  }
  const lookups = await lookupComparison();
  const concurrency = await concurrencyRun(out, results);
  rmSync(outRoot, { recursive: true, force: true });
  const report = {
    date: started.toISOString(),
    node: process.version,
    cores: availableParallelism(),
    runs: RUNS,
    payloadBytes,
    nodeExtraCaCerts: 'unset for every child',
    cpuSource: (cpuGroup ? 'cgroup' : 'rusage') as 'cgroup' | 'rusage',
    outputDirectory: outRoot.startsWith('/dev/shm') ? 'tmpfs (/dev/shm)' : outRoot,
    results,
    lookups,
    concurrency,
  };
  // A partial run (some images or tools only) goes to results/partial.*; a full one is the latest.
  const full = !process.env.BENCH_IMAGES && !process.env.BENCH_TOOLS;
  const base = join(HERE, 'results', full ? 'latest' : 'partial');
  mkdirSync(join(HERE, 'results'), { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 1)}\n`);
  const md = markdown(report);
  writeFileSync(`${base}.md`, md);
  if (full && process.env.BENCH_NO_README !== '1') writeReadmes(report, md);
  process.stdout.write(md);
  cpuGroup?.remove();
}

/** Replaces what lies between `<!-- name:begin -->` and `<!-- name:end -->` in a file, if both are there. */
function replaceBlock(file: string, name: string, body: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const a = text.indexOf(`<!-- ${name}:begin -->`);
  const b = text.indexOf(`<!-- ${name}:end -->`);
  if (a >= 0 && b > a) writeFileSync(file, `${text.slice(0, a)}<!-- ${name}:begin -->\n${body}${text.slice(b)}`);
}

/** bench/README.md gets the whole report, the project's README the summary table. */
function writeReadmes(report: Parameters<typeof markdown>[0], md: string): void {
  replaceBlock(join(HERE, 'README.md'), 'results', md);
  replaceBlock(join(ROOT, 'README.md'), 'bench', summary(report));
}

/** One line per image: tsgrub against the floor and the tools a user would otherwise run. */
function summary(r: Parameters<typeof markdown>[0]): string {
  const lines = [
    `Latest full run (${r.date.slice(0, 10)}, Node ${r.node}, ${r.cores} cores, medians of ${r.runs}; the details and the analysis are in bench/README.md):`,
    '',
    '| image | tsgrub s | × Node floor | × pygrub | × grub-fstest | peak RSS MiB | bytes read ÷ copied |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const res of r.results) {
    const t = res.tools.find((x) => x.tool === 'tsgrub');
    if (!t || !t.ok) continue;
    const gf = res.tools.find((x) => x.tool === 'grub-fstest');
    const vsGf = gf && gf.ok && gf.wallMedian > 0 ? t.wallMedian / gf.wallMedian : null;
    const ampl = res.phases?.bytesPerByteCopied ?? res.counters?.readAmplification ?? null;
    lines.push(`| ${res.image} | ${t.wallMedian.toFixed(2)} | ${fmt(t.vsNodeFloor)} | ${fmt(t.vsPygrub)} | ${fmt(vsGf)} | ${(t.rssMaxKiB / 1024).toFixed(0)} | ${fmt(ampl, 4)} |`);
  }
  const cc = r.concurrency;
  if (cc) lines.push('', `${cc.processes} runs at once on ${cc.image}: ${cc.ratio.toFixed(2)}× (16 × one run ÷ cores).`);
  lines.push('');
  return lines.join('\n');
}

interface ConcurrencyResult {
  image: string;
  processes: number;
  wall: number;
  single: number;
  expected: number;
  ratio: number;
  allOk: boolean;
}

/** N tsgrub processes at once on one image vs N × one run ÷ cores. */
async function concurrencyRun(out: string, results: Array<{ image: string; tools: ToolResult[] }>): Promise<ConcurrencyResult | null> {
  const n = Number(process.env.BENCH_CONCURRENCY ?? 16);
  const base = results.find((r) => r.image === 'ext4-4k') ?? results[0];
  const single = base?.tools.find((t) => t.tool === 'tsgrub' && t.ok);
  if (!n || !base || !single) return null;
  const img = join(WORK, `${base.image}.img`);
  const dirs = Array.from({ length: n }, (_, i) => join(out, `c${i}`));
  const rounds: number[] = [];
  let allOk = true;
  for (let round = 0; round < 3; round++) {
    for (const d of dirs) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
    }
    // All n started by one bash (as the single runs are timed: from inside, not from this process's
    // n spawns); it fails if any of them does.
    const all = 'b=$1 i=$2; shift 2; p=(); for d in "$@"; do "$b" -q --output-directory="$d" "$i" & p+=($!); done; rc=0; for x in "${p[@]}"; do wait "$x" || rc=1; done; exit $rc';
    const wallFile = join(out, 'concurrency.wall');
    rmSync(wallFile, { force: true });
    const argv = wrapped(['/bin/bash', '-c', all, 'bench-all', join(ROOT, 'bin/tsgrub'), img, ...dirs], '', wallFile);
    const code = await new Promise<number | null>((res) => {
      const c = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore', env: childEnv });
      c.on('close', (x) => res(x));
    });
    const t = wrappedTimes(wallFile);
    rounds.push(t.end - t.start);
    allOk &&= code === 0;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  const wall = median(rounds);
  const expected = (n * single.wallMedian) / availableParallelism();
  return { image: base.image, processes: n, wall, single: single.wallMedian, expected, ratio: wall / expected, allOk };
}

function markdown(r: {
  date: string;
  node: string;
  cores: number;
  runs: number;
  payloadBytes: number;
  results: Array<{ image: string; tools: ToolResult[]; counters: Counters | null; countersError?: string; phases: Phases | null }>;
  lookups?: LookupComparison | null;
  concurrency: ConcurrencyResult | null;
  cpuSource?: 'cgroup' | 'rusage';
}): string {
  const lines: string[] = [];
  // Whole-tree CPU from a cgroup counts the prestarted worker; rusage (older results, no cgroup) cannot.
  const cpuText =
    r.cpuSource === 'cgroup'
      ? 'CPU is user+sys of every process the run started, from a cgroup of the harness (tsgrub: launcher, parent and prestarted worker).'
      : "CPU is user+sys from rusage (`/usr/bin/time`): for tsgrub it misses the prestarted worker, which nothing waits for (the phase table has the worker's own CPU).";
  lines.push(`Run ${r.date}, Node ${r.node}, ${r.cores} cores, ${r.runs} timed runs per tool after a warm-up, ${(r.payloadBytes / MIB).toFixed(0)} MiB extracted per run (kernel + ramdisk), output on tmpfs, NODE_EXTRA_CA_CERTS unset.`);
  lines.push('');
  lines.push(`Wall time is the median (min–max) of whole processes, startup included, timed by a bash wrapper around each command (the harness's own spawn is not counted); ratios are to pygrub -q, the Node floor and \`cat\` of the same run. ${cpuText} RSS is the largest single process of the tree (\`/usr/bin/time %M\`); for tsgrub, parent/worker peaks come from /proc polling (VmHWM). ✓ = output compared byte for byte with the payload (a tool whose output differs is reported as failing, not timed).`);
  lines.push('');
  lines.push('| image | tool | wall s median (min–max) | MiB/s | CPU s | peak RSS MiB | × pygrub | × Node floor | × cat | ✓ |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const res of r.results) {
    for (const t of res.tools) {
      if (!t.ok) {
        lines.push(`| ${res.image} | ${t.tool} | fails: ${(t.error ?? '').replace(/\|/g, '\\|').slice(0, 80)} | | | | | | | |`);
        continue;
      }
      const procs = Object.entries(t.procsKiB)
        .filter(([k]) => k === 'tsgrub-main.cjs' || k === 'worker-main.cjs' || k === 'worker.js')
        .map(([k, v]) => `${k === 'tsgrub-main.cjs' ? 'parent' : 'worker'} ${(v / 1024).toFixed(0)}`)
        .join(', ');
      lines.push(
        `| ${res.image} | ${t.tool} | ${fmt(t.wallMedian)} (${fmt(t.wallMin)}–${fmt(t.wallMax)}) | ${fmt(t.mibPerSec, 0)} | ${fmt(t.cpuMedian)} | ${fmt(t.rssMaxKiB / 1024, 0)}${procs ? ` (${procs})` : ''} | ${fmt(t.vsPygrub)} | ${fmt(t.vsNodeFloor)} | ${fmt(t.vsCat)} | ${t.verified ? '✓' : '✗'} |`,
      );
    }
  }
  lines.push('');
  lines.push('tsgrub counters (in-process, the library the worker runs): data read ÷ extracted (read amplification), data read calls and mean read size, all bytes/calls reaching the image (metadata included), metadata bytes charged, nodes visited, and the median time to open the disk, parse the config and look both files up.');
  lines.push('');
  lines.push('| image | amplification | data reads | mean read KiB | all bytes read | all reads | metadata KiB | nodes | lookup ms | copy ms |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const res of r.results) {
    const c = res.counters;
    if (!c) {
      lines.push(`| ${res.image} | ${res.countersError ?? 'n/a'} | | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${res.image} | ${c.readAmplification.toFixed(4)} | ${c.dataReadCalls} | ${(c.meanDataReadBytes / 1024).toFixed(0)} | ${c.totalBytesRead} | ${c.totalReadCalls} | ${(c.metadataBytes / 1024).toFixed(0)} | ${c.nodesVisited} | ${c.lookupMs.toFixed(1)} | ${c.copyMs.toFixed(0)} |`,
    );
  }
  if (r.results.some((x) => x.phases)) {
    lines.push('');
    lines.push(
      `Where tsgrub's time goes (\`TSGRUB_TRACE=1\`, medians of the runs, ms; bin/tsgrub starts the worker together with the parent). *worker ready*: when the worker had loaded its code (bundle + V8 code cache), on the parent's clock — it overlaps the parent's start. Then the critical path, each column since the previous one's end, adding up to the wall time: the launch (from the harness's spawn to the parent's clock origin, which the trace gives on the monotonic clock: the bash launcher, the exec, Node's own start before its clock); the parent's Node start and code load; the hand-off (argv, output files, opening the image, the start message, the worker waking up); opening the disk (container, partitions, probing); finding and parsing the config; planning the first file (the ramdisk); copying both files (the parent, along the plans, while the worker plans the kernel); the exit (writing the record, Node's exit, until the harness sees the process gone). The plan streams, so the copy begins before *first plan* ends (when the worker had mapped the whole first file): *copy began* is when the parent had the ramdisk's first runs, ms after the config. *worker CPU*: the worker's own user + system time (${r.cpuSource === 'cgroup' ? 'part of the CPU column above, which a cgroup measures' : 'not in the CPU column above: the parent never reaps a prestarted worker, so no rusage counts it'}). The last two columns count every read that reached the image, the worker's and the parent's copy (metadata included), and bytes read ÷ bytes copied.`,
    );
    lines.push('');
    lines.push(`| image | worker ready | ${PHASE_COLUMNS.join(' | ')} | wall | copy began | worker CPU | image reads | bytes read ÷ copied |`);
    lines.push(`|---|---|${PHASE_COLUMNS.map(() => '---|').join('')}---|---|---|---|---|`);
    for (const res of r.results) {
      const p = res.phases;
      if (!p) continue;
      lines.push(`| ${res.image} | ${p.workerReady.toFixed(1)} | ${p.medians.map((x) => x.toFixed(1)).join(' | ')} | ${p.wallMs.toFixed(0)} | ${fmt(p.firstRuns ?? NaN, 1)} | ${fmt(p.workerCpuMs, 1)} | ${fmt(p.readCalls, 0)} | ${fmt(p.bytesPerByteCopied, 4)} |`);
    }
  }
  const lk = r.lookups;
  if (lk) {
    lines.push('');
    lines.push(
      `Lookups, the 50,000-file \`/boot\` (ext4-bigdir, htree) against the small one (ext4-4k), measured alternately in this process (medians of ${lk.rounds} rounds): open the disk, run the config and look both files up ${lk.bootBig.toFixed(2)} vs ${lk.bootSmall.toFixed(2)} ms → ${(lk.bootBig / lk.bootSmall).toFixed(2)}× (target ≤ 1.2×); the two lookups alone, on a volume opened for them, ${lk.statBig.toFixed(0)} vs ${lk.statSmall.toFixed(0)} µs → ${(lk.statBig / lk.statSmall).toFixed(2)}× (the htree reads its root, an index block and a leaf where the small directory is one block).`,
    );
  }
  const cc = r.concurrency;
  if (cc) {
    lines.push('');
    lines.push(
      `Concurrency: ${cc.processes} tsgrub processes at once on ${cc.image}: ${cc.wall.toFixed(2)} s (median of 3) vs ${cc.processes} × ${cc.single.toFixed(2)} s ÷ ${r.cores} cores = ${cc.expected.toFixed(2)} s → ${cc.ratio.toFixed(2)}× (target ≤ 1.5×)${cc.allOk ? '' : ', SOME RUNS FAILED'}.`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

// `--readme-only`: rewrite both READMEs from results/latest.json without running anything.
if (process.argv.includes('--readme-only')) {
  const report = JSON.parse(readFileSync(join(HERE, 'results', 'latest.json'), 'utf8')) as Parameters<typeof markdown>[0];
  writeReadmes(report, markdown(report));
} else await main();
