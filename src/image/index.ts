/**
 * Disk-image containers: detection by magic, then a ByteSource of the virtual disk. A source that no
 * format claims is raw. Backing files are followed only when the caller allows it (backing.ts).
 */
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { qcow2 } from './qcow2.ts';
import type { ContainerFormat, ContainerOptions } from './types.ts';
import { vhd } from './vhd.ts';
import { vhdx } from './vhdx.ts';
import { vmdk } from './vmdk.ts';

export { backingNameProblem } from './backing.ts';
export { MappedSource } from './mapped.ts';
export type { BlockMap, Run } from './mapped.ts';
export { qcow2 } from './qcow2.ts';
export type { ContainerFormat, ContainerId, ContainerOptions } from './types.ts';
export { MAX_BACKING_DEPTH } from './types.ts';
export { vhd } from './vhd.ts';
export { vhdx } from './vhdx.ts';
export { vmdk } from './vmdk.ts';

/**
 * Probe order: the formats with a magic at offset 0 first (qcow2, VHDX, VMDK), then VHD, whose
 * fixed variant is only a footer at the end of otherwise raw bytes. Built on call, not at module
 * load, so the import cycle through backing.ts never sees an uninitialised binding.
 */
export function containerFormats(): readonly ContainerFormat[] {
  return [qcow2, vhdx, vmdk, vhd];
}

export interface OpenedContainer {
  /** The detected format, or null for a raw image. */
  readonly format: string | null;
  /** The virtual disk. */
  readonly source: ByteSource;
  /** Backing/parent file names followed, top to bottom. */
  readonly chain: string[];
}

export async function openContainer(
  src: ByteSource,
  ctx: Context,
  opts: ContainerOptions = {},
  formats: readonly ContainerFormat[] = containerFormats(),
): Promise<OpenedContainer> {
  const chain = opts.chain ?? [];
  for (const f of formats) {
    ctx.budget.check();
    if (!(await f.probe(src, ctx))) continue;
    const source = await f.open(src, ctx, { ...opts, chain });
    return { format: f.id, source, chain };
  }
  return { format: null, source: src, chain };
}
