/**
 * Node adapter for backing/parent/extent files: resolves a name found inside an image ONLY as a
 * bare file in the image's own folder (backing.ts has already refused separators, `..`, protocol
 * and `json:` names; they are refused again here), opens it read-only without following a symlink
 * out of the folder, and refuses a file already in the chain (a → b → a) by its real path.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InvalidArgumentError, LimitExceededError } from '../errors.ts';
import type { ByteSource } from '../io/source.ts';
import { FileSource } from './file-source.ts';
import { backingNameProblem } from '../image/backing.ts';
import { MAX_BACKING_DEPTH } from '../image/types.ts';

export interface BackingResolverOptions {
  /** Longest chain (default MAX_BACKING_DEPTH). */
  readonly maxDepth?: number;
}

/**
 * Returns a `resolveBacking` for the image at `imagePath`. Sources it opens are closed by the
 * returned `close()` (call it when the image is closed).
 */
export function createBackingResolver(
  imagePath: string,
  options: BackingResolverOptions = {},
): { resolveBacking: (name: string, depth: number) => Promise<ByteSource>; close: () => void } {
  const maxDepth = Math.min(options.maxDepth ?? MAX_BACKING_DEPTH, MAX_BACKING_DEPTH);
  const top = realpathSync(imagePath);
  const folder = dirname(top);
  // opened[d] = real path of the file at depth d (0 = the top image); a chain cannot revisit one.
  const opened: string[] = [top];
  const sources: FileSource[] = [];
  const resolveBacking = async (name: string, depth: number): Promise<ByteSource> => {
    const problem = backingNameProblem(name);
    if (problem) throw new InvalidArgumentError(`backing file ${JSON.stringify(name)} refused: ${problem}`);
    if (!Number.isInteger(depth) || depth < 1 || depth > maxDepth) {
      throw new LimitExceededError('backingDepth', `backing chain deeper than ${maxDepth} at ${JSON.stringify(name)}`, maxDepth);
    }
    let real: string;
    try {
      real = realpathSync(join(folder, name));
    } catch (e) {
      throw new InvalidArgumentError(`backing file ${JSON.stringify(name)} not found beside the image: ${(e as Error).message}`);
    }
    // A symlink in the folder must not lead out of it.
    if (dirname(real) !== folder) throw new InvalidArgumentError(`backing file ${JSON.stringify(name)} resolves outside the image folder`);
    const before = opened.slice(0, depth);
    if (before.includes(real)) {
      throw new LimitExceededError('backingDepth', `backing chain loops back to ${JSON.stringify(basename(real))}`, maxDepth);
    }
    opened.length = depth;
    opened.push(real);
    const src = FileSource.open(real, name);
    sources.push(src);
    return src;
  };
  const close = (): void => {
    for (const s of sources.splice(0)) s.close?.();
  };
  return { resolveBacking, close };
}
