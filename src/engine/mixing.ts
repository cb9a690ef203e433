/**
 * Following a router's selection to the mixing. The weight of an expert is the tensor that multiplies that
 * expert's output (or its input, Llama-4 style) where the outputs are summed — not whatever the top-k returned.
 * Starting from the selection's values (and from gathers of the router's scores at the selected ids), the walk goes
 * forward through the ops a router applies to its weights (casts and reshapes, softmax / sigmoid, renormalisation,
 * scaling, scatter into a dense [tokens, E] tensor and gather back) until a Mul or MatMul whose other operand is
 * not computed from the router alone: that Mul is the mixing, and the tensor it receives is the weights.
 * What the walk saw on the way says how the weights were formed (scoring, renormalisation, scaling); anything it
 * does not understand makes those answers "unknown" rather than a guess, and a walk that cannot reach the mixing
 * says why.
 */
import type { GraphIndex, OnnxNode } from './onnx-model.js';
import { attrInt } from './onnx-model.js';

/** How the weights tensor is laid out: `selection` = [tokens, K] in the order of the selected ids; `dense` = [tokens, E]. */
export type WeightsLayout = 'selection' | 'dense';

export interface MixingFollow {
  /** The weights as the mixing receives them, in `layout` (before pure reshapes/transposes), or null when not followed. */
  tensor: string | null;
  layout: WeightsLayout | null;
  /** The node that applies the weights to the experts (a Mul, or a MatMul that weights and sums at once). */
  node: string | null;
  /** Softmax or sigmoid applied to the selected values on the way (top-k on raw logits first), else null. */
  scoring: 'softmax' | 'sigmoid' | null;
  /** True: divided by their sum (ReduceSum or ReduceL1) or a softmax over the selected; false: nothing of the kind;
   * null: something on the way the walk cannot classify. */
  renormalize: boolean | null;
  /** Product of the constant factors applied on the way; null when none (or a factor of 1). */
  scaling: number | null;
  /** Ops on the way whose effect on the weights the walk cannot classify (e.g. "Add", "Mul by a router tensor"). */
  unclassified: string[];
  /** Why the walk did not reach the mixing, when it did not. */
  reason: string | null;
  /**
   * The expert ids [start, end) of a slice of the dense weights on the way to the mixing (LongCat-Flash mixes
   * columns [:E] with the experts' outputs and handles its zero-computation experts' columns elsewhere,
   * src/engine/zero-experts.ts); null when the mixing receives every expert's column.
   */
  range: [number, number] | null;
}

type Layout = 'sel' | 'dense' | 'perm';

interface State {
  layout: Layout;
  /** Last tensor in a canonical layout (sel or dense); pure reshapes keep it. */
  canonical: string;
  canonicalLayout: 'sel' | 'dense';
  scoring: 'softmax' | 'sigmoid' | null;
  renorm: boolean;
  scaling: number;
  unclassified: string[];
  /** Ops that changed values since the canonical tensor (0 = canonical is what the mixing sees, reshaped). */
  changedSinceCanonical: boolean;
  /** Expert columns [start, end) kept by a slice of the dense weights since the canonical tensor. */
  range: [number, number] | null;
}

const LAYOUT_OPS = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity', 'Cast', 'Expand']);
const MAX_STEPS = 400;

/**
 * Walk from `seeds` (tensors holding the selected experts' values: the selection's values output, gathers of the
 * scores at the selected ids) to the mixing. `router` holds the tensors of the router itself (logits to selection);
 * `ids` the selected ids and what is computed from them by reshapes/casts.
 */
export function followToMixing(
  g: GraphIndex,
  seeds: { tensor: string; layout: 'sel' | 'dense' }[],
  router: Set<string>,
  ids: Set<string>,
): MixingFollow {
  const states = new Map<string, State>();
  const queue: string[] = [];
  const push = (t: string, s: State) => {
    if (states.has(t)) return;
    states.set(t, s);
    queue.push(t);
  };
  for (const s of seeds)
    push(s.tensor, {
      layout: s.layout,
      canonical: s.tensor,
      canonicalLayout: s.layout,
      scoring: null,
      renorm: false,
      scaling: 1,
      unclassified: [],
      changedSinceCanonical: false,
      range: null,
    });
  const stops: string[] = [];
  const memo = new Map<string, boolean>();
  /** Computed from constants, shapes and router tensors only (a normaliser, a mask, a scale): not an expert's activations. */
  const routerOnly = (t: string, depth = 0): boolean => {
    if (router.has(t) || ids.has(t) || states.has(t)) return true;
    const m = memo.get(t);
    if (m !== undefined) return m;
    if (g.initializers.has(t)) return true;
    const p = g.producer.get(t);
    if (!p) return false; // a graph input
    if (depth > 12) return false;
    memo.set(t, false);
    const r =
      ['Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range'].includes(p.op_type) ||
      p.input.every((x) => x === '' || routerOnly(x, depth + 1));
    memo.set(t, r);
    return r;
  };
  /** The normaliser a Div divides by: 'sum' for ReduceSum/ReduceL1 of a walked tensor, 'other' for any other reduction, null if none. */
  const normaliser = (t: string): 'sum' | 'other' | null => {
    let frontier = [t];
    for (let hop = 0; hop < 6 && frontier.length; hop++) {
      const next: string[] = [];
      for (const x of frontier) {
        const p = g.producer.get(x);
        if (!p) continue;
        if (p.op_type.startsWith('Reduce') && states.has(p.input[0]!))
          return p.op_type === 'ReduceSum' || p.op_type === 'ReduceL1' ? 'sum' : 'other';
        if (['Add', 'Cast', 'Clip', 'Max', 'Unsqueeze', 'Reshape', 'Expand', 'Identity', 'Abs'].includes(p.op_type))
          next.push(...p.input.filter((i) => i !== ''));
      }
      frontier = next;
    }
    return null;
  };
  const scalar = (t: string): number | null => {
    const v = g.constValues(t);
    return v && v.length === 1 ? v[0]! : null;
  };
  let found: { node: OnnxNode; s: State } | null = null;
  let steps = 0;
  while (queue.length && !found && steps++ < MAX_STEPS) {
    const t = queue.shift()!;
    const s = states.get(t)!;
    for (const c of g.consumersOf(t)) {
      const out = c.output[0];
      if (!out) continue;
      const op = c.op_type;
      // A value op: the result is the new canonical tensor, unless the layout was permuted (then the canonical
      // tensor no longer holds what the mixing receives).
      const valueChanged = (patch: Partial<State>): State =>
        s.layout === 'perm'
          ? { ...s, ...patch, changedSinceCanonical: true }
          : { ...s, ...patch, canonical: out, canonicalLayout: s.layout, changedSinceCanonical: false };
      if (LAYOUT_OPS.has(op) && c.input[0] === t) {
        push(out, s);
        continue;
      }
      if (op === 'Slice' && c.input[0] === t && s.layout === 'dense' && !s.range) {
        // A slice of the expert columns: the canonical (unsliced) tensor still holds every selected expert's
        // weight at its id. Marked 'perm' so a value change after it (which would index the sliced columns) is
        // refused rather than mapped to the wrong experts.
        const r = expertColumns(g, c);
        if (r) {
          push(out, { ...s, layout: 'perm', range: r });
          continue;
        }
      }
      if (op === 'Transpose' && c.input[0] === t) {
        push(out, { ...s, layout: 'perm' });
        continue;
      }
      if (op === 'Mul' || op === 'MatMul' || op === 'Einsum') {
        const others = c.input.filter((x) => x !== t && x !== '');
        if (others.length === 0) continue;
        if (others.some((x) => !routerOnly(x))) {
          found = { node: c, s };
          break;
        }
        if (op !== 'Mul') continue;
        const k = scalar(others[0]!);
        if (k !== null) push(out, valueChanged({ scaling: s.scaling * k }));
        else if (others.every((x) => states.has(x)))
          continue; // a product of two walked tensors (a mask applied twice): not a weight
        else push(out, valueChanged({ unclassified: [...s.unclassified, `Mul by ${describe(g, others[0]!)}`] }));
        continue;
      }
      if (op === 'Div' && c.input[0] === t) {
        const k = scalar(c.input[1]!);
        if (k !== null) push(out, valueChanged({ scaling: s.scaling / k }));
        else {
          const n = normaliser(c.input[1]!);
          if (n === 'sum') push(out, valueChanged({ renorm: true }));
          else
            push(
              out,
              valueChanged({
                unclassified: [
                  ...s.unclassified,
                  n === 'other' ? 'Div by a norm other than the sum' : `Div by ${describe(g, c.input[1]!)}`,
                ],
              }),
            );
        }
        continue;
      }
      if (op === 'Softmax' && c.input[0] === t) {
        const axis = attrInt(c, 'axis', -1);
        if (s.layout === 'perm' || axis === 0)
          push(out, valueChanged({ unclassified: [...s.unclassified, 'Softmax over another axis'] }));
        else push(out, valueChanged({ scoring: s.scoring ?? 'softmax', renorm: true }));
        continue;
      }
      if (op === 'Sigmoid' && c.input[0] === t) {
        push(out, valueChanged({ scoring: s.scoring ?? 'sigmoid', renorm: false }));
        continue;
      }
      if (op === 'GatherElements' && c.input[0] === t && ids.has(c.input[1]!) && s.layout === 'dense') {
        push(out, { ...s, layout: 'sel', canonical: out, canonicalLayout: 'sel', changedSinceCanonical: false });
        continue;
      }
      if (
        (op === 'ScatterElements' || op === 'Scatter') &&
        c.input[2] === t &&
        ids.has(c.input[1]!) &&
        s.layout === 'sel' &&
        routerOnly(c.input[0]!)
      ) {
        push(out, { ...s, layout: 'dense', canonical: out, canonicalLayout: 'dense', changedSinceCanonical: false });
        continue;
      }
      if (op === 'Add' || op === 'Sub') {
        const other = c.input.find((x) => x !== t);
        if (other && routerOnly(other)) push(out, valueChanged({ unclassified: [...s.unclassified, op] }));
        else stops.push(`${op} with a tensor that is not the router's`);
        continue;
      }
      if (
        [
          'Shape',
          'Size',
          'ReduceSum',
          'ReduceL1',
          'ReduceL2',
          'ReduceMax',
          'ReduceMean',
          'Equal',
          'Greater',
          'Less',
          'ArgMax',
          'TopK',
          'NonZero',
        ].includes(op)
      )
        continue; // side branches
      stops.push(op);
    }
  }
  if (!found) {
    const why = stops.length
      ? `the weights go through ${[...new Set(stops)].slice(0, 4).join(', ')} before any mixing the engine can follow`
      : 'no Mul applies the selected weights to the experts';
    return {
      tensor: null,
      layout: null,
      node: null,
      scoring: null,
      renormalize: null,
      scaling: null,
      unclassified: [],
      reason: why,
      range: null,
    };
  }
  const { node, s } = found;
  if (s.changedSinceCanonical)
    return {
      tensor: null,
      layout: null,
      node: node.name || node.op_type,
      scoring: null,
      renormalize: null,
      scaling: null,
      unclassified: s.unclassified,
      reason: 'the weights are changed after a transpose, in a layout the engine cannot map back to the selection',
      range: null,
    };
  const scaling = Math.abs(s.scaling - 1) < 1e-7 ? null : shortestFloat32(s.scaling);
  return {
    tensor: s.canonical,
    layout: s.canonicalLayout === 'sel' ? 'selection' : 'dense',
    node: node.name || node.op_type,
    scoring: s.scoring,
    renormalize: s.unclassified.length ? null : s.renorm,
    scaling,
    unclassified: s.unclassified,
    reason: null,
    range: s.range,
  };
}

/**
 * The expert columns [start, end) a Slice keeps of a dense [tokens, E] tensor: constant starts/ends on the last
 * axis (axes -1 or 1), step 1; null for any other slice. Ends past E (PyTorch writes INT64_MAX for `[:, n:]`) are
 * clamped by the caller, which knows E.
 */
export function expertColumns(g: GraphIndex, n: OnnxNode): [number, number] | null {
  const one = (i: number, dflt: number | null): number | null => {
    const t = n.input[i];
    if (t === undefined || t === '') return dflt;
    const v = g.constValues(t);
    return v && v.length === 1 ? v[0]! : null;
  };
  const start = one(1, null);
  const end = one(2, null);
  const axis = one(3, -1);
  const step = one(4, 1);
  if (start === null || end === null || step !== 1 || (axis !== -1 && axis !== 1) || start < 0 || end <= start)
    return null;
  return [start, end];
}

/** The shortest decimal that is the same float32 (graph constants are float32: 1.8, not 1.7999999523162842). */
function shortestFloat32(v: number): number {
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === Math.fround(v)) return d;
  }
  return v;
}

function describe(g: GraphIndex, t: string): string {
  const p = g.producer.get(t);
  return p ? `a ${p.op_type} output` : t;
}
