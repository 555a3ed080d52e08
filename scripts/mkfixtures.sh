#!/bin/bash
# Builds every committed test fixture from real tools: the standard tree, then one image per
# filesystem/layout (scripts/fixtures/<area>.sh), gzip-compressed into test/fixtures/ with
# MANIFEST.sha256 (the tree's file checksums). Usage: scripts/mkfixtures.sh [AREA...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FIXTURES=$ROOT/test/fixtures
WORK=${WORK:-$(mktemp -d /tmp/tsgrub-fixtures.XXXXXX)}
export WORK
. "$ROOT/scripts/fixtures/common.sh"
mkdir -p "$FIXTURES"
mktree "$WORK/tree"
manifest "$WORK/tree" "$FIXTURES/MANIFEST.sha256"
areas=("$@")
[ ${#areas[@]} -gt 0 ] || areas=($(cd "$ROOT/scripts/fixtures" && ls *.sh | grep -v '^common.sh$' | grep -v '^lib-' | sed 's/\.sh$//'))
for a in "${areas[@]}"; do
  echo "== $a"
  ( . "$ROOT/scripts/fixtures/$a.sh" )
done
echo "work dir: $WORK"
