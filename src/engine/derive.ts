/**
 * Selection of a fused com.microsoft MoE/QMoE node, computed from its router-logits input the way the op does
 * (onnxruntime contrib op MoE: softmax over the logits → top-k → renormalise when normalize_routing_weights=1;
 * use_sparse_mixer=1: Phi-MoE's sparsemixer top-2 with jitter ε = 0.01). The op keeps its choice internal, so
 * this is the one place the engine routes by itself; inspect reports such routers as `"selection": "derived"`.
 */
import { rankTopInto } from '../core/topk.js';
import type { DerivedSelection } from './discover.js';

const SPARSEMIXER_EPS = 0.01;

/** Top-k scratch, grown to the largest k seen (no allocation per token). */
let topIdx = new Int32Array(0);
let topVal = new Float64Array(0);

/**
 * Select for one token. `logits` holds E values from `off` (QMoE mixing weights in `mix` from `mixOff`); writes
 * k ids and weights at `outOff`.
 * Ties go to the lower expert index.
 */
export function deriveRow(
  logits: Float32Array,
  off: number,
  E: number,
  d: DerivedSelection,
  mix: Float32Array | null,
  mixOff: number,
  ids: Int32Array,
  weights: Float32Array,
  outOff: number,
  scratch: Float64Array,
): void {
  if (d.sparseMixer) {
    sparseMixerRow(logits, off, E, ids, weights, outOff, scratch);
    return;
  }
  // Softmax is monotonic: the top-k of the probabilities is the top-k of the logits, ranked as everywhere else
  // (src/core/topk.ts: ties to the lower index). Only the k picked need their probability.
  if (topIdx.length < d.k) {
    topIdx = new Int32Array(d.k);
    topVal = new Float64Array(d.k);
  }
  rankTopInto(logits, off, E, topIdx, topVal, d.k);
  const max = topVal[0]!;
  let sum = 0;
  for (let e = 0; e < E; e++) sum += Math.exp(logits[off + e]! - max);
  let picked = 0;
  for (let j = 0; j < d.k; j++) {
    const best = topIdx[j]!;
    const p = Math.exp(logits[off + best]! - max) / sum;
    ids[outOff + j] = best;
    weights[outOff + j] = mix ? mix[mixOff + best]! : p;
    picked += p;
  }
  if (d.normalize && !mix && picked > 0)
    for (let j = 0; j < d.k; j++) weights[outOff + j] = weights[outOff + j]! / picked;
}

/** Sparsemixer (inference form, transformers' PhimoeSparseMoeBlock / onnxruntime's sparse_mixer). */
function sparseMixerRow(
  logits: Float32Array,
  off: number,
  E: number,
  ids: Int32Array,
  weights: Float32Array,
  outOff: number,
  scratch: Float64Array,
): void {
  const pick = (masked: (e: number) => boolean): { id: number; weight: number } => {
    let id = -1;
    for (let e = 0; e < E; e++) if (!masked(e) && (id < 0 || logits[off + e]! > logits[off + id]!)) id = e;
    const top = logits[off + id]!;
    // Experts within 2ε (relative) of the top stay in the softmax; the rest are masked out.
    let sum = 0;
    for (let e = 0; e < E; e++) {
      const x = logits[off + e]!;
      const factor = Math.max(Math.abs(x), top);
      const keep = !masked(e) && (top - x) / factor <= 2 * SPARSEMIXER_EPS;
      scratch[e] = keep ? Math.exp(x - top) : 0;
      sum += scratch[e]!;
    }
    return { id, weight: scratch[id]! / sum };
  };
  const first = pick(() => false);
  const second = pick((e) => e === first.id);
  ids[outOff] = first.id;
  weights[outOff] = first.weight;
  ids[outOff + 1] = second.id;
  weights[outOff + 1] = second.weight;
}
