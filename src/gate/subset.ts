/**
 * Narrowing batches without touching their numbers: to some MoE layers (`--layers`), so every metric — per layer
 * and whole-model — covers exactly the layers checked; and to some tokens (one domain tag), for per-domain stats.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { allocBatch } from '../core/batch.js';
import type { CountBatch } from '../core/routing-stream.js';

/** Positions (0 … L−1) of the wanted model layer ids; throws naming any the stream lacks. */
export function layerPositions(schema: RoutingSchema, wanted: readonly number[], what: string): number[] {
  const out: number[] = [];
  for (const id of wanted) {
    const i = schema.layers.indexOf(id);
    if (i < 0) throw new UserError(`${what}: there is no MoE layer ${id} (MoE layers: ${schema.layers.join(', ')})`);
    if (!out.includes(i)) out.push(i);
  }
  return out.sort((a, b) => a - b);
}

/**
 * The schema of the layers at `positions`. `experts` / `topK` stay the stream's (the batches keep their width); a
 * mixed stream's per-layer E and K are narrowed with the layers.
 */
export function subsetSchema(schema: RoutingSchema, positions: readonly number[]): RoutingSchema {
  const out = { ...schema, layers: positions.map((i) => schema.layers[i]!) };
  if (schema.layerExperts) out.layerExperts = positions.map((i) => schema.layerExperts![i]!);
  if (schema.layerTopK) out.layerTopK = positions.map((i) => schema.layerTopK![i]!);
  return out;
}

/** The batch with only the layers at `positions` (copies the per-layer columns; per-token columns are shared). */
export function subsetBatch(b: RoutingBatch, schema: RoutingSchema, positions: readonly number[]): RoutingBatch {
  const L = schema.layers.length;
  if (positions.length === L) return b;
  const K = schema.topK;
  const E = schema.experts;
  const M = positions.length;
  const n = b.length;
  const experts = new Uint16Array(n * M * K);
  const weights = new Uint16Array(n * M * K);
  const logits = b.logits ? new Uint16Array(n * M * E) : null;
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < M; j++) {
      const src = (t * L + positions[j]!) * K;
      const dst = (t * M + j) * K;
      experts.set(b.experts.subarray(src, src + K), dst);
      weights.set(b.weights.subarray(src, src + K), dst);
      if (logits) {
        const ls = (t * L + positions[j]!) * E;
        logits.set(b.logits!.subarray(ls, ls + E), (t * M + j) * E);
      }
    }
  }
  return { ...b, experts, weights, logits };
}

/** The tokens at `rows` (ascending indices) of a batch, copied into a new batch. */
export function selectRows(b: RoutingBatch, schema: RoutingSchema, rows: ArrayLike<number>): RoutingBatch {
  const lk = schema.layers.length * schema.topK;
  const le = schema.layers.length * schema.experts;
  const n = rows.length;
  const out = allocBatch({ ...schema, hasLogits: b.logits !== null }, n);
  if (b.tag) out.tag = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    out.seq[i] = b.seq[r]!;
    out.pos[i] = b.pos[r]!;
    out.tokenId[i] = b.tokenId[r]!;
    out.token[i] = b.token[r]!;
    out.isPrompt[i] = b.isPrompt[r]!;
    out.tNs[i] = b.tNs[r]!;
    out.experts.set(b.experts.subarray(r * lk, (r + 1) * lk), i * lk);
    out.weights.set(b.weights.subarray(r * lk, (r + 1) * lk), i * lk);
    if (out.logits) out.logits.set(b.logits!.subarray(r * le, (r + 1) * le), i * le);
    if (out.tag) out.tag[i] = b.tag![r]!;
  }
  return out;
}

/** One batch holding all `batches` in order (copies). */
export function concatBatches(batches: readonly RoutingBatch[], schema: RoutingSchema): RoutingBatch {
  const lk = schema.layers.length * schema.topK;
  const le = schema.layers.length * schema.experts;
  const n = batches.reduce((s, b) => s + b.length, 0);
  const withLogits = batches.length > 0 && batches.every((b) => b.logits !== null);
  const out = allocBatch({ ...schema, hasLogits: withLogits }, n);
  out.token = [];
  if (batches.some((b) => b.tag !== null)) out.tag = [];
  let o = 0;
  for (const b of batches) {
    out.seq.set(b.seq, o);
    out.pos.set(b.pos, o);
    out.tokenId.set(b.tokenId, o);
    for (const t of b.token) out.token.push(t);
    out.isPrompt.set(b.isPrompt, o);
    out.tNs.set(b.tNs, o);
    out.experts.set(b.experts, o * lk);
    out.weights.set(b.weights, o * lk);
    if (out.logits) out.logits.set(b.logits!, o * le);
    if (out.tag) for (let i = 0; i < b.length; i++) out.tag.push(b.tag ? b.tag[i]! : null);
    o += b.length;
  }
  return out;
}

/** A count batch with only the layers at `positions` (of `layers`); the batch itself when every layer is kept. */
export function subsetCounts(b: CountBatch, layers: number, positions: readonly number[]): CountBatch {
  if (positions.length === layers) return b;
  const W = b.bins;
  const M = positions.length;
  const counts = new Float64Array(b.length * M * W);
  for (let r = 0; r < b.length; r++)
    for (let j = 0; j < M; j++) {
      const src = (r * layers + positions[j]!) * W;
      counts.set(b.counts.subarray(src, src + W), (r * M + j) * W);
    }
  return { ...b, counts };
}
