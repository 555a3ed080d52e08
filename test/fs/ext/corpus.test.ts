/**
 * Robustness over public corpora of (mostly corrupt) ext images: e2fsprogs' test images and
 * ext4-view-rs's. Every image must finish within 10 s with data or a TsgrubError; anything else
 * (TypeError, RangeError, a hang) fails with the image's name. Read from ../shared (never copied).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isTsgrubError } from '../../../src/errors.ts';
import { ext } from '../../../src/fs/ext/index.ts';
import type { FsNode } from '../../../src/fs/types.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { SHARED, hasTool, run } from '../../helpers/fixtures.ts';

const CORPUS = join(SHARED, 'corpus');

function load(dir: string, f: string): Uint8Array | null {
  const p = join(dir, f);
  if (f.endsWith('.image.gz')) return gunzipSync(readFileSync(p));
  if (f.endsWith('.image.bz2') && hasTool('bunzip2')) return run('bunzip2', ['-c', p], { timeout: 60_000 });
  if (f.endsWith('.bin.zst') && hasTool('zstd')) return run('zstd', ['-dc', p], { timeout: 60_000 });
  if (f.endsWith('.image')) return readFileSync(p);
  return null;
}

interface Outcome {
  opened: boolean;
  code: string | null;
  files: number;
  fileErrors: number;
}

/** Probe, open, walk the whole tree (bounded), read every file; per-entry typed errors are counted. */
async function exercise(bytes: Uint8Array, name: string): Promise<Outcome> {
  const ctx = createContext({ fileBytes: 16 << 20, wallMs: 8000, nodesVisited: 50_000 });
  const src = new MemorySource(bytes, name);
  const out: Outcome = { opened: false, code: null, files: 0, fileErrors: 0 };
  const guard = async <T>(f: () => Promise<T>): Promise<T | null> => {
    try {
      return await f();
    } catch (e) {
      if (!isTsgrubError(e)) throw new Error(`${name}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
      if (e.code === 'LimitExceeded' && (e.data.limit === 'wallMs' || e.data.limit === 'nodesVisited' || e.data.limit === 'metadataBytes')) throw e;
      out.fileErrors++;
      return null;
    }
  };
  try {
    if (!(await ext.probe(src, ctx))) return out;
    const vol = await ext.open(src, ctx);
    out.opened = true;
    const vfs = new Vfs(vol, ctx);
    const seen = new Set<number | string>();
    const todo: [FsNode, number][] = [[await vol.root(), 0]];
    while (todo.length) {
      const [dir, depth] = todo.pop() as [FsNode, number];
      if (seen.has(dir.id) || depth > ctx.limits.treeDepth) continue;
      seen.add(dir.id);
      const entries = (await guard(() => vfs.readdir(dir))) ?? [];
      for (const e of entries) {
        const n = await guard(() => vol.lookup(dir, e.name));
        if (!n) continue;
        if (n.kind === 'dir') todo.push([n, depth + 1]);
        else if (n.kind === 'symlink') await guard(() => vfs.readlinkNode(n));
        else if (n.kind === 'file' && !seen.has(n.id)) {
          seen.add(n.id);
          if ((await guard(() => vfs.readFile(n))) !== null) out.files++;
        }
      }
    }
  } catch (e) {
    if (!isTsgrubError(e)) throw e instanceof Error && e.message.startsWith(name) ? e : new Error(`${name}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
    out.code = `${e.code}${e.data.kind ? `:${e.data.kind}` : e.data.limit ? `:${e.data.limit}` : ''}`;
  }
  return out;
}

for (const [set, dir] of [
  ['e2fsprogs', join(CORPUS, 'e2fsprogs')],
  ['ext4-view-rs', join(CORPUS, 'ext4-view-rs')],
] as const) {
  test(`corpus ${set}: every image ends with data or a typed error within 10 s`, { timeout: 30 * 60_000 }, async (t) => {
    if (!existsSync(dir)) return t.skip(`${dir} not present (../shared missing)`);
    if (set === 'ext4-view-rs' && !hasTool('zstd')) return t.skip('zstd not installed');
    const files = readdirSync(dir).sort();
    const byCode = new Map<string, number>();
    let images = 0;
    let opened = 0;
    let filesRead = 0;
    for (const f of files) {
      const bytes = load(dir, f);
      if (!bytes) continue;
      images++;
      const t0 = Date.now();
      const r = await exercise(bytes, f);
      const ms = Date.now() - t0;
      assert.ok(ms < 10_000, `${f} took ${ms} ms`);
      if (r.opened) opened++;
      filesRead += r.files;
      const key = r.code ?? (r.opened ? (r.fileErrors ? 'opened, some entries errored' : 'opened, clean') : 'not ext (probe null)');
      byCode.set(key, (byCode.get(key) ?? 0) + 1);
    }
    assert.ok(images > 0, 'no images found');
    const summary = [...byCode].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(', ');
    t.diagnostic(`${set}: ${images} images, ${opened} opened, ${filesRead} files read; ${summary}`);
    console.log(`# ${set}: ${images} images, ${opened} opened, ${filesRead} files read; ${summary}`);
  });
}
