/** The container plugin API: a disk-image format is a ByteSource over another ByteSource. */
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';

export type ContainerId = 'qcow2' | 'vhd' | 'vhdx' | 'vmdk';

export interface ContainerOptions {
  /**
   * Opens a backing/parent/extent file named inside an image (already checked to be a bare file
   * name in the image's own folder). Supplied by the platform layer (`src/node/backing.ts`); `depth` is
   * 1 for the top image's backing file, 2 for its backing file, and so on.
   */
  readonly resolveBacking?: (name: string, depth: number) => Promise<ByteSource>;
  /** Backing files are followed only when true; otherwise an image that needs one is Unsupported. */
  readonly allowBacking?: boolean;
  /** Internal: how deep in a backing chain this image is (0 = the top image). */
  readonly depth?: number;
  /** Internal: backing names followed so far, top to bottom (filled in while opening). */
  readonly chain?: string[];
}

export interface ContainerFormat {
  readonly id: ContainerId;
  /** Bounded: reads at most a few KiB; false = not this format. */
  probe(src: ByteSource, ctx: Context): Promise<boolean>;
  open(src: ByteSource, ctx: Context, opts: ContainerOptions): Promise<ByteSource>;
}

/** Longest backing chain followed (qcow2 overlay → base → …), whatever the platform allows. */
export const MAX_BACKING_DEPTH = 8;
