import { Disk } from '../src/disk.ts';
import { defaultRegistry } from '../src/fs/drivers.ts';
import { createContext } from '../src/limits.ts';
import { FileSource } from '../src/node/file-source.ts';
import { nodeCodecs } from '../src/codec/node.ts';
async function main() {
  const ctx = createContext({}, nodeCodecs);
  const disk = await Disk.open(FileSource.open(process.argv[2]!), ctx, defaultRegistry);
  const vfs = await disk.open((await disk.candidates())[0]!);
  const node = await vfs.stat(process.argv[3]!);
  let n = 0; let prevEnd = -1; let gaps = 0; const sizes: number[] = [];
  for await (const e of vfs.volume.extents!(node)) { n++; if (e.physical !== prevEnd) gaps++; prevEnd = (e.physical ?? 0) + e.length; sizes.push(e.length); }
  sizes.sort((a, b) => a - b);
  console.log('extents', n, 'discontinuities', gaps, 'min', sizes[0], 'median', sizes[sizes.length >> 1], 'max', sizes[sizes.length - 1]);
}
main();
