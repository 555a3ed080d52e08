/** Node entry: open disk images from paths or descriptors with the built-in drivers and Node codecs. */
import { nodeCodecs } from '../codec/node.ts';
import { Disk } from '../disk.ts';
import { defaultRegistry } from '../fs/drivers.ts';
import type { FilesystemRegistry } from '../fs/registry.ts';
import { createContext, type Limits } from '../limits.ts';
import { FileSource } from './file-source.ts';

export { FileSource } from './file-source.ts';
export { copyToFd } from './copy.ts';

export interface OpenImageOptions {
  readonly limits?: Partial<Limits>;
  readonly registry?: FilesystemRegistry;
  readonly signal?: AbortSignal;
}

/** Opens an image file (or block device) read-only and scans its partition table. */
export async function openImage(path: string, opts: OpenImageOptions = {}): Promise<{ disk: Disk; source: FileSource }> {
  const source = FileSource.open(path);
  try {
    const ctx = createContext(opts.limits, nodeCodecs, opts.signal);
    const disk = await Disk.open(source, ctx, opts.registry ?? defaultRegistry);
    return { disk, source };
  } catch (e) {
    source.close();
    throw e;
  }
}
