// The Node floor: copy files in 1 MiB chunks with one reused buffer (startup included when timed
// as a process). Usage: node bench/node-floor.mjs SRC DST [SRC DST ...]
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
const buf = new Uint8Array(1 << 20);
const args = process.argv.slice(2);
for (let i = 0; i + 1 < args.length; i += 2) {
  const src = openSync(args[i], 'r');
  const dst = openSync(args[i + 1], 'w');
  for (let pos = 0; ; ) {
    const n = readSync(src, buf, 0, buf.length, pos);
    if (n === 0) break;
    for (let w = 0; w < n; ) w += writeSync(dst, buf, w, n - w);
    pos += n;
  }
  closeSync(src);
  closeSync(dst);
}
