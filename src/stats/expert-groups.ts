/**
 * Numbers of a group of consecutive experts [from, to) of one layer — what a zoomed-out heatmap column or a cursor
 * over it shows — and values relative to the largest of a list (bar lengths). Which experts form a group is the
 * caller's layout; the arithmetic is here. Formulas: docs/metrics.md § Expert groups.
 */
import { totalLoad } from './relative-load.js';

/**
 * The largest relative load among experts [from, to), read from a relative-load row (relativeLoadsInto) at `offset`:
 * the busiest expert stands for its group, so a hot expert is never averaged away. NaN when the group is empty or
 * any of its experts has no data (NaN).
 */
export function groupPeak(rel: ArrayLike<number>, offset: number, from: number, to: number): number {
  let m = from < to ? -Infinity : NaN;
  for (let e = from; e < to; e++) {
    const v = rel[offset + e]!;
    if (Number.isNaN(v)) return NaN;
    if (v > m) m = v;
  }
  return m;
}

export interface GroupLoad {
  /** Assignments of the group's experts, Σ_{e∈[from,to)} c_e. */
  count: number;
  /** count / Σ_e c_e over the whole layer (NaN when the layer has no load). */
  share: number;
  /** The group's busiest expert (lowest index on ties; `from` for an empty group). */
  busiest: number;
}

/** Assignments of experts [from, to) of a layer of `e` experts (row at `offset`), their share, the busiest of them. */
export function groupLoad(load: ArrayLike<number>, offset: number, e: number, from: number, to: number): GroupLoad {
  const total = totalLoad(load, offset, e);
  let count = 0;
  let busiest = from;
  for (let i = from; i < to; i++) {
    count += load[offset + i]!;
    if (load[offset + i]! > load[offset + busiest]!) busiest = i;
  }
  return { count, share: total > 0 ? count / total : NaN, busiest };
}

/** Each value ÷ the largest value (1 for the largest, 0 … 1 for non-negative values); all 0 when the largest is ≤ 0. */
export function fractionsOfPeak(values: readonly number[]): number[] {
  const peak = values.reduce((a, b) => Math.max(a, b), 0);
  return values.map((v) => (peak > 0 ? v / peak : 0));
}
