/**
 * Backing/parent/extent file names come from the guest image, so they are hostile (CVE-2010-3851:
 * a qcow2 backing name pointing at a host file). Only a bare file name in the image's own folder is
 * accepted; the chain is bounded and refused unless the caller opted in.
 */
import { InvalidArgumentError, LimitExceededError, UnsupportedError } from '../errors.ts';
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { openContainer } from './index.ts';
import { type ContainerOptions, MAX_BACKING_DEPTH } from './types.ts';

/**
 * Returns why `name` is refused as a backing file name, or null when it is a bare file name:
 * no path separators, no `.`/`..`, no protocol or `json:` prefix, no control characters.
 */
export function backingNameProblem(name: string): string | null {
  if (name.length === 0) return 'empty name';
  if (name.length > 255) return 'name longer than 255 characters';
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'control character in name';
  if (name.includes('/') || name.includes('\\')) return 'path separators are not allowed (only a file in the image folder)';
  if (name === '.' || name === '..') return `'${name}' is not a file name`;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(name)) return 'protocol or json: names are not allowed';
  return null;
}

/** The backing file's source (not yet opened as a container) after every check. */
export async function resolveBackingFile(format: string, name: string, ctx: Context, opts: ContainerOptions): Promise<ByteSource> {
  const depth = (opts.depth ?? 0) + 1;
  const problem = backingNameProblem(name);
  if (problem) throw new InvalidArgumentError(`${format} backing file ${JSON.stringify(name)} refused: ${problem}`);
  if (!opts.allowBacking || !opts.resolveBacking) {
    throw new UnsupportedError(`${format} image needs backing file ${JSON.stringify(name)}`, ['backing file (not allowed)']);
  }
  if (depth > MAX_BACKING_DEPTH) {
    throw new LimitExceededError('backingDepth', `backing chain deeper than ${MAX_BACKING_DEPTH} at ${JSON.stringify(name)}`, MAX_BACKING_DEPTH);
  }
  ctx.budget.check();
  return opts.resolveBacking(name, depth);
}

/**
 * Opens a backing image: resolves `name`, then detects its container (unless `rawOnly`, when the
 * image names its backing format as raw: never probe what the image says is raw).
 */
export async function openBacking(
  format: string,
  name: string,
  ctx: Context,
  opts: ContainerOptions,
  rawOnly = false,
): Promise<ByteSource> {
  const file = await resolveBackingFile(format, name, ctx, opts);
  const chain = opts.chain ?? [];
  if (chain.includes(name)) {
    throw new LimitExceededError('backingDepth', `backing chain loops back to ${JSON.stringify(name)}`, MAX_BACKING_DEPTH);
  }
  chain.push(name);
  if (rawOnly) return file;
  const inner = await openContainer(file, ctx, { ...opts, depth: (opts.depth ?? 0) + 1, chain });
  return inner.source;
}
