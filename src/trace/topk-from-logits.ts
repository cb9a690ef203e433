/**
 * Routing selection from router logits, as a top-k router computes it:
 *   softmax routers (Mixtral, Qwen-MoE, OLMoE): scores = softmax(logits); pick the K largest;
 *     weights = the K scores renormalised to sum to 1 (= softmax over the K selected logits).
 *   sigmoid routers (DeepSeek-V3 without group limits / bias): scores = sigmoid(logits); pick the K largest;
 *     weights = the K scores divided by their sum (norm_topk_prob).
 * Both scores are monotonic in the logit, so the selection is the K largest logits. Ties go to the lower expert id;
 * NaN logits rank below every number. Experts come out in descending score order.
 * Used by the importers (logits-only dumps), synth --logits, and stats ("what would the router pick").
 */
import type { Scoring } from '../core/batch.js';

export interface TopKSelection {
  /** L·K expert ids, layer-major. */
  experts: Uint16Array;
  /** L·K routing weights, layer-major, each layer's summing to 1. */
  weights: Float32Array;
}

const scratch = { idx: new Int32Array(0), val: new Float64Array(0) };

/**
 * Selects one layer: reads logits[src … src+E), writes K ids and weights at experts/weights[dst … dst+K).
 * The allocation-free form for hot loops.
 */
export function selectTopKInto(
  logits: ArrayLike<number>,
  src: number,
  E: number,
  K: number,
  scoring: Scoring,
  experts: Uint16Array,
  weights: Float32Array,
  dst: number,
): void {
  if (scratch.idx.length < K) scratch.idx = new Int32Array(K);
  if (scratch.val.length < K) scratch.val = new Float64Array(K);
  const idx = scratch.idx;
  const val = scratch.val;
  let n = 0;
  for (let e = 0; e < E; e++) {
    let v = logits[src + e]!;
    if (v !== v) v = -Infinity; // NaN ranks last
    if (n === K && !(v > val[K - 1]!)) continue;
    // Insertion into the sorted K best; strict > keeps the lower id first among ties.
    let j = n < K ? n++ : K - 1;
    while (j > 0 && v > val[j - 1]!) {
      val[j] = val[j - 1]!;
      idx[j] = idx[j - 1]!;
      j--;
    }
    val[j] = v;
    idx[j] = e;
  }
  let sum = 0;
  if (scoring === 'softmax') {
    const m = val[0]!;
    for (let k = 0; k < K; k++) sum += weights[dst + k] = m === -Infinity ? 1 : Math.exp(val[k]! - m);
  } else {
    for (let k = 0; k < K; k++) sum += weights[dst + k] = 1 / (1 + Math.exp(-val[k]!));
  }
  for (let k = 0; k < K; k++) {
    experts[dst + k] = idx[k]!;
    weights[dst + k] = sum > 0 ? weights[dst + k]! / sum : 1 / K;
  }
}

/** Selection of one token at every layer from its logits [L·E] (layer-major). */
export function selectTopK(logits: ArrayLike<number>, E: number, K: number, scoring: Scoring): TopKSelection {
  if (!(K >= 1 && K <= E)) throw new RangeError(`top-k ${K} must be within 1…${E}`);
  if (logits.length % E !== 0) throw new RangeError(`${logits.length} logits are not a whole number of layers of ${E}`);
  const L = logits.length / E;
  const out: TopKSelection = { experts: new Uint16Array(L * K), weights: new Float32Array(L * K) };
  for (let l = 0; l < L; l++) selectTopKInto(logits, l * E, E, K, scoring, out.experts, out.weights, l * K);
  return out;
}
