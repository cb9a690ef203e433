/**
 * Per-expert load of one layer as the live views show it: each expert's load relative to the uniform share, the
 * busiest expert, the assignments counted and the top-N share at balance. Like load.ts every function reads
 * `load[offset .. offset+E)`, a row of an L·E matrix. Formulas: docs/metrics.md § Relative load.
 */

/** Assignments counted in one layer, Σ_e c_e. */
export function totalLoad(load: ArrayLike<number>, offset: number, e: number): number {
  let s = 0;
  for (let i = 0; i < e; i++) s += load[offset + i]!;
  return s;
}

/**
 * Writes each expert's relative load c_e / (Σc / E) — its share ÷ the uniform share 1/E: 1 = balanced, 0 = idle,
 * E = takes everything — to out[outOffset .. outOffset+E). A layer with no load gets NaN for every expert (no data,
 * not "idle"). Returns `out`.
 */
export function relativeLoadsInto<T extends { [i: number]: number }>(
  load: ArrayLike<number>,
  offset: number,
  e: number,
  out: T,
  outOffset = 0,
): T {
  const s = totalLoad(load, offset, e);
  for (let i = 0; i < e; i++) out[outOffset + i] = s > 0 ? (load[offset + i]! / s) * e : NaN;
  return out;
}

/** The busiest expert of a layer (lowest index on ties; 0 for an empty layer) and its share c_max / Σc (NaN when empty). */
export function busiestExpert(load: ArrayLike<number>, offset: number, e: number): { expert: number; share: number } {
  let b = 0;
  for (let i = 1; i < e; i++) if (load[offset + i]! > load[offset + b]!) b = i;
  const s = totalLoad(load, offset, e);
  return { expert: b, share: s > 0 ? load[offset + b]! / s : NaN };
}

/** Share of the assignments the N busiest experts carry when routing is perfectly balanced: N / E. */
export function uniformTopNShare(n: number, e: number): number {
  return n / e;
}
