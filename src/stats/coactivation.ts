/**
 * Co-activation (OLMoE, arXiv 2409.02060 §5): coact(i, j) = N(i and j selected for the same token) / N(i),
 * per layer, over ALL pairs of a token's K experts (OLMoE's script counts only adjacent pairs of the sorted
 * top-k list; we count every pair, so coact(i, j)·N(i) = coact(j, i)·N(j)). Memory L·E² counters.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';

export interface CoactivationPair {
  /** Expert i (the conditioning one). */
  a: number;
  b: number;
  /** N(a and b) / N(a). */
  ratio: number;
  /** N(a and b). */
  together: number;
}

/** Refuse matrices larger than this many counters (L·E²): 256 M × 4 bytes = 1 GiB. */
const MAX_COUNTERS = 256 * 1024 * 1024;

/** Refuses a model whose co-activation matrices (all layers) would be too large; the message names the size. */
export function assertCoactivationFits(schema: RoutingSchema): void {
  const n = schema.layers.length * schema.experts * schema.experts;
  if (n > MAX_COUNTERS) throw new UserError(`co-activation needs ${n} counters (L·E²); too large for this model`);
}

export class Coactivation {
  readonly schema: RoutingSchema;
  /**
   * Pair counts in the order the pair came in: ordered[(l·E + i)·E + j] counts the tokens whose slot of i comes
   * before their slot of j, so N(i and j) = ordered[i][j] + ordered[j][i] for i ≠ j. Counting a pair where it
   * falls, instead of at (min, max), spares a compare-and-swap per pair whose outcome is a coin toss (a mispredicted
   * branch); the diagonal is unused (an id repeated in a token lands there and is never read).
   */
  private readonly ordered: Uint32Array;
  /** N(i) per layer: chosen[l·E + i]. */
  private readonly chosen: Uint32Array;
  private readonly L: number;
  private readonly E: number;
  private readonly K: number;

  constructor(schema: RoutingSchema) {
    this.L = schema.layers.length;
    this.E = schema.experts;
    this.K = schema.topK;
    const n = this.L * this.E * this.E;
    assertCoactivationFits(schema);
    this.schema = schema;
    this.ordered = new Uint32Array(n);
    this.chosen = new Uint32Array(this.L * this.E);
  }

  add(b: RoutingBatch): void {
    const { L, E, K } = this;
    const ex = b.experts;
    const lk = L * K;
    const EE = E * E;
    // Layer by layer: one layer's E² counters (256 KiB at E = 256) stay in cache while every token of the batch
    // is counted into them, instead of touching all L matrices for each token.
    for (let l = 0; l < L; l++) {
      const M = this.ordered.subarray(l * EE, (l + 1) * EE);
      const N = this.chosen.subarray(l * E, (l + 1) * E);
      if (K === 8) {
        countTopEight(ex, b.length, l * K, lk, E, M, N);
        continue;
      }
      for (let t = 0, o = l * K; t < b.length; t++, o += lk) {
        const end = o + K;
        for (let x = o; x < end; x++) {
          const i = ex[x]!;
          N[i]!++;
          const row = i * E;
          for (let y = x + 1; y < end; y++) M[row + ex[y]!]!++;
        }
      }
    }
  }

  /** N(i and j) of layer l (N(i) when i = j). */
  together(l: number, i: number, j: number): number {
    const E = this.E;
    if (i === j) return this.chosen[l * E + i]!;
    const M = l * E * E;
    return this.ordered[M + i * E + j]! + this.ordered[M + j * E + i]!;
  }

  /** coact(i, j) for layer l (NaN when expert i was never chosen). */
  ratio(l: number, i: number, j: number): number {
    const n = this.together(l, i, i);
    return n > 0 ? this.together(l, i, j) / n : NaN;
  }

  /** The `count` pairs (i ≠ j) of layer l with the highest ratio (ties: more co-selections, then lower ids). */
  topPairs(l: number, count: number): CoactivationPair[] {
    const E = this.E;
    const out: CoactivationPair[] = [];
    const better = (x: CoactivationPair, y: CoactivationPair) =>
      x.ratio - y.ratio || x.together - y.together || y.a - x.a || y.b - x.b;
    for (let i = 0; i < E; i++) {
      const n = this.together(l, i, i);
      if (n === 0) continue;
      for (let j = 0; j < E; j++) {
        if (j === i) continue;
        const together = this.together(l, i, j);
        if (together === 0) continue;
        const ratio = together / n;
        if (out.length === count && ratio < out[count - 1]!.ratio) continue;
        const p = { a: i, b: j, ratio, together };
        // Bounded insertion: keeps the best `count` sorted without materialising all E² pairs.
        let k = out.length;
        while (k > 0 && better(p, out[k - 1]!) > 0) k--;
        if (k < count) {
          out.splice(k, 0, p);
          if (out.length > count) out.pop();
        }
      }
    }
    return out;
  }
}

/**
 * Coactivation.add for one layer at K = 8 (DeepSeek-V3 / R1, Qwen3, …): the eight ids held in locals and the 28
 * pairs written out, which V8 runs at about 1.5× the speed of the nested loop (measured on the 100k-token
 * DeepSeek-scale trace of bench/commands.ts).
 */
function countTopEight(
  ex: Uint16Array,
  tokens: number,
  first: number,
  lk: number,
  E: number,
  M: Uint32Array,
  N: Uint32Array,
): void {
  for (let t = 0, o = first; t < tokens; t++, o += lk) {
    const a0 = ex[o]!;
    const a1 = ex[o + 1]!;
    const a2 = ex[o + 2]!;
    const a3 = ex[o + 3]!;
    const a4 = ex[o + 4]!;
    const a5 = ex[o + 5]!;
    const a6 = ex[o + 6]!;
    const a7 = ex[o + 7]!;
    N[a0]!++;
    N[a1]!++;
    N[a2]!++;
    N[a3]!++;
    N[a4]!++;
    N[a5]!++;
    N[a6]!++;
    N[a7]!++;
    let r = a0 * E;
    M[r + a1]!++;
    M[r + a2]!++;
    M[r + a3]!++;
    M[r + a4]!++;
    M[r + a5]!++;
    M[r + a6]!++;
    M[r + a7]!++;
    r = a1 * E;
    M[r + a2]!++;
    M[r + a3]!++;
    M[r + a4]!++;
    M[r + a5]!++;
    M[r + a6]!++;
    M[r + a7]!++;
    r = a2 * E;
    M[r + a3]!++;
    M[r + a4]!++;
    M[r + a5]!++;
    M[r + a6]!++;
    M[r + a7]!++;
    r = a3 * E;
    M[r + a4]!++;
    M[r + a5]!++;
    M[r + a6]!++;
    M[r + a7]!++;
    r = a4 * E;
    M[r + a5]!++;
    M[r + a6]!++;
    M[r + a7]!++;
    r = a5 * E;
    M[r + a6]!++;
    M[r + a7]!++;
    M[a6 * E + a7]!++;
  }
}

/** coact under independent uniform routing: (K−1)/(E−1). */
export function randomCoactivation(experts: number, topK: number): number {
  return experts > 1 ? (topK - 1) / (experts - 1) : NaN;
}
