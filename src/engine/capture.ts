/**
 * Turning the added router outputs of one forward pass into routing rows laid out like RoutingBatch columns:
 * token-major, then MoE layer, then slot — experts[(t·L + l)·K + k], logits[(t·L + l)·E + e]. When every router's
 * selection is in the graph, the outputs already have this layout and rows are plain slices.
 */
import type { RoutingSchema, Scoring } from '../core/batch.js';
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

/** The stream schema of a set of routers: all must share E and K (RoutingBatch is rectangular). */
export function schemaFor(routers: RouterInfo[], hasLogits: boolean): RoutingSchema {
  const r0 = routers[0];
  if (!r0) throw new UserError('no MoE router to capture.');
  const odd = routers.find((r) => r.experts !== r0.experts || r.topK !== r0.topK);
  if (odd)
    throw new UserError(
      `MoE layers differ in shape (layer ${r0.layer}: ${r0.experts} experts top-${r0.topK}, layer ${odd.layer}: ${odd.experts} top-${odd.topK}); moescope needs one shape per stream.`,
    );
  return {
    layers: routers.map((r) => r.layer),
    experts: r0.experts,
    topK: r0.topK,
    // The stream's scoring turns captured logits into scores (entropy, margins): the first router that says,
    // softmax when none does (each router's own `scoring` in the stream meta still says "unknown").
    scoring: routers.map((r) => r.scoring).find((s): s is Scoring => s !== 'unknown') ?? 'softmax',
    hasLogits,
  };
}

export class RoutingReader {
  readonly plan: CapturePlan;
  readonly schema: RoutingSchema;
  private readonly scratch: Float64Array;
  /** Every router's selection is in the graph, in schema order: outputs are already batch-shaped. */
  private readonly direct: boolean;

  constructor(plan: CapturePlan, schema: RoutingSchema) {
    this.plan = plan;
    this.schema = schema;
    this.scratch = new Float64Array(schema.experts);
    const L = schema.layers.length;
    this.direct =
      plan.blocks.select === L && plan.outputs.every((o, l) => o.select === l && (!schema.hasLogits || o.logits === l));
  }

  /** Rows [from, to) of a pass over `tokens` tokens (batch 1). */
  read(results: Record<string, OutputTensor>, tokens: number, from: number, to: number): RoutingRows {
    const { experts: E, topK: K, hasLogits } = this.schema;
    const L = this.schema.layers.length;
    const n = to - from;
    const { select: S, logits: G, mix: M } = this.plan.blocks;
    const ids = S ? ints(results, OUTPUTS.ids, tokens, S * K) : null;
    const w = S ? floats(results, OUTPUTS.weights, tokens, S * K) : null;
    const lg = G ? floats(results, OUTPUTS.logits, tokens, G * E) : null;
    // Views, not copies: onnxruntime hands out fresh arrays on every run.
    if (this.direct)
      return {
        n,
        experts: ids!.subarray(from * L * K, to * L * K),
        weights: w!.subarray(from * L * K, to * L * K),
        logits: hasLogits ? lg!.subarray(from * L * E, to * L * E) : null,
      };
    const mix = M ? floats(results, OUTPUTS.mix, tokens, M * E) : null;
    const rows: RoutingRows = {
      n,
      experts: new Int32Array(n * L * K),
      weights: new Float32Array(n * L * K),
      logits: hasLogits ? new Float32Array(n * L * E) : null,
    };
    this.plan.outputs.forEach((o, l) => {
      const r = this.plan.routers[l]!;
      for (let t = 0; t < n; t++) {
        const src = from + t;
        const dst = (t * L + l) * K;
        if (o.logits !== null && rows.logits) {
          const at = (src * G + o.logits) * E;
          rows.logits.set(lg!.subarray(at, at + E), (t * L + l) * E);
        }
        if (o.select !== null) {
          const at = (src * S + o.select) * K;
          rows.experts.set(ids!.subarray(at, at + K), dst);
          rows.weights.set(w!.subarray(at, at + K), dst);
        } else {
          const mixAt = o.mix !== null ? (src * M + o.mix) * E : 0;
          const mixRow = mix && o.mix !== null ? mix.subarray(mixAt, mixAt + E) : null;
          deriveRow(
            lg!,
            (src * G + o.logits!) * E,
            E,
            r.derived!,
            mixRow,
            0,
            rows.experts,
            rows.weights,
            dst,
            this.scratch,
          );
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
