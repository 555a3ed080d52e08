// Bundles the two tsgrub processes into one file each (dist/cli/*.bundle.js): a process start then
// loads one module instead of ~130, which is most of a boot's time (bench/README.md, "Startup").
// xz-decompress stays external: it is loaded lazily, only for xz-compressed images.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The worker is CommonJS (.cjs): Node starts a CommonJS main ~10 ms sooner than an ES module (no
// ESM loader). The parent stays ESM: it needs import.meta.url, and bin/tsgrub is ESM anyway.
for (const [name, format, ext] of [['worker', 'cjs', 'cjs'], ['tsgrub', 'esm', 'js']]) {
  await build({
    entryPoints: [join(root, 'dist/cli', `${name}.js`)],
    outfile: join(root, 'dist/cli', `${name}.bundle.${ext}`),
    bundle: true,
    platform: 'node',
    format,
    target: 'node20',
    external: ['xz-decompress'],
    logLevel: 'warning',
    legalComments: 'none',
  });
}
