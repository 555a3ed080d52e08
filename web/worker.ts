/// <reference lib="webworker" />
/**
 * The page's worker: every byte of the image is parsed here, off the main thread. The image stays a
 * File: each read slices it (BlobSource), so a 2 GiB image is never loaded whole.
 */
import { openBlob, toTsgrubError, type DiskImage, type Vfs } from '../src/browser/index.ts';
import type { DirRow, Reply, Request, Summary } from './protocol.ts';

declare const self: DedicatedWorkerGlobalScope;

let image: DiskImage | null = null;
const mounted = new Map<string, Promise<Vfs>>();
const decoder = new TextDecoder('utf-8', { fatal: false });

function vfsOf(fs: string): Promise<Vfs> {
  if (!image) throw new Error('no image open');
  let v = mounted.get(fs);
  if (!v) {
    v = image.mount(fs);
    mounted.set(fs, v);
    v.catch(() => mounted.delete(fs));
  }
  return v;
}

async function open(file: File): Promise<Summary> {
  image = null;
  mounted.clear();
  const img = await openBlob(file, { name: file.name });
  image = img;
  const t = img.partitionTable;
  const filesystems = await img.filesystems();
  const boot = await img.bootMenu();
  const m = boot.menu;
  return {
    name: file.name,
    size: img.size,
    container: img.container,
    scheme: t.scheme,
    tableId: t.id ?? null,
    warnings: [...t.warnings],
    partitions: t.partitions.map((p) => ({
      path: p.path,
      type: p.type,
      typeName: p.typeName ?? null,
      start: p.start,
      size: p.size,
      bootable: p.bootable ?? false,
      name: p.name ?? null,
      container: p.container ?? false,
    })),
    filesystems: filesystems.map((f) => ({
      path: f.path,
      start: f.start,
      size: f.size,
      type: f.type,
      label: f.label ?? null,
      uuid: f.uuid ?? null,
      error: f.error?.message ?? null,
    })),
    boot: m
      ? {
          fs: m.path,
          format: m.menu.format,
          configPath: m.menu.configPath,
          entries: m.menu.entries.map((e) => ({ title: e.title, kernel: e.kernel, initrd: [...e.initrd], args: e.args })),
          selected: m.selected,
          timeout: m.menu.timeout,
          kernel: m.kernel,
          ramdisk: m.ramdisk,
          args: m.args,
        }
      : null,
    bootFailures: boot.failures.map((f) => `partition ${f.path}: ${f.error.message}`),
  };
}

async function readdir(fs: string, path: Uint8Array): Promise<DirRow[]> {
  const vfs = await vfsOf(fs);
  const dir = path.length === 0 ? new Uint8Array([0x2f]) : path;
  const rows: DirRow[] = [];
  for (const e of await vfs.readdir(dir)) {
    let size: number | null = null;
    let kind: string = e.kind;
    const full = new Uint8Array([...dir, 0x2f, ...e.name]);
    try {
      const n = await vfs.lstat(full);
      kind = n.kind;
      size = n.size;
    } catch {
      // A broken entry is still listed; opening it reports the error.
    }
    rows.push({ name: decoder.decode(e.name), raw: [...e.name], kind, size });
  }
  rows.sort((a, b) => (a.kind === 'dir') !== (b.kind === 'dir') ? (a.kind === 'dir' ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return rows;
}

/** The file as a Blob assembled chunk by chunk (1 MiB reads); the browser may keep it on disk. */
async function download(fs: string, path: Uint8Array): Promise<Blob> {
  const vfs = await vfsOf(fs);
  const node = await vfs.stat(path);
  const parts: Uint8Array[] = [];
  for await (const c of vfs.chunks(node)) parts.push(c);
  return new Blob(parts as BlobPart[], { type: 'application/octet-stream' });
}

self.onmessage = async (ev: MessageEvent<Request>) => {
  const req = ev.data;
  let reply: Reply;
  try {
    let result: unknown;
    if (req.op === 'open') result = await open(req.file);
    else if (req.op === 'readdir') result = await readdir(req.fs, new Uint8Array(req.path));
    else result = await download(req.fs, new Uint8Array(req.path));
    reply = { id: req.id, ok: true, result };
  } catch (e) {
    reply = { id: req.id, ok: false, error: toTsgrubError(e).toJSON() };
  }
  self.postMessage(reply);
};
