/**
 * The fuzzer's worker thread: runs cases for one image (or for the configs) and reports each case's
 * start (with its mutations, so the parent can rebuild the image if this thread hangs and is
 * terminated) and its end. Runs in a worker so a synchronous or microtask-only loop in a driver is
 * still caught by the parent's watchdog.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { MemorySource } from '../../src/io/source.ts';
import {
  caseSeed, describeMutations, exerciseConfig, exerciseImage, memConfigFs, mutate, mutateConfig, protoSnapshot,
  recordRegions, Rng, SEED_CONFIGS, undo, Untyped,
} from './mutators.ts';

export type Job =
  | { kind: 'image'; name: string; path: string; runSeed: number; from: number; to: number }
  | { kind: 'config'; runSeed: number; from: number; to: number; includes: boolean };

export type WorkerReport =
  | { type: 'baseline'; metaBytes: number; fileBytes: number; volumes: number; files: number; errors: string[] }
  | { type: 'start'; i: number; seed: number; patches: Array<[number, string]>; what: string }
  | { type: 'end'; i: number; seed: number; ms: number; outcome: string; failure: string | null }
  | { type: 'done' };

const post = (m: WorkerReport) => parentPort?.postMessage(m);
const job = workerData as Job;

function failureText(e: unknown): string {
  if (e instanceof Untyped) {
    const c = e.cause;
    return `${e.message}\n${c instanceof Error ? (c.stack ?? '').split('\n').slice(0, 8).join('\n') : ''}`;
  }
  return e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
}

async function runImage(j: Extract<Job, { kind: 'image' }>): Promise<void> {
  const bytes = new Uint8Array(readFileSync(j.path));
  const { regions, stats } = await recordRegions(bytes);
  post({
    type: 'baseline',
    metaBytes: regions.meta.reduce((a, r) => a + r.length, 0),
    fileBytes: regions.file.reduce((a, r) => a + r.length, 0),
    volumes: stats.volumes,
    files: stats.files,
    errors: [...stats.typedErrors.keys()],
  });
  const proto = protoSnapshot();
  for (let i = j.from; i < j.to; i++) {
    const seed = caseSeed(j.runSeed, j.name, i);
    const rng = new Rng(seed);
    const ms = mutate(bytes, regions, rng);
    post({ type: 'start', i, seed, patches: ms.map((m) => [m.offset, Buffer.from(bytes.subarray(m.offset, m.offset + m.before.length)).toString('hex')]), what: describeMutations(ms) });
    const t0 = Date.now();
    let outcome = 'ok';
    let failure: string | null = null;
    try {
      const s = await exerciseImage(new MemorySource(bytes, 'image'));
      outcome = s.typedErrors.size ? [...s.typedErrors.keys()].sort().join(',') : `ok ${s.volumes}v ${s.files}f`;
    } catch (e) {
      failure = failureText(e);
      outcome = 'UNTYPED';
    }
    if (protoSnapshot() !== proto) failure = `Object.prototype changed: ${protoSnapshot()}`;
    undo(bytes, ms);
    post({ type: 'end', i, seed, ms: Date.now() - t0, outcome, failure });
  }
}

async function runConfigs(j: Extract<Job, { kind: 'config' }>): Promise<void> {
  const proto = protoSnapshot();
  for (let i = j.from; i < j.to; i++) {
    const seed = caseSeed(j.runSeed, j.includes ? 'config+inc' : 'config', i);
    const rng = new Rng(seed);
    const base = SEED_CONFIGS[i % SEED_CONFIGS.length] as (typeof SEED_CONFIGS)[number];
    const text = mutateConfig(base.text, rng);
    // Included files are mutated too, and may include the main file back (a loop).
    const files = new Map<string, string>([
      [base.path, text],
      ['/boot/grub/custom.cfg', mutateConfig(`menuentry 'custom' { linux /vmlinuz-custom }\nsource ${base.path}\n`, rng)],
      ['/boot/extlinux/more.conf', mutateConfig(`LABEL more\n  KERNEL /vmlinuz-more\nINCLUDE ${base.path}\n`, rng)],
    ]);
    post({ type: 'start', i, seed, patches: [], what: `${base.format} ${text.length} chars: ${JSON.stringify(text.slice(0, 200))}` });
    const t0 = Date.now();
    let outcome = 'ok';
    let failure: string | null = null;
    try {
      outcome = await exerciseConfig(base.format, text, base.path, j.includes ? memConfigFs(files) : undefined);
    } catch (e) {
      failure = `${failureText(e)}\nconfig text (JSON): ${JSON.stringify(text).slice(0, 4000)}`;
      outcome = 'UNTYPED';
    }
    if (protoSnapshot() !== proto) failure = `Object.prototype changed: ${protoSnapshot()}`;
    post({ type: 'end', i, seed, ms: Date.now() - t0, outcome, failure });
  }
}

(job.kind === 'image' ? runImage(job) : runConfigs(job))
  .then(() => post({ type: 'done' }))
  .catch((e) => {
    post({ type: 'end', i: -1, seed: 0, ms: 0, outcome: 'BASELINE', failure: `baseline walk failed: ${failureText(e)}` });
    post({ type: 'done' });
  });
