/** A copy-on-write image for hostile tests: patches are applied over a private copy. */
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { MemorySource } from '../../../src/io/source.ts';
import { isTsgrubError, type TsgrubError } from '../../../src/errors.ts';
import { fixture } from '../../helpers/fixtures.ts';

export function imageCopy(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fixture(name)));
}

export function src(b: Uint8Array): MemorySource {
  return new MemorySource(b);
}

/** Runs `action`, which must fail fast with a typed error of `code` whose kind/limit matches `kind`. */
export async function expectError(action: () => Promise<unknown>, code: string, kind: RegExp): Promise<TsgrubError> {
  const t0 = Date.now();
  let err: unknown;
  try {
    await action();
  } catch (e) {
    err = e;
  }
  assert.ok(isTsgrubError(err), `typed error expected, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(String(err.data.kind ?? err.data.limit ?? (err.data.features as string[] | undefined)?.join(',')), kind, err.message);
  assert.ok(Date.now() - t0 < 2000, 'fails fast');
  return err;
}

/** Flips random bytes in a region; returns the patched copy. Deterministic (xorshift). */
export function mutate(base: Uint8Array, seed: number, from: number, to: number, flips: number): Uint8Array {
  const b = base.slice();
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  for (let i = 0; i < flips; i++) {
    const at = from + (next() % Math.max(1, to - from));
    b[at] = next() & 0xff;
  }
  return b;
}

/** A cheap full walk for mutation runs: every directory, every inode, the first 4 KiB of every file. */
export async function lightWalk(vfs: import('../../../src/fs/vfs.ts').Vfs): Promise<number> {
  let n = 0;
  const stack: string[] = ['/'];
  while (stack.length) {
    const dir = stack.pop() as string;
    for (const e of await vfs.readdir(dir)) {
      const p = `${dir === '/' ? '' : dir}/${new TextDecoder().decode(e.name)}`;
      const node = await vfs.lstat(p);
      n++;
      if (node.kind === 'dir') stack.push(p);
      else if (node.kind === 'symlink') await vfs.readlink(p);
      else if (node.kind === 'file') await vfs.readFile(node, { truncateAt: 4096 });
    }
  }
  return n;
}
