/**
 * `moescope stats` on more than one core: the trace's layers split into consecutive ranges (src/stats/layer-split.ts),
 * the first analysed on this thread (which also reads the trace and runs the whole-token analyses), each other in a
 * worker thread (stats-worker.ts); the parts merged by the stats' `mergeStats`, byte for byte the output of one
 * analysis over every layer.
 *
 * Each batch crosses once: its seq, pos, expert ids and weights are copied into one SharedArrayBuffer that every
 * worker reads, since the trace reader's buffers are not shared memory (one copy for all workers, none transferred:
 * 178 MiB per 100k DeepSeek-scale tokens, ~15 ms of CPU once the buffers are reused, against ~5 s of analyses). Memory stays
 * bounded: this thread waits while a worker has MAX_IN_FLIGHT batches not yet analysed, so a slow worker slows the
 * reading down instead of queueing the trace.
 *
 * Traces with logits stay on one analysis: their logits are scored by the LogitsThread (the second core already),
 * and the pooled HF loss and the loss-free replay read every layer at once.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import {
  TraceAnalysis,
  WholeTokenAnalyses,
  mergeStats,
  type AnalysisOptions,
  type LayerPart,
  type StatsJson,
} from '../stats/analysis.js';
import { assertCoactivationFits } from '../stats/coactivation.js';
import {
  checkRows,
  layerRanges,
  rangeBatch,
  rangeSchema,
  type LayerRange,
  type RangeRows,
} from '../stats/layer-split.js';

/** Batches a worker may hold not yet analysed before the reading waits for it. */
const MAX_IN_FLIGHT = 4;
/** Below this many assignments (tokens · L · K) starting a worker costs more than it saves: one thread. */
const MIN_ASSIGNMENTS = 4_000_000;
/** Workers at most (the ranges get short and the reading thread becomes the bottleneck past a few). */
const MAX_WORKERS = 3;
/**
 * The reading thread's range, relative to a worker's: it also decodes the trace, copies each batch once and counts
 * domain and vocabulary specialisation. Set from the two threads' profiles at DeepSeek-V3 scale (100k tokens, one
 * worker, a loaded machine): at 0.6 (22 of 58 layers) the reading thread idled 26% of the time, at 0.85 (27) the
 * worker did — its own work is ≈ 5–15 layers' worth; 0.7 (24 layers) sits between.
 */
const FIRST_WEIGHT = 0.7;

/** What a range worker starts with. */
export interface RangeWorkerData {
  /** The range's schema (its layers only). */
  schema: RoutingSchema;
  /** Analysis options without logits and whole-token analyses. */
  options: AnalysisOptions;
  range: LayerRange;
  /** Layers and K of the whole batches. */
  L: number;
  K: number;
}

export type ToWorker = { kind: 'rows'; length: number; buffer: SharedArrayBuffer } | { kind: 'end' };
export type FromWorker =
  | { kind: 'ack' }
  | { kind: 'part'; part: LayerPart }
  | { kind: 'error'; message: string; user: boolean };

/** Bytes of N rows in the shared layout: seq, pos (u32), expert ids, weights (u16, N·L·K each). */
function rowsBytes(N: number, L: number, K: number): number {
  return 8 * N + 4 * N * L * K;
}

/** Views of the rows in a shared buffer (the same layout on both sides). */
export function rowsOf(buffer: SharedArrayBuffer, N: number, L: number, K: number): RangeRows {
  const n = N * L * K;
  return {
    length: N,
    seq: new Uint32Array(buffer, 0, N),
    pos: new Uint32Array(buffer, 4 * N, N),
    experts: new Uint16Array(buffer, 8 * N, n),
    weights: new Uint16Array(buffer, 8 * N + 2 * n, n),
  };
}

/**
 * How many worker threads `stats` starts for a uniform trace of `tokens` tokens (null: not known): one fewer than
 * the cores (at most MAX_WORKERS, at most L − 1), none for a small trace, one core or a trace with logits.
 * MOESCOPE_STATS_WORKERS sets the number (0: one thread) — except with logits, which are never split.
 */
export function statsWorkers(schema: RoutingSchema, tokens: number | null): number {
  const L = schema.layers.length;
  const fixed = process.env.MOESCOPE_STATS_WORKERS;
  let n: number;
  if (fixed !== undefined && fixed !== '') {
    n = Number(fixed);
    if (!Number.isInteger(n) || n < 0)
      throw new UserError(`MOESCOPE_STATS_WORKERS must be a whole number ≥ 0, got ${JSON.stringify(fixed)}`);
  } else {
    if (tokens !== null && tokens * L * schema.topK < MIN_ASSIGNMENTS) return 0;
    n = Math.min(MAX_WORKERS, availableParallelism() - 1);
  }
  if (schema.hasLogits || schema.layerExperts || schema.layerTopK) return 0;
  return Math.max(0, Math.min(n, L - 1));
}

interface RangeWorker {
  worker: Worker;
  inFlight: number;
  part: LayerPart | null;
  /** Resolves the wait for this worker (an ack, its part, or its failure). */
  wake: (() => void) | null;
}

/** TraceAnalysis' add / result over layer ranges in worker threads (see the top of this file). */
export class SplitAnalysis {
  readonly schema: RoutingSchema;
  private readonly options: AnalysisOptions;
  private readonly ranges: LayerRange[];
  private readonly local: TraceAnalysis;
  private readonly whole: WholeTokenAnalyses;
  private readonly workers: RangeWorker[];
  private readonly scratch = { experts: new Uint16Array(0), weights: new Uint16Array(0) };
  private failure: Error | null = null;
  /**
   * Shared buffers the batches are copied into, reused in turn: batch j goes to slot j mod (MAX_IN_FLIGHT + 1),
   * whose previous batch every worker has finished (add returns only once each has fewer than MAX_IN_FLIGHT).
   */
  private readonly slots: SharedArrayBuffer[] = [];
  private batches = 0;

  constructor(schema: RoutingSchema, options: AnalysisOptions, workers: number) {
    if (schema.hasLogits) throw new Error('a trace with logits is analysed whole');
    this.schema = schema;
    this.options = options;
    const { logits: _logits, ...plain } = options;
    const rangeOptions: AnalysisOptions = { ...plain, vocabLayer: null, wholeToken: false };
    // The checks one analysis over every layer makes, before any range is smaller than the whole.
    if (rangeOptions.coactivationPairs > 0 && schema.topK > 1) assertCoactivationFits(schema);
    this.whole = new WholeTokenAnalyses(schema, options);
    this.ranges = layerRanges(schema.layers.length, workers + 1, FIRST_WEIGHT);
    this.local = new TraceAnalysis(rangeSchema(schema, this.ranges[0]!), rangeOptions);
    const L = schema.layers.length;
    const K = schema.topK;
    this.workers = this.ranges.slice(1).map((range) => {
      const data: RangeWorkerData = { schema: rangeSchema(schema, range), options: rangeOptions, range, L, K };
      const worker = new Worker(new URL('./stats-worker.js', import.meta.url), { workerData: data });
      const w: RangeWorker = { worker, inFlight: 0, part: null, wake: null };
      worker.on('message', (m: FromWorker) => {
        if (m.kind === 'ack') w.inFlight--;
        else if (m.kind === 'part') w.part = m.part;
        else this.failure ??= m.user ? new UserError(m.message) : new Error(`stats worker: ${m.message}`);
        w.wake?.();
      });
      worker.on('error', (e) => {
        this.failure ??= new Error(`stats worker: ${e.message}`);
        w.wake?.();
      });
      worker.on('exit', () => {
        if (!w.part) this.failure ??= new Error('stats worker ended without its result');
        w.wake?.();
      });
      return w;
    });
  }

  /** Adds a batch of whole tokens (every layer), in stream order. */
  async add(b: RoutingBatch): Promise<void> {
    const L = this.schema.layers.length;
    const K = this.schema.topK;
    checkRows(b, L, K);
    if (this.workers.length) {
      const buffer = this.slot(rowsBytes(b.length, L, K));
      const rows = rowsOf(buffer, b.length, L, K);
      rows.seq.set(b.seq);
      rows.pos.set(b.pos);
      rows.experts.set(b.experts);
      rows.weights.set(b.weights);
      const msg: ToWorker = { kind: 'rows', length: b.length, buffer };
      for (const w of this.workers) {
        w.worker.postMessage(msg);
        w.inFlight++;
      }
    }
    const n = b.length * (this.ranges[0]!.end - this.ranges[0]!.start) * K;
    if (this.scratch.experts.length < n) {
      this.scratch.experts = new Uint16Array(n);
      this.scratch.weights = new Uint16Array(n);
    }
    this.local.add(rangeBatch(b, L, K, this.ranges[0]!, this.scratch));
    this.whole.add(b);
    for (const w of this.workers) await this.until(w, () => w.inFlight < MAX_IN_FLIGHT);
  }

  /** The StatsJson of every layer, once the workers have analysed every batch; ends the workers. */
  async result(extraGlobal: (loads: readonly number[][]) => { balancedness?: unknown }): Promise<StatsJson> {
    for (const w of this.workers) w.worker.postMessage({ kind: 'end' } satisfies ToWorker);
    for (const w of this.workers) await this.until(w, () => w.part !== null);
    const parts = [this.local.layerPart(0), ...this.workers.map((w) => w.part!)];
    const merged = mergeStats(this.schema, this.options, parts, this.whole.result());
    merged.global = { ...merged.global, ...extraGlobal(merged.layers.map((l) => l.load)) };
    return merged;
  }

  /** The next slot, at least `bytes` long (a new buffer only while the batches grow). */
  private slot(bytes: number): SharedArrayBuffer {
    const i = this.batches++ % (MAX_IN_FLIGHT + 1);
    const have = this.slots[i];
    if (have && have.byteLength >= bytes) return have;
    // A quarter to spare, so that batches of slightly varying length do not allocate (and fault in) new memory.
    return (this.slots[i] = new SharedArrayBuffer(Math.ceil(bytes * 1.25)));
  }

  /** Stops the workers (also after a failure). */
  close(): void {
    for (const w of this.workers) void w.worker.terminate();
  }

  private async until(w: RangeWorker, ready: () => boolean): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (ready()) return;
      await new Promise<void>((resolve) => {
        w.wake = resolve;
      });
      w.wake = null;
    }
  }
}
