// Bundles the two tsgrub processes into one file each (dist/cli/*.bundle.js): a process start then
// loads one module instead of ~130, which is most of a boot's time (bench/README.md, "Startup").
// xz-decompress stays external: it is loaded lazily, only for xz-compressed images.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const name of ['worker', 'tsgrub']) {
  await build({
    entryPoints: [join(root, 'dist/cli', `${name}.js`)],
    outfile: join(root, 'dist/cli', `${name}.bundle.js`),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['xz-decompress'],
    logLevel: 'warning',
    legalComments: 'none',
  });
}
