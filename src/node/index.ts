/** Node entry: open disk images from paths or descriptors with the built-in drivers and Node codecs. */
import { nodeCodecs } from '../codec/node.ts';
import { Disk } from '../disk.ts';
import { defaultRegistry } from '../fs/drivers.ts';
import type { FilesystemRegistry } from '../fs/registry.ts';
import { openDisk, type DiskImage, type DiskOptions } from '../index.ts';
import { createContext, type Limits } from '../limits.ts';
import { createBackingResolver } from './backing.ts';
import { FileSource } from './file-source.ts';

export * from '../index.ts';
export { FileSource } from './file-source.ts';
export { copyToFd } from './copy.ts';
export { createBackingResolver } from './backing.ts';
export { nodeCodecs } from '../codec/node.ts';

export interface OpenImageOptions {
  readonly limits?: Partial<Limits>;
  /** Follow qcow2 backing files / VHD parents / VMDK extents found in the image's own folder. */
  readonly allowBacking?: boolean;
  readonly registry?: FilesystemRegistry;
  readonly signal?: AbortSignal;
}

/** Opens an image file (or block device) read-only and scans its partition table. */
export async function openImage(path: string, opts: OpenImageOptions = {}): Promise<{ disk: Disk; source: FileSource; close: () => void }> {
  const source = FileSource.open(path);
  const backing = opts.allowBacking ? createBackingResolver(path) : null;
  const close = () => {
    backing?.close();
    source.close();
  };
  try {
    const ctx = createContext(opts.limits, nodeCodecs, opts.signal);
    const disk = await Disk.open(source, ctx, opts.registry ?? defaultRegistry, {
      container: backing ? { allowBacking: true, resolveBacking: backing.resolveBacking } : {},
    });
    return { disk, source, close };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * The high-level API over a path or an open file descriptor (a caller-owned fd stays open; a path
 * is opened read-only and closed by `close()`), with node:zlib codecs.
 */
export async function openImageFile(file: string | number, options: DiskOptions = {}): Promise<DiskImage & { close(): void }> {
  const source = typeof file === 'number' ? FileSource.fromFd(file, options.name ?? 'image') : FileSource.open(file, options.name ?? 'image');
  try {
    const img = await openDisk(source, { ...options, codecs: options.codecs ?? nodeCodecs });
    return Object.assign(img, { close: () => source.close() });
  } catch (e) {
    source.close();
    throw e;
  }
}
