/**
 * A ByteSource over an HTTP(S) URL with range requests (RFC 9110 §14): one `Range: bytes=a-b`
 * request per read, the answer checked to be a 206 for exactly that range of a resource whose size
 * has not changed. A server that ignores ranges is refused rather than downloaded whole.
 */
import { IoError, UnsupportedError } from '../errors.ts';
import { checkRange, type ByteSource } from '../io/source.ts';

export type FetchLike = (url: string, init: { headers: Record<string, string>; signal?: AbortSignal }) => Promise<Response>;

export interface HttpSourceOptions {
  /** Extra request headers (authorization…). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** The fetch to use (globalThis.fetch by default). */
  readonly fetch?: FetchLike;
  readonly name?: string;
}

/** `bytes FIRST-LAST/COMPLETE` (RFC 9110 §14.4); null when malformed. */
function parseContentRange(v: string | null): { first: number; last: number; complete: number | null } | null {
  const m = v === null ? null : /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16}|\*)$/.exec(v.trim());
  if (!m) return null;
  const first = Number(m[1]);
  const last = Number(m[2]);
  const complete = m[3] === '*' ? null : Number(m[3]);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first) return null;
  if (complete !== null && (!Number.isSafeInteger(complete) || last >= complete)) return null;
  return { first, last, complete };
}

/** Reads the body, refusing more than `max` bytes (a server could send anything). */
async function readBody(res: Response, max: number, what: string): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const out = new Uint8Array(max);
  let n = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    if (n + r.value.length > max) {
      await reader.cancel();
      throw new IoError(`${what}: server sent more than the ${max} bytes asked for`);
    }
    out.set(r.value, n);
    n += r.value.length;
  }
  return n === max ? out : out.slice(0, n);
}

export class HttpRangeSource implements ByteSource {
  private constructor(
    readonly url: string,
    readonly size: number,
    readonly name: string,
    private readonly options: HttpSourceOptions,
  ) {}

  /** Asks for the first byte to learn the size and check that the server honours ranges. */
  static async open(url: string, options: HttpSourceOptions = {}): Promise<HttpRangeSource> {
    const name = options.name ?? 'url';
    const res = await HttpRangeSource.request(url, 0, 0, options, name);
    const range = parseContentRange(res.headers.get('content-range'));
    await res.body?.cancel();
    if (!range || range.first !== 0 || range.complete === null) {
      throw new UnsupportedError(`${name}: server's answer to a range request (Content-Range ${JSON.stringify(res.headers.get('content-range'))})`);
    }
    return new HttpRangeSource(url, range.complete, name, options);
  }

  private static async request(url: string, first: number, last: number, options: HttpSourceOptions, name: string): Promise<Response> {
    const doFetch: FetchLike = options.fetch ?? ((u, init) => fetch(u, init));
    let res: Response;
    try {
      res = await doFetch(url, {
        headers: { ...options.headers, range: `bytes=${first}-${last}`, 'accept-encoding': 'identity' },
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (e) {
      throw new IoError(`${name}: ${e instanceof Error ? e.message : String(e)}`, first);
    }
    if (res.status === 200) {
      await res.body?.cancel();
      throw new UnsupportedError(`${name}: HTTP server without range requests (answered 200 to a Range request)`);
    }
    if (res.status !== 206) {
      await res.body?.cancel();
      throw new IoError(`${name}: HTTP ${res.status} for bytes ${first}-${last}`, first);
    }
    return res;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (length === 0) return new Uint8Array(0);
    const last = offset + length - 1;
    const res = await HttpRangeSource.request(this.url, offset, last, this.options, this.name);
    const range = parseContentRange(res.headers.get('content-range'));
    if (!range || range.first !== offset || range.last !== last || (range.complete !== null && range.complete !== this.size)) {
      await res.body?.cancel();
      throw new IoError(`${this.name}: server answered ${JSON.stringify(res.headers.get('content-range'))} for bytes ${offset}-${last} of ${this.size}`, offset);
    }
    const body = await readBody(res, length, this.name);
    if (body.length !== length) throw new IoError(`${this.name}: short body (${body.length} of ${length} bytes)`, offset);
    return body;
  }
}
