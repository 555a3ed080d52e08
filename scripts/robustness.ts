/**
 * `npm run robustness`: every image of the shared robustness corpus (../shared/corpus: e2fsprogs,
 * openzfs, sleuthkit, dissect.ffs, ext4-view-rs, go-diskfs) through every registered driver, reading
 * every file (threat-model.md §4.2 D, §4.1 invariants). Each image runs in its own CHILD process under
 * `/usr/bin/time -f %M` with a 10 s timeout and V8's heap capped at 256 MiB, so a hang or an OOM is
 * contained and measured. Prints a table and a summary; exits non-zero on any crash, untyped error,
 * timeout or peak RSS over 320 MiB.
 *
 *   node --import tsx scripts/robustness.ts [--json] [--only SUBSTRING] [--jobs N]
 *   node --import tsx scripts/robustness.ts --child IMAGE     (internal)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = resolve(ROOT, '../shared/corpus');
const TIMEOUT_MS = 10_000;
const MAX_RSS_KIB = 320 * 1024;
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

interface ChildReport {
  volumes: Array<{ path: string; driver: string; files: number; bytes: number; errors: string[] }>;
  errors: Record<string, number>;
  untyped: string | null;
  maxRSSKiB: number;
}

// ------------------------------------------------------------------------------------------------
// Child: open one image and walk it whole.

async function child(image: string): Promise<void> {
  const { FileSource } = await import('../src/node/file-source.ts');
  const { exerciseImage, Untyped } = await import('../test/fuzz/mutators.ts');
  const src = FileSource.open(image, 'image');
  const out: ChildReport = { volumes: [], errors: {}, untyped: null, maxRSSKiB: 0 };
  try {
    const stats = await exerciseImage(src, undefined, null, { maxNodes: 20_000, perDir: 100_000 });
    out.volumes = stats.perVolume;
    out.errors = Object.fromEntries(stats.typedErrors);
  } catch (e) {
    out.untyped = e instanceof Untyped ? `${e.message}\n${(e.cause as Error)?.stack?.split('\n').slice(1, 6).join('\n') ?? ''}` : `${(e as Error)?.stack ?? String(e)}`;
  } finally {
    src.close();
  }
  out.maxRSSKiB = process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exitCode = out.untyped ? 2 : 0;
}

// ------------------------------------------------------------------------------------------------
// Parent: unpack the corpus, run children, print the table.

interface Row {
  image: string;
  drivers: string;
  outcome: string;
  verdict: 'ok' | 'crash' | 'untyped' | 'timeout' | 'memory';
  seconds: number;
  rssMiB: number | null;
}

/** Unpacks one corpus file into `dir`; returns the image files to test. */
function unpack(file: string, dir: string): string[] {
  const name = basename(file);
  const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // cp --sparse=always keeps the large zero runs of these images (a 1 GiB zfs pool) as holes.
  const pipeTo = (cmd: string, out: string) => {
    sh(`${cmd} | cp --sparse=always /dev/stdin ${q(out)}`);
    return existsSync(out) ? [out] : [];
  };
  if (/\.(image|bin)\.gz$/.test(name) || name.endsWith('.img.gz')) return pipeTo(`gzip -dc ${q(file)}`, join(dir, name.slice(0, -3)));
  if (/\.dat\.bz2$|\.image\.bz2$|\.orig\.bz2$/.test(name)) return pipeTo(`bunzip2 -c ${q(file)}`, join(dir, name.slice(0, -4)));
  if (name.endsWith('.zst')) return pipeTo(`zstd -q -dc ${q(file)}`, join(dir, name.slice(0, -4)));
  const listFiles = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []));
  const isImage = (p: string) => !/\.(txt|html?|xml|md|gz|bz2|zip|tar)$/i.test(p) && !/COPYING|README|INDEX/i.test(basename(p)) && statSync(p).size >= 2048;
  if (name.endsWith('.zip')) {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    sh(`unzip -q -o ${q(file)} -d ${q(d)}`);
    return listFiles(d).filter(isImage);
  }
  if (/\.tar\.(gz|bz2)$/.test(name)) {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    sh(`tar -x --sparse -f ${q(file)} -C ${q(d)}`);
    // Members stored without sparse maps come out dense; re-sparsify the big ones.
    for (const f of listFiles(d)) if (statSync(f).size > 64 << 20) sh(`cp --sparse=always ${q(f)} ${q(`${f}.s`)} && mv ${q(`${f}.s`)} ${q(f)}`);
    return listFiles(d).filter(isImage);
  }
  if (/\.(image|dd|iso|sqs|raw|img)$/.test(name)) return [file];
  return [];
}

function runChild(image: string): Promise<Row> {
  return new Promise((resolveRow) => {
    const scratch = mkdtempSync(join(tmpdir(), 'tsgrub-rob-'));
    const timeFile = join(scratch, 'time');
    const nodeArgs = ['--max-old-space-size=256', '--disable-proto=delete', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', image];
    const [cmd, args] = TIME ? [TIME, ['-f', '%M', '-o', timeFile, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
    const t0 = Date.now();
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => {
      if (stdout.length < 1 << 20) stdout += b.toString('utf8');
    });
    p.stderr.on('data', (b: Buffer) => {
      if (stderr.length < 64 << 10) stderr += b.toString('utf8');
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(p.pid as number), 'SIGKILL'); // the group: /usr/bin/time and node
      } catch {
        /* gone */
      }
    }, TIMEOUT_MS);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - t0) / 1000;
      let rssKiB: number | null = null;
      if (TIME && existsSync(timeFile)) {
        const v = Number(spawnSync('tail', ['-n1', timeFile]).stdout.toString().trim());
        if (Number.isFinite(v) && v > 0) rssKiB = v;
      }
      rmSync(scratch, { recursive: true, force: true });
      let rep: ChildReport | null = null;
      try {
        rep = JSON.parse(stdout.trim().split('\n').pop() ?? '') as ChildReport;
      } catch {
        rep = null;
      }
      rssKiB ??= rep?.maxRSSKiB ?? null;
      const row: Row = { image, drivers: '-', outcome: '', verdict: 'ok', seconds, rssMiB: rssKiB === null ? null : Math.round(rssKiB / 1024) };
      if (rep) {
        const vols = rep.volumes;
        row.drivers = vols.length ? [...new Set(vols.map((v) => `${v.driver}@${v.path}`))].join(' ') : '-';
        const files = vols.reduce((a, v) => a + v.files, 0);
        const errs = Object.keys(rep.errors);
        row.outcome = vols.length === 0 ? `no filesystem${errs.length ? ` (${errs.join(',')})` : ''}` : `${files} files${errs.length ? `; ${errs.slice(0, 4).join(',')}${errs.length > 4 ? ',…' : ''}` : ''}`;
      }
      if (timedOut) {
        row.verdict = 'timeout';
        row.outcome = `timeout after ${TIMEOUT_MS / 1000} s`;
      } else if (rep?.untyped) {
        row.verdict = 'untyped';
        row.outcome = `UNTYPED ${rep.untyped.split('\n')[0]}`;
        (row as Row & { detail?: string }).detail = rep.untyped;
      } else if (!rep || code !== 0 || signal) {
        row.verdict = 'crash';
        row.outcome = `crash: exit ${code} signal ${signal}: ${stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 300)}`;
      } else if (rssKiB !== null && rssKiB > MAX_RSS_KIB) {
        row.verdict = 'memory';
        row.outcome += ` (peak RSS ${Math.round(rssKiB / 1024)} MiB > 320)`;
      }
      resolveRow(row);
    });
  });
}

async function parent(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
  const jobs = argv.includes('--jobs') ? Math.max(1, Number(argv[argv.indexOf('--jobs') + 1]) || 2) : 2;
  if (!existsSync(CORPUS)) {
    console.log(`robustness: ${CORPUS} is absent; nothing to do (skipped)`);
    return 0;
  }
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-corpus-'));
  try {
    const inputs: string[] = [];
    for (const sub of readdirSync(CORPUS).sort()) {
      const d = join(CORPUS, sub);
      if (!statSync(d).isDirectory()) continue;
      const out = join(work, sub);
      mkdirSync(out, { recursive: true });
      for (const f of readdirSync(d).sort()) {
        const full = join(d, f);
        if (only && !full.includes(only)) continue;
        // The e2fsprogs set ships a few images both raw and gzipped: test each once.
        if (!f.endsWith('.gz') && existsSync(`${full}.gz`)) continue;
        inputs.push(...unpack(full, out));
      }
    }
    const rows: Row[] = [];
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: jobs }, async () => {
        while (next < inputs.length) {
          const img = inputs[next++] as string;
          const row = await runChild(img);
          row.image = img.startsWith(work) ? img.slice(work.length + 1) : img.slice(CORPUS.length + 1);
          rows.push(row);
          if (!json && row.verdict !== 'ok') process.stderr.write(`!! ${row.image}: ${row.outcome}\n`);
        }
      }),
    );
    rows.sort((a, b) => a.image.localeCompare(b.image));
    const bad = rows.filter((r) => r.verdict !== 'ok');
    const count = (v: string) => rows.filter((r) => r.verdict === v).length;
    const withData = rows.filter((r) => r.verdict === 'ok' && !r.outcome.startsWith('no filesystem')).length;
    const summary = {
      images: rows.length,
      withData,
      noFilesystem: rows.filter((r) => r.outcome.startsWith('no filesystem')).length,
      crash: count('crash'),
      untyped: count('untyped'),
      timeout: count('timeout'),
      memory: count('memory'),
      maxSeconds: Math.max(0, ...rows.map((r) => r.seconds)),
      maxRssMiB: Math.max(0, ...rows.map((r) => r.rssMiB ?? 0)),
      wallSeconds: (Date.now() - t0) / 1000,
    };
    if (json) {
      console.log(JSON.stringify({ rows, summary }, null, 1));
    } else {
      const w = Math.min(60, Math.max(...rows.map((r) => r.image.length), 5));
      console.log(`${'image'.padEnd(w)}  ${'verdict'.padEnd(7)}  ${'sec'.padStart(5)}  ${'MiB'.padStart(4)}  drivers / outcome`);
      for (const r of rows) {
        console.log(`${r.image.slice(-w).padEnd(w)}  ${r.verdict.padEnd(7)}  ${r.seconds.toFixed(2).padStart(5)}  ${String(r.rssMiB ?? '?').padStart(4)}  ${r.drivers} | ${r.outcome}`);
      }
      console.log(
        `\n${summary.images} images: ${summary.withData} read, ${summary.noFilesystem} without a known filesystem; ` +
          `${summary.crash} crash, ${summary.untyped} untyped, ${summary.timeout} timeout, ${summary.memory} over 320 MiB; ` +
          `max ${summary.maxSeconds.toFixed(2)} s, max RSS ${summary.maxRssMiB} MiB; wall ${summary.wallSeconds.toFixed(1)} s`,
      );
      for (const r of bad) {
        const d = (r as Row & { detail?: string }).detail;
        if (d) console.log(`\n--- ${r.image}\n${d}`);
      }
    }
    return bad.length ? 1 : 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  await child(args[1] as string);
} else {
  process.exitCode = await parent(args);
}
