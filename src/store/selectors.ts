/**
 * Selectors over a frame that depend on the layout (how many columns the heatmap has, which tokens are on screen).
 * Views call them and only format the results.
 */
import { groupLoad, groupPeak } from '../stats/index.js';
import type { Frame } from './frame.js';
export type { StreamToken } from './frame.js';

/**
 * Relative load of experts [first, first + columns·bin) of MoE layer l, `bin` experts per column, each column the
 * load of its busiest expert (stats' groupPeak, so a hot expert is never averaged away when zoomed out). NaN: no
 * data yet. Which experts fall in column c is layout, decided here.
 */
export function binnedRelLoad(
  frame: Frame,
  l: number,
  first: number,
  bin: number,
  columns: number,
  out = new Float32Array(columns),
): Float32Array {
  const E = frame.experts;
  const base = l * E;
  for (let c = 0; c < columns; c++) {
    const a = first + c * bin;
    out[c] = groupPeak(frame.relLoad, base, a, Math.min(E, a + bin));
  }
  return out;
}

/** Assignments of experts [a, b) of layer l in the frame's scope, their share of the layer's, and the busiest of them. */
export function binLoad(
  frame: Frame,
  l: number,
  a: number,
  b: number,
): { count: number; share: number; busiest: number; busiestRel: number } {
  const base = l * frame.experts;
  const g = groupLoad(frame.counts, base, frame.experts, a, b);
  return { ...g, busiestRel: frame.relLoad[base + g.busiest]! };
}
