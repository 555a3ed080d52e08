#!/usr/bin/env node
/**
 * Builds the static web page (web/) into a folder any static file server can serve:
 * index.html, style.css, app.js (the page) and worker.js (the parser, off the main thread).
 * Usage: node scripts/build-web.mjs [OUTDIR]   (default dist/web)
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles the page and its worker for browsers; returns esbuild's metafile. */
export async function buildWeb(outdir = join(ROOT, 'dist/web')) {
  const { build } = await import('esbuild');
  await mkdir(outdir, { recursive: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { app: 'web/main.ts', worker: 'web/worker.ts' },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    sourcemap: true,
    minify: true,
    metafile: true,
    logLevel: 'warning',
    legalComments: 'linked',
  });
  for (const f of ['index.html', 'style.css']) await copyFile(join(ROOT, 'web', f), join(outdir, f));
  return result.metafile;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? join(ROOT, 'dist/web'));
  await buildWeb(out);
  console.log(`web page written to ${out}`);
}
