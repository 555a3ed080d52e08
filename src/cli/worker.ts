/**
 * The deprivileged half of tsgrub. It runs under Node's permission model with no filesystem path
 * granted beyond its own code (and, prestarted, the image), an empty environment, rlimits, and (with
 * --runas) an unprivileged uid. It parses guest bytes and selects the entry. Two ways to start:
 *
 * - Spawned by the parent: it inherits fd 3 the image (read-only), fd 4/5 the kernel and ramdisk
 *   output files (already created by the parent), fd 6 a socket to the parent; the request is argv[2].
 *   It streams the files into fd 4/5 and reports sizes; the parent checks them and formats output.
 * - Prestarted (`--prestarted`): bin/tsgrub starts it at the same time as the parent, so the two Node
 *   starts overlap; it holds fd 3/4, pipes to the parent, and nothing else (no output file, no file
 *   size allowed). It waits for the parent's `start` message, opens the image path it was granted
 *   (checking it is the file the parent opened), drops to the --runas uid itself, and sends the plan
 *   of each file (runs of the image) instead of copying: the parent copies along the checked runs.
 *   A file it cannot plan (compressed, in a container) makes the parent fall back to a spawned worker.
 */
import { fstatSync, openSync, closeSync, readFileSync, constants as C } from 'node:fs';
import { nodeCodecs } from '../codec/node.ts';
import { Disk } from '../disk.ts';
import { TsgrubError, toTsgrubError, IoError } from '../errors.ts';
import { defaultRegistry } from '../fs/drivers.ts';
import { createContext, type Limits } from '../limits.ts';
import { FileSource } from '../node/file-source.ts';
import { appendPairs, copyToFd, planCopy } from '../node/copy.ts';
import { SliceSource } from '../io/source.ts';
import { loadBoot, type LoaderOptions } from '../boot/loader.ts';
import { parseConfig } from '../boot/discover.ts';
import { resolveEntry, buildArgs } from '../boot/select.ts';
import { decodeUtf8Strict } from '../io/bytes.ts';
import type { ConfigFormat } from '../boot/types.ts';
import type { BootEntry, BootMenu } from '../boot/types.ts';
import { MAP_CHUNK_RUNS, type MenuEntryView, type WorkerMessage } from './protocol.ts';
import { FdChannel } from './fd-channel.ts';

export interface WorkerRequest {
  entry?: string;
  kernel?: string;
  ramdisk?: string;
  args: string;
  offset?: number;
  /** --isconfig: fd 3 is a config file, not a disk; its name picks the parser. */
  isconfig?: string;
  /** Only these filesystem drivers may run. */
  filesystems?: string[];
  listEntries: boolean;
  notReally: boolean;
  interactive: boolean;
  limits: Partial<Limits>;
  /** TSGRUB_TRACE: report when each phase ended (monotonic clock, ms) and the image reads in the result. */
  trace?: boolean;
  /** --debug: report what confines the worker (uid, permission model, rlimits). */
  debug?: boolean;
}

const FD_IMAGE = 3;
const FD_KERNEL = 4;
const FD_RAMDISK = 5;
const FD_CHANNEL = 6;
/** Started by bin/tsgrub before the parent knew its command line (see the header). */
const PRESTARTED = process.argv[2] === '--prestarted';
const FD_PRE_IN = 3;
const FD_PRE_OUT = 4;

function clip(s: string | null, n: number): string | null {
  return s === null ? null : s.length > n ? s.slice(0, n) : s;
}

function entryView(e: BootEntry): MenuEntryView {
  return {
    title: clip(e.title, 256) as string,
    kernel: clip(e.kernel, 1024),
    initrd: clip(e.initrd[0] ?? null, 1024),
    args: clip(e.args, 4096),
    lines: e.lines.slice(0, 64).map((l) => clip(l, 1024) as string),
  };
}

function failureLines(failures: Array<{ path: string; error: TsgrubError }>): string[] {
  return failures.slice(0, 64).map((f) => `partition ${f.path}: ${f.error.message}`.slice(0, 512));
}

/**
 * Phase end times on the monotonic clock (ms), for `tsgrub`'s timing breakdown (with TSGRUB_TRACE).
 * process.hrtime, not `performance`, whose first use loads perf_hooks (~2 ms).
 */
const trace: Array<[string, number]> = [];
const mark = (label: string) => trace.push([label, Number(process.hrtime.bigint()) / 1e6]);

async function main(): Promise<void> {
  mark(`worker code loaded (code cache ${String((globalThis as Record<symbol, unknown>)[Symbol.for('tsgrub.codeCache')] ?? 'not used')})`);
  const chan = PRESTARTED ? new FdChannel(FD_PRE_IN, FD_PRE_OUT) : new FdChannel(FD_CHANNEL);
  const reply = async (m: WorkerMessage) => chan.send(m);
  let failures: Array<{ path: string; error: TsgrubError }> = [];
  let req: WorkerRequest = { args: '', listEntries: false, notReally: false, interactive: false, limits: {} };
  try {
    let imageFd = FD_IMAGE;
    if (PRESTARTED) {
      // Blocks until the parent has parsed its command line; EOF (the parent did not need us) ends here.
      const start = chan.next() as { type?: unknown; request?: unknown; image?: { path?: unknown; dev?: unknown; ino?: unknown }; runas?: unknown };
      if (start?.type !== 'start' || typeof start.request !== 'object' || start.request === null) throw new IoError('bad start message from the parent');
      req = start.request as WorkerRequest;
      mark('request received');
      imageFd = openGrantedImage(start.image);
      if (typeof start.runas === 'number') dropPrivileges(start.runas);
    } else req = JSON.parse(process.argv[2] ?? '{}') as WorkerRequest;
    const ctx = createContext(req.limits, nodeCodecs);
    const image = FileSource.fromFd(imageFd, 'image');
    image.syncReads = true; // this process has nothing else to do while a read waits
    if (req.isconfig !== undefined) {
      await reply({ type: 'listing', listing: await isconfig(image, req, ctx.limits), failures: [] });
      return;
    }
    const unknown = (req.filesystems ?? []).filter((id) => !defaultRegistry.drivers.some((d) => d.id === id));
    if (unknown.length || req.filesystems?.length === 0) {
      throw new TsgrubError('InvalidArgument', `unknown filesystem ${unknown.join(',') || '(none)'} in --filesystems; known: ${defaultRegistry.drivers.map((d) => d.id).join(',')}`);
    }
    const registry = req.filesystems ? defaultRegistry.only(req.filesystems) : defaultRegistry;
    const disk = await Disk.open(image, ctx, registry);
    mark('disk opened');
    const opts: LoaderOptions = {
      entry: req.entry,
      kernel: req.kernel,
      ramdisk: req.ramdisk,
      args: req.args,
      listEntries: req.listEntries,
      only:
        req.offset !== undefined
          ? { path: `@${req.offset}`, partition: null, source: new SliceSource(image, Math.min(req.offset, image.size), Math.max(0, image.size - req.offset), 'offset') }
          : undefined,
      choose: req.interactive
        ? async (menu: BootMenu, defaultIndex: number) => {
            await reply({
              type: 'menu',
              entries: menu.entries.slice(0, ctx.limits.menuEntries).map(entryView),
              defaultIndex,
              timeout: menu.timeout,
              hidden: !!menu.hidden,
              password: !!menu.password,
              partition: '',
              configPath: menu.configPath,
            });
            const m = chan.next() as { type?: unknown; index?: unknown; edited?: unknown };
            ctx.budget.restartClock();
            if (m?.type !== 'choose' || typeof m.index !== 'number') throw new IoError('bad reply from parent');
            const base = menu.entries[m.index] ?? menu.entries[defaultIndex];
            const ed = m.edited as { kernel?: unknown; initrd?: unknown; args?: unknown } | null;
            if (ed && typeof ed.kernel === 'string') {
              return {
                title: base?.title ?? 'edited',
                kernel: ed.kernel,
                initrd: typeof ed.initrd === 'string' && ed.initrd ? [ed.initrd] : [],
                args: typeof ed.args === 'string' ? ed.args : null,
                lines: [],
                source: 'edited',
              } satisfies BootEntry as BootEntry;
            }
            return base as BootEntry;
          }
        : undefined,
    };
    const outcome = await loadBoot(disk, opts);
    mark('config parsed, entry chosen');
    failures = outcome.failures;
    if (req.listEntries) {
      await reply({ type: 'listing', listing: outcome.listing.slice(0, 60_000), failures: failureLines(failures) });
      return;
    }
    const choice = outcome.choice;
    if (!choice) {
      throw new TsgrubError('NotFound', 'Unable to find partition containing kernel');
    }
    const { vfs } = choice;
    let kernelBytes = 0;
    let ramdiskBytes: number | null = null;
    // The ramdisk may live on another device than the kernel (GRUB 2 device prefixes, loopback).
    const rvfs = choice.ramdiskVfs ?? vfs;
    const open = async (path: string, what: string, from = vfs) => {
      try {
        const node = await from.stat(path);
        if (node.kind !== 'file') throw new TsgrubError('NotFound', `${path} is not a regular file`, { path });
        return node;
      } catch (e) {
        const err = toTsgrubError(e);
        if (req.notReally && err.code === 'NotFound') throw new TsgrubError('NotFound', `The requested ${what} file does not exist`, { path });
        throw new TsgrubError(err.code, `Error opening ${path} in guest: ${err.message}`, { ...err.data, path });
      }
    };
    const knode = await open(choice.kernel, 'kernel');
    const rnode = choice.ramdisk ? await open(choice.ramdisk, 'ramdisk', rvfs) : null;
    if (!req.notReally && PRESTARTED) {
      // Plans only: the parent copies along them while this process plans the next file. The
      // ramdisk first: it is the long copy, and the kernel's plan then overlaps it instead of
      // delaying it (a 100 MiB FAT chain takes ~10 ms to walk, more while a copy runs beside it).
      const files: Array<['kernel' | 'ramdisk', typeof knode, typeof vfs]> = [['kernel', knode, vfs]];
      if (rnode) files.unshift(['ramdisk', rnode, rvfs]);
      for (const [which, node, from] of files) {
        // Runs go out as they become final, so the parent copies while this process maps the rest:
        // a chunk as soon as it holds MAP_CHUNK_RUNS runs or 8 MiB of the file.
        let held: number[] = []; // (length, offset) pairs
        let heldBytes = 0;
        const send = (done: boolean) => {
          for (let i = 0; i < held.length || (done && i === 0); i += 2 * MAP_CHUNK_RUNS) {
            const last = i + 2 * MAP_CHUNK_RUNS >= held.length;
            chan.send({ type: 'map', file: which, size: node.size, runs: held.slice(i, i + 2 * MAP_CHUNK_RUNS), done: done && last });
          }
          held = [];
          heldBytes = 0;
        };
        const plan = await planCopy(from, node, {
          only: image,
          onRuns: (runs) => {
            heldBytes += appendPairs(runs, held);
            if (held.length >= 2 * MAP_CHUNK_RUNS || heldBytes >= 8 << 20) send(false);
          },
        });
        if (plan === null) {
          // Not mappable after all (or not at all): the parent drops what it was sent and falls back.
          await reply({ type: 'unmappable', file: which });
          return;
        }
        mark(`${which} planned`);
        send(true);
        if (which === 'kernel') kernelBytes = plan.size;
        else ramdiskBytes = plan.size;
      }
    } else if (!req.notReally) {
      // Both at once: one file's mapping (metadata reads, chain and extent walks) runs while the
      // other's writes are in flight, and the two files' writes go to two pool threads.
      const copies = [copyToFd(vfs, knode, FD_KERNEL).finally(() => mark('kernel copied'))];
      if (rnode) copies.push(copyToFd(rvfs, rnode, FD_RAMDISK).finally(() => mark('ramdisk copied')));
      const settled = await Promise.allSettled(copies);
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      kernelBytes = (settled[0] as PromiseFulfilledResult<number>).value;
      if (rnode) ramdiskBytes = (settled[1] as PromiseFulfilledResult<number>).value;
    }
    await reply({
      type: 'result',
      kernelBytes,
      ramdiskBytes,
      args: choice.args,
      listing: '',
      warnings: choice.warnings.slice(0, 32).map((w) => w.slice(0, 512)),
      partition: choice.candidate.path,
      how: choice.how,
      config: choice.menu ? { format: choice.menu.format, path: choice.menu.configPath.slice(0, 1024) } : null,
      ...(req.debug ? { identity: identity() } : {}),
      ...(req.trace
        ? {
            trace: [['worker process started', Number(process.hrtime.bigint()) / 1e6 - process.uptime() * 1000] as [string, number], ...trace],
            // Everything that reached the image descriptor (metadata and data): read amplification.
            reads: { calls: image.readCalls, bytes: image.bytesRead },
            // A prestarted worker is never reaped by the parent, so no rusage of the tree counts it.
            cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
          }
        : {}),
    });
  } catch (e) {
    const err = toTsgrubError(e);
    await reply({ type: 'error', error: { code: err.code, message: err.message.slice(0, 2048), data: {} }, failures: failureLines(failures) });
  }
}

/**
 * What confines this process, as seen from inside: uid/gid/groups, whether opening a path is denied
 * (Node's permission model), and the rlimits the parent asked prlimit for. Reported with --debug and
 * checked by the isolation tests.
 */
function identity(): { uid: number; gid: number; groups: number[]; pathsDenied: boolean; limits: string[]; envVars: number } {
  let pathsDenied = false;
  try {
    closeSync(openSync('/etc/passwd', 'r'));
  } catch (e) {
    pathsDenied = (e as { code?: string }).code === 'ERR_ACCESS_DENIED';
  }
  let limits: string[] = [];
  try {
    limits = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .filter((l) => /^Max (data size|file size|open files|core file size)/.test(l))
      .map((l) => l.replace(/\s+/g, ' ').trim());
  } catch {
    limits = [];
  }
  return { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1, groups: process.getgroups?.() ?? [], pathsDenied, limits, envVars: Object.keys(process.env).length };
}

/**
 * Prestarted: opens the image bin/tsgrub granted this process (Node's permission model allows that
 * one path) and checks that it is the file the parent opened (device and inode), so the parent can
 * copy along runs planned in it. Happens before any guest byte is read and before --runas applies
 * (the image may be readable by root only; the spawned worker inherits the parent's descriptor).
 */
function openGrantedImage(img: { path?: unknown; dev?: unknown; ino?: unknown } | undefined): number {
  if (!img || typeof img.path !== 'string' || typeof img.dev !== 'string' || typeof img.ino !== 'string') throw new IoError('bad image in the start message');
  const granted = process.argv[3];
  if (img.path !== granted) throw new IoError('the parent named another image than the one granted');
  const fd = openSync(img.path, C.O_RDONLY | C.O_NOCTTY);
  const st = fstatSync(fd, { bigint: true });
  if (String(st.dev) !== img.dev || String(st.ino) !== img.ino) {
    closeSync(fd);
    throw new IoError('the granted image is not the file the parent opened');
  }
  return fd;
}

/** --runas for a prestarted worker: what spawn({uid, gid}) does for a spawned one, then checked. */
function dropPrivileges(id: number): void {
  if (!Number.isSafeInteger(id) || id <= 0) throw new IoError('bad --runas uid');
  process.setgroups?.([]);
  process.setgid?.(id);
  process.setuid?.(id);
  if (process.getuid?.() !== id || process.geteuid?.() !== id || process.getgid?.() !== id || process.getegid?.() !== id) {
    throw new IoError(`could not run as uid ${id}`);
  }
}

/** The config format a file name suggests (pygrub always used the GRUB 2 parser here). */
export function formatForName(name: string): ConfigFormat {
  const base = name.slice(name.lastIndexOf('/') + 1).toLowerCase();
  if (base === 'menu.lst' || base === 'grub.conf') return 'grub-legacy';
  if (base === 'extlinux.conf' || base === 'isolinux.cfg' || base === 'syslinux.cfg' || base === 'pxelinux.cfg') return 'extlinux';
  if (base === 'lilo.conf') return 'lilo';
  return 'grub2';
}

/** --isconfig: parse the file and print what would be booted, as pygrub's debug mode does. */
async function isconfig(src: FileSource, req: WorkerRequest, limits: ReturnType<typeof createContext>['limits']): Promise<string> {
  const bytes = await src.read(0, Math.min(src.size, limits.configBytes));
  const text = decodeUtf8Strict(bytes);
  if (text === null) throw new TsgrubError('Config', 'config file is not valid UTF-8');
  const name = req.isconfig ?? '';
  const menu = await parseConfig(formatForName(name), text, name, undefined, limits);
  const i = resolveEntry(menu, req.entry);
  const e = menu.entries[i];
  if (!e) throw new TsgrubError('Config', 'no boot entries in the config');
  let out = `  kernel: ${e.kernel ?? 'None'}\n`;
  if (e.initrd[0]) out += `  initrd: ${e.initrd[0]}\n`;
  out += `  args: ${buildArgs(e.args, req.args)}\n`;
  return out;
}

// Make sure the inherited descriptors are what we expect before touching them.
for (const fd of PRESTARTED ? [FD_PRE_IN, FD_PRE_OUT] : [FD_IMAGE, FD_CHANNEL]) fstatSync(fd);
main().catch((e) => {
  process.stderr.write(`tsgrub worker: ${toTsgrubError(e).message}\n`);
  process.exitCode = 70;
});
