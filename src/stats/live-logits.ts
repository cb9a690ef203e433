/**
 * Logits metrics for a live run, computed in the engine's worker thread where the logits already are: the engine
 * runs `createBatchReducer(schema)` on every batch it posts (GenerationOptions.reducer = LIVE_LOGITS_REDUCER) and
 * sends the result with the batch — L × 8 numbers instead of N × L × E logits to score on the thread that draws.
 * The worker runs the same LogitSums over the same float16 batches in the same order as RoutingStats would, so
 * the numbers are identical, bit for bit; RoutingStats({ logits: 'posted' }).add(batch, snapshot) shows them.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import {
  LogitSums,
  logitsLayerMetrics,
  pooledHfAuxLoss,
  type LogitSumRecord,
  type LogitsMetrics,
} from './logit-sums.js';

/** The logits metrics of a stream up to the end of one batch. */
export interface LogitsSnapshot {
  /** Tokens added so far (rows, with or without logits). */
  tokens: number;
  /** One per MoE layer. */
  layers: LogitsMetrics[];
  /** HF's loss pooled over layers (`global.hfAuxLoss`). */
  pooledHfAuxLoss: number | null;
}

/** The snapshot of a whole run's sums (a dataset's, from an engine: src/scale). */
export function logitsSnapshotOf(r: LogitSumRecord, tokens: number): LogitsSnapshot {
  return {
    tokens,
    layers: Array.from({ length: r.layers }, (_, l) => logitsLayerMetrics(r, l)),
    pooledHfAuxLoss: pooledHfAuxLoss(r),
  };
}

/** Module URL for GenerationOptions.reducer. */
export const LIVE_LOGITS_REDUCER = new URL('./live-logits.js', import.meta.url).href;

/** Called by the engine worker once per run: returns what to post with each batch (null for batches without logits). */
export function createBatchReducer(schema: RoutingSchema): (b: RoutingBatch) => LogitsSnapshot | null {
  const sums = schema.hasLogits ? new LogitSums(schema) : null;
  let tokens = 0;
  return (b) => {
    tokens += b.length;
    if (!sums || !b.logits) return null;
    sums.add(b);
    return { tokens, layers: schema.layers.map((_, l) => sums.layer(l)), pooledHfAuxLoss: sums.pooledHfAuxLoss() };
  };
}

/** Whether a value posted with a batch is a LogitsSnapshot (it crossed a thread: check its shape). */
export function isLogitsSnapshot(x: unknown, layers: number): x is LogitsSnapshot {
  const s = x as LogitsSnapshot | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.tokens === 'number' &&
    Array.isArray(s.layers) &&
    s.layers.length === layers
  );
}
