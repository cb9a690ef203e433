/**
 * Zero-computation experts (LongCat-Flash): a router that scores E + Z experts, where the Z extra ones compute
 * nothing — their weight multiplies the token's own hidden state (identity) or nothing at all (zero). Found from the
 * graph, not from a config: the dense [tokens, E + Z] weights the mixing receives are sliced by expert columns, and
 * each slice is followed to what it multiplies — the experts' outputs (real experts), the tensor the router itself
 * reads (identity), or nothing (zero). Anything else makes the answer "unknown" rather than a guess.
 */
import type { GraphIndex, OnnxNode } from './onnx-model.js';
import { expertColumns, type MixingFollow } from './mixing.js';

export interface ZeroExperts {
  /** Router ids of the zero-computation experts, ascending. */
  ids: number[];
  /** identity: their weight multiplies the router's input hidden state; zero: their weight is used nowhere; unknown:
   * the graph does something else with it. */
  kind: 'identity' | 'zero' | 'unknown';
}

/** Ops that move or retype a tensor without changing which values it holds. */
const SAME_VALUES = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity', 'Cast', 'Expand']);
const MAX_HOPS = 8;

/** Tensors that hold the same values as `t` upstream (through reshapes and casts), `t` included. */
function sources(g: GraphIndex, t: string): Set<string> {
  const out = new Set<string>([t]);
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const p = g.producer.get(t);
    if (!p || !SAME_VALUES.has(p.op_type) || !p.input[0]) break;
    t = p.input[0];
    out.add(t);
  }
  return out;
}

type Branch = 'experts' | 'identity' | 'unused' | 'unknown';

/** What a slice of the weights ends up multiplying. */
function classify(g: GraphIndex, sliced: string, hidden: Set<string>): Branch {
  let frontier = [sliced];
  let seen = 0;
  for (let hop = 0; hop < MAX_HOPS && frontier.length; hop++) {
    const next: string[] = [];
    for (const t of frontier) {
      for (const c of g.consumersOf(t)) {
        if (++seen > 32) return 'unknown';
        const out = c.output[0];
        if (!out) continue;
        if ((SAME_VALUES.has(c.op_type) || c.op_type === 'ReduceSum') && c.input[0] === t) {
          next.push(out);
          continue;
        }
        if (c.op_type === 'Mul' || c.op_type === 'MatMul' || c.op_type === 'Einsum') {
          const other = c.input.filter((x) => x !== t && x !== '');
          if (other.length !== 1) return 'unknown';
          const up = sources(g, other[0]!);
          return [...up].some((x) => hidden.has(x)) ? 'identity' : 'experts';
        }
        if (c.op_type === 'Shape' || c.op_type === 'Size') continue;
        return 'unknown';
      }
    }
    frontier = next;
  }
  return seen === 0 ? 'unused' : 'unknown';
}

/**
 * The zero-computation experts of a router whose weights were followed to the mixing in dense layout, or null when
 * every expert's column reaches the experts (no zero experts) or the weights are not sliced by expert.
 * `gate` is the router's projection node (its data input is the hidden state the router reads); `experts` is E + Z.
 */
export function zeroExpertsOf(g: GraphIndex, mix: MixingFollow, gate: OnnxNode, experts: number): ZeroExperts | null {
  if (!mix.tensor || mix.layout !== 'dense' || !mix.range) return null;
  const hidden = sources(g, gate.input[0]!);
  // Every consumer of the dense weights (through reshapes and casts): slices by expert column, else opaque.
  const slices: { range: [number, number]; branch: Branch }[] = [];
  let opaque = false;
  let frontier = [mix.tensor];
  for (let hop = 0; hop < MAX_HOPS && frontier.length; hop++) {
    const next: string[] = [];
    for (const t of frontier)
      for (const c of g.consumersOf(t)) {
        if (SAME_VALUES.has(c.op_type) && c.input[0] === t && c.output[0]) next.push(c.output[0]);
        else if (c.op_type === 'Slice' && c.input[0] === t && c.output[0]) {
          const r = expertColumns(g, c);
          if (!r) opaque = true;
          else slices.push({ range: [r[0], Math.min(r[1], experts)], branch: classify(g, c.output[0], hidden) });
        } else if (c.op_type !== 'Shape' && c.op_type !== 'Size') opaque = true;
      }
    frontier = next;
  }
  const real = new Uint8Array(experts);
  for (const s of slices) if (s.branch === 'experts') real.fill(1, s.range[0], s.range[1]);
  const ids: number[] = [];
  for (let e = 0; e < experts; e++) if (!real[e]) ids.push(e);
  if (ids.length === 0 || ids.length === experts) return null;
  const kinds = new Set<ZeroExperts['kind']>();
  for (const e of ids) {
    const covering = slices.filter((s) => e >= s.range[0] && e < s.range[1]).map((s) => s.branch);
    if (covering.length === 0) kinds.add(opaque ? 'unknown' : 'zero');
    else if (covering.every((b) => b === 'identity')) kinds.add('identity');
    else if (covering.every((b) => b === 'unused')) kinds.add('zero');
    else kinds.add('unknown');
  }
  return { ids, kind: kinds.size === 1 ? [...kinds][0]! : 'unknown' };
}
