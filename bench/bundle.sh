#!/usr/bin/env bash
# Prototype of the proposed build step (see bench/README.md, "Startup"): the same dist/, with
# dist/cli/worker.js and dist/cli/tsgrub.js each replaced by a single-file esbuild bundle, in
# $BENCH_WORK/bundled (a package root of its own: tsgrub finds its worker relative to itself).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
W=${BENCH_WORK:-$HERE/work}
ESBUILD=$ROOT/node_modules/.bin/esbuild
[ -x "$ESBUILD" ] || { echo "esbuild not installed (it comes with tsx)" >&2; exit 1; }
P=$W/bundled
rm -rf "$P"; mkdir -p "$P"
cp -r "$ROOT/dist" "$ROOT/bin" "$ROOT/package.json" "$P/"
for f in worker tsgrub; do
  "$ESBUILD" "$ROOT/dist/cli/$f.js" --bundle --platform=node --format=esm --log-level=warning \
    --outfile="$P/dist/cli/$f.js" --allow-overwrite
done
