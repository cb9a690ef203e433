/**
 * Router discovery by graph pattern. Names change between exporters and transformers versions, so the search
 * starts from what routing must contain — a selection (TopK, ArgMax, or a fused com.microsoft MoE node) fed by a
 * gate projection (MatMul/Gemm on a weight initializer) — and reads names only for the layer number.
 * Patterns (docs/inspect.md): softmax → top-k (Mixtral, Qwen-MoE, OLMoE, TorchScript and dynamo), sigmoid + bias
 * + group-limited top-k (DeepSeek-V3: the LAST TopK of the chain is the selection), top-k → softmax over the
 * selected logits, ArgMax top-1 (Switch), ArgMax-pair sparsemixer (Phi-MoE), fused MoE/QMoE (selection derived
 * from the router-logits input following the op's attributes).
 */
import type { Scoring } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { followToMixing, type MixingFollow, type WeightsLayout } from './mixing.js';
import { zeroExpertsOf, type ZeroExperts } from './zero-experts.js';
import {
  attr,
  attrInt,
  type GraphIndex,
  tensorBytes,
  toNum,
  type LoadedModel,
  type OnnxNode,
  type OnnxTensor,
} from './onnx-model.js';

export type RouterKind =
  | 'softmax-topk'
  | 'sigmoid-topk'
  | 'topk-softmax'
  | 'topk-sigmoid'
  | 'topk-unknown'
  | 'softmax-group-topk'
  | 'sigmoid-group-topk'
  | 'switch-top1'
  | 'sparsemixer'
  | 'fused-moe'
  | 'fused-qmoe';

/** How the engine computes the selection itself when it lives inside a fused op. */
export interface DerivedSelection {
  k: number;
  /** Renormalise the selected softmax probabilities to sum to 1 (`normalize_routing_weights`). */
  normalize: boolean;
  /** `use_sparse_mixer=1`: Phi-MoE's sparsemixer top-2. */
  sparseMixer: boolean;
  /** QMoE input 14: mixing weights taken from this tensor at the selected experts. */
  weightsTensor: string | null;
}

export interface RouterInfo {
  /** The model's own layer index. */
  layer: number;
  /**
   * Which router this is: the model's layer (null when the graph names none) and what it routes ("mlp", or
   * "attention" for mixture-of-attention-heads routers such as JetMoE's). `layer` above is the stream's key; it
   * equals identity.layer unless several routers share a layer.
   */
  identity: { layer: number | null; role: 'mlp' | 'attention'; source: 'name' | 'metadata' | 'initializer' | 'order' };
  /** Where the layer index came from: node name, exporter metadata, initializer name, or capture order. */
  layerSource: 'name' | 'metadata' | 'initializer' | 'order';
  experts: number;
  topK: number;
  /** How logits become scores; "unknown" when the graph does not say (never a guess). */
  scoring: Scoring | 'unknown';
  kind: RouterKind;
  /** "graph": ids/weights are the model's own tensors; "derived": computed from its logits by the engine. */
  selection: 'graph' | 'derived';
  /** Weights renormalised over the selected experts; null when the graph does something the engine cannot classify. */
  renormalize: boolean | null;
  /** Constant the weights are multiplied by after normalisation (DeepSeek's routed_scaling_factor). */
  scalingFactor: number | null;
  /** Score-correction bias added before selection (DeepSeek-V3 e_score_correction_bias), by tensor name. */
  bias: string | null;
  /** Group-limited routing: experts split into `count` groups, `topk` groups kept. */
  groups: { count: number; topk: number } | null;
  tensors: {
    /** Router logits [tokens, E]. */
    logits: string;
    /** Selected expert ids [tokens, K]; null when derived. */
    ids: string | null;
    /** Mixing weights of the selected experts [tokens, K]; null when derived. */
    weights: string | null;
    /** The gate's weight initializer, when the logits come from one. */
    gateWeight: string | null;
  };
  derived: DerivedSelection | null;
  /** How the weights were followed from the selection to where the experts' outputs are mixed (src/engine/mixing.ts). */
  mixing: {
    /** followed: `tensors.weights` is what the experts are multiplied by; not-followed: the engine could not follow
     * the selection to the mixing, so only the selection is recorded (weights NaN); derived: fused op, computed. */
    status: 'followed' | 'not-followed' | 'derived';
    /** Layout of `tensors.weights`: [tokens, K] in selection order, or dense [tokens, E] (gathered at the ids). */
    layout: WeightsLayout | null;
    /** The node that applies the weights (Mul/MatMul), when found. */
    node: string | null;
    /** Why the weights could not be followed, or what on the way is unclassified; null when fully followed. */
    note: string | null;
  };
  /** The node that makes the selection. */
  node: string;
  /** A shared (always-on) expert in the same layer, found by its module name; null when none. */
  sharedExpert: { gated: boolean; bytes: number } | null;
  /** Bytes of one routed expert's weights, when the expert weights could be attributed to this layer. */
  expertBytes: number | null;
  /** Zero-computation experts among the E the router scores (LongCat-Flash), found at the mixing; null when none. */
  zeroExperts: ZeroExperts | null;
}

export interface ModelRouting {
  routers: RouterInfo[];
  /** Layer indices seen in the graph that have no router (dense layers), when layers are named. */
  denseLayers: number[];
  /** Number of decoder layers seen (max index + 1), or null when the graph names none. */
  numLayers: number | null;
}

export const PATTERNS_TRIED = [
  'gate MatMul/Gemm → softmax → TopK',
  'gate → sigmoid (+ bias) → group-limited TopK chain (last TopK selects)',
  'gate → TopK → softmax over the selected',
  'gate → ArgMax (switch top-1)',
  'gate → ArgMax pair (sparsemixer)',
  'com.microsoft MoE/QMoE router input',
];

const GATE_OPS = new Set(['MatMul', 'Gemm', 'FusedMatMul', 'MatMulNBits', 'MatMulInteger']);
const MAX_BACK_HOPS = 16;

/** Inputs of a node that carry data (not shapes, indices or masks) for the backward walk to the gate. */
function dataInputs(n: OnnxNode): string[] {
  switch (n.op_type) {
    case 'Shape':
    case 'Size':
    case 'ConstantOfShape':
    case 'Constant':
    case 'Range':
      return [];
    case 'Reshape':
    case 'Expand':
    case 'Tile':
    case 'Slice':
    case 'Unsqueeze':
    case 'Squeeze':
    case 'TopK':
    case 'Gather':
    case 'GatherElements':
    case 'GatherND':
    case 'Pad':
      return [n.input[0]!];
    case 'ScatterElements':
    case 'ScatterND':
      return [n.input[0]!, n.input[2]!];
    case 'Where':
      return [n.input[1]!, n.input[2]!];
    default:
      return n.input.filter((x) => x !== '');
  }
}

interface Gate {
  node: OnnxNode;
  logits: string;
  experts: number;
  weight: string | null;
}

/** Number of output features of a gate projection, from its weight initializer's shape. */
function gateExperts(g: GraphIndex, n: OnnxNode): { experts: number; weight: string } | null {
  if (n.op_type === 'MatMulNBits') {
    const w = n.input[1]!;
    return g.initializers.has(w) ? { experts: attrInt(n, 'N', 0), weight: w } : null;
  }
  const found = g.weightBehind(n.input[1]!);
  if (!found) return null;
  const dims = found.tensor.dims.map(toNum);
  if (dims.length !== 2) return null;
  let transB = n.op_type === 'Gemm' && attrInt(n, 'transB', 0) === 1;
  if (found.transposed) transB = !transB;
  const experts = transB ? dims[0]! : dims[1]!;
  return { experts, weight: found.tensor.name || n.input[1]! };
}

/** Walk back from a tensor to the nearest gate projection on a weight initializer. */
function gateOf(g: GraphIndex, tensor: string): Gate | null {
  const seen = new Set<string>();
  let frontier = [tensor];
  for (let hop = 0; hop < MAX_BACK_HOPS && frontier.length; hop++) {
    const next: string[] = [];
    for (const t of frontier) {
      if (seen.has(t)) continue;
      seen.add(t);
      const p = g.producer.get(t);
      if (!p) continue;
      if (GATE_OPS.has(p.op_type)) {
        const e = gateExperts(g, p);
        if (e && e.experts > 1) return { node: p, logits: p.output[0]!, experts: e.experts, weight: e.weight };
        continue; // a projection of activations: routing does not come from beyond it
      }
      next.push(...dataInputs(p));
    }
    frontier = next;
  }
  return null;
}

/** Nodes on data paths from `logits` to `tensor` (backward walk stopped at the logits). */
function pathNodes(g: GraphIndex, logits: string, tensor: string): Set<OnnxNode> {
  const back = new Set<OnnxNode>();
  const seen = new Set<string>();
  const stack = [tensor];
  while (stack.length && back.size < 200) {
    const t = stack.pop()!;
    if (seen.has(t) || t === logits) continue;
    seen.add(t);
    const p = g.producer.get(t);
    if (!p) continue;
    back.add(p);
    stack.push(...dataInputs(p));
  }
  // keep only nodes downstream of the logits
  const fwd = new Set<OnnxNode>();
  const queue = [logits];
  const seenF = new Set<string>();
  while (queue.length && fwd.size < 400) {
    const t = queue.shift()!;
    if (seenF.has(t)) continue;
    seenF.add(t);
    for (const c of g.consumersOf(t)) {
      if (!back.has(c) || fwd.has(c)) continue;
      fwd.add(c);
      queue.push(...c.output);
    }
  }
  return fwd;
}

function topkK(g: GraphIndex, n: OnnxNode): number | null {
  if (n.input[1]) {
    const v = g.constValues(n.input[1]);
    return v && v.length >= 1 ? v[0]! : null;
  }
  const a = attr(n, 'k');
  return a ? toNum(a.i) : null;
}

const LAYER_RE = /(?:^|[^A-Za-z0-9])(?:layers|layer|blocks|block)[._/](\d+)(?!\d)|(?:^|[^A-Za-z0-9])h\.(\d+)(?!\d)/;

function layerInText(s: string): number | null {
  const m = LAYER_RE.exec(s);
  if (!m) return null;
  return Number(m[1] ?? m[2]);
}

/** Layer index of a node: from its name, else exporter metadata (dynamo's pkg.torch.onnx.name_scopes). */
export function nodeLayer(n: OnnxNode): { layer: number; source: 'name' | 'metadata' } | null {
  const fromName = n.name ? layerInText(n.name) : null;
  if (fromName !== null) return { layer: fromName, source: 'name' };
  for (const p of n.metadata_props) {
    if (p.key === 'pkg.torch.onnx.name_scopes' || p.key === 'namespace') {
      const l = layerInText(p.value);
      if (l !== null) return { layer: l, source: 'metadata' };
    }
  }
  return null;
}

/**
 * What a router routes, from its module scope: "attention" for mixture-of-attention-heads routers (JetMoE's
 * `self_attention.router`), "mlp" for expert MLPs (the usual case: `mlp`, `block_sparse_moe`, `feed_forward`, `ffn`).
 */
function roleOf(c: Candidate): 'mlp' | 'attention' {
  const scope =
    [c.selectionNode, c.gate?.node]
      .filter((n): n is OnnxNode => !!n)
      .map(nodeScope)
      .join(' ') + ` ${c.info.tensors.gateWeight ?? ''}`;
  return /(?:^|[^A-Za-z])(?:self_)?(?:attn|attention)(?:[^A-Za-z]|$)/i.test(scope) ? 'attention' : 'mlp';
}

/** Textual scope of a node (name plus dynamo's name scopes), for shared-expert attribution. */
function nodeScope(n: OnnxNode): string {
  const md = n.metadata_props.find((p) => p.key === 'pkg.torch.onnx.name_scopes');
  return `${n.name} ${md?.value ?? ''}`;
}

interface Candidate {
  layer: { layer: number; source: RouterInfo['layerSource'] } | null;
  order: number;
  info: Omit<RouterInfo, 'layer' | 'layerSource' | 'identity' | 'sharedExpert' | 'expertBytes'>;
  gate: Gate | null;
  selectionNode: OnnxNode;
}

/** The selected ids and what reshapes and casts make of them (the indices gathers and scatters use). */
function idsClosure(g: GraphIndex, ids: string): Set<string> {
  const out = new Set<string>([ids]);
  const stack = [ids];
  while (stack.length && out.size < 64) {
    const t = stack.pop()!;
    for (const c of g.consumersOf(t))
      if (
        ['Reshape', 'Cast', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity'].includes(c.op_type) &&
        c.input[0] === t &&
        c.output[0] &&
        !out.has(c.output[0])
      ) {
        out.add(c.output[0]);
        stack.push(c.output[0]);
      }
  }
  return out;
}

/**
 * Follow the selection to the mixing: seeds are the selection's values and gathers of the router's scores at the
 * selected ids. `router` is every tensor from the logits to the selection.
 */
function mixingOf(g: GraphIndex, values: string[], ids: Set<string>, router: Set<string>): MixingFollow {
  const seeds: { tensor: string; layout: 'sel' | 'dense' }[] = values.map((t) => ({
    tensor: t,
    layout: 'sel' as const,
  }));
  for (const i of ids)
    for (const c of g.consumersOf(i))
      if (c.op_type === 'GatherElements' && c.input[1] === i && router.has(c.input[0]!) && c.output[0])
        seeds.push({ tensor: c.output[0], layout: 'sel' });
  return followToMixing(g, seeds, router, ids);
}

/** The initializer behind a tensor (through Identity, Cast, Reshape, Unsqueeze, Constant): its name, else null. */
function initializerBehind(g: GraphIndex, t: string): string | null {
  for (let hop = 0; hop < 6; hop++) {
    if (g.initializers.has(t)) return t;
    const p = g.producer.get(t);
    if (!p) return null;
    if (p.op_type === 'Constant') return null; // folded: no name to give
    if (!['Identity', 'Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Expand'].includes(p.op_type)) return null;
    t = p.input[0]!;
  }
  return null;
}

function mixingInfo(mix: MixingFollow): RouterInfo['mixing'] {
  const note =
    mix.reason ??
    (mix.unclassified.length
      ? `unclassified on the way to the mixing: ${[...new Set(mix.unclassified)].join(', ')}`
      : null);
  return { status: mix.tensor ? 'followed' : 'not-followed', layout: mix.layout, node: mix.node, note };
}

/** A router whose selection is in the graph, from what the pattern found. */
function graphRouter(
  g: GraphIndex,
  gate: Gate,
  selectionNode: OnnxNode,
  orderNode: OnnxNode,
  f: {
    topK: number;
    scoring: RouterInfo['scoring'];
    kind: RouterKind;
    ids: string;
    mix: MixingFollow;
    renormalize?: boolean | null;
    bias?: string | null;
    groups?: RouterInfo['groups'];
  },
): Candidate {
  return {
    layer: null,
    order: g.order.get(orderNode)!,
    gate,
    selectionNode,
    info: {
      experts: gate.experts,
      topK: f.topK,
      scoring: f.scoring,
      kind: f.kind,
      selection: 'graph',
      renormalize: f.renormalize !== undefined ? f.renormalize : f.mix.renormalize,
      scalingFactor: f.mix.tensor ? f.mix.scaling : null,
      bias: f.bias ?? null,
      groups: f.groups ?? null,
      tensors: { logits: gate.logits, ids: f.ids, weights: f.mix.tensor, gateWeight: gate.weight },
      derived: null,
      mixing: mixingInfo(f.mix),
      node: selectionNode.name || selectionNode.op_type,
      zeroExperts: zeroExpertsOf(g, f.mix, gate.node, gate.experts),
    },
  };
}

/** Every tensor on the router's path from the logits to the selection input, the logits included. */
function routerTensors(gate: Gate, path: Set<OnnxNode>): Set<string> {
  const out = new Set<string>([gate.logits]);
  for (const n of path) for (const o of n.output) if (o) out.add(o);
  return out;
}

/** Routers selected by TopK chains (one group per gate). */
function topkRouters(g: GraphIndex, topks: OnnxNode[], gate: Gate): Candidate | null {
  // The selection is the last TopK of the chain: no other TopK of this gate downstream of it.
  const feeds = (t: OnnxNode, o: OnnxNode) => t.output.some((x) => x !== '' && g.reaches(x, (n) => n === o) !== null);
  const downstreamFree = topks.filter((t) => !topks.some((o) => o !== t && feeds(t, o)));
  const sel = (downstreamFree.length ? downstreamFree : topks).reduce((a, b) =>
    g.order.get(a)! > g.order.get(b)! ? a : b,
  );
  const k = topkK(g, sel);
  if (k === null || k < 1 || k > gate.experts) return null;
  const ids = sel.output[1];
  if (!ids || (g.consumersOf(ids).length === 0 && !g.outputs.has(ids))) return null;
  if (g.outputs.has(gate.logits)) return null; // final vocabulary logits (lm_head), not a router
  const path = pathNodes(g, gate.logits, sel.input[0]!);
  const ops = new Set([...path].map((n) => n.op_type));
  const router = routerTensors(gate, path);
  for (const t of topks) for (const o of t.output) if (o) router.add(o);
  const mix = mixingOf(g, [sel.output[0]!], idsClosure(g, ids), router);
  // Scoring: what the router does to the logits before selecting; top-k on raw logits takes it from what the
  // weights go through after the selection (softmax over the selected: GPT-OSS; sigmoid: Llama-4).
  const before: 'softmax' | 'sigmoid' | null = ops.has('Sigmoid') ? 'sigmoid' : ops.has('Softmax') ? 'softmax' : null;
  const scoring: RouterInfo['scoring'] = before ?? mix.scoring ?? 'unknown';
  // Group-limited routing (DeepSeek-V2/V3): earlier TopKs (or a ReduceMax) of the same gate score groups, then pick groups.
  const groups = groupsOf(
    g,
    topks.filter((t) => t !== sel),
    path,
    gate.experts,
  );
  const kind: RouterKind = groups
    ? scoring === 'sigmoid'
      ? 'sigmoid-group-topk'
      : 'softmax-group-topk'
    : before === 'softmax'
      ? 'softmax-topk'
      : before === 'sigmoid'
        ? 'sigmoid-topk'
        : mix.scoring === 'softmax'
          ? 'topk-softmax'
          : mix.scoring === 'sigmoid'
            ? 'topk-sigmoid'
            : 'topk-unknown';
  // The score-correction bias: an Add on the selection path whose other input is an initializer (named).
  let biasName: string | null = null;
  for (const n of path) {
    if (n.op_type !== 'Add') continue;
    const other = n.input.find((x) => !router.has(x) && x !== '');
    const name = other ? initializerBehind(g, other) : null;
    if (name) {
      biasName = name;
      break;
    }
  }
  return graphRouter(g, gate, sel, sel, { topK: k, scoring, kind, ids, mix, bias: biasName, groups });
}

/**
 * Group-limited routing: the scores reshaped into groups, each group scored (top-2 sum: DeepSeek-V3; max:
 * DeepSeek-V2's group_limited_greedy), a TopK choosing groups, then a mask and the final TopK.
 */
function groupsOf(
  g: GraphIndex,
  intermediates: OnnxNode[],
  path: Set<OnnxNode>,
  experts: number,
): RouterInfo['groups'] {
  const reshapeBefore = (t: OnnxNode) => {
    let p = g.producer.get(t.input[0]!);
    while (p && p.op_type === 'Cast') p = g.producer.get(p.input[0]!);
    return p && p.op_type === 'Reshape' ? p : null;
  };
  const countFrom = (shape: number[] | null): number => {
    if (!shape || shape.length < 2) return 0;
    const last = shape[shape.length - 1]!;
    return last > 0 && experts % last === 0
      ? experts / last
      : shape[shape.length - 2]! > 0
        ? shape[shape.length - 2]!
        : 0;
  };
  if (!intermediates.length) return null;
  // V3: a TopK inside the groups (fed by the Reshape into groups), then the group-choosing TopK.
  const inGroup = intermediates.find((t) => reshapeBefore(t) !== null);
  let count = inGroup ? countFrom(g.constValues(reshapeBefore(inGroup)!.input[1]!)) : 0;
  if (!inGroup) {
    // V2: a ReduceMax over a Reshape into groups feeds the group-choosing TopK.
    for (const n of g.nodes) {
      if (n.op_type !== 'ReduceMax') continue;
      const r = g.producer.get(n.input[0]!);
      if (r?.op_type !== 'Reshape') continue;
      if (!intermediates.some((t) => g.reaches(n.output[0]!, (x) => x === t, 40) !== null)) continue;
      if (![...path].some((p) => p.output.includes(r.input[0]!)) && !path.has(g.producer.get(r.input[0]!)!)) {
        // the reshaped tensor must be the router's scores (on the path, or the scores the path starts from)
        const src = g.producer.get(r.input[0]!);
        if (!src || !['Softmax', 'Sigmoid', 'Add'].includes(src.op_type)) continue;
      }
      count = countFrom(g.constValues(r.input[1]!));
      if (count > 0) break;
    }
  }
  const groupSelect = intermediates.filter((t) => t !== inGroup).sort((a, b) => g.order.get(a)! - g.order.get(b)!);
  const topk = groupSelect.length ? topkK(g, groupSelect[groupSelect.length - 1]!) : null;
  return count > 0 && topk !== null ? { count, topk } : null;
}

/** Routers selected by ArgMax: one (switch top-1) or a pair joined by Concat (sparsemixer). */
function argmaxRouters(g: GraphIndex, argmaxes: OnnxNode[], gate: Gate): Candidate | null {
  if (g.outputs.has(gate.logits)) return null;
  const outs = argmaxes.map((a) => a.output[0]!);
  if (outs.every((o) => g.consumersOf(o).length === 0)) return null;
  const sorted = [...argmaxes].sort((a, b) => g.order.get(a)! - g.order.get(b)!);
  const last = sorted[sorted.length - 1]!;
  if (argmaxes.length >= 2) {
    const cat = g.nodes.find((n) => n.op_type === 'Concat' && outs.every((o) => n.input.includes(o)));
    if (!cat) return null;
    const gathers = outs.map((o) => g.consumersOf(o).find((c) => c.op_type === 'GatherElements' && c.input[1] === o));
    const wcat = gathers.every(Boolean)
      ? g.nodes.find((n) => n.op_type === 'Concat' && gathers.every((ge) => n.input.includes(ge!.output[0]!)))
      : undefined;
    const router = routerTensors(gate, pathNodes(g, gate.logits, last.input[0]!));
    for (const ge of gathers) if (ge) router.add(ge.output[0]!);
    const mix = wcat
      ? mixingOf(g, [wcat.output[0]!], idsClosure(g, cat.output[0]!), router)
      : followToMixing(g, [], router, new Set());
    // Sparsemixer: each weight is a softmax over the experts within a jitter band of the pick — not renormalised over the selection.
    return graphRouter(g, gate, cat, last, {
      topK: argmaxes.length,
      scoring: 'softmax',
      kind: 'sparsemixer',
      ids: cat.output[0]!,
      mix,
      renormalize: mix.tensor ? false : null,
    });
  }
  const am = argmaxes[0]!;
  const path = pathNodes(g, gate.logits, am.input[0]!);
  const scoring: RouterInfo['scoring'] = [...path].some((n) => n.op_type === 'Sigmoid')
    ? 'sigmoid'
    : [...path].some((n) => n.op_type === 'Softmax')
      ? 'softmax'
      : 'unknown';
  const router = routerTensors(gate, path);
  const ge = g.consumersOf(am.output[0]!).find((c) => c.op_type === 'GatherElements' && c.input[1] === am.output[0]);
  const rmax = g.consumersOf(am.input[0]!).find((c) => c.op_type === 'ReduceMax');
  const values = [ge?.output[0], rmax?.output[0]].filter((x): x is string => !!x);
  const mix = mixingOf(g, values, idsClosure(g, am.output[0]!), router);
  return graphRouter(g, gate, am, am, {
    topK: 1,
    scoring,
    kind: 'switch-top1',
    ids: am.output[0]!,
    mix,
    renormalize: mix.tensor ? false : null,
  });
}

function fusedRouter(g: GraphIndex, n: OnnxNode): Candidate | null {
  const logits = n.input[1];
  if (!logits) return null;
  const fc1 = g.initializers.get(n.input[2] ?? '');
  const gate = gateOf(g, logits);
  const experts = fc1 ? toNum(fc1.dims[0]) : (gate?.experts ?? 0);
  if (experts < 2) return null;
  const sparseMixer = attrInt(n, 'use_sparse_mixer', 0) === 1;
  const k = sparseMixer ? 2 : attrInt(n, 'k', 1);
  const normalize = attrInt(n, 'normalize_routing_weights', 0) === 1;
  const weightsTensor = n.op_type === 'QMoE' && n.input[14] ? n.input[14] : null;
  return {
    layer: null,
    order: g.order.get(n)!,
    gate: gate && gate.logits === logits ? gate : null,
    selectionNode: n,
    info: {
      experts,
      topK: k,
      scoring: 'softmax',
      kind: n.op_type === 'QMoE' ? 'fused-qmoe' : 'fused-moe',
      selection: 'derived',
      renormalize: normalize,
      scalingFactor: null,
      bias: null,
      groups: null,
      tensors: { logits, ids: null, weights: null, gateWeight: gate && gate.logits === logits ? gate.weight : null },
      derived: { k, normalize, sparseMixer, weightsTensor },
      mixing: { status: 'derived', layout: null, node: n.name || n.op_type, note: null },
      node: n.name || n.op_type,
      zeroExperts: null,
    },
  };
}

/** Find every MoE router of a loaded model. Routers come back sorted by layer. */
export function discoverRouters(m: LoadedModel): ModelRouting {
  const g = m.graph;
  const candidates: Candidate[] = [];
  const topkByGate = new Map<string, { gate: Gate; topks: OnnxNode[]; argmaxes: OnnxNode[] }>();
  for (const n of g.nodes) {
    if ((n.op_type === 'MoE' || n.op_type === 'QMoE') && (n.domain === 'com.microsoft' || n.domain === '')) {
      const c = fusedRouter(g, n);
      if (c) candidates.push(c);
      continue;
    }
    if (n.op_type !== 'TopK' && n.op_type !== 'ArgMax') continue;
    const gate = gateOf(g, n.input[0]!);
    if (!gate) continue;
    let entry = topkByGate.get(gate.logits);
    if (!entry) topkByGate.set(gate.logits, (entry = { gate, topks: [], argmaxes: [] }));
    (n.op_type === 'TopK' ? entry.topks : entry.argmaxes).push(n);
  }
  // A TopK over another TopK's indices sorts the selection (JetMoE orders tokens by expert): it selects nothing.
  const indexOutputs = new Set(g.nodes.filter((n) => n.op_type === 'TopK' && n.output[1]).map((n) => n.output[1]!));
  const sortsIndices = (n: OnnxNode): boolean => {
    let frontier = [n.input[0]!];
    for (let hop = 0; hop < 6 && frontier.length; hop++) {
      if (frontier.some((t) => indexOutputs.has(t))) return true;
      frontier = frontier.flatMap((t) => {
        const p = g.producer.get(t);
        return p && ['Reshape', 'Cast', 'Flatten', 'Unsqueeze', 'Squeeze', 'View', 'Identity'].includes(p.op_type)
          ? [p.input[0]!]
          : [];
      });
    }
    return false;
  };
  for (const entry of topkByGate.values()) entry.topks = entry.topks.filter((t) => !sortsIndices(t));
  const fusedLogits = new Set(candidates.map((c) => c.info.tensors.logits));
  for (const { gate, topks, argmaxes } of topkByGate.values()) {
    if (fusedLogits.has(gate.logits)) continue;
    if (!topks.length && !argmaxes.length) continue;
    const c = topks.length ? topkRouters(g, topks, gate) : argmaxRouters(g, argmaxes, gate);
    if (c) candidates.push(c);
  }
  candidates.sort((a, b) => a.order - b.order);

  // Layer of every node (for dense layers, expert weights and shared experts).
  const layerOfNode = new Map<OnnxNode, number>();
  for (const n of g.nodes) {
    const l = nodeLayer(n);
    if (l) layerOfNode.set(n, l.layer);
  }
  for (const c of candidates) {
    const sources: (OnnxNode | null | undefined)[] = [c.selectionNode, c.gate?.node];
    for (const s of sources) {
      const l = s ? nodeLayer(s) : null;
      if (l) {
        c.layer = l;
        break;
      }
    }
    if (!c.layer && c.info.tensors.gateWeight) {
      const l = layerInText(c.info.tensors.gateWeight);
      if (l !== null) c.layer = { layer: l, source: 'initializer' };
    }
  }
  // A router's identity is (layer, role): JetMoE has an attention router and an MLP router in every layer.
  const roles = candidates.map((c) => roleOf(c));
  const named =
    candidates.every((c) => c.layer !== null) &&
    new Set(candidates.map((c) => c.layer!.layer)).size === candidates.length;
  const identified =
    candidates.every((c) => c.layer !== null) &&
    new Set(candidates.map((c, i) => `${c.layer!.layer}/${roles[i]}`)).size === candidates.length;
  const routers: RouterInfo[] = candidates.map((c, i) => {
    // Streams key routers by one number: the model's layer when layers name routers uniquely, else graph order
    // (then `identity` still says which layer and role each router is).
    const layer = named ? c.layer! : { layer: i, source: 'order' as const };
    const modelLayer = named || identified ? c.layer!.layer : null;
    return {
      layer: layer.layer,
      layerSource: layer.source,
      identity: { layer: modelLayer, role: roles[i]!, source: identified ? c.layer!.source : 'order' },
      ...c.info,
      sharedExpert: modelLayer !== null && roles[i] === 'mlp' ? sharedExpertOf(g, layerOfNode, modelLayer) : null,
      expertBytes: expertBytesOf(g, layerOfNode, modelLayer, c),
    };
  });
  routers.sort((a, b) => a.layer - b.layer);
  const allLayers = new Set(layerOfNode.values());
  const routed = new Set(routers.map((r) => r.identity.layer ?? -1));
  const numLayers = allLayers.size ? Math.max(...allLayers) + 1 : null;
  const denseLayers =
    (named || identified) && numLayers !== null
      ? [...Array(numLayers).keys()].filter((l) => allLayers.has(l) && !routed.has(l))
      : [];
  return { routers, denseLayers, numLayers };
}

function initializerInputs(g: GraphIndex, n: OnnxNode): OnnxTensor[] {
  const out: OnnxTensor[] = [];
  for (const x of n.input) {
    const t = g.initializers.get(x);
    if (t) out.push(t);
  }
  return out;
}

/** Module names of always-on shared experts (Qwen2-MoE/DeepSeek `shared_expert(s)`, GraniteMoeShared `shared_mlp`) and of their own gates. */
const SHARED_RE = /shared_(?:experts?|mlp)(?![A-Za-z])/;
const SHARED_GATE_RE = /shared_(?:experts?|mlp)_gate/;

function sharedExpertOf(g: GraphIndex, layerOfNode: Map<OnnxNode, number>, layer: number): RouterInfo['sharedExpert'] {
  let bytes = 0;
  let found = false;
  let gated = false;
  const counted = new Set<string>();
  for (const n of g.nodes) {
    if (layerOfNode.get(n) !== layer) continue;
    const scope = nodeScope(n);
    if (!SHARED_RE.test(scope)) continue;
    found = true;
    if (SHARED_GATE_RE.test(scope)) {
      gated = true;
      continue;
    }
    for (const t of initializerInputs(g, n)) {
      if (t.dims.length < 2 || counted.has(t.name)) continue;
      counted.add(t.name);
      bytes += tensorBytes(t);
    }
  }
  return found ? { gated, bytes } : null;
}

/** Bytes of one routed expert: initializers shaped [E, …] used in the router's layer, divided by E (the real experts
 * only, when some compute nothing: LongCat's weights are stacked for its E real experts). */
function expertBytesOf(
  g: GraphIndex,
  layerOfNode: Map<OnnxNode, number>,
  layer: number | null,
  c: Candidate,
): number | null {
  const E = c.info.experts - (c.info.zeroExperts?.ids.length ?? 0);
  const n = c.selectionNode;
  if (n.op_type === 'MoE' || n.op_type === 'QMoE') {
    let total = 0;
    for (let i = 2; i < n.input.length; i++) {
      if (i === 14) continue; // QMoE router weights are not expert weights
      const t = g.initializers.get(n.input[i]!);
      if (t && toNum(t.dims[0]) === E) total += tensorBytes(t);
    }
    return total > 0 ? total / E : null;
  }
  if (layer === null) return null;
  // Stacked expert weights [E, …] (batched exports), or per-expert modules (`experts.3.w1`) in this layer.
  let stacked = 0;
  let perExpert = 0;
  const counted = new Set<string>();
  for (const node of g.nodes) {
    const l = layerOfNode.get(node) ?? null;
    const scope = nodeScope(node);
    if (SHARED_RE.test(scope)) continue;
    for (const t of initializerInputs(g, node)) {
      if (counted.has(t.name) || t.name === c.info.tensors.gateWeight) continue;
      if ((l ?? layerInText(t.name)) !== layer) continue;
      const expertScope = /experts/.test(scope) || /experts/.test(t.name);
      if (toNum(t.dims[0]) === E && (t.dims.length >= 3 || (t.dims.length === 2 && expertScope))) {
        counted.add(t.name);
        stacked += tensorBytes(t);
      } else if (/experts[._/]\d+[._/]/.test(scope) || /experts[._/]\d+[._/]/.test(t.name)) {
        counted.add(t.name);
        perExpert += tensorBytes(t);
      }
    }
  }
  const total = stacked + perExpert;
  return total > 0 ? total / E : null;
}

/** Whether a TopK/ArgMax/MoE node sits inside an If/Loop/Scan subgraph (merged decoders keep their layers there). */
function routersInSubgraphs(g: GraphIndex): boolean {
  const visit = (nodes: OnnxNode[], depth: number): boolean =>
    nodes.some((n) =>
      n.attribute.some((a) =>
        [a.g, ...(a.graphs ?? [])].some(
          (sub) =>
            sub &&
            (sub.node.some((x) => depth > 0 && ['TopK', 'ArgMax', 'MoE', 'QMoE'].includes(x.op_type)) ||
              visit(sub.node, depth + 1)),
        ),
      ),
    );
  return visit(g.nodes, 1);
}

/** Like discoverRouters, but a model without any router is a user error naming the patterns tried. */
export function requireRouters(m: LoadedModel, label: string): ModelRouting {
  const r = discoverRouters(m);
  if (r.routers.length === 0) {
    if (routersInSubgraphs(m.graph))
      throw new UserError(
        `${label} keeps its layers inside If/Loop subgraphs (a merged decoder); moescope reads routers in the main graph: use the non-merged export (Optimum: --no-post-process, decoder_model.onnx / decoder_with_past_model.onnx).`,
      );
    throw new UserError(`no MoE router found in ${label} (tried: ${PATTERNS_TRIED.join('; ')}).`);
  }
  return r;
}
