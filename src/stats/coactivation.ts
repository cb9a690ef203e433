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
  /** Pair counts: pairs[(l·E + i)·E + j] = N(i and j) for i ≤ j (upper triangle; diagonal = N(i)). */
  readonly pairs: Uint32Array;
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
    this.pairs = new Uint32Array(n);
  }

  add(b: RoutingBatch): void {
    const { L, E, K } = this;
    const ex = b.experts;
    const P = this.pairs;
    const lk = L * K;
    // Layer by layer: one layer's E² counters (256 KiB at E = 256) stay in cache while every token of the batch
    // is counted into them, instead of touching all L matrices for each token.
    for (let l = 0; l < L; l++) {
      const M = P.subarray(l * E * E, (l + 1) * E * E);
      for (let t = 0, o = l * K; t < b.length; t++, o += lk) {
        for (let x = 0; x < K; x++) {
          const i = ex[o + x]!;
          M[i * E + i]!++;
          for (let y = x + 1; y < K; y++) {
            const j = ex[o + y]!;
            if (j !== i) M[Math.min(i, j) * E + Math.max(i, j)]!++;
          }
        }
      }
    }
  }

  /** N(i and j) of layer l (N(i) when i = j). */
  together(l: number, i: number, j: number): number {
    const E = this.E;
    return i <= j ? this.pairs[(l * E + i) * E + j]! : this.pairs[(l * E + j) * E + i]!;
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

/** coact under independent uniform routing: (K−1)/(E−1). */
export function randomCoactivation(experts: number, topK: number): number {
  return experts > 1 ? (topK - 1) / (experts - 1) : NaN;
}
