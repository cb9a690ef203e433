/**
 * Splitting an analysis by layers: the per-layer analyses (load, window and collapse rules, capacity, co-activation,
 * repeat rates) never mix layers, so consecutive layer ranges can be analysed apart — each over a schema of its
 * own layers, fed batches of its own layers — and their parts merged (analysis.ts `mergeStats`). Pure: which
 * ranges, their schemas, and one range's rows of a batch.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';

/** Layer positions [start, end) of one range. */
export interface LayerRange {
  start: number;
  end: number;
}

/**
 * `parts` consecutive ranges covering L layers, every one non-empty (fewer when L < parts). The first range gets
 * `firstWeight` of an even share: the thread that reads the trace and counts the whole-token analyses takes it.
 */
export function layerRanges(L: number, parts: number, firstWeight = 1): LayerRange[] {
  const n = Math.max(1, Math.min(parts, L));
  const total = firstWeight + (n - 1);
  const first = n === 1 ? L : Math.min(L - (n - 1), Math.max(1, Math.round((L * firstWeight) / total)));
  const out: LayerRange[] = [{ start: 0, end: first }];
  const rest = L - first;
  for (let i = 1; i < n; i++) {
    const start = first + Math.round((rest * (i - 1)) / (n - 1));
    const end = first + Math.round((rest * i) / (n - 1));
    out.push({ start, end });
  }
  return out;
}

/** The schema of a range's layers (a uniform schema: every layer has `experts` and `topK`). */
export function rangeSchema(schema: RoutingSchema, r: LayerRange): RoutingSchema {
  if (schema.layerExperts || schema.layerTopK) throw new Error('layer ranges need a uniform schema');
  return { ...schema, layers: schema.layers.slice(r.start, r.end) };
}

/** The columns a range's analyses read: rows in stream order, with each token's L·K expert ids and weights. */
export interface RangeRows {
  length: number;
  seq: Uint32Array;
  pos: Uint32Array;
  /** N·L·K, token-major (the whole batch's layers). */
  experts: Uint16Array;
  weights: Uint16Array;
}

/** Refuses a batch whose expert ids or weights do not fill N·L·K (the message RoutingStats gives). */
export function checkRows(b: RangeRows, L: number, K: number): void {
  if (b.experts.length !== b.length * L * K)
    throw new UserError(
      `batch has ${b.experts.length} expert ids for ${b.length} tokens; the schema needs ${L}×${K} per token`,
    );
  if (b.weights.length !== b.experts.length)
    throw new UserError(`batch has ${b.weights.length} weights for ${b.experts.length} expert ids`);
}

const NO_TOKEN_ID = new Int32Array(0);
const NO_FLAGS = new Uint8Array(0);
const NO_TIME = new BigInt64Array(0);

/**
 * The range's rows of a whole-layer batch, as a RoutingBatch of the range schema: expert ids and weights copied
 * (into `scratch` when it is large enough; the analyses copy what they keep), seq and pos shared. Columns the
 * per-layer analyses never read (token ids, text, time, tags, logits) are left empty.
 */
export function rangeBatch(
  b: RangeRows,
  L: number,
  K: number,
  r: LayerRange,
  scratch?: { experts: Uint16Array; weights: Uint16Array },
): RoutingBatch {
  const N = b.length;
  const w = (r.end - r.start) * K;
  const n = N * w;
  const experts = scratch && scratch.experts.length >= n ? scratch.experts.subarray(0, n) : new Uint16Array(n);
  const weights = scratch && scratch.weights.length >= n ? scratch.weights.subarray(0, n) : new Uint16Array(n);
  const lk = L * K;
  for (let t = 0, src = r.start * K, dst = 0; t < N; t++, src += lk, dst += w) {
    experts.set(b.experts.subarray(src, src + w), dst);
    weights.set(b.weights.subarray(src, src + w), dst);
  }
  return {
    length: N,
    seq: b.seq,
    pos: b.pos,
    tokenId: NO_TOKEN_ID,
    token: [],
    isPrompt: NO_FLAGS,
    tNs: NO_TIME,
    experts,
    weights,
    logits: null,
    tag: null,
  };
}
