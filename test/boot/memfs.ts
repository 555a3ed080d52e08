/** An in-memory ConfigFs for parser tests: paths → text; directories derived from the paths. */
import type { ConfigFs } from '../../src/boot/types.ts';

export function memFs(files: Record<string, string>): ConfigFs & { reads: string[] } {
  const map = new Map<string, string>(Object.entries(files));
  const reads: string[] = [];
  const dirs = new Map<string, Set<string>>();
  for (const p of map.keys()) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      if (!dirs.has(dir)) dirs.set(dir, new Set());
      dirs.get(dir)!.add(parts[i]!);
    }
  }
  return {
    reads,
    async readText(path) {
      reads.push(path);
      return map.get(path) ?? null;
    },
    async list(dir) {
      const d = dirs.get(dir === '/' ? '/' : dir.replace(/\/$/, ''));
      return d ? [...d] : null;
    },
    async exists(path) {
      return map.has(path) || dirs.has(path);
    },
  };
}
