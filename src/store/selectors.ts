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
  const base = l * frame.experts;
  const E = frame.layerExperts[l]!;
  for (let c = 0; c < columns; c++) {
    const a = first + c * bin;
    out[c] = a < E ? groupPeak(frame.relLoad, base, a, Math.min(E, a + bin)) : Number.NaN;
  }
  return out;
}

/**
 * Columns of the viewport [first, first + columns·bin) that hold an expert of layer l: all of them, or fewer for a
 * layer with fewer experts than the widest (mixed shapes: the columns past them are no experts, drawn blank).
 */
export function layerColumns(frame: Frame, l: number, first: number, bin: number, columns: number): number {
  const E = frame.layerExperts[l]!;
  return Math.max(0, Math.min(columns, Math.ceil((E - first) / bin)));
}

/** Assignments of experts [a, b) of layer l in the frame's scope, their share of the layer's, and the busiest of them. */
export function binLoad(
  frame: Frame,
  l: number,
  a: number,
  b: number,
): { count: number; share: number; busiest: number; busiestRel: number } {
  const base = l * frame.experts;
  const g = groupLoad(frame.counts, base, frame.layerExperts[l]!, a, Math.min(b, frame.layerExperts[l]!));
  return { ...g, busiestRel: frame.relLoad[base + g.busiest]! };
}

/**
 * Which columns of the viewport hold only zero-computation experts of layer l (LongCat-Flash): 1 where every expert
 * of the column is one. The views mark those columns instead of colouring them on the real experts' scale.
 */
export function zeroColumns(
  frame: Frame,
  l: number,
  first: number,
  bin: number,
  columns: number,
  out = new Uint8Array(columns),
): Uint8Array {
  out.fill(0);
  const mask = frame.fidelity.zeroMask;
  if (!mask || !frame.fidelity.zeroExperts[l]) return out;
  const base = l * frame.experts;
  const E = frame.layerExperts[l]!;
  for (let c = 0; c < columns; c++) {
    const a = first + c * bin;
    const b = Math.min(E, a + bin);
    let all = a < b;
    for (let e = a; e < b && all; e++) if (!mask[base + e]) all = false;
    out[c] = all ? 1 : 0;
  }
  return out;
}

/** Whether expert e of layer l is a zero-computation expert. */
export function isZeroExpert(frame: Frame, l: number, e: number): boolean {
  const mask = frame.fidelity.zeroMask;
  return mask !== null && e < frame.layerExperts[l]! && mask[l * frame.experts + e] === 1;
}
