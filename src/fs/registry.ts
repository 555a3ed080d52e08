/**
 * The filesystem registry: a list of drivers, probed in order. Registration is by being listed (no
 * import side effects), so third parties pass their driver in and bundles keep only what they name.
 */
import { isTsgrubError, UnsupportedError } from '../errors.ts';
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import type { FilesystemDriver, OpenOptions, ProbeResult, Volume } from './types.ts';

export interface ProbeMatch {
  readonly driver: FilesystemDriver;
  readonly result: ProbeResult;
}

export class FilesystemRegistry {
  readonly drivers: readonly FilesystemDriver[];

  constructor(drivers: readonly FilesystemDriver[]) {
    const ids = new Set<string>();
    for (const d of drivers) {
      if (ids.has(d.id)) throw new RangeError(`duplicate filesystem driver id ${d.id}`);
      ids.add(d.id);
    }
    this.drivers = Object.freeze([...drivers]);
  }

  /** A registry with extra drivers tried first (user drivers before built-ins, as file-type does). */
  with(...extra: FilesystemDriver[]): FilesystemRegistry {
    return new FilesystemRegistry([...extra, ...this.drivers.filter((d) => !extra.some((e) => e.id === d.id))]);
  }

  /** Only the named drivers (the hardened allowlist). */
  only(ids: readonly string[]): FilesystemRegistry {
    return new FilesystemRegistry(this.drivers.filter((d) => ids.includes(d.id)));
  }

  /**
   * The first driver whose probe claims the source. A probe that throws a typed error (short read,
   * out of bounds) means "not mine"; the next driver is tried.
   */
  async probe(src: ByteSource, ctx: Context): Promise<ProbeMatch | null> {
    for (const driver of this.drivers) {
      ctx.budget.check();
      let result: ProbeResult | null = null;
      try {
        result = await driver.probe(src, ctx);
      } catch (e) {
        if (isTsgrubError(e)) continue;
        throw e;
      }
      if (result) return { driver, result };
    }
    return null;
  }

  async open(src: ByteSource, ctx: Context, options?: OpenOptions): Promise<Volume> {
    const m = await this.probe(src, ctx);
    if (!m) throw new UnsupportedError(`${src.name ?? 'source'}: no known filesystem`);
    return m.driver.open(src, ctx, options);
  }
}
