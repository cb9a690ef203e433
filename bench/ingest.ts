/**
 * Live ingest at DeepSeek-V3 scale: a producer streams routing batches (58 MoE layers × 256 experts, top-8,
 * sigmoid router, WITH router logits) into RoutingStats.add and TraceWriter.write — what the main thread of
 * `moescope run --logits --record` does with every batch the engine's worker posts. The logits are scored where
 * they are, in the engine worker (src/stats/live-logits.ts; the main thread gets L × 8 numbers per batch): that
 * reducer's time is measured on its own (`reducer` tok/s, the worker's added cost) and is not part of ingest.
 *
 *   node dist/bench/ingest.js [--rounds 5] [--round-tokens 20000] [--trace PATH] [--no-logits] [--json]
 *
 * Producer: batches built exactly as the engine builds them (batchFromRows over float32 router outputs, float16
 * through src/core/f16), from a pool of precomputed token rows standing in for the model; batch sizes 1–64
 * (a pseudo-random cycle), sequences of 512 tokens. Two variants run in interleaved rounds:
 *   producer          the producer alone (the baseline: what any consumer pays to receive the stream)
 *   producer+ingest   the same, each batch also added to the stats and written to the trace
 * Reported per round: producer-alone tok/s, end-to-end tok/s, ingest tok/s (tokens / time inside stats.add +
 * writer.write — the consumer's capacity, since in `moescope run` the producer is a separate worker thread) and
 * the end-to-end/producer time ratio. At the end every token is accounted for: stats.tokens, the writer's count
 * and the reopened trace's tokenCount must all equal the tokens produced, or the bench exits 1.
 * `--trace PATH` keeps the recorded trace there (bench/rss-stream.ts re-reads it); otherwise it is deleted.
 */
import { rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RoutingBatch, RoutingSchema } from '../src/core/batch.js';
import { batchFromRows, seededRandom } from '../src/engine/generation-loop.js';
import type { RoutingRows } from '../src/engine/capture.js';
import type { TextCodec } from '../src/engine/tokenizer.js';
import { RoutingStats } from '../src/stats/index.js';
import { createBatchReducer } from '../src/stats/live-logits.js';
import { TraceWriter, openTrace } from '../src/trace/index.js';
import {
  flag,
  fmtInt,
  fmtSummary,
  interleave,
  isMain,
  loadSha1,
  numArg,
  strArg,
  summarise,
  type Summary,
} from './common.js';

export const DEEPSEEK_V3 = { layers: 58, firstMoeLayer: 3, experts: 256, topK: 8 } as const;
const SEQ_LEN = 512;
const MAX_BATCH = 64;
const POOL = 97; // distinct token rows; prime, so the pool cycle never lines up with the batch-size cycle

/** Token rows standing in for a model: skewed per-layer popularity, logits, their top-K and sigmoid weights. */
export class RowPool {
  readonly experts: Int32Array;
  readonly weights: Float32Array;
  readonly logits: Float32Array | null;
  constructor(
    readonly schema: RoutingSchema,
    seed: number,
  ) {
    const L = schema.layers.length;
    const { experts: E, topK: K } = schema;
    const rand = seededRandom(seed);
    // Zipf(1.1) popularity, ranks shuffled per layer; logit = log popularity + Gumbel noise (Gumbel-top-k).
    const logPop = new Float64Array(L * E);
    for (let l = 0; l < L; l++) {
      const perm = Array.from({ length: E }, (_, i) => i).sort(() => rand() - 0.5);
      for (let r = 0; r < E; r++) logPop[l * E + perm[r]!] = -1.1 * Math.log(r + 1);
    }
    this.experts = new Int32Array(POOL * L * K);
    this.weights = new Float32Array(POOL * L * K);
    const logits = new Float32Array(POOL * L * E);
    const idx = new Int32Array(E);
    for (let t = 0; t < POOL; t++)
      for (let l = 0; l < L; l++) {
        const o = (t * L + l) * E;
        for (let e = 0; e < E; e++) logits[o + e] = logPop[l * E + e]! + 2 - Math.log(-Math.log(rand() || 1e-12));
        for (let e = 0; e < E; e++) idx[e] = e;
        const top = Array.from(idx)
          .sort((a, b) => logits[o + b]! - logits[o + a]!)
          .slice(0, K);
        const sig = top.map((e) => 1 / (1 + Math.exp(-logits[o + e]!)));
        const sum = sig.reduce((a, b) => a + b, 0);
        top.forEach((e, k) => {
          this.experts[(t * L + l) * K + k] = e;
          this.weights[(t * L + l) * K + k] = sig[k]! / sum;
        });
      }
    this.logits = schema.hasLogits ? logits : null;
  }
}

const CODEC: TextCodec = {
  path: null,
  encode: () => [],
  decode: (ids) => ids.map((id) => `<${id}>`).join(''),
  decodeRaw: (ids) => ids.map((id) => `<${id}>`).join(''),
  cleanUp: null,
  tokenText: (id) => `<${id}>`,
  eos: new Set<number>(),
};

/** The engine side: router outputs as onnxruntime hands them out (fresh arrays per pass) → RoutingBatch. */
export class Producer {
  private seq = 0;
  private pos = 0;
  private row = 0;
  private sizeState = 0x9e3779b9;
  tokens = 0;
  private readonly lk: number;
  private readonly le: number;
  /** fixed: every batch this many tokens (1: decoding, one pass per token) instead of the 1–64 cycle. */
  constructor(
    readonly schema: RoutingSchema,
    private readonly pool: RowPool,
    private readonly fixed: number | null = null,
  ) {
    this.lk = schema.layers.length * schema.topK;
    this.le = schema.layers.length * schema.experts;
  }

  /** Next batch size in 1…64 (xorshift: the same cycle every run). */
  private nextSize(): number {
    if (this.fixed !== null) return this.fixed;
    let x = this.sizeState;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.sizeState = x >>> 0;
    return 1 + (this.sizeState % MAX_BATCH);
  }

  next(): RoutingBatch {
    return this.batch(this.rows());
  }

  /** The router outputs of the next pass, as onnxruntime hands them out (fresh arrays), and its token ids. */
  rows(): { rows: RoutingRows; ids: number[] } {
    const n = Math.min(this.nextSize(), SEQ_LEN - this.pos);
    const { lk, le, pool } = this;
    const rows: RoutingRows = {
      n,
      experts: new Int32Array(n * lk),
      weights: new Float32Array(n * lk),
      logits: pool.logits ? new Float32Array(n * le) : null,
    };
    const ids: number[] = [];
    for (let t = 0; t < n; t++) {
      const p = this.row;
      this.row = (this.row + 1) % POOL;
      rows.experts.set(pool.experts.subarray(p * lk, (p + 1) * lk), t * lk);
      rows.weights.set(pool.weights.subarray(p * lk, (p + 1) * lk), t * lk);
      if (rows.logits) rows.logits.set(pool.logits!.subarray(p * le, (p + 1) * le), t * le);
      ids.push((this.tokens + t) % 32000);
    }
    return { rows, ids };
  }

  /** Those outputs as the engine posts them (batchFromRows: float16 weights and logits). */
  batch({ rows, ids }: { rows: RoutingRows; ids: number[] }): RoutingBatch {
    const n = rows.n;
    const b = batchFromRows(rows, this.seq, this.pos, ids, this.pos === 0, null, CODEC);
    this.tokens += n;
    this.pos += n;
    if (this.pos === SEQ_LEN) {
      this.seq++;
      this.pos = 0;
    }
    return b;
  }
}

export interface IngestResult {
  schema: string;
  rounds: number;
  roundTokens: number;
  /** Tokens per second, one sample per round. */
  producer: Summary;
  endToEnd: Summary;
  ingest: Summary;
  /** Tokens per second of the engine worker's logits reducer (live-logits.ts), null without logits. */
  reducer: Summary | null;
  /** Share of ingest time in stats.add and writer.write (over all rounds). */
  statsShare: number;
  writerShare: number;
  /** End-to-end time / producer-alone time, per round pair. */
  ratio: Summary;
  produced: number;
  statsTokens: number;
  writerTokens: number;
  traceTokens: number;
  traceComplete: boolean;
  traceBytes: number;
  tracePath: string | null;
  /** sha1 of stats' run load matrix (Float64 counts): bench/rss-stream.ts recounts the trace and must match. */
  loadSha1: string;
  ok: boolean;
}

export function runIngest(opts: {
  rounds: number;
  roundTokens: number;
  logits: boolean;
  trace: string | null;
}): IngestResult {
  const L = DEEPSEEK_V3.layers;
  const schema: RoutingSchema = {
    layers: Array.from({ length: L }, (_, i) => DEEPSEEK_V3.firstMoeLayer + i),
    experts: DEEPSEEK_V3.experts,
    topK: DEEPSEEK_V3.topK,
    scoring: 'sigmoid',
    hasLogits: opts.logits,
  };
  const pool = new RowPool(schema, 7);
  const path = opts.trace ?? join(tmpdir(), `moescope-bench-ingest-${process.pid}.arrows`);
  // As the live views: default window, collapse detector on, logits metrics posted by the engine worker.
  const stats = new RoutingStats(schema, { logits: 'posted' });
  const reduce = createBatchReducer(schema);
  const writer = TraceWriter.create(path, {
    schema,
    meta: {
      model: 'bench/ingest (synthetic DeepSeek-V3 routing)',
      routers: [],
      tokenizer: null,
      devices: ['cpu'],
      source: 'run',
    },
  });
  const producers = [new Producer(schema, pool), new Producer(schema, pool)];
  interface Sample {
    tokens: number;
    wallMs: number;
    statsMs: number;
    writerMs: number;
    reducerMs: number;
  }
  const samples = interleave(['producer', 'producer+ingest'], opts.rounds, (v): Sample => {
    const p = producers[v]!;
    let tokens = 0;
    let statsMs = 0;
    let writerMs = 0;
    let reducerMs = 0;
    const t0 = performance.now();
    while (tokens < opts.roundTokens) {
      const b = p.next();
      tokens += b.length;
      if (v === 1) {
        // The engine worker's share (on the producer's thread in `moescope run`), timed apart from ingest.
        const t00 = performance.now();
        const snap = reduce(b);
        reducerMs += performance.now() - t00;
        const t1 = performance.now();
        stats.add(b, snap);
        const t2 = performance.now();
        writer.write(b);
        statsMs += t2 - t1;
        writerMs += performance.now() - t2;
      }
    }
    return { tokens, wallMs: performance.now() - t0 - reducerMs, statsMs, writerMs, reducerMs };
  });
  const writerTokens = writer.tokensWritten;
  writer.close();
  const produced = producers[1]!.tokens;
  const trace = openTrace(path);
  const traceTokens = trace.tokenCount;
  const traceComplete = trace.complete;
  trace.close();
  const traceBytes = statSync(path).size;
  if (!opts.trace) rmSync(path, { force: true });

  const [prod, full] = samples as [Sample[], Sample[]];
  const tps = (s: Sample, ms: number) => (s.tokens / ms) * 1000;
  const statsMs = full.reduce((a, s) => a + s.statsMs, 0);
  const writerMs = full.reduce((a, s) => a + s.writerMs, 0);
  const ok = stats.tokens === produced && writerTokens === produced && traceTokens === produced && traceComplete;
  return {
    schema: `${L} MoE layers × ${schema.experts} experts, top-${schema.topK} sigmoid${opts.logits ? ', with logits' : ''}`,
    rounds: opts.rounds,
    roundTokens: opts.roundTokens,
    producer: summarise(prod.map((s) => tps(s, s.wallMs))),
    endToEnd: summarise(full.map((s) => tps(s, s.wallMs))),
    ingest: summarise(full.map((s) => tps(s, s.statsMs + s.writerMs))),
    reducer: opts.logits ? summarise(full.map((s) => tps(s, s.reducerMs))) : null,
    statsShare: statsMs / (statsMs + writerMs),
    writerShare: writerMs / (statsMs + writerMs),
    ratio: summarise(full.map((s, i) => s.wallMs / s.tokens / (prod[i]!.wallMs / prod[i]!.tokens))),
    produced,
    statsTokens: stats.tokens,
    writerTokens,
    traceTokens,
    traceComplete,
    traceBytes,
    tracePath: opts.trace,
    loadSha1: loadSha1(stats.load),
    ok,
  };
}

function main(): void {
  const argv = process.argv.slice(2);
  const r = runIngest({
    rounds: numArg(argv, '--rounds', 5),
    roundTokens: numArg(argv, '--round-tokens', 20_000),
    logits: !flag(argv, '--no-logits'),
    trace: strArg(argv, '--trace') ?? null,
  });
  const out = (s: string) => process.stdout.write(s + '\n');
  out(
    `live ingest — ${r.schema}; batches of 1–${MAX_BATCH} tokens; ${r.rounds} interleaved rounds × ${fmtInt(r.roundTokens)} tokens per variant`,
  );
  out(`  producer alone          ${fmtSummary(r.producer, 0)} tok/s`);
  out(`  producer + ingest       ${fmtSummary(r.endToEnd, 0)} tok/s   time ratio ${fmtSummary(r.ratio, 2)}×`);
  out(
    `  ingest (stats + trace)  ${fmtSummary(r.ingest, 0)} tok/s   (stats.add ${(r.statsShare * 100).toFixed(0)}%, writer.write ${(r.writerShare * 100).toFixed(0)}%)  goal ≥ 10,000`,
  );
  if (r.reducer)
    out(
      `  engine-worker logits     ${fmtSummary(r.reducer, 0)} tok/s   (live-logits.ts reducer, runs beside the model, not in ingest)`,
    );
  out(
    `  tokens: produced ${fmtInt(r.produced)}, stats ${fmtInt(r.statsTokens)}, writer ${fmtInt(r.writerTokens)}, trace ${fmtInt(r.traceTokens)}` +
      ` (${r.traceComplete ? 'complete' : 'NOT complete'}, ${(r.traceBytes / 2 ** 30).toFixed(2)} GiB) — ${r.ok ? 'none dropped' : 'MISMATCH'}`,
  );
  if (flag(argv, '--json')) out(JSON.stringify(r));
  process.exitCode = r.ok ? 0 : 1;
}

if (isMain(import.meta.url)) main();
