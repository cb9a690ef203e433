/**
 * Consecutive-token expert repetition (Mixtral, arXiv 2401.04088 §5 / Table 5): over pairs of consecutive tokens
 * of the same sequence (same seq id, pos + 1), how often the first choice repeats, and how often the two top-2
 * sets overlap. First / second choice = the highest / second-highest recorded weight (ties: the earlier slot).
 * Random baselines: 1/E and 1 − C(E−2, 2)/C(E, 2).
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { F16_TO_F32 } from '../core/f16.js';

export interface LayerRepeat {
  layer: number;
  pairs: number;
  /** Share of consecutive pairs with the same first choice. */
  firstChoice: number | null;
  /** Share of consecutive pairs whose top-2 sets share an expert; null when K < 2. */
  topTwoOverlap: number | null;
  /** Token rows with a NaN or ±Inf routing weight (their first choice falls back to a slot's position). */
  nonFiniteWeightRows: number;
}

export interface RepeatResult {
  layers: LayerRepeat[];
  randomFirstChoice: number;
  randomTopTwoOverlap: number | null;
}

export class RepeatRate {
  readonly schema: RoutingSchema;
  private readonly L: number;
  private readonly K: number;
  private readonly prev1: Int32Array;
  private readonly prev2: Int32Array;
  private readonly cur1: Int32Array;
  private readonly cur2: Int32Array;
  private prevSeq = -1;
  private prevPos = -1;
  private pairs = 0;
  private readonly same1: Float64Array;
  private readonly overlap2: Float64Array;
  private readonly nonFinite: Float64Array;

  constructor(schema: RoutingSchema) {
    this.schema = schema;
    this.L = schema.layers.length;
    this.K = schema.topK;
    this.prev1 = new Int32Array(this.L);
    this.prev2 = new Int32Array(this.L);
    this.cur1 = new Int32Array(this.L);
    this.cur2 = new Int32Array(this.L);
    this.same1 = new Float64Array(this.L);
    this.overlap2 = new Float64Array(this.L);
    this.nonFinite = new Float64Array(this.L);
  }

  add(b: RoutingBatch): void {
    const { L, K } = this;
    for (let t = 0; t < b.length; t++) {
      for (let l = 0; l < L; l++) {
        const o = (t * L + l) * K;
        let w1 = -Infinity;
        let w2 = -Infinity;
        let e1 = -1;
        let e2 = -1;
        let bad = false;
        for (let j = 0; j < K; j++) {
          const w = F16_TO_F32[b.weights[o + j]!]!;
          if (w - w !== 0) bad = true; // NaN or ±Inf: this scan reads every weight, so it counts them too
          const x = b.experts[o + j]!;
          if (w > w1) {
            w2 = w1;
            e2 = e1;
            w1 = w;
            e1 = x;
          } else if (w > w2) {
            w2 = w;
            e2 = x;
          }
        }
        if (bad) this.nonFinite[l]!++;
        this.cur1[l] = e1 >= 0 ? e1 : b.experts[o]!; // all weights NaN: the first slot, as firstChoice says
        this.cur2[l] = e2;
      }
      const seq = b.seq[t]!;
      const pos = b.pos[t]!;
      if (seq === this.prevSeq && pos === this.prevPos + 1) {
        this.pairs++;
        for (let l = 0; l < L; l++) {
          const a1 = this.prev1[l]!;
          const a2 = this.prev2[l]!;
          const b1 = this.cur1[l]!;
          const b2 = this.cur2[l]!;
          if (a1 === b1) this.same1[l]!++;
          if (K >= 2 && (a1 === b1 || a1 === b2 || a2 === b1 || a2 === b2)) this.overlap2[l]!++;
        }
      }
      this.prev1.set(this.cur1);
      this.prev2.set(this.cur2);
      this.prevSeq = seq;
      this.prevPos = pos;
    }
  }

  result(): RepeatResult {
    const E = this.schema.experts;
    const n = this.pairs;
    return {
      layers: this.schema.layers.map((layer, l) => ({
        layer,
        pairs: n,
        firstChoice: n > 0 ? this.same1[l]! / n : null,
        topTwoOverlap: n > 0 && this.K >= 2 ? this.overlap2[l]! / n : null,
        nonFiniteWeightRows: this.nonFinite[l]!,
      })),
      randomFirstChoice: 1 / E,
      randomTopTwoOverlap: this.K >= 2 && E >= 2 ? randomTopTwoOverlap(E) : null,
    };
  }
}

/** P(two independent uniformly random 2-subsets of E experts intersect) = 1 − C(E−2,2)/C(E,2). */
export function randomTopTwoOverlap(E: number): number {
  if (E < 4) return 1;
  return 1 - ((E - 2) * (E - 3)) / (E * (E - 1));
}
