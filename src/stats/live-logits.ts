/**
 * Logits metrics for a live run, computed in the engine's worker thread where the logits already are: the engine
 * runs `createBatchReducer(schema)` on every batch it posts (GenerationOptions.reducer = LIVE_LOGITS_REDUCER) and
 * sends the result with the batch — L × 8 numbers instead of N × L × E logits to score on the thread that draws.
 * The worker runs the same LogitSums over the same float16 batches in the same order as RoutingStats would, so
 * the numbers are identical, bit for bit; RoutingStats({ logits: 'posted' }).add(batch, snapshot) shows them.
 *
 * The sums take in every batch, but a snapshot (every layer's metrics from the sums) is made at most once per
 * `intervalMs` (SNAPSHOT_INTERVAL_MS): while decoding, one token per batch, making it cost as much as the sums.
 * The engine calls the reducer's `final()` when the run ends and posts what it returns after the last batch
 * (a `derived` stream item), so the run's last snapshot is always the one of all its tokens.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { groupBatch, shapeGroups } from '../core/shapes.js';
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

/**
 * Snapshots are made at most this often (ms); the views draw a few times a second, so at most this much of what
 * they show lags the tokens.
 */
export const SNAPSHOT_INTERVAL_MS = 5;

/** What createBatchReducer returns: a snapshot per batch (null: held back, or no logits) and the last one. */
export interface BatchReducer {
  (b: RoutingBatch): LogitsSnapshot | null;
  /**
   * Once, when the producer has sent its last batch: the snapshot of every batch so far if the last calls held it
   * back (to post after that batch), else null (the last snapshot posted is already the final one).
   */
  final(): LogitsSnapshot | null;
}

/** Module URL for GenerationOptions.reducer. */
export const LIVE_LOGITS_REDUCER = new URL('./live-logits.js', import.meta.url).href;

/**
 * Called by the engine worker once per run: returns what to post with each batch — null for batches without
 * logits and for those within intervalMs of the last snapshot made (0: a snapshot with every batch).
 */
export function createBatchReducer(schema: RoutingSchema, opts: { intervalMs?: number } = {}): BatchReducer {
  const intervalMs = opts.intervalMs ?? SNAPSHOT_INTERVAL_MS;
  // Layers that differ in E or K are scored one shape at a time, each over its own E (src/core/shapes.ts); the
  // pooled HF loss mixes every layer's experts into one distribution, so it has no meaning across shapes.
  const groups = shapeGroups(schema);
  const sums = schema.hasLogits ? groups.map((g) => new LogitSums(g.schema)) : null;
  const where: { g: number; at: number }[] = [];
  groups.forEach((g, i) => {
    g.positions.forEach((l, at) => {
      where[l] = { g: i, at };
    });
  });
  let tokens = 0;
  /** When the last snapshot was made (performance.now), and whether batches came after it. */
  let lastMs = -Infinity;
  let held = false;
  const snapshot = (): LogitsSnapshot => {
    // One record per shape, every metric read off it (a record per layer, then one more for the pooled loss, cost
    // more than the sums while decoding).
    const records = sums!.map((s) => s.record());
    return {
      tokens,
      layers: schema.layers.map((_, l) => logitsLayerMetrics(records[where[l]!.g]!, where[l]!.at)),
      pooledHfAuxLoss: sums!.length === 1 ? pooledHfAuxLoss(records[0]!) : null,
    };
  };
  const reduce = (b: RoutingBatch): LogitsSnapshot | null => {
    tokens += b.length;
    if (!sums) return null;
    if (b.logits) sums.forEach((s, i) => s.add(groupBatch(b, schema, groups[i]!)));
    const now = performance.now();
    if (!b.logits || now - lastMs < intervalMs) {
      held = true;
      return null;
    }
    lastMs = now;
    held = false;
    return snapshot();
  };
  return Object.assign(reduce, {
    final: (): LogitsSnapshot | null => {
      if (!held) return null;
      held = false;
      return snapshot();
    },
  });
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
