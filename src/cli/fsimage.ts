/**
 * `fsimage`: inspect disk images the way people use debugfs, grub-fstest or virt-cat, without
 * mounting them: probe, ls, cat, cp, stat, menu. Guest strings are printed with control characters
 * escaped; errors are one line on stderr (a stack trace only with --debug).
 */
import { closeSync, constants as C, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultRegistry } from '../fs/drivers.ts';
import { escapeForTerminal } from '../boot/escape.ts';
import { configFs } from '../boot/loader.ts';
import { findBootConfig } from '../boot/discover.ts';
import type { Candidate, Disk } from '../disk.ts';
import { TsgrubError, isTsgrubError, toTsgrubError, InvalidArgumentError, NotFoundError } from '../errors.ts';
import { decodeUtf8 } from '../io/bytes.ts';
import type { FsNode } from '../fs/types.ts';
import type { Vfs } from '../fs/vfs.ts';
import { copyToFd } from '../node/copy.ts';
import { openImage } from '../node/index.ts';
import type { FilesystemDriver, OpenOptions } from '../fs/types.ts';
import { readElTorito, type ElToritoEntry } from '../fs/iso9660/eltorito.ts';

const USAGE = `Usage: fsimage COMMAND IMAGE [ARGS] [OPTIONS]
Commands:
  probe IMAGE              partition table, partitions and their filesystems (--json)
  ls IMAGE [PATH]          list a directory (-l long form)
  cat IMAGE PATH           write a file's bytes to stdout
  cp IMAGE PATH DEST       copy a file out of the image
  stat IMAGE PATH          show a file's metadata
  menu IMAGE               show the boot menu tsgrub would offer
Options:
  -p, --partition N        partition to use (as probe numbers them; 0 = whole disk)
  -l, --long               long listing
      --json               machine-readable output
      --dataset NAME       ZFS dataset to open
      --subvolume PATH     btrfs subvolume to open
      --allow-backing      follow qcow2 backing / VHD parent files in the image's folder
      --driver MODULE      load third-party filesystem drivers from MODULE (tried before the
                           built-in ones; repeatable): every exported {id, probe, open} object
      --debug              stack traces on errors
  -h, --help`;

/** JSON with everything a terminal could interpret as control escaped (C0 by JSON itself, C1/bidi here). */
export function safeJson(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const esc = (b: Uint8Array | string) => escapeForTerminal(typeof b === 'string' ? b : decodeUtf8(b));

function modeString(node: FsNode): string {
  const t = node.kind === 'dir' ? 'd' : node.kind === 'symlink' ? 'l' : node.kind === 'file' ? '-' : '?';
  const m = node.mode ?? 0;
  const bits = 'rwxrwxrwx';
  let s = t;
  for (let i = 0; i < 9; i++) s += m & (1 << (8 - i)) ? bits[i] : '-';
  return s;
}

function isoTime(t: number | undefined): string {
  if (t === undefined || !Number.isFinite(t)) return '-';
  const d = new Date(t * 1000);
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString().replace('T', ' ').slice(0, 19);
}

class ReaderGone extends Error {}

/** The plugin API from the command line: every exported object shaped like a FilesystemDriver. */
async function loadDrivers(modules: readonly string[]): Promise<FilesystemDriver[]> {
  const out: FilesystemDriver[] = [];
  for (const m of modules) {
    const ns = (await import(pathToFileURL(resolvePath(m)).href)) as Record<string, unknown>;
    const found = Object.values(ns).filter(
      (v): v is FilesystemDriver =>
        typeof v === 'object' && v !== null && typeof (v as FilesystemDriver).id === 'string' && typeof (v as FilesystemDriver).probe === 'function' && typeof (v as FilesystemDriver).open === 'function',
    );
    if (found.length === 0) throw new InvalidArgumentError(`--driver ${m}: the module exports no filesystem driver`);
    out.push(...found);
  }
  return out;
}

interface Out {
  out(s: string | Uint8Array): void;
  err(s: string): void;
}

async function pickVolume(disk: Disk, partition: string | undefined, path: string | null, options: OpenOptions | undefined): Promise<{ vfs: Vfs; cand: Candidate }> {
  if (partition !== undefined) {
    const cand = disk.candidate(partition);
    if (!cand) throw new InvalidArgumentError(`no partition ${partition} (see fsimage probe)`);
    return { vfs: await disk.open(cand, options), cand };
  }
  const found = await disk.findVolume(async (vfs) => (path === null ? true : vfs.exists(path)), options);
  if ('vfs' in found) return { vfs: found.vfs, cand: found.candidate };
  if (found.errors.length === 1) throw found.errors[0]?.error as TsgrubError;
  const why = found.errors.map((e) => `${e.path}: ${e.error.message}`).join('; ');
  if (path !== null) throw new NotFoundError(`${path} (in no partition${why ? `; ${why}` : ''})`);
  throw new TsgrubError('Unsupported', `no readable filesystem${why ? `: ${why}` : ''}`);
}

async function probe(disk: Disk, json: boolean, o: Out): Promise<void> {
  const t = disk.table;
  const rows = [];
  const cands = [disk.whole(), ...disk.table.partitions.map((p) => ({ path: p.path, partition: p, source: p.source }))];
  for (const c of cands) {
    const p = c.partition;
    const probed = p?.container ? null : await disk.probe(c);
    rows.push({
      path: c.path,
      scheme: p?.scheme ?? null,
      number: p?.number ?? 0,
      type: p?.type ?? null,
      typeName: p?.typeName ?? null,
      start: p?.start ?? 0,
      size: c.source.size,
      bootable: p?.bootable ?? false,
      name: p?.name ?? null,
      uuid: p?.uuid ?? null,
      container: p?.container ?? false,
      parent: p?.parent ?? null,
      filesystem: probed?.fs ? { type: probed.fs.type, label: probed.fs.label ?? null, uuid: probed.fs.uuid ?? null } : null,
      error: probed?.error ? probed.error.toJSON() : null,
    });
  }
  for (const lv of disk.lvs) {
    const c = { path: lv.name, partition: null, source: lv.source };
    const probed = lv.available ? await disk.probe(c) : null;
    rows.push({
      path: lv.name, scheme: 'lvm', number: 0, type: 'lv', typeName: 'LVM logical volume', start: 0, size: lv.size, bootable: false, name: lv.lv, uuid: lv.uuid,
      container: false, parent: null,
      filesystem: probed?.fs ? { type: probed.fs.type, label: probed.fs.label ?? null, uuid: probed.fs.uuid ?? null } : null,
      error: lv.error ? lv.error.toJSON() : probed?.error ? probed.error.toJSON() : null,
    });
  }
  // El Torito boot catalogs of the ISO 9660 volumes (the whole disk of a hybrid ISO, or a partition).
  const elTorito: Array<{ path: string; entries: ElToritoEntry[] }> = [];
  for (const r of rows) {
    if (r.filesystem?.type !== 'iso9660') continue;
    const c = disk.candidate(r.path);
    if (!c) continue;
    try {
      const entries = await readElTorito(c.source, disk.ctx);
      if (entries?.length) elTorito.push({ path: r.path, entries });
    } catch (e) {
      if (!isTsgrubError(e)) throw e;
    }
  }
  const container = disk.container.format;
  if (json) {
    o.out(`${safeJson({ size: disk.source.size, container, backing: disk.container.chain, scheme: t.scheme, id: t.id ?? null, warnings: t.warnings, partitions: rows, elTorito })}\n`);
    return;
  }
  if (container) o.out(`container: ${container}${disk.container.chain.length ? ` (backing: ${disk.container.chain.map(esc).join(' -> ')})` : ''}\n`);
  o.out(`disk: ${disk.source.size} bytes, partition table: ${t.scheme ?? 'none'}${t.id ? ` (id ${esc(t.id)})` : ''}\n`);
  for (const w of t.warnings) o.out(`warning: ${esc(w)}\n`);
  const w = Math.max(6, ...rows.map((r) => esc(r.path).length + 2));
  o.out(`${'part'.padEnd(w)} ${'start'.padStart(12)} ${'size'.padStart(12)}  ${'type'.padEnd(22)} ${'fs'.padEnd(8)} label / uuid\n`);
  for (const r of rows) {
    if (r.path === '0' && !r.filesystem && t.scheme) continue;
    const type = r.container ? `${r.typeName ?? r.type ?? ''} (container)` : (r.typeName ?? r.type ?? '-');
    const fs = r.filesystem ? r.filesystem.type : r.error ? `error: ${r.error.message}` : '-';
    const lab = r.filesystem ? `${r.filesystem.label ?? ''}${r.filesystem.uuid ? ` ${r.filesystem.uuid}` : ''}` : '';
    o.out(`${esc(r.path + (r.bootable ? '*' : '')).padEnd(w)} ${String(r.start).padStart(12)} ${String(r.size).padStart(12)}  ${esc(type).padEnd(22)} ${esc(fs).padEnd(8)} ${esc(lab)}\n`);
  }
  for (const et of elTorito) {
    o.out(`El Torito boot catalog (${et.path === '0' ? 'whole disk' : `partition ${et.path}`}):\n`);
    for (const e of et.entries) {
      o.out(`  ${e.bootable ? 'bootable' : 'not bootable'} ${e.platform} ${e.mediaType}, load RBA ${e.loadRba}, ${e.sectorCount} sectors\n`);
    }
  }
}

async function ls(vfs: Vfs, path: string, long: boolean, json: boolean, o: Out): Promise<void> {
  const node = await vfs.stat(path);
  const entries = node.kind === 'dir' ? await vfs.readdir(node) : [{ name: new TextEncoder().encode(path.split('/').pop() ?? path), kind: node.kind }];
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const base = path.endsWith('/') ? path : `${path}/`;
  const rows = [];
  for (const e of entries) {
    const name = decodeUtf8(e.name);
    if (!long && !json) {
      o.out(`${esc(name)}\n`);
      continue;
    }
    const full = node.kind === 'dir' ? base + name : path;
    let st: FsNode | null = null;
    let target: string | null = null;
    try {
      st = await vfs.lstat(full);
      if (st.kind === 'symlink') target = decodeUtf8(await vfs.readlinkNode(st));
    } catch (err) {
      if (!isTsgrubError(err)) throw err;
    }
    if (json) rows.push({ name, kind: st?.kind ?? e.kind, size: st?.size ?? null, mode: st?.mode ?? null, id: st?.id ?? null, target });
    else if (st) o.out(`${modeString(st)} ${String(st.nlink ?? 1).padStart(3)} ${String(st.uid ?? 0).padStart(5)} ${String(st.gid ?? 0).padStart(5)} ${String(st.size).padStart(12)} ${isoTime(st.mtime)} ${esc(name)}${target !== null ? ` -> ${esc(target)}` : ''}\n`);
    else o.out(`?????????? ${esc(name)}\n`);
  }
  if (json) o.out(`${safeJson(rows)}\n`);
}

async function stat(vfs: Vfs, path: string, json: boolean, o: Out): Promise<void> {
  const st = await vfs.lstat(path);
  const target = st.kind === 'symlink' ? decodeUtf8(await vfs.readlinkNode(st)) : null;
  const v = { path, type: vfs.volume.type, kind: st.kind, id: st.id, size: st.size, mode: st.mode ?? null, uid: st.uid ?? null, gid: st.gid ?? null, nlink: st.nlink ?? null, mtime: st.mtime ?? null, target };
  if (json) {
    o.out(`${safeJson(v)}\n`);
    return;
  }
  o.out(`  File: ${esc(path)}${target !== null ? ` -> ${esc(target)}` : ''}\n`);
  o.out(`  Size: ${st.size}\tType: ${st.kind}\tInode: ${esc(String(st.id))}\tLinks: ${st.nlink ?? '-'}\n`);
  o.out(`Access: (${(st.mode ?? 0).toString(8).padStart(6, '0')}/${modeString(st)})  Uid: ${st.uid ?? '-'}  Gid: ${st.gid ?? '-'}\n`);
  o.out(`Modify: ${isoTime(st.mtime)}\n  Filesystem: ${vfs.volume.type}${vfs.volume.label ? ` label ${esc(vfs.volume.label)}` : ''}${vfs.volume.uuid ? ` uuid ${esc(vfs.volume.uuid)}` : ''}\n`);
}

async function menu(vfs: Vfs, json: boolean, o: Out): Promise<void> {
  const m = await findBootConfig(configFs(vfs), vfs.ctx.limits);
  if (!m) throw new NotFoundError('boot configuration');
  if (json) {
    o.out(`${safeJson(m)}\n`);
    return;
  }
  o.out(`${m.format} ${esc(m.configPath)}, default ${m.defaultIndex}, timeout ${m.timeout ?? '-'}\n`);
  m.entries.forEach((e, i) => {
    o.out(`${i === m.defaultIndex ? '*' : ' '}${String(i).padStart(3)} ${esc(e.title)}\n      kernel: ${esc(e.kernel ?? '(none)')}\n      initrd: ${esc(e.initrd.join(' ') || '-')}\n      args:   ${esc(e.args ?? '')}\n`);
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  const o: Out = {
    out: (s) => {
      const b = typeof s === 'string' ? Buffer.from(s) : s;
      let off = 0;
      while (off < b.length) {
        try {
          off += writeSync(1, b, off, b.length - off);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN') continue;
          // The reader went away (`fsimage cat … | head`): stop quietly, as cat does.
          if (code === 'EPIPE') throw new ReaderGone();
          throw e;
        }
      }
    },
    err: (s) => writeSync(2, s),
  };
  let debug = argv.includes('--debug');
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        partition: { type: 'string', short: 'p' },
        long: { type: 'boolean', short: 'l' },
        json: { type: 'boolean' },
        dataset: { type: 'string' },
        subvolume: { type: 'string' },
        'allow-backing': { type: 'boolean' },
        driver: { type: 'string', multiple: true },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    debug = !!values.debug;
    const [cmd, image, ...rest] = positionals;
    if (values.help || !cmd) {
      (values.help ? o.out : o.err)(`${USAGE}\n`);
      return values.help ? 0 : 2;
    }
    if (!image) throw new InvalidArgumentError(`${cmd}: IMAGE is required\n${USAGE}`);
    const options: OpenOptions | undefined =
      values.dataset || values.subvolume ? { ...(values.dataset ? { dataset: values.dataset } : {}), ...(values.subvolume ? { subvolume: values.subvolume } : {}) } : undefined;
    const extra = await loadDrivers(values.driver ?? []);
    const registry = extra.length ? defaultRegistry.with(...extra) : defaultRegistry;
    const { disk, close } = await openImage(image, { allowBacking: !!values['allow-backing'], registry });
    try {
      switch (cmd) {
        case 'probe':
          await probe(disk, !!values.json, o);
          return 0;
        case 'ls': {
          const path = rest[0] ?? '/';
          const { vfs } = await pickVolume(disk, values.partition, path, options);
          await ls(vfs, path, !!values.long, !!values.json, o);
          return 0;
        }
        case 'cat': {
          const path = rest[0];
          if (!path) throw new InvalidArgumentError('cat: PATH is required');
          const { vfs } = await pickVolume(disk, values.partition, path, options);
          const node = await vfs.stat(path);
          await copyToFd(vfs, node, 1, { positional: false, maxBytes: Number.MAX_SAFE_INTEGER });
          return 0;
        }
        case 'cp': {
          const [path, dest] = rest;
          if (!path || !dest) throw new InvalidArgumentError('cp: PATH and DEST are required');
          const { vfs } = await pickVolume(disk, values.partition, path, options);
          const node = await vfs.stat(path);
          const fd = openSync(dest, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o644);
          try {
            await copyToFd(vfs, node, fd, { maxBytes: Number.MAX_SAFE_INTEGER });
          } finally {
            closeSync(fd);
          }
          return 0;
        }
        case 'stat': {
          const path = rest[0];
          if (!path) throw new InvalidArgumentError('stat: PATH is required');
          const { vfs } = await pickVolume(disk, values.partition, path, options);
          await stat(vfs, path, !!values.json, o);
          return 0;
        }
        case 'menu': {
          const { vfs } = await pickVolume(disk, values.partition, null, options);
          await menu(vfs, !!values.json, o);
          return 0;
        }
        default:
          throw new InvalidArgumentError(`unknown command ${cmd}\n${USAGE}`);
      }
    } finally {
      close();
    }
  } catch (e) {
    if (e instanceof ReaderGone || (e as NodeJS.ErrnoException).code === 'EPIPE' || (isTsgrubError(e) && e.message.includes('EPIPE'))) return 141;
    if (debug && e instanceof Error) o.err(`${e.stack ?? e.message}\n`);
    const err = e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? new InvalidArgumentError(e.message) : toTsgrubError(e);
    o.err(`fsimage: ${esc(err.message)}\n`);
    return err.code === 'InvalidArgument' ? 2 : 1;
  }
}
