/**
 * Top-k ranking, shared by trace (importers, synth: the selection a router makes from its logits) and stats
 * (RowScorer's top-(K+1), loss-free balancing's top-K of s + b). One implementation so that every place agrees
 * on order and ties: largest first, ties to the lower index, NaN ranked as -Infinity (below every number; among
 * NaN and -Infinity, the lower index first).
 *
 * Router selection (`selectTopK`):
 *   softmax routers (Mixtral, Qwen-MoE, OLMoE): scores = softmax(logits); pick the K largest;
 *     weights = the K scores renormalised to sum to 1 (= softmax over the K selected logits).
 *   sigmoid routers (DeepSeek-V3 without group limits / bias): scores = sigmoid(logits); pick the K largest;
 *     weights = the K scores divided by their sum (norm_topk_prob).
 * Both scores are monotonic in the logit, so the selection is the K largest logits.
 */
import type { Scoring } from './batch.js';

/**
 * Indices of the `r` largest of v[from … from+n) (relative to `from`), largest first, into idx[0 … r), and their
 * values into val (NaN stored as -Infinity). Requires r ≤ n, idx.length ≥ r, val.length ≥ r.
 * Insertion into a short sorted list: most values fail the first comparison.
 */
export function rankTopInto(
  v: ArrayLike<number>,
  from: number,
  n: number,
  idx: Int32Array,
  val: Float64Array,
  r = idx.length,
): void {
  let filled = 0;
  for (let e = 0; e < n; e++) {
    let x = v[from + e]!;
    if (x !== x) x = -Infinity; // NaN ranks last
    if (filled === r && !(x > val[r - 1]!)) continue;
    // Strict > keeps the lower index first among ties.
    let j = filled < r ? filled++ : r - 1;
    while (j > 0 && x > val[j - 1]!) {
      val[j] = val[j - 1]!;
      idx[j] = idx[j - 1]!;
      j--;
    }
    val[j] = x;
    idx[j] = e;
  }
}

export interface TopKSelection {
  /** L·K expert ids, layer-major. */
  experts: Uint16Array;
  /** L·K routing weights, layer-major, each layer's summing to 1. */
  weights: Float32Array;
}

const scratch = { idx: new Int32Array(0), val: new Float64Array(0) };

/**
 * Router selection of one layer: reads logits[src … src+E), writes K ids (descending score) and weights at
 * experts/weights[dst … dst+K). The allocation-free form for hot loops.
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
  rankTopInto(logits, src, E, idx, val, K);
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

/** Router selection of one token at every layer from its logits [L·E] (layer-major). */
export function selectTopK(logits: ArrayLike<number>, E: number, K: number, scoring: Scoring): TopKSelection {
  if (!(K >= 1 && K <= E)) throw new RangeError(`top-k ${K} must be within 1…${E}`);
  if (logits.length % E !== 0) throw new RangeError(`${logits.length} logits are not a whole number of layers of ${E}`);
  const L = logits.length / E;
  const out: TopKSelection = { experts: new Uint16Array(L * K), weights: new Float32Array(L * K) };
  for (let l = 0; l < L; l++) selectTopKInto(logits, l * E, E, K, scoring, out.experts, out.weights, l * K);
  return out;
}
