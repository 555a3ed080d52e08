/**
 * Typed, serialisable errors. Every error that leaves the library is one of these, with a stable
 * `code` and structured `data`, so it crosses the sandbox boundary (JSON) intact and a caller can act
 * on the category while a maintainer reads the precise cause (`kind`, `offset`).
 */

export type ErrorCode =
  | 'NotFound'
  | 'NotADirectory'
  | 'IsADirectory'
  | 'NotASymlink'
  | 'TooManySymlinks'
  | 'Unsupported'
  | 'Corrupt'
  | 'LimitExceeded'
  | 'Io'
  | 'InvalidArgument'
  | 'Config';

export type ErrorData = Readonly<Record<string, string | number | boolean | readonly string[] | null>>;

export class TsgrubError extends Error {
  readonly code: ErrorCode;
  readonly data: ErrorData;

  constructor(code: ErrorCode, message: string, data: ErrorData = {}) {
    super(message);
    this.code = code;
    this.data = data;
    this.name = `${code}Error`;
  }

  toJSON(): { code: ErrorCode; message: string; data: ErrorData } {
    return { code: this.code, message: this.message, data: this.data };
  }

  /** Rebuilds an error from its JSON form; unknown shapes become `Io` so nothing untyped escapes. */
  static fromJSON(value: unknown): TsgrubError {
    if (typeof value === 'object' && value !== null) {
      const v = value as { code?: unknown; message?: unknown; data?: unknown };
      if (typeof v.code === 'string' && isErrorCode(v.code) && typeof v.message === 'string') {
        const data: Record<string, string | number | boolean | null> = Object.create(null);
        if (typeof v.data === 'object' && v.data !== null) {
          for (const [k, x] of Object.entries(v.data)) {
            if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' || x === null) data[k] = x;
          }
        }
        return new TsgrubError(v.code, v.message, data);
      }
    }
    return new TsgrubError('Io', 'malformed error message');
  }
}

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'NotFound', 'NotADirectory', 'IsADirectory', 'NotASymlink', 'TooManySymlinks', 'Unsupported',
  'Corrupt', 'LimitExceeded', 'Io', 'InvalidArgument', 'Config',
]);

export function isErrorCode(s: string): s is ErrorCode {
  return CODES.has(s);
}

export function isTsgrubError(e: unknown): e is TsgrubError {
  return e instanceof TsgrubError;
}

export class NotFoundError extends TsgrubError {
  constructor(path: string) {
    super('NotFound', `no such file or directory: ${path}`, { path });
  }
}

export class NotADirectoryError extends TsgrubError {
  constructor(path: string) {
    super('NotADirectory', `not a directory: ${path}`, { path });
  }
}

export class IsADirectoryError extends TsgrubError {
  constructor(path: string) {
    super('IsADirectory', `is a directory: ${path}`, { path });
  }
}

export class TooManySymlinksError extends TsgrubError {
  constructor(path: string, hops: number) {
    super('TooManySymlinks', `too many levels of symbolic links (${hops}) resolving ${path}`, { path, hops });
  }
}

/** A feature of the format that this reader does not implement (a limitation, not an attack). */
export class UnsupportedError extends TsgrubError {
  constructor(what: string, features: readonly string[] = []) {
    super('Unsupported', features.length ? `${what}: unsupported features: ${features.join(', ')}` : `${what}: unsupported`, {
      what,
      features,
    });
  }
}

/**
 * The image is inconsistent. `kind` names the structure that failed (`ext4.ExtentDepth`,
 * `gpt.HeaderCrc`), `offset` the byte offset (in the source being parsed) where it was read, when known.
 */
export class CorruptError extends TsgrubError {
  constructor(kind: string, detail: string, offset?: number) {
    super(
      'Corrupt',
      offset === undefined ? `corrupt ${kind}: ${detail}` : `corrupt ${kind} at byte ${offset}: ${detail}`,
      offset === undefined ? { kind, detail } : { kind, detail, offset },
    );
  }
}

/** A budget from `limits.ts` ran out. `limit` is the budget's name, so the caller knows which knob to turn. */
export class LimitExceededError extends TsgrubError {
  constructor(limit: string, detail: string, max?: number) {
    super('LimitExceeded', `limit ${limit} exceeded: ${detail}`, max === undefined ? { limit, detail } : { limit, detail, max });
  }
}

export class IoError extends TsgrubError {
  constructor(detail: string, offset?: number) {
    super('Io', offset === undefined ? `I/O error: ${detail}` : `I/O error at byte ${offset}: ${detail}`, offset === undefined ? { detail } : { detail, offset });
  }
}

export class InvalidArgumentError extends TsgrubError {
  constructor(detail: string) {
    super('InvalidArgument', detail, { detail });
  }
}

/** A boot configuration that cannot be used (syntax error, no entries, unbootable entry). */
export class ConfigError extends TsgrubError {
  constructor(kind: string, detail: string) {
    super('Config', `${kind}: ${detail}`, { kind, detail });
  }
}

/** Wraps anything thrown (a RangeError from deep recursion, a bug) into a typed error. */
export function toTsgrubError(e: unknown): TsgrubError {
  if (e instanceof TsgrubError) return e;
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return new CorruptError('TooDeep', 'structure nesting exhausted the stack');
  }
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code)) {
    return new IoError(`${err.code}: ${String(err.message ?? '')}`);
  }
  return new TsgrubError('Io', `internal error: ${e instanceof Error ? e.message : String(e)}`, { internal: true });
}
