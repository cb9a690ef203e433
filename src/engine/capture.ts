/**
 * Turning the added router outputs of one forward pass into routing rows laid out like RoutingBatch columns:
 * token-major, then MoE layer, then slot — experts[(t·L + l)·K + k], logits[(t·L + l)·E + e]. When every router's
 * selection is in the graph, the outputs already have this layout and rows are plain slices.
 */
import { mixedShapes, NO_EXPERT, type RoutingSchema, type Scoring, schemaOfShapes } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { deriveRow } from './derive.js';
import type { RouterInfo } from './discover.js';
import { OUTPUTS, type CapturePlan } from './instrument.js';

/** What the reader needs of an onnxruntime tensor. */
export interface OutputTensor {
  data: unknown;
  dims: readonly number[];
}

export interface RoutingRows {
  /** Tokens. */
  n: number;
  /** Selected expert ids, N·L·K. */
  experts: Int32Array;
  /** Their mixing weights, N·L·K (NaN where the graph has no weights tensor). */
  weights: Float32Array;
  /** Router logits, N·L·E, when captured. */
  logits: Float32Array | null;
}

/**
 * The stream schema of a set of routers. Routers may differ in E and K (mixed shapes, src/core/batch.ts): the
 * batch is then as wide as the largest, each layer's own E and K in `layerExperts` / `layerTopK`.
 */
export function schemaFor(routers: RouterInfo[], hasLogits: boolean): RoutingSchema {
  if (!routers[0]) throw new UserError('no MoE router to capture.');
  const wide = routers.find((r) => r.experts > 65535);
  if (wide && routers.some((r) => r.experts !== wide.experts || r.topK !== wide.topK))
    throw new UserError(
      `layer ${wide.layer} has ${wide.experts} experts: layers of different shapes need fewer than 65536 experts each`,
    );
  return schemaOfShapes(
    routers.map((r) => r.layer),
    routers,
    // The stream's scoring turns captured logits into scores (entropy, margins): the first router that says,
    // softmax when none does (each router's own `scoring` in the stream meta still says "unknown").
    routers.map((r) => r.scoring).find((s): s is Scoring => s !== 'unknown') ?? 'softmax',
    hasLogits,
  );
}

/** Where each router's columns start in the concatenated outputs (blocks in block order, each its own width). */
function offsets(plan: CapturePlan, key: 'select' | 'logits' | 'mix', width: (r: RouterInfo) => number) {
  const at: (number | null)[] = plan.outputs.map(() => null);
  const order = plan.outputs
    .map((o, l) => ({ block: o[key], l }))
    .filter((x): x is { block: number; l: number } => x.block !== null)
    .sort((a, b) => a.block - b.block);
  let total = 0;
  for (const { l } of order) {
    at[l] = total;
    total += width(plan.routers[l]!);
  }
  return { at, total };
}

export class RoutingReader {
  readonly plan: CapturePlan;
  readonly schema: RoutingSchema;
  private readonly scratch: Float64Array;
  /** Every router's selection is in the graph, in schema order, all of one shape: outputs are already batch-shaped. */
  private readonly direct: boolean;
  /** Column offsets of each router in the selection, logits and mix outputs, and those outputs' widths. */
  private readonly sel: { at: (number | null)[]; total: number };
  private readonly lgt: { at: (number | null)[]; total: number };
  private readonly mixes: { at: (number | null)[]; total: number };

  constructor(plan: CapturePlan, schema: RoutingSchema) {
    this.plan = plan;
    this.schema = schema;
    this.scratch = new Float64Array(schema.experts);
    const L = schema.layers.length;
    this.direct =
      !mixedShapes(schema) &&
      plan.blocks.select === L &&
      plan.outputs.every((o, l) => o.select === l && (!schema.hasLogits || o.logits === l));
    this.sel = offsets(plan, 'select', (r) => r.topK);
    this.lgt = offsets(plan, 'logits', (r) => r.experts);
    this.mixes = offsets(plan, 'mix', (r) => r.experts);
  }

  /** Rows [from, to) of a pass over `tokens` tokens (batch 1). */
  read(results: Record<string, OutputTensor>, tokens: number, from: number, to: number): RoutingRows {
    const { experts: E, topK: K, hasLogits } = this.schema;
    const L = this.schema.layers.length;
    const n = to - from;
    const S = this.sel.total;
    const G = this.lgt.total;
    const M = this.mixes.total;
    const ids = S ? ints(results, OUTPUTS.ids, tokens, S) : null;
    const w = S ? floats(results, OUTPUTS.weights, tokens, S) : null;
    const lg = G ? floats(results, OUTPUTS.logits, tokens, G) : null;
    // Views, not copies: onnxruntime hands out fresh arrays on every run.
    if (this.direct)
      return {
        n,
        experts: ids!.subarray(from * L * K, to * L * K),
        weights: w!.subarray(from * L * K, to * L * K),
        logits: hasLogits ? lg!.subarray(from * L * E, to * L * E) : null,
      };
    const mix = M ? floats(results, OUTPUTS.mix, tokens, M) : null;
    const rows: RoutingRows = {
      n,
      experts: new Int32Array(n * L * K),
      weights: new Float32Array(n * L * K),
      logits: hasLogits ? new Float32Array(n * L * E) : null,
    };
    // Mixed shapes: the slots past a layer's own K and the logits past its own E are padding.
    if (mixedShapes(this.schema)) {
      rows.experts.fill(NO_EXPERT);
      rows.logits?.fill(-Infinity);
    }
    this.plan.outputs.forEach((_, l) => {
      const r = this.plan.routers[l]!;
      const e = r.experts;
      const k = r.topK;
      const selAt = this.sel.at[l];
      const lgAt = this.lgt.at[l];
      const mixAt = this.mixes.at[l];
      for (let t = 0; t < n; t++) {
        const src = from + t;
        const dst = (t * L + l) * K;
        if (lgAt !== null && rows.logits) {
          const at = src * G + lgAt;
          rows.logits.set(lg!.subarray(at, at + e), (t * L + l) * E);
        }
        if (selAt !== null) {
          const at = src * S + selAt;
          rows.experts.set(ids!.subarray(at, at + k), dst);
          rows.weights.set(w!.subarray(at, at + k), dst);
        } else {
          const mixRow = mix && mixAt !== null ? mix.subarray(src * M + mixAt, src * M + mixAt + e) : null;
          deriveRow(lg!, src * G + lgAt!, e, r.derived!, mixRow, 0, rows.experts, rows.weights, dst, this.scratch);
        }
      }
    });
    return rows;
  }
}

function get(results: Record<string, OutputTensor>, name: string, tokens: number, width: number): unknown {
  const t = results[name];
  if (!t) throw new Error(`router output ${name} missing from the session results`);
  const len = (t.data as ArrayLike<number>).length;
  if (len !== tokens * width)
    throw new Error(`router output ${name} has shape [${t.dims.join(', ')}], expected ${tokens} tokens × ${width}`);
  return t.data;
}

function floats(results: Record<string, OutputTensor>, name: string, tokens: number, width: number): Float32Array {
  const d = get(results, name, tokens, width);
  if (!(d instanceof Float32Array)) throw new Error(`router output ${name} is not float32`);
  return d;
}

function ints(results: Record<string, OutputTensor>, name: string, tokens: number, width: number): Int32Array {
  const d = get(results, name, tokens, width);
  if (!(d instanceof Int32Array)) throw new Error(`router output ${name} is not int32`);
  return d;
}
