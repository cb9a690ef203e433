/**
 * Drift between two load distributions of one layer (e.g. before and after a fine-tune or a re-quantisation).
 * The Jensen–Shannon divergence is `jsDivergence` in load.ts; this adds the total variation distance.
 * Formulas and sources: docs/metrics.md § Drift.
 */
import { loadShares } from './load.js';

/**
 * Total variation distance between the expert shares of two loads: ½ Σ_e |p_e − q_e| with p = a/Σa, q = b/Σb
 * (Levin & Peres, "Markov chains and mixing times", §4.1). 0 = identical shares, 1 = disjoint experts; it is the
 * largest share of assignments that would have to move to another expert to turn one distribution into the other.
 * NaN when either load is all zero.
 */
export function totalVariation(
  a: ArrayLike<number>,
  aOff: number,
  b: ArrayLike<number>,
  bOff: number,
  e: number,
): number {
  const p = loadShares(a, aOff, e);
  const q = loadShares(b, bOff, e);
  let sp = 0;
  let sq = 0;
  let d = 0;
  for (let i = 0; i < e; i++) {
    sp += p[i]!;
    sq += q[i]!;
    d += Math.abs(p[i]! - q[i]!);
  }
  // loadShares gives all zeros for an empty load: no distribution to compare.
  if (sp === 0 || sq === 0) return NaN;
  return Math.min(1, 0.5 * d);
}
