/**
 * Selectors over a frame that depend on the layout (how many columns the heatmap has, which tokens are on screen).
 * Views call them and only format the results.
 */
import type { Frame } from './frame.js';

/**
 * Relative load of experts [first, first + columns·bin) of MoE layer l, `bin` experts per column, each column the
 * load of its busiest expert (so a hot expert is never averaged away when zoomed out). NaN: no data yet.
 */
export function binnedRelLoad(frame: Frame, l: number, first: number, bin: number, columns: number, out = new Float32Array(columns)): Float32Array {
  const E = frame.experts;
  const base = l * E;
  const rel = frame.relLoad;
  for (let c = 0; c < columns; c++) {
    const a = first + c * bin;
    const b = Math.min(E, a + bin);
    let m = a < b ? -Infinity : NaN;
    for (let e = a; e < b; e++) {
      const v = rel[base + e]!;
      if (Number.isNaN(v)) {
        m = NaN;
        break;
      }
      if (v > m) m = v;
    }
    out[c] = m;
  }
  return out;
}

/** Assignments of experts [a, b) of layer l in the frame's scope, and their share of the layer's assignments. */
export function binLoad(frame: Frame, l: number, a: number, b: number): { count: number; share: number; busiest: number; busiestRel: number } {
  const E = frame.experts;
  const base = l * E;
  let count = 0;
  let total = 0;
  let busiest = a;
  for (let e = 0; e < E; e++) total += frame.counts[base + e]!;
  for (let e = a; e < b; e++) {
    count += frame.counts[base + e]!;
    if (frame.counts[base + e]! > frame.counts[base + busiest]!) busiest = e;
  }
  return { count, share: total > 0 ? count / total : NaN, busiest, busiestRel: frame.relLoad[base + busiest]! };
}

export interface StreamToken {
  index: number;
  text: string;
  /** First choice in the selected layer. */
  expert: number;
  isPrompt: boolean;
  seq: number;
  tag: string | null;
}

/** Tokens [from, to) still held, with their first choice at layer index l. */
export function streamTokens(frame: Frame, from: number, to: number, l: number): StreamToken[] {
  const r = frame.tokensReader;
  const out: StreamToken[] = [];
  const a = Math.max(from, frame.ring.start);
  const b = Math.min(to, frame.ring.end);
  for (let i = a; i < b; i++) {
    if (!r.has(i)) continue;
    out.push({ index: i, text: r.text(i), expert: r.firstChoice(i, l), isPrompt: r.isPrompt(i), seq: r.seq(i), tag: r.tag(i) });
  }
  return out;
}

/** Distinct sequences among the tokens held. */
export function sequencesHeld(frame: Frame): number {
  const seqs = new Set<number>();
  for (let i = frame.ring.start; i < frame.ring.end; i++) seqs.add(frame.tokensReader.seq(i));
  return seqs.size;
}
