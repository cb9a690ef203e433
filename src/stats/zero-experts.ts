/**
 * Zero-computation experts (LongCat-Flash, arXiv 2509.01322): a router scores E real + Z experts whose output is
 * the token itself or nothing. LongCat balances load over its real experts and steers how many slots go to the zero
 * experts separately (an expert-bias controller towards a target share), so here: load balance metrics and the
 * dead / hot / MaxVio / entropy rules see the real experts only, and the share of slots routed to zero experts is a
 * metric of its own. Which ids are zero comes from the stream's router summaries (inspect, the trace header).
 */
import { UserError } from '../core/errors.js';
import { coverageExperts, deadExperts, loadCv, loadEntropy, loadMaxVio, topNShare } from './load.js';
import { busiestExpert, relativeLoadsInto, totalLoad } from './relative-load.js';

/**
 * The zero-expert ids of each layer as one L·E mask (1 = zero expert), or null when no layer has any. `ids[l]` is
 * layer l's list (null or empty: none). Ids come from a file: out of range, repeated or covering every expert of a
 * layer is a user error, not a silent skip.
 */
export function zeroExpertMask(
  ids: readonly (readonly number[] | null | undefined)[],
  layers: number,
  experts: number,
): Uint8Array | null {
  if (!ids.some((x) => x && x.length > 0)) return null;
  const mask = new Uint8Array(layers * experts);
  for (let l = 0; l < layers; l++) {
    const list = ids[l];
    if (!list) continue;
    for (const e of list) {
      if (!Number.isInteger(e) || e < 0 || e >= experts)
        throw new UserError(`zero-expert id ${String(e)} of MoE layer ${l} is outside 0…${experts - 1}`);
      if (mask[l * experts + e]) throw new UserError(`zero-expert id ${e} of MoE layer ${l} is listed twice`);
      mask[l * experts + e] = 1;
    }
    if (list.length >= experts) throw new UserError(`MoE layer ${l} lists every expert as a zero expert`);
  }
  return mask;
}

/** Whether layer l (of E experts) has zero experts in the mask. */
export function hasZeroExperts(mask: Uint8Array | null, l: number, e: number): boolean {
  if (!mask) return false;
  for (let i = l * e; i < (l + 1) * e; i++) if (mask[i]) return true;
  return false;
}

/**
 * Share of a layer's token-slots routed to zero experts: Σ load over zero experts / Σ load over all experts
 * (load[offset …]; mask[maskOffset …]). NaN when the layer has no assignments.
 */
export function zeroShare(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  mask: Uint8Array,
  maskOffset: number,
): number {
  let all = 0;
  let zero = 0;
  for (let i = 0; i < e; i++) {
    const c = load[offset + i]!;
    all += c;
    if (mask[maskOffset + i]) zero += c;
  }
  return all > 0 ? zero / all : NaN;
}

/** The real experts' load of one layer, in id order (a copy: the balance metrics then read it as a layer of its own). */
export function realLoad(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  mask: Uint8Array,
  maskOffset: number,
): Float64Array {
  let n = 0;
  for (let i = 0; i < e; i++) if (!mask[maskOffset + i]) n++;
  const out = new Float64Array(n);
  for (let i = 0, j = 0; i < e; i++) if (!mask[maskOffset + i]) out[j++] = load[offset + i]!;
  return out;
}

/** The load-balance metrics of one layer the live views draw every frame (LayerMetrics' cv … deadExperts). */
export interface LoadBalance {
  cv: number;
  maxVio: number;
  entropy: number;
  deadExperts: number;
}

/** The load-balance metrics of one layer (the LayerMetrics fields cv … coverage90). */
export interface LayerBalance extends LoadBalance {
  topNShare: number;
  coverage90: number;
}

/**
 * The balance metrics of layer row load[offset … offset+e): over every expert, or — when `mask` marks zero experts
 * in this layer (mask[maskOffset …]) — over the real experts only. The one definition RoutingStats.layerMetrics and
 * the live views' frames (src/store/frame.ts) both read, so `stats` and the TUI agree on a LongCat trace.
 */
export function layerBalance(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  topN: number,
  mask: Uint8Array | null = null,
  maskOffset = 0,
): LayerBalance {
  const { b, o, n } = balanced(load, offset, e, mask, maskOffset);
  return {
    ...loadBalanceOf(b, o, n),
    topNShare: topNShare(b, o, n, topN),
    coverage90: coverageExperts(b, o, n, 0.9),
  };
}

/**
 * layerBalance without the top-N share and the 90% coverage (each sorts the layer's load): what a frame draws for
 * every layer, many times a second.
 */
export function loadBalance(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  mask: Uint8Array | null = null,
  maskOffset = 0,
): LoadBalance {
  const { b, o, n } = balanced(load, offset, e, mask, maskOffset);
  return loadBalanceOf(b, o, n);
}

/** The load the balance metrics read: the row itself, or a copy of its real experts' load. */
function balanced(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  mask: Uint8Array | null,
  maskOffset: number,
): { b: ArrayLike<number>; o: number; n: number } {
  if (mask === null || !anyMarked(mask, maskOffset, e)) return { b: load, o: offset, n: e };
  const b = realLoad(load, offset, e, mask, maskOffset);
  return { b, o: 0, n: b.length };
}

function loadBalanceOf(b: ArrayLike<number>, o: number, n: number): LoadBalance {
  return {
    cv: loadCv(b, o, n),
    maxVio: loadMaxVio(b, o, n),
    entropy: loadEntropy(b, o, n),
    deadExperts: deadExperts(b, o, n),
  };
}

/**
 * Each expert's load relative to the uniform share of the layer's real experts, c_e ÷ (Σ_real c / E_real), written to
 * out[outOffset …]: 1 = a real expert at balance. Zero experts get the same scale (their columns are marked apart by
 * the views). Without zero experts in the layer: relativeLoadsInto. NaN for every expert while the real experts
 * have no load.
 */
export function realRelativeLoadsInto<T extends { [i: number]: number }>(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  mask: Uint8Array | null,
  maskOffset: number,
  out: T,
  outOffset = 0,
): T {
  if (mask === null || !anyMarked(mask, maskOffset, e)) return relativeLoadsInto(load, offset, e, out, outOffset);
  let s = 0;
  let n = 0;
  for (let i = 0; i < e; i++)
    if (!mask[maskOffset + i]) {
      s += load[offset + i]!;
      n++;
    }
  for (let i = 0; i < e; i++) out[outOffset + i] = s > 0 ? (load[offset + i]! / s) * n : NaN;
  return out;
}

/** The busiest real expert of a layer and its share of all the layer's assignments (busiestExpert without zero experts). */
export function busiestRealExpert(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  mask: Uint8Array | null,
  maskOffset: number,
): { expert: number; share: number } {
  if (mask === null || !anyMarked(mask, maskOffset, e)) return busiestExpert(load, offset, e);
  let b = -1;
  for (let i = 0; i < e; i++) if (!mask[maskOffset + i] && (b < 0 || load[offset + i]! > load[offset + b]!)) b = i;
  const s = totalLoad(load, offset, e);
  return { expert: b, share: s > 0 ? load[offset + b]! / s : NaN };
}

function anyMarked(mask: Uint8Array, offset: number, e: number): boolean {
  for (let i = offset; i < offset + e; i++) if (mask[i]) return true;
  return false;
}
