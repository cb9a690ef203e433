/**
 * LogitsThread: RoutingStats' logits sums (LogitSums) computed in a worker thread, so that batch analysis of a large
 * router (DeepSeek-V3: 58 × 256 logits per token) spreads over two cores: the calling thread counts assignments,
 * runs the window and the collapse detector while the worker scores the logits. RoutingStats never starts one by
 * itself: a command that may block its thread (`stats`, `check`, `report`) starts it and hands it over
 * (`new RoutingStats(schema, { logits: new LogitsThread(schema) })`). Never on a thread that draws: reading the
 * sums waits for the worker with Atomics.wait. The live TUI gets its logits metrics from the engine worker instead
 * (live-logits.ts).
 *
 * Results are those of the same LogitSums in the calling thread, bit for bit: the worker runs the same code over
 * the same rows in the same order (batches cross in stream order, split at token boundaries, which LogitSums
 * does not see). The sums live on a SharedArrayBuffer; readers call sync() first, which waits until the worker has
 * added every batch pushed so far.
 *
 * Transport: a ring of SLOTS fixed-size slots on a second SharedArrayBuffer, one producer (push) and one consumer
 * (the worker), synchronised with Atomics on two counters — no postMessage, so it works while the calling thread
 * never returns to its event loop (a synchronous ingest loop). When all slots are full, push waits: a slow worker
 * slows ingest down instead of dropping rows or growing memory.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { LogitSums } from './logit-sums.js';

/** Slots in the ring (a power of two: counters wrap around 2^32 and index with & (SLOTS − 1)). */
const SLOTS = 8;
/** Target size of one slot: up to ~8 MiB of rows in flight. */
const SLOT_BYTES = 1 << 20;
/** Int32 control words at the start of the ring. */
const WRITTEN = 0; // slots published by push
const READ = 1; // slots the worker has finished
const FAILED = 2; // 1 when the worker stopped on an error (message follows the control words)
const READY = 3; // 1 once the worker runs
const CTRL_BYTES = 16;
const MESSAGE_BYTES = 1024;
/** How long sync/push wait for a worker that never started before giving up. */
const START_TIMEOUT_MS = 60_000;

/** Whether a command should start a LogitsThread: large routers (≥ 4096 logits per token), ≥ 2 cores. */
export function logitsThreadByDefault(schema: RoutingSchema): boolean {
  return schema.hasLogits && schema.layers.length * schema.experts >= 4096 && availableParallelism() > 1;
}

/**
 * For a command that owns its thread and may block it (never one that draws): a started LogitsThread when the
 * router is large enough to gain from one (logitsThreadByDefault), else 'here'. Pass it as RoutingStats' `logits`.
 */
export function logitsScorer(schema: RoutingSchema, threads: boolean): LogitsThread | 'here' {
  return threads && logitsThreadByDefault(schema) ? new LogitsThread(schema) : 'here';
}

/** One slot's columns: the rows of up to `tokens` tokens, laid out as in a RoutingBatch. */
export interface SlotViews {
  /** [0]: tokens in the slot. */
  count: Uint32Array;
  seq: Uint32Array;
  experts: Uint16Array;
  weights: Uint16Array;
  logits: Uint16Array;
}

interface RingLayout {
  /** Tokens per slot. */
  tokens: number;
  slotBytes: number;
  bytes: number;
}

function ringLayout(schema: RoutingSchema): RingLayout {
  const L = schema.layers.length;
  const perToken = 4 + 2 * 2 * L * schema.topK + 2 * L * schema.experts;
  const tokens = Math.max(1, Math.floor(SLOT_BYTES / perToken));
  const align8 = (n: number) => Math.ceil(n / 8) * 8;
  const slotBytes =
    8 + align8(4 * tokens) + 2 * align8(2 * tokens * L * schema.topK) + align8(2 * tokens * L * schema.experts);
  return { tokens, slotBytes, bytes: CTRL_BYTES + MESSAGE_BYTES + SLOTS * slotBytes };
}

/** Views of slot s of a ring (the same layout on both sides). */
function slotViews(ring: SharedArrayBuffer, schema: RoutingSchema, s: number): SlotViews {
  const { tokens, slotBytes } = ringLayout(schema);
  const lk = tokens * schema.layers.length * schema.topK;
  let at = CTRL_BYTES + MESSAGE_BYTES + s * slotBytes;
  const take = <T>(make: (o: number) => T, bytes: number): T => {
    const v = make(at);
    at += Math.ceil(bytes / 8) * 8;
    return v;
  };
  return {
    count: take((o) => new Uint32Array(ring, o, 1), 8),
    seq: take((o) => new Uint32Array(ring, o, tokens), 4 * tokens),
    experts: take((o) => new Uint16Array(ring, o, lk), 2 * lk),
    weights: take((o) => new Uint16Array(ring, o, lk), 2 * lk),
    logits: take((o) => new Uint16Array(ring, o, tokens * schema.layers.length * schema.experts), 0),
  };
}

/** What the worker is started with (logits-worker.ts). */
export interface LogitsWorkerData {
  schema: RoutingSchema;
  /** LogitSums' memory. */
  sums: SharedArrayBuffer;
  ring: SharedArrayBuffer;
}

/** The worker side of the ring: waits for each slot in turn, hands it to `consume`, marks it read. */
export function serveRing(data: LogitsWorkerData, consume: (slot: SlotViews) => void): void {
  const ctrl = new Int32Array(data.ring, 0, CTRL_BYTES / 4);
  const slots = Array.from({ length: SLOTS }, (_, s) => slotViews(data.ring, data.schema, s));
  Atomics.store(ctrl, READY, 1);
  Atomics.notify(ctrl, READ);
  let read = 0;
  try {
    for (;;) {
      if (Atomics.load(ctrl, WRITTEN) === read) {
        Atomics.wait(ctrl, WRITTEN, read);
        continue;
      }
      consume(slots[read & (SLOTS - 1)]!);
      read = (read + 1) | 0;
      Atomics.store(ctrl, READ, read);
      Atomics.notify(ctrl, READ);
    }
  } catch (err) {
    const text = new TextEncoder()
      .encode(String(err instanceof Error ? (err.stack ?? err.message) : err))
      .subarray(0, MESSAGE_BYTES);
    new Uint8Array(data.ring, CTRL_BYTES, MESSAGE_BYTES).set(text);
    Atomics.store(ctrl, FAILED, 1);
    Atomics.notify(ctrl, READ);
  }
}

/** Stops a worker whose LogitsThread was collected without close(). */
const orphans = new FinalizationRegistry<Worker>((w) => void w.terminate());

export class LogitsThread {
  /** The sums the worker fills; complete once sync() returned. */
  readonly sums: LogitSums;
  private readonly schema: RoutingSchema;
  private readonly worker: Worker;
  private readonly ctrl: Int32Array;
  private readonly slots: SlotViews[];
  private readonly perSlot: number;
  private readonly started = Date.now();
  /** An error the worker emitted (seen when the caller's event loop ran; the ring's FAILED flag covers the rest). */
  private readonly crash: { error: Error | null } = { error: null };
  private written = 0;
  private closed = false;

  constructor(schema: RoutingSchema) {
    if (!schema.hasLogits) throw new Error('LogitsThread needs a schema with logits');
    this.schema = schema;
    // The sums live on shared memory: the worker adds, this thread reads.
    const sums = new SharedArrayBuffer(LogitSums.size(schema) * Float64Array.BYTES_PER_ELEMENT);
    this.sums = new LogitSums(schema, new Float64Array(sums));
    const layout = ringLayout(schema);
    const ring = new SharedArrayBuffer(layout.bytes);
    this.ctrl = new Int32Array(ring, 0, CTRL_BYTES / 4);
    this.slots = Array.from({ length: SLOTS }, (_, s) => slotViews(ring, schema, s));
    this.perSlot = layout.tokens;
    const workerData: LogitsWorkerData = { schema, sums, ring };
    this.worker = new Worker(new URL('./logits-worker.js', import.meta.url), { workerData });
    // Never keeps the process alive; it sleeps in Atomics.wait between batches.
    this.worker.unref();
    // The listener must not hold `this`, or the worker would keep this object (and itself) alive.
    const crash = this.crash;
    this.worker.on('error', (e) => (crash.error = e));
    orphans.register(this, this.worker, this);
  }

  /** Queues a batch (its logits already checked against the schema); waits while every slot is full. */
  push(b: RoutingBatch): void {
    if (this.closed) throw new Error('LogitsThread is closed');
    const L = this.schema.layers.length;
    const lk = L * this.schema.topK;
    const le = L * this.schema.experts;
    const logits = b.logits!;
    for (let from = 0; from < b.length; from += this.perSlot) {
      const to = Math.min(b.length, from + this.perSlot);
      this.waitUntil(() => ((this.written - Atomics.load(this.ctrl, READ)) | 0) < SLOTS);
      const v = this.slots[this.written & (SLOTS - 1)]!;
      v.count[0] = to - from;
      v.seq.set(b.seq.subarray(from, to));
      v.experts.set(b.experts.subarray(from * lk, to * lk));
      v.weights.set(b.weights.subarray(from * lk, to * lk));
      v.logits.set(logits.subarray(from * le, to * le));
      this.written = (this.written + 1) | 0;
      Atomics.store(this.ctrl, WRITTEN, this.written);
      Atomics.notify(this.ctrl, WRITTEN);
    }
  }

  /** Waits until the worker has added every batch pushed so far (then the sums are complete to read). */
  sync(): void {
    if (!this.closed) this.waitUntil(() => Atomics.load(this.ctrl, READ) === this.written);
  }

  /** sync(), then stops the worker. */
  close(): void {
    if (this.closed) return;
    this.sync();
    this.closed = true;
    orphans.unregister(this);
    void this.worker.terminate();
  }

  private waitUntil(done: () => boolean): void {
    const ctrl = this.ctrl;
    for (;;) {
      if (this.crash.error) throw new Error(`stats: the logits worker failed: ${this.crash.error.message}`);
      if (Atomics.load(ctrl, FAILED)) {
        const bytes = new Uint8Array(ctrl.buffer, CTRL_BYTES, MESSAGE_BYTES);
        const msg = new TextDecoder().decode(new Uint8Array(bytes)).replace(/\0+$/, '');
        throw new Error(`stats: the logits worker failed: ${msg}`);
      }
      const read = Atomics.load(ctrl, READ);
      if (done()) return;
      if (!Atomics.load(ctrl, READY) && Date.now() - this.started > START_TIMEOUT_MS)
        throw new Error('stats: the logits worker did not start');
      // Woken by every slot the worker finishes; the timeout only re-checks a worker that has not started.
      Atomics.wait(ctrl, READ, read, 1000);
    }
  }
}
