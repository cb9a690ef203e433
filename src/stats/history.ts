/**
 * Downsampled history of per-step values, for charts of a long run (the dashboard's balance over time): at most
 * `capacity` buckets, each summarising a run of consecutive steps by the count, sum and maximum of every channel.
 * While buckets are free each holds `span` steps; when all are used, adjacent pairs merge and `span` doubles — so a
 * day of one point per step keeps the same number of points as a minute, memory is capacity × channels whatever
 * the run length, and each push is O(channels) (amortised: a merge touches every bucket once per doubling).
 * Formulas: docs/metrics.md § History.
 */

export class BucketHistory {
  readonly channels: number;
  readonly capacity: number;
  /** Steps each bucket holds before the next one opens (doubles at every merge). */
  span = 1;
  /** Buckets in use. */
  length = 0;
  /** Steps pushed in all. */
  steps = 0;
  /** Per bucket: steps in it, and the x (e.g. the stream's token count) and time (ms) of its first and last step. */
  readonly count: Uint32Array;
  readonly x0: Float64Array;
  readonly x1: Float64Array;
  readonly t0: Float64Array;
  readonly t1: Float64Array;
  /** Per bucket × channel: the sum and the maximum of the finite values, and how many were finite. */
  private readonly sum: Float64Array;
  private readonly peak: Float64Array;
  private readonly finite: Uint32Array;

  constructor(channels: number, capacity = 256) {
    if (!Number.isInteger(channels) || channels < 0)
      throw new RangeError(`channels must be a whole number ≥ 0, got ${channels}`);
    const cap = Math.max(2, Math.floor(capacity / 2) * 2); // even, so a full history halves exactly
    this.channels = channels;
    this.capacity = cap;
    this.count = new Uint32Array(cap);
    this.x0 = new Float64Array(cap);
    this.x1 = new Float64Array(cap);
    this.t0 = new Float64Array(cap);
    this.t1 = new Float64Array(cap);
    this.sum = new Float64Array(cap * channels);
    this.peak = new Float64Array(cap * channels);
    this.finite = new Uint32Array(cap * channels);
  }

  clear(): void {
    this.span = 1;
    this.length = 0;
    this.steps = 0;
  }

  /** Adds one step: its x, its time (ms) and one value per channel (NaN: no value this step). */
  push(x: number, tMs: number, values: ArrayLike<number>): void {
    const C = this.channels;
    let b = this.length - 1;
    if (b < 0 || this.count[b]! >= this.span) {
      if (this.length === this.capacity) this.halve();
      b = this.length++;
      this.count[b] = 0;
      this.x0[b] = x;
      this.t0[b] = tMs;
      this.sum.fill(0, b * C, (b + 1) * C);
      this.peak.fill(-Infinity, b * C, (b + 1) * C);
      this.finite.fill(0, b * C, (b + 1) * C);
    }
    this.count[b]!++;
    this.x1[b] = x;
    this.t1[b] = tMs;
    const o = b * C;
    for (let c = 0; c < C; c++) {
      const v = values[c]!;
      if (!Number.isFinite(v)) continue;
      this.sum[o + c]! += v;
      this.finite[o + c]!++;
      if (v > this.peak[o + c]!) this.peak[o + c] = v;
    }
    this.steps++;
  }

  /** Merges buckets 2i and 2i+1 into i; the span doubles. */
  private halve(): void {
    const C = this.channels;
    const n = this.length >> 1;
    for (let i = 0; i < n; i++) {
      const a = 2 * i;
      const b = a + 1;
      this.count[i] = this.count[a]! + this.count[b]!;
      this.x0[i] = this.x0[a]!;
      this.t0[i] = this.t0[a]!;
      this.x1[i] = this.x1[b]!;
      this.t1[i] = this.t1[b]!;
      for (let c = 0; c < C; c++) {
        const ia = a * C + c;
        const ib = b * C + c;
        const o = i * C + c;
        this.sum[o] = this.sum[ia]! + this.sum[ib]!;
        this.finite[o] = this.finite[ia]! + this.finite[ib]!;
        this.peak[o] = Math.max(this.peak[ia]!, this.peak[ib]!);
      }
    }
    this.length = n;
    this.span *= 2;
  }

  /** Mean of channel c over the finite values of each bucket, oldest first (NaN for a bucket without one). */
  means(c: number, out = new Float64Array(this.length)): Float64Array {
    const C = this.channels;
    for (let i = 0; i < this.length; i++) {
      const f = this.finite[i * C + c]!;
      out[i] = f > 0 ? this.sum[i * C + c]! / f : NaN;
    }
    return out;
  }

  /** Maximum of channel c in each bucket, oldest first (NaN for a bucket without a finite value). */
  maxima(c: number, out = new Float64Array(this.length)): Float64Array {
    const C = this.channels;
    for (let i = 0; i < this.length; i++) out[i] = this.finite[i * C + c]! > 0 ? this.peak[i * C + c]! : NaN;
    return out;
  }

  /** Mean of channel c in the newest bucket that has a value for it; NaN when none has. */
  latestMean(c: number): number {
    const C = this.channels;
    for (let i = this.length - 1; i >= 0; i--) {
      const f = this.finite[i * C + c]!;
      if (f > 0) return this.sum[i * C + c]! / f;
    }
    return NaN;
  }
}

/**
 * The n channels among `channels` whose newest bucket mean is worst — highest, or lowest with `lower` (e.g.
 * balancedness, where 1 is best) — worst first; ties go to the lower channel index; channels without a value last.
 */
export function worstChannels(h: BucketHistory, channels: readonly number[], n: number, lower = false): number[] {
  const scored = channels.map((c) => ({ c, v: h.latestMean(c) }));
  scored.sort((a, b) => {
    const an = Number.isNaN(a.v);
    const bn = Number.isNaN(b.v);
    if (an || bn) return an === bn ? a.c - b.c : an ? 1 : -1;
    return (lower ? a.v - b.v : b.v - a.v) || a.c - b.c;
  });
  return scored.slice(0, Math.max(0, n)).map((s) => s.c);
}

/**
 * Tokens per second in each bucket when x counts tokens: bucket i covers the tokens after the previous bucket's
 * last step up to its own, over the time between those steps, (x1[i] − x1[i−1]) · 1000 / (t1[i] − t1[i−1]); the
 * first bucket uses its own first step, (x1 − x0) · 1000 / (t1 − t0). NaN where no time passed.
 */
export function bucketRates(h: BucketHistory, out = new Float64Array(h.length)): Float64Array {
  for (let i = 0; i < h.length; i++) {
    const dx = i > 0 ? h.x1[i]! - h.x1[i - 1]! : h.x1[i]! - h.x0[i]!;
    const dt = i > 0 ? h.t1[i]! - h.t1[i - 1]! : h.t1[i]! - h.t0[i]!;
    out[i] = dt > 0 ? (dx * 1000) / dt : NaN;
  }
  return out;
}
