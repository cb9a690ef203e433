/**
 * Zero-computation experts (LongCat-Flash, arXiv 2509.01322): a router scores E real + Z experts whose output is
 * the token itself or nothing. LongCat balances load over its real experts and steers how many slots go to the zero
 * experts separately (an expert-bias controller towards a target share), so here: load balance metrics and the
 * dead / hot / MaxVio / entropy rules see the real experts only, and the share of slots routed to zero experts is a
 * metric of its own. Which ids are zero comes from the stream's router summaries (inspect, the trace header).
 */
import { UserError } from '../core/errors.js';

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
