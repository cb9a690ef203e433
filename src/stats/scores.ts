/**
 * Router scores of one token at one layer, from its E logits (float16 bits): the probabilities each loss
 * convention needs, log-sum-exp (z-loss), routing entropy and the top-(K+1) ranking (HF's selection, margin).
 *
 * Probability conventions (docs/metrics.md § Probabilities):
 *  - `prob`: the router's own distribution — softmax(x) for softmax routers; for sigmoid routers the sigmoid
 *    scores normalised to sum 1 (Megatron's `compute_routing_scores_for_aux_loss`, DeepSeek-V3's sequence-wise
 *    loss). Used by the Switch/Megatron, GShard, DeepSeek sequence-wise and importance losses and the entropy.
 *  - `soft`: softmax(x) whatever the router does — what HF's `load_balancing_loss_func` computes.
 *    The same array as `prob` for softmax routers.
 */
import { F16_TO_F32 } from '../core/f16.js';
import type { Scoring } from '../core/batch.js';
import { rankTopInto } from '../core/topk.js';
import { logSigmoid, sigmoid } from './sigmoid.js';

export { sigmoid } from './sigmoid.js';

export class RowScorer {
  readonly experts: number;
  readonly topK: number;
  readonly scoring: Scoring;
  /** The router's probability of each expert (see above). */
  readonly prob: Float64Array;
  /** softmax over all experts (HF's convention). */
  readonly soft: Float64Array;
  /** Indices of the K+1 largest logits, largest first (ties: lower index first). */
  readonly rank: Int32Array;
  /** log Σ exp(x): the router z-loss is its square. */
  lse = 0;
  /** Entropy of `prob` divided by ln E (1 = uniform, 0 = one-hot). */
  entropy = 0;
  /** Score of the K-th minus the (K+1)-th best expert (softmax probability or sigmoid score); NaN when K ≥ E. */
  margin = 0;
  private readonly x: Float64Array;
  private readonly rankVal: Float64Array;

  constructor(experts: number, topK: number, scoring: Scoring) {
    this.experts = experts;
    this.topK = topK;
    this.scoring = scoring;
    this.x = new Float64Array(experts);
    this.soft = new Float64Array(experts);
    this.prob = scoring === 'softmax' ? this.soft : new Float64Array(experts);
    const r = Math.min(topK + 1, experts);
    this.rank = new Int32Array(r);
    this.rankVal = new Float64Array(r);
  }

  /** Scores the E logits at logits[offset…]; false (and nothing computed) when any is NaN or infinite. */
  score(logits: Uint16Array, offset: number): boolean {
    const E = this.experts;
    const x = this.x;
    const rank = this.rank;
    const rv = this.rankVal;
    const max = decodeLogits(logits, offset, E, x);
    if (Number.isNaN(max)) return false;
    rankTopInto(x, 0, E, rank, rv);
    let z = 0;
    let ex = 0;
    const soft = this.soft;
    for (let i = 0; i < E; i++) {
      const e = Math.exp(x[i]! - max);
      soft[i] = e;
      z += e;
      ex += e * (x[i]! - max);
    }
    const inv = 1 / z;
    for (let i = 0; i < E; i++) soft[i]! *= inv;
    const logZ = Math.log(z);
    this.lse = max + logZ;
    const lnE = Math.log(E);
    const K = this.topK;
    if (this.scoring === 'softmax') {
      this.entropy = E > 1 ? (logZ - ex * inv) / lnE : 0;
      this.margin = K < E ? Math.exp(rv[K - 1]! - max) * inv - Math.exp(rv[K]! - max) * inv : NaN;
    } else {
      const p = this.prob;
      let s = 0;
      let slogs = 0;
      for (let i = 0; i < E; i++) {
        const logSig = logSigmoid(x[i]!);
        const sig = Math.exp(logSig);
        p[i] = sig;
        s += sig;
        slogs += sig * logSig;
      }
      const invS = 1 / s;
      for (let i = 0; i < E; i++) p[i]! *= invS;
      this.entropy = E > 1 ? (Math.log(s) - slogs * invS) / lnE : 0;
      this.margin = K < E ? sigmoid(rv[K - 1]!) - sigmoid(rv[K]!) : NaN;
    }
    return true;
  }
}

/**
 * The score the router ranks experts by, per expert, into out: softmax probability, or the raw sigmoid (what
 * DeepSeek-V3 adds its balancing bias to). False when a logit is NaN or infinite.
 */
export function routerScores(
  logits: Uint16Array,
  offset: number,
  E: number,
  scoring: Scoring,
  out: Float64Array,
): boolean {
  const max = decodeLogits(logits, offset, E, out);
  if (Number.isNaN(max)) return false;
  if (scoring === 'sigmoid') {
    for (let i = 0; i < E; i++) out[i] = sigmoid(out[i]!);
    return true;
  }
  let z = 0;
  for (let i = 0; i < E; i++) z += out[i] = Math.exp(out[i]! - max);
  for (let i = 0; i < E; i++) out[i]! /= z;
  return true;
}

/** Decodes E float16 logits into out; returns their maximum, or NaN when any is NaN or infinite. */
function decodeLogits(logits: Uint16Array, offset: number, E: number, out: Float64Array): number {
  let max = -Infinity;
  for (let i = 0; i < E; i++) {
    const v = F16_TO_F32[logits[offset + i]!]!;
    if (!Number.isFinite(v)) return NaN;
    out[i] = v;
    if (v > max) max = v;
  }
  return max;
}
