/**
 * The live-generation API the CLI and the TUI use: `startGeneration(opts)` opens the model in a worker thread,
 * generates over the prompts and streams events — one RoutingBatch for each prompt's tokens, then one per
 * generated token, decoded text, and MemorySamples (at most one per second). See docs/engine.md.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import type { MemorySample } from '../core/memory.js';
import type { StreamMeta } from '../core/stream.js';
import type { RouterInfo } from './discover.js';
import {
  runGeneration,
  type GenerateOptions,
  type GenerationEvent,
  type LoopControl,
  type SequenceResult,
} from './generation-loop.js';
import { MemorySampler } from './memory.js';
import { ModelRunner, type RunnerOptions } from './runner.js';

export interface GenerationOptions extends RunnerOptions, GenerateOptions {
  /** Run inference in a worker thread (default true). */
  worker?: boolean;
  /** Memory sample period in ms (default 1000; 0 turns sampling off). */
  memoryIntervalMs?: number;
  /** nvidia-smi command (default "nvidia-smi"; null: never query GPUs). */
  nvidiaSmi?: string | null;
  /**
   * Queue events for the async iterator from the start (default true; a consumer that lags far behind pauses
   * generation until it catches up). Pass false when consuming only through on(…): nothing is queued then.
   */
  buffer?: boolean;
  /**
   * URL of a module exporting `createBatchReducer(schema) → (batch) → result`: run in the inference thread on every
   * batch, its structured-cloneable result travels with the batch as `derived` (e.g. src/stats/live-logits.ts, so
   * that logits are scored where they are and the thread that draws gets L × 8 numbers). When the function has a
   * `final()` method, it is called once after the last batch and a non-null result is sent as a 'derived' event.
   * The engine does not know what it computes.
   */
  reducer?: string;
}

export interface GenerationInfo {
  schema: RoutingSchema;
  meta: StreamMeta;
  routers: RouterInfo[];
  /** True when decoding uses the model's KV cache; false: the whole sequence is recomputed per token. */
  kvCache: boolean;
}

const HIGH_WATER = 4096;
const LOW_WATER = 1024;

export type HandleEvent = GenerationEvent | { type: 'memory'; sample: MemorySample };

export interface GenerationSummary {
  sequences: SequenceResult[];
  stopped: boolean;
}

export type WorkerRequest = Omit<GenerationOptions, 'worker' | 'memoryIntervalMs' | 'buffer'>;

export type WorkerMessage =
  | { type: 'ready'; info: GenerationInfo }
  | { type: 'event'; event: GenerationEvent }
  | { type: 'done'; sequences: SequenceResult[] }
  | { type: 'error'; message: string; user: boolean; stack: string | null };

/** Device names for the stream meta: "cpu", or "cuda:0 NVIDIA H200" (the name from nvidia-smi when it answers). */
async function devicesOf(r: ModelRunner, nvidiaSmi: string | null | undefined): Promise<string[]> {
  if (r.ep === 'cpu') return ['cpu'];
  const gpus = r.ep === 'cuda' ? (await new MemorySampler({ nvidiaSmi }).sample()).gpus : null;
  const name = gpus?.find((g) => g.index === r.deviceId)?.name;
  return [`${r.ep}:${r.deviceId}${name ? ' ' + name : ''}`];
}

/** Open the model and generate, reporting through `post` (used by the worker and by in-process runs). */
export async function openAndRun(
  req: WorkerRequest,
  control: LoopControl,
  post: (m: WorkerMessage, transfer?: ArrayBuffer[]) => void,
): Promise<void> {
  const runner = await ModelRunner.open(req);
  let sequences: SequenceResult[];
  try {
    post({
      type: 'ready',
      info: {
        schema: runner.schema,
        meta: runner.streamMeta(await devicesOf(runner, req.nvidiaSmi)),
        routers: runner.routing.routers,
        kvCache: runner.kv !== null,
      },
    });
    const reduce = req.reducer ? await loadReducer(req.reducer, runner.schema) : null;
    sequences = await runGeneration(
      runner,
      req,
      (event) => {
        if (event.type !== 'batch') return post({ type: 'event', event });
        // Reduce before posting: posting transfers (detaches) the batch's buffers.
        const e = reduce ? { ...event, derived: reduce(event.batch) } : event;
        post({ type: 'event', event: e }, batchBuffers(event.batch));
      },
      control,
    );
    // The reducer may have held back what it computed from the last batches (live-logits.ts: snapshots at most
    // every few ms): it goes after them, before 'done'.
    const last = reduce?.final?.();
    if (last !== undefined && last !== null) post({ type: 'event', event: { type: 'derived', derived: last } });
  } finally {
    // Release the session before saying 'done': the caller may exit right after, and a thread ended inside
    // onnxruntime's native code takes the process down with it.
    await runner.close();
  }
  post({ type: 'done', sequences });
}

/** A reducer: a result per batch, and optionally one more when the run ends (`final`). */
type Reducer = ((b: RoutingBatch) => unknown) & { final?: () => unknown };

async function loadReducer(url: string, schema: RoutingSchema): Promise<Reducer> {
  const mod = (await import(url)) as { createBatchReducer?: (schema: RoutingSchema) => Reducer };
  if (typeof mod.createBatchReducer !== 'function') throw new Error(`${url} exports no createBatchReducer`);
  return mod.createBatchReducer(schema);
}

function batchBuffers(b: RoutingBatch): ArrayBuffer[] {
  const arrays = [b.seq, b.pos, b.tokenId, b.isPrompt, b.tNs, b.experts, b.weights, b.logits].filter((a) => a !== null);
  return [...new Set(arrays.map((a) => a!.buffer as ArrayBuffer))];
}

export class GenerationHandle extends EventEmitter {
  /** Resolves once the model is open (schema, stream meta, routers); rejects with a UserError on bad input. */
  readonly ready: Promise<GenerationInfo>;
  /** Resolves when generation ends (all prompts done, or stopped). */
  readonly done: Promise<GenerationSummary>;
  private worker: Worker | null = null;
  private pausedFlag = false;
  private stoppedFlag = false;
  private wake: (() => void) | null = null;
  private readonly queue: HandleEvent[] = [];
  private waiter: (() => void) | null = null;
  private finished = false;
  /** 'done' arrived; the handle finishes after a last memory sample. */
  private ending = false;
  private sampler: MemorySampler | null = null;
  private iterating = false;
  private throttled = false;
  /** What the inference loop is told: paused by the caller or by a lagging iterator. */
  private innerPaused = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: GenerationOptions) {
    super();
    let readyRes!: (i: GenerationInfo) => void;
    let readyRej!: (e: unknown) => void;
    let doneRes!: (s: GenerationSummary) => void;
    let doneRej!: (e: unknown) => void;
    this.ready = new Promise((a, b) => ((readyRes = a), (readyRej = b)));
    this.done = new Promise((a, b) => ((doneRes = a), (doneRej = b)));
    // Avoid unhandled-rejection noise when a caller only awaits one of them.
    this.ready.catch(() => {});
    this.done.catch(() => {});
    const { worker = true, memoryIntervalMs = 1000, buffer = true, ...req } = opts;
    const nvidiaSmi = opts.nvidiaSmi;
    this.iterating = buffer;
    const onMessage = (m: WorkerMessage) => {
      switch (m.type) {
        case 'ready':
          readyRes(m.info);
          if (memoryIntervalMs > 0) this.startSampling(memoryIntervalMs, nvidiaSmi);
          break;
        case 'event':
          this.push(m.event);
          break;
        case 'done':
          this.ending = true;
          // A last memory sample, so even a short run records one at its end.
          void this.sampleOnce().then(() => {
            this.finish();
            doneRes({ sequences: m.sequences, stopped: this.stoppedFlag });
          });
          break;
        case 'error': {
          const err = m.user
            ? new UserError(m.message)
            : Object.assign(new Error(m.message), { stack: m.stack ?? undefined });
          this.finish();
          readyRej(err);
          doneRej(err);
          break;
        }
      }
    };
    if (worker) {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: req });
      this.worker = w;
      w.on('message', onMessage);
      w.on('error', (e) => onMessage({ type: 'error', message: e.message, user: false, stack: e.stack ?? null }));
      w.on('exit', (code) => {
        if (!this.finished && !this.ending)
          onMessage({ type: 'error', message: `inference worker exited with code ${code}`, user: false, stack: null });
      });
    } else {
      const control: LoopControl = {
        stopped: () => this.stoppedFlag,
        waitWhilePaused: () =>
          new Promise<void>((res) =>
            setImmediate(() => (this.innerPaused && !this.stoppedFlag ? (this.wake = res) : res())),
          ),
      };
      openAndRun(req, control, onMessage).catch((e: unknown) =>
        onMessage({
          type: 'error',
          message: e instanceof Error ? e.message : String(e),
          user: e instanceof UserError,
          stack: (e as Error)?.stack ?? null,
        }),
      );
    }
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  /** Pause between forward passes (the current one finishes). */
  pause(): void {
    if (this.finished) return;
    this.pausedFlag = true;
    this.sendPause();
  }

  resume(): void {
    this.pausedFlag = false;
    if (!this.throttled) this.sendResume();
  }

  private sendPause(): void {
    this.innerPaused = true;
    this.worker?.postMessage({ cmd: 'pause' });
  }

  private sendResume(): void {
    this.innerPaused = false;
    this.worker?.postMessage({ cmd: 'resume' });
    this.wake?.();
    this.wake = null;
  }

  /**
   * Stop after the current forward pass; resolves with the summary. (There is deliberately no way to kill the
   * worker mid-pass: terminating a thread inside onnxruntime's native run aborts the whole process.)
   */
  async stop(): Promise<GenerationSummary> {
    this.stoppedFlag = true;
    this.pausedFlag = false;
    this.innerPaused = false;
    this.worker?.postMessage({ cmd: 'stop' });
    this.wake?.();
    this.wake = null;
    return this.done;
  }

  /**
   * Events in order: batches, text, sequence start/end and memory samples; ends when generation ends. Events are
   * queued from the start (unless `buffer: false`); a consumer that falls far behind pauses generation until it
   * catches up, so the queue stays bounded.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<HandleEvent> {
    this.iterating = true;
    for (;;) {
      while (this.queue.length) {
        const e = this.queue.shift()!;
        if (this.throttled && this.queue.length <= LOW_WATER) {
          this.throttled = false;
          if (!this.pausedFlag) this.sendResume();
        }
        yield e;
      }
      if (this.finished) return;
      await new Promise<void>((res) => (this.waiter = res));
    }
  }

  private push(e: HandleEvent): void {
    this.emit(e.type, e);
    this.emit('event', e);
    if (!this.iterating) return;
    this.queue.push(e);
    if (!this.throttled && this.queue.length >= HIGH_WATER) {
      this.throttled = true;
      this.sendPause();
    }
    this.waiter?.();
    this.waiter = null;
  }

  private startSampling(intervalMs: number, nvidiaSmi: string | null | undefined): void {
    this.sampler = new MemorySampler({ nvidiaSmi, minIntervalMs: Math.max(1000, intervalMs) });
    void this.sampleOnce();
    this.timer = setInterval(() => void this.sampleOnce(), intervalMs);
    this.timer.unref();
  }

  private async sampleOnce(): Promise<void> {
    if (!this.sampler || this.finished) return;
    const sample = await this.sampler.sample();
    if (!this.finished) this.push({ type: 'memory', sample });
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    this.waiter?.();
    this.waiter = null;
  }
}

/** Start generating; see GenerationHandle. */
export function startGeneration(opts: GenerationOptions): GenerationHandle {
  return new GenerationHandle(opts);
}
