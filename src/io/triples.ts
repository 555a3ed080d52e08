/**
 * Rows of three numbers packed in one growable Float64Array (exact for every integer below 2^53):
 * the packed maps (a file's runs, a plan's runs) keep a row per run instead of an object, since a
 * file in fragments has tens of thousands of them.
 */
export class Triples {
  /** Rows in use. */
  count = 0;
  /** Row i is data[3i], data[3i + 1], data[3i + 2]; grows by doubling (the old array is left as it was). */
  data: Float64Array;

  /** `maxRows` bounds the growth; callers refuse a row past it with their own error first. */
  constructor(private readonly maxRows: number) {
    this.data = new Float64Array(3 * Math.min(64, maxRows));
  }

  /** Grows the array (by doubling, up to maxRows) to hold at least `rows` rows; rows past `count` are then the caller's to fill. */
  reserve(rows: number): void {
    if (3 * rows <= this.data.length) return;
    // Past maxRows a write would fall off the end of the array unseen: the caller refuses first.
    if (rows > this.maxRows) throw new RangeError(`reserve: ${rows} rows exceed ${this.maxRows}`);
    let cap = Math.max(this.data.length, 3);
    while (cap < 3 * rows) cap *= 2;
    const grown = new Float64Array(Math.min(cap, 3 * this.maxRows));
    grown.set(this.data);
    this.data = grown;
  }

  /** Appends a row; the caller has checked that `count < maxRows`. */
  push(a: number, b: number, c: number): void {
    let d = this.data;
    const n = this.count;
    if (3 * n + 3 > d.length) {
      // Views of the old array (see `view`) keep it, and its rows never change again.
      const grown = new Float64Array(Math.min(2 * d.length, 3 * this.maxRows));
      grown.set(d);
      this.data = d = grown;
    }
    d[3 * n] = a;
    d[3 * n + 1] = b;
    d[3 * n + 2] = c;
    this.count = n + 1;
  }

  /** Rows [from, to) as `{ count, data }` over the current array (no copy). */
  view(from: number, to: number): { count: number; data: Float64Array } {
    return { count: Math.max(0, to - from), data: this.data.subarray(3 * from, 3 * Math.max(from, to)) };
  }
}
