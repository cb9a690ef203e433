/**
 * Balance metrics of one load vector (assignments per expert of one layer). Every function reads
 * `load[offset .. offset+E)` so callers pass a row of an L·E matrix without copying.
 * Formulas and sources: docs/metrics.md § Load.
 */

/** Population coefficient of variation std/mean of the load (0 at perfect balance); NaN when the load is all zero. */
export function loadCv(load: ArrayLike<number>, offset: number, e: number): number {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < e; i++) {
    const c = load[offset + i]!;
    s += c;
    s2 += c * c;
  }
  return cvFromSums(s, s2, e);
}

/** CV from Σc and Σc² over E experts (shared with the incremental window sums). */
export function cvFromSums(s: number, s2: number, e: number): number {
  if (s <= 0) return NaN;
  const mean = s / e;
  const variance = Math.max(0, s2 / e - mean * mean);
  return Math.sqrt(variance) / mean;
}

/**
 * DeepSeek's MaxVio (arXiv 2408.15664 §4.1): (max load − mean load) / mean load, mean = T·K/E = Σc/E.
 * 0 at perfect balance; NaN when the load is all zero.
 */
export function loadMaxVio(load: ArrayLike<number>, offset: number, e: number): number {
  let s = 0;
  let max = 0;
  for (let i = 0; i < e; i++) {
    const c = load[offset + i]!;
    s += c;
    if (c > max) max = c;
  }
  return maxVioFromMax(max, s, e);
}

/** MaxVio from the largest load and Σc over E experts (shared with the collapse detector's one pass per layer). */
export function maxVioFromMax(max: number, s: number, e: number): number {
  if (s <= 0) return NaN;
  const mean = s / e;
  return (max - mean) / mean;
}

/** Entropy of the load shares divided by ln E: 1 at perfect balance, 0 when one expert takes everything. */
export function loadEntropy(load: ArrayLike<number>, offset: number, e: number): number {
  let s = 0;
  for (let i = 0; i < e; i++) s += load[offset + i]!;
  if (s <= 0 || e < 2) return NaN;
  let h = 0;
  for (let i = 0; i < e; i++) {
    const c = load[offset + i]!;
    if (c > 0) {
      const p = c / s;
      h -= p * Math.log(p);
    }
  }
  return h / Math.log(e);
}

/** Experts that received no assignment. */
export function deadExperts(load: ArrayLike<number>, offset: number, e: number): number {
  let n = 0;
  for (let i = 0; i < e; i++) if (load[offset + i]! === 0) n++;
  return n;
}

/** The load of one layer sorted from busiest to idlest (a copy). */
function sortedDescending(load: ArrayLike<number>, offset: number, e: number): Float64Array {
  const a = new Float64Array(e);
  for (let i = 0; i < e; i++) a[i] = load[offset + i]!;
  return a.sort().reverse();
}

/** Share of all assignments carried by the n busiest experts (n/E at perfect balance). */
export function topNShare(load: ArrayLike<number>, offset: number, e: number, n: number): number {
  const a = sortedDescending(load, offset, e);
  let s = 0;
  let top = 0;
  for (let i = 0; i < e; i++) {
    s += a[i]!;
    if (i < n) top += a[i]!;
  }
  return s > 0 ? top / s : NaN;
}

/** Fewest experts that together carry at least `fraction` of the assignments (⌈fraction·E⌉ at perfect balance). */
export function coverageExperts(load: ArrayLike<number>, offset: number, e: number, fraction: number): number {
  const a = sortedDescending(load, offset, e);
  let s = 0;
  for (let i = 0; i < e; i++) s += a[i]!;
  if (s <= 0) return NaN;
  // A tolerance so that exactly-balanced loads give ⌈fraction·E⌉ despite rounding of the running sum.
  const target = fraction * s * (1 - 1e-12);
  let acc = 0;
  for (let i = 0; i < e; i++) {
    acc += a[i]!;
    if (acc >= target) return i + 1;
  }
  return e;
}

/** Share of each expert in the layer's assignments (sums to 1; 1/E at perfect balance). */
export function loadShares(load: ArrayLike<number>, offset: number, e: number): Float64Array {
  const out = new Float64Array(e);
  let s = 0;
  for (let i = 0; i < e; i++) s += load[offset + i]!;
  if (s > 0) for (let i = 0; i < e; i++) out[i] = load[offset + i]! / s;
  return out;
}

/**
 * Jensen–Shannon divergence between two load distributions, base 2 (0 = identical shares, 1 = disjoint).
 * Used as the drift measure of the collapse detector.
 */
export function jsDivergence(
  a: ArrayLike<number>,
  aOff: number,
  b: ArrayLike<number>,
  bOff: number,
  e: number,
): number {
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < e; i++) {
    sa += a[aOff + i]!;
    sb += b[bOff + i]!;
  }
  if (sa <= 0 || sb <= 0) return NaN;
  let js = 0;
  for (let i = 0; i < e; i++) {
    const p = a[aOff + i]! / sa;
    const q = b[bOff + i]! / sb;
    const m = 0.5 * (p + q);
    js += jsTerm(p, m);
    js += jsTerm(q, m);
  }
  return Math.max(0, js);
}

/** One side's term of the JS divergence at one expert: ½·x·log₂(x/m), 0 when x is 0 (or not a share). */
function jsTerm(x: number, m: number): number {
  return x > 0 ? 0.5 * x * Math.log2(x / m) : 0;
}

/**
 * jsDivergence of an L·E matrix's rows (a window's counts, evaluated again and again) from a fixed reference,
 * bit for bit the same value. An expert's two terms depend only on its count (the row totals being fixed), so
 * they are kept per expert for the last few counts it had — SLOTS entries indexed by the count's low bits, as a
 * window's count moves by a few between evaluations — and an evaluation costs E additions plus two logarithms
 * per count not seen lately. The slots' counts sit in their own compact array (475 KB at DeepSeek scale, apart from
 * the terms): the test that hits nearly always reads less memory.
 */
export class JsDivergenceFromReference {
  private static readonly SLOTS = 8;
  private readonly reference: Int32Array;
  private readonly experts: number;
  private readonly refSums: Float64Array;
  private readonly rowSums: Float64Array;
  /** Per expert, SLOTS counts (−1 = empty) … */
  private readonly memoCount: Int32Array;
  /** … and for each, its (p term, q term). */
  private readonly memoTerms: Float64Array;

  /** `reference` is copied: rows of E counts, one per layer. */
  constructor(reference: Int32Array, experts: number) {
    this.reference = reference.slice();
    this.experts = experts;
    const layers = Math.floor(reference.length / experts);
    this.refSums = new Float64Array(layers);
    for (let l = 0; l < layers; l++)
      for (let i = 0; i < experts; i++) this.refSums[l]! += this.reference[l * experts + i]!;
    this.rowSums = new Float64Array(layers).fill(NaN);
    this.memoCount = new Int32Array(reference.length * JsDivergenceFromReference.SLOTS).fill(-1);
    this.memoTerms = new Float64Array(reference.length * JsDivergenceFromReference.SLOTS * 2);
  }

  /**
   * jsDivergence(counts, l·E, reference, l·E, E). `rowSum`, when the caller knows it (a window's tokens · K), is
   * the row's total, spared a pass over the row.
   */
  divergence(counts: Int32Array, l: number, rowSum?: number): number {
    const e = this.experts;
    const S = JsDivergenceFromReference.SLOTS;
    const base = l * e;
    let sa = 0;
    if (rowSum === undefined) for (let i = 0; i < e; i++) sa += counts[base + i]!;
    else sa = rowSum;
    const sb = this.refSums[l]!;
    if (sa <= 0 || sb <= 0) return NaN;
    const memoCount = this.memoCount;
    const memoTerms = this.memoTerms;
    if (sa !== this.rowSums[l]) {
      // Another row total: every kept term of the row is stale.
      memoCount.fill(-1, base * S, (base + e) * S);
      this.rowSums[l] = sa;
    }
    let js = 0;
    for (let i = base, end = base + e; i < end; i++) {
      const c = counts[i]!;
      const k = i * S + (c & (S - 1));
      if (memoCount[k] !== c) {
        const p = c / sa;
        const q = this.reference[i]! / sb;
        const m = 0.5 * (p + q);
        // jsTerm, written out: a call per term here costs as much as the logarithm.
        memoCount[k] = c;
        memoTerms[2 * k] = p > 0 ? 0.5 * p * Math.log2(p / m) : 0;
        memoTerms[2 * k + 1] = q > 0 ? 0.5 * q * Math.log2(q / m) : 0;
      }
      js += memoTerms[2 * k]!;
      js += memoTerms[2 * k + 1]!;
    }
    return Math.max(0, js);
  }
}
