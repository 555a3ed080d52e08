/** Test helpers: decompressed fixture images (cached per checkout), the tree manifest, tool detection. */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = join(ROOT, 'test/fixtures');
export const SHARED = resolve(ROOT, '../shared');

/** Path to the decompressed fixture image `name` (from test/fixtures/name.img.gz). */
export function fixture(name: string): string {
  const gz = join(FIXTURES, `${name}.img.gz`);
  const data = readFileSync(gz);
  const h = createHash('sha256').update(data).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'tsgrub-fixtures');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${name}-${h}.img`);
  if (!existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp`;
    writeFileSync(tmp, gunzipSync(data));
    renameSync(tmp, out);
  }
  return out;
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.img.gz'))
    .map((f) => f.slice(0, -'.img.gz'.length))
    .sort();
}

/** The standard tree's manifest: path (no leading slash) → sha256. */
export function manifest(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(join(FIXTURES, 'MANIFEST.sha256'), 'utf8').split('\n')) {
    if (!line) continue;
    m.set(line.slice(66), line.slice(0, 64));
  }
  return m;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function run(cmd: string, args: string[], opts: { input?: Buffer; timeout?: number } = {}): Buffer {
  return execFileSync(cmd, args, { input: opts.input, timeout: opts.timeout ?? 30_000, maxBuffer: 512 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** The system Python (Debian's, as pygrub uses); pyenv shims are slow and may be another version. */
export const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p)) ?? 'python3';
