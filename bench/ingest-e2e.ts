/**
 * Live ingest with logits, end to end, as `moescope run --logits --record` runs it at DeepSeek-V3 scale (58 MoE
 * layers × 256 experts, top-8, sigmoid, WITH router logits): two threads, every stage counted.
 *
 *   node dist/bench/ingest-e2e.js [--tokens 40000] [--rounds 3] [--batch N] [--trace PATH] [--json]
 *
 * --batch N: every batch N tokens (1: decoding, one forward pass per token) instead of sizes 1–64.
 *
 *   producer thread (a worker, as the engine's)  the router outputs of a pass (fresh float32 arrays, bench/ingest.ts'
 *                                                Producer, batches of 1–64 tokens) → batchFromRows (float16) → the
 *                                                logits reducer (src/stats/live-logits.ts) → postMessage, buffers
 *                                                transferred — what src/engine/generation-handle.ts does per batch
 *   consumer thread (main)                       RoutingModel.add(batch, snapshot) (the live views' store) and
 *                                                TraceWriter.write (the recording), then close() at the end
 *
 * tok/s is tokens / wall time from the producer's first batch to the recorded trace closed. CPU is read per thread
 * from /proc/thread-self/schedstat (nanoseconds on a CPU) at the start and end of a round, and for the process
 * (every thread: GC helpers, the file system) from process.cpuUsage, so the figures carry over to a machine with
 * other load: µs of CPU per token per thread. Each stage is timed by the wall clock inside its thread (µs per
 * token; at load this includes waits for a core, so compare stages within one run). The producer runs at most CAP tokens ahead of the consumer (a shared
 * counter), as a model slower than the consumer would. Nothing may be dropped: the worker's count, the model's
 * tokens, the writer's count and the reopened trace's tokenCount must all equal the tokens produced (exit 1
 * otherwise), and the last logits snapshot the store got must cover them all. `digest` is a sha1 over that
 * snapshot and the run's load counts — equal across builds when their stats are equal, bit for bit (the producer
 * is seeded).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { RoutingBatch, RoutingSchema } from '../src/core/batch.js';
import { createBatchReducer, type LogitsSnapshot } from '../src/stats/live-logits.js';
import { RoutingModel } from '../src/store/model.js';
import { openTrace, TraceWriter } from '../src/trace/index.js';
import { DEEPSEEK_V3, Producer, RowPool } from './ingest.js';
import { flag, fmtInt, fmtSummary, isMain, loadLine, numArg, strArg, summarise, type Summary } from './common.js';

/** Tokens the producer may run ahead of the consumer. */
const CAP = 4096;

/**
 * CPU nanoseconds of the calling thread so far (Linux: /proc/thread-self/schedstat, first field). The kernel
 * brings this figure up to date at scheduler events (a tick, a switch, a wake-up), not on every read: exact over
 * a round, but it cannot split a thread's time between stages — a postMessage (which wakes the other thread) was
 * charged hundreds of µs that were spent before it. Stages are timed by the wall clock instead.
 */
class ThreadClock {
  private readonly fd = openSync('/proc/thread-self/schedstat', 'r');
  private readonly buf = Buffer.alloc(128);
  ns(): number {
    const n = readSync(this.fd, this.buf, 0, 128, 0);
    const s = this.buf.toString('latin1', 0, n);
    return Number(s.slice(0, s.indexOf(' ')));
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Wall-clock nanoseconds (stages: what a thread spent in each, waits for a core at load included). */
const wallNs = () => performance.now() * 1e6;

function schemaOf(): RoutingSchema {
  const L = DEEPSEEK_V3.layers;
  return {
    layers: Array.from({ length: L }, (_, i) => DEEPSEEK_V3.firstMoeLayer + i),
    experts: DEEPSEEK_V3.experts,
    topK: DEEPSEEK_V3.topK,
    scoring: 'sigmoid',
    hasLogits: true,
  };
}

interface WorkerDone {
  done: true;
  tokens: number;
  /** Wall ns of the worker thread in each stage; CPU ns of the whole thread (threadNs). */
  rowsNs: number;
  batchNs: number;
  reduceNs: number;
  postNs: number;
  threadNs: number;
}

/** The producer thread: waits for the go, then produces `tokens` tokens as fast as the consumer takes them. */
function workerMain(): void {
  const { tokens, shared, batch } = workerData as { tokens: number; shared: SharedArrayBuffer; batch: number | null };
  const ctl = new Int32Array(shared); // [0] go, [1] tokens consumed
  const schema = schemaOf();
  const p = new Producer(schema, new RowPool(schema, 7), batch);
  const reduce = createBatchReducer(schema);
  const clock = new ThreadClock();
  parentPort!.postMessage({ ready: true });
  Atomics.wait(ctl, 0, 0);
  const c0 = clock.ns();
  let rowsNs = 0;
  let batchNs = 0;
  let reduceNs = 0;
  let postNs = 0;
  let made = 0;
  while (made < tokens) {
    while (made - Atomics.load(ctl, 1) > CAP) Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 50);
    const a = wallNs();
    const rows = p.rows();
    const b0 = wallNs();
    const b = p.batch(rows);
    const c = wallNs();
    const snap = reduce(b);
    const d = wallNs();
    parentPort!.postMessage({ batch: b, snap }, transferList(b));
    const e = wallNs();
    rowsNs += b0 - a;
    batchNs += c - b0;
    reduceNs += d - c;
    postNs += e - d;
    made += b.length;
  }
  // The snapshot held back from the last batches (live-logits.ts makes one at most every few ms), as the engine
  // sends it after its last batch.
  const f = wallNs();
  const last = reduce.final();
  if (last) parentPort!.postMessage({ final: last });
  reduceNs += wallNs() - f;
  const done: WorkerDone = { done: true, tokens: made, rowsNs, batchNs, reduceNs, postNs, threadNs: clock.ns() - c0 };
  clock.close();
  parentPort!.postMessage(done);
}

/** What the producer thread posts: ready, a batch with its snapshot (null: held back), the last snapshot, done. */
type FromWorker =
  | { ready?: true; batch?: RoutingBatch; snap?: LogitsSnapshot | null; final?: LogitsSnapshot }
  | WorkerDone;

/** The batch's typed-array buffers, moved to the consumer (as the engine worker posts them). */
function transferList(b: RoutingBatch): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const x of [b.seq, b.pos, b.tokenId, b.isPrompt, b.tNs, b.experts, b.weights, b.logits])
    if (x && x.buffer instanceof ArrayBuffer) out.add(x.buffer);
  return [...out];
}

export interface E2eRound {
  tokens: number;
  wallMs: number;
  tokPerS: number;
  /**
   * µs per token: each stage's wall time inside its thread (rows … post, model, writer, close), and the CPU time of
   * the producer thread (worker), the consumer thread (main) and the process (every thread).
   */
  us: {
    rows: number;
    batch: number;
    reduce: number;
    post: number;
    worker: number;
    model: number;
    writer: number;
    close: number;
    main: number;
    process: number;
  };
  modelTokens: number;
  writerTokens: number;
  traceTokens: number;
  traceComplete: boolean;
  traceBytes: number;
  digest: string;
  ok: boolean;
}

function round(tokens: number, batch: number | null, path: string, keep: boolean): Promise<E2eRound> {
  const schema = schemaOf();
  const shared = new SharedArrayBuffer(8);
  const ctl = new Int32Array(shared);
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: { tokens, shared, batch } });
  // As `run --logits` builds them: the live views' store with logits posted by the producer, a sync recorder.
  const model = new RoutingModel(
    schema,
    { model: 'bench', routers: [], tokenizer: null, devices: ['cpu'], source: 'run' },
    {
      logits: 'posted',
    },
  );
  const writer = TraceWriter.create(path, {
    schema,
    meta: {
      model: 'bench/ingest-e2e (synthetic DeepSeek-V3 routing)',
      routers: [],
      tokenizer: null,
      devices: ['cpu'],
      source: 'run',
    },
  });
  const clock = new ThreadClock();
  let modelNs = 0;
  let writerNs = 0;
  let consumed = 0;
  let last: LogitsSnapshot | null = null;
  let t0 = 0;
  let c0 = 0;
  let p0 = process.cpuUsage();
  return new Promise((resolve, reject) => {
    w.on('error', reject);
    w.on('message', (m: FromWorker) => {
      if ('ready' in m) {
        t0 = performance.now();
        c0 = clock.ns();
        p0 = process.cpuUsage();
        Atomics.store(ctl, 0, 1);
        Atomics.notify(ctl, 0);
        return;
      }
      if ('batch' in m) {
        const b = m.batch!;
        const a = wallNs();
        model.add(b, m.snap);
        const c = wallNs();
        writer.write(b);
        const d = wallNs();
        modelNs += c - a;
        writerNs += d - c;
        consumed += b.length;
        if (m.snap) last = m.snap;
        Atomics.store(ctl, 1, consumed);
        Atomics.notify(ctl, 1);
        return;
      }
      if ('final' in m) {
        const a = wallNs();
        model.addDerived(m.final);
        modelNs += wallNs() - a;
        last = m.final!;
        return;
      }
      const done = m as WorkerDone;
      const writerTokens = writer.tokensWritten;
      const a = wallNs();
      writer.close();
      const closeNs = wallNs() - a;
      const wallMs = performance.now() - t0;
      const mainNs = clock.ns() - c0;
      const pu = process.cpuUsage(p0);
      clock.close();
      void w.terminate();
      const trace = openTrace(path);
      const traceTokens = trace.tokenCount;
      const traceComplete = trace.complete;
      trace.close();
      const traceBytes = statSync(path).size;
      if (!keep) rmSync(path, { force: true });
      const n = done.tokens;
      const per = (ns: number) => ns / 1000 / n;
      const modelTokens = model.stats.tokens;
      const digest = createHash('sha1')
        .update(JSON.stringify(last))
        .update(JSON.stringify(schema.layers.map((_, l) => model.parts[0]!.coact?.topPairs(l, 8) ?? null)))
        .update(new Uint8Array(model.stats.load.buffer, model.stats.load.byteOffset, model.stats.load.byteLength))
        .digest('hex');
      resolve({
        tokens: n,
        wallMs,
        tokPerS: (n / wallMs) * 1000,
        us: {
          rows: per(done.rowsNs),
          batch: per(done.batchNs),
          reduce: per(done.reduceNs),
          post: per(done.postNs),
          worker: per(done.threadNs),
          model: per(modelNs),
          writer: per(writerNs),
          close: per(closeNs),
          main: per(mainNs),
          process: (pu.user + pu.system) / n,
        },
        modelTokens,
        writerTokens,
        traceTokens,
        traceComplete,
        traceBytes,
        digest,
        // The last snapshot the store got must cover every token (the one held back arrives after the batches).
        ok:
          consumed === n &&
          modelTokens === n &&
          writerTokens === n &&
          traceTokens === n &&
          traceComplete &&
          (last as LogitsSnapshot | null)?.tokens === n,
      });
    });
  });
}

export interface E2eResult {
  rounds: E2eRound[];
  tokPerS: Summary;
  /** Median over rounds of each stage's µs of CPU per token. */
  us: Record<keyof E2eRound['us'], Summary>;
  ok: boolean;
  load: string;
}

export async function runE2e(opts: {
  tokens: number;
  rounds: number;
  batch: number | null;
  trace: string | null;
}): Promise<E2eResult> {
  const path = opts.trace ?? join(tmpdir(), `moescope-bench-ingest-e2e-${process.pid}.arrows`);
  const rounds: E2eRound[] = [];
  await round(Math.min(opts.tokens, 4000), opts.batch, path, false); // warm-up: tables, JIT, file system
  for (let r = 0; r < opts.rounds; r++) rounds.push(await round(opts.tokens, opts.batch, path, opts.trace !== null));
  const keys = Object.keys(rounds[0]!.us) as (keyof E2eRound['us'])[];
  return {
    rounds,
    tokPerS: summarise(rounds.map((r) => r.tokPerS)),
    us: Object.fromEntries(keys.map((k) => [k, summarise(rounds.map((r) => r.us[k]))])) as E2eResult['us'],
    ok: rounds.every((r) => r.ok) && new Set(rounds.map((r) => r.digest)).size === 1,
    load: loadLine(),
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const r = await runE2e({
    tokens: numArg(argv, '--tokens', 40_000),
    rounds: numArg(argv, '--rounds', 3),
    batch: numArg(argv, '--batch', 0) || null,
    trace: strArg(argv, '--trace') ?? null,
  });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const u = r.us;
  const f = (s: Summary) => fmtSummary(s, 1);
  out(
    `live ingest end to end — 58 × 256 top-8 sigmoid with logits, batches of ${argv.includes('--batch') ? numArg(argv, '--batch', 0) : '1–64'} tokens, producer thread + consumer thread, ${r.rounds.length} rounds × ${fmtInt(r.rounds[0]!.tokens)} tokens`,
  );
  out(`  ${r.load}`);
  out(`  end to end              ${fmtSummary(r.tokPerS, 0)} tok/s   goal ≥ 10,000`);
  out(`  µs per token, median (min–max) over rounds — threads: CPU time; stages: wall time inside the thread:`);
  out(
    `    producer thread CPU   ${f(u.worker)}; stages: router outputs ${f(u.rows)} + batch (f16) ${f(u.batch)} + logits reducer ${f(u.reduce)} + post ${f(u.post)}`,
  );
  out(
    `    consumer thread CPU   ${f(u.main)}; stages: store add ${f(u.model)} + trace write ${f(u.writer)} + close ${f(u.close)}`,
  );
  out(`    process CPU, all threads ${f(u.process)}  (${fmtInt(1e6 / u.process.median)} tokens per CPU-second)`);
  for (const x of r.rounds)
    out(
      `  round: ${fmtInt(x.tokPerS)} tok/s; tokens worker ${fmtInt(x.tokens)}, store ${fmtInt(x.modelTokens)}, writer ${fmtInt(x.writerTokens)}, trace ${fmtInt(x.traceTokens)} (${x.traceComplete ? 'complete' : 'NOT complete'}, ${(x.traceBytes / 2 ** 30).toFixed(2)} GiB); stats digest ${x.digest.slice(0, 12)}`,
    );
  out(`  ${r.ok ? 'none dropped; the same stats every round' : 'MISMATCH'}`);
  if (flag(argv, '--json')) out(JSON.stringify(r));
  process.exitCode = r.ok ? 0 : 1;
}

if (!isMainThread && (workerData as { shared?: unknown } | null)?.shared) workerMain();
else if (isMain(import.meta.url)) await main();
