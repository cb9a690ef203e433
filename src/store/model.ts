/**
 * RoutingModel: everything the TUI knows about one stream, fed batch by batch — the stats accumulators
 * (src/stats: run and window counts, collapse detector, co-activation), ring buffers of recent tokens and memory
 * samples, and stream timing. Mutable and fast; views never read it directly but through frames (frame.ts).
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import type { CountBatch } from '../core/routing-stream.js';
import type { MemorySample } from '../core/memory.js';
import type { StreamMeta } from '../core/stream.js';
import {
  DEFAULT_COLLAPSE_WINDOW,
  RankLoads,
  RoutingStats,
  WindowCounts,
  type CollapseRules,
  type CollapseWarning,
} from '../stats/index.js';
import { Coactivation } from '../stats/coactivation.js';
import { firstChoice } from '../stats/choice.js';
import { SampleRing, TokenRing } from './ring.js';

export interface ModelOptions {
  /** Tokens of the collapse detector's window and the initial display window (default: src/stats' DEFAULT_COLLAPSE_WINDOW, as in `stats` and `report`). */
  window?: number;
  /** Recent tokens kept for the token stream and the routing debugger. */
  ringTokens?: number;
  /** Memory samples kept for sparklines. */
  memorySamples?: number;
  collapse?: Partial<CollapseRules> | false;
  /**
   * 'posted': logits metrics come with the batches, computed by the producer (the engine worker, see
   * src/stats/live-logits.ts) and passed to add(); default 'here': scored on this thread. Never a worker that this
   * thread would wait for: it draws.
   */
  logits?: 'here' | 'posted';
  /**
   * The stream carries load counts, not tokens (a count trace, a Prometheus watch): no window, collapse detector,
   * co-activation or token ring — the views show the counts over the whole stream. With per-device counts the
   * schema's experts are the devices (the caller builds it so) and each bin is shown as a column.
   */
  counts?: boolean;
}

export const DEFAULT_WINDOW = DEFAULT_COLLAPSE_WINDOW;
const DEFAULT_RING_TOKENS = 16384;
/** Display windows `w` cycles through. */
export const WINDOW_SIZES = [64, 256, 512, 1024, 4096] as const;
/** Co-activation keeps L·E² counters; above this many it is skipped (the view says so). */
const MAX_COACT_COUNTERS = 32 * 1024 * 1024;

export class RoutingModel {
  readonly schema: RoutingSchema;
  readonly meta: StreamMeta;
  readonly options: Required<Omit<ModelOptions, 'collapse' | 'logits' | 'counts'>> &
    Pick<ModelOptions, 'collapse' | 'logits'>;
  /** Fed load counts (a count stream) rather than tokens. */
  readonly countsOnly: boolean;
  /** Count rows (steps) added. */
  steps = 0;
  stats!: RoutingStats;
  coact!: Coactivation | null;
  ring!: TokenRing;
  /** First choice (highest-weight expert) per ring slot per layer, from stats' firstChoice. */
  private first!: Uint16Array;
  readonly memory: SampleRing;
  /** Display window when its length differs from the detector's; null = use stats.window. */
  private ownWindow: WindowCounts | null = null;
  private windowSize: number;
  /** Bumped by every change; frames remember the version they were built from. */
  version = 0;
  /** Per-rank load when the stream's rows carry a rank (`listen`, a merged trace); null otherwise. */
  ranks: RankLoads | null = null;
  /** Capture time (ms since epoch) of the first and the latest token. */
  firstMs: number | null = null;
  lastMs: number | null = null;

  constructor(schema: RoutingSchema, meta: StreamMeta, options: ModelOptions = {}) {
    this.schema = schema;
    this.meta = meta;
    this.options = {
      window: options.window ?? DEFAULT_WINDOW,
      ringTokens: options.ringTokens ?? DEFAULT_RING_TOKENS,
      memorySamples: options.memorySamples ?? 600,
      collapse: options.collapse,
      logits: options.logits,
    };
    this.countsOnly = options.counts ?? false;
    this.windowSize = this.options.window;
    this.memory = new SampleRing(this.options.memorySamples);
    this.reset();
  }

  get layers(): number {
    return this.schema.layers.length;
  }
  get experts(): number {
    return this.schema.experts;
  }
  get topK(): number {
    return this.schema.topK;
  }
  get tokens(): number {
    return this.stats.tokens;
  }
  get hasCoactivation(): boolean {
    return this.coact !== null;
  }

  /** Forgets everything (replay seeks backwards by resetting and feeding again). */
  reset(): void {
    const { window, ringTokens, collapse, logits } = this.options;
    const L = this.layers;
    const E = this.experts;
    const counts = this.countsOnly;
    this.stats = counts
      ? new RoutingStats(this.schema, { window: 0, collapse: false })
      : new RoutingStats(this.schema, { window, collapse, logits: logits ?? 'here' });
    this.coact = !counts && L * E * E <= MAX_COACT_COUNTERS ? new Coactivation(this.schema) : null;
    this.ring = new TokenRing(this.schema, counts ? 1 : Math.max(ringTokens, WINDOW_SIZES[WINDOW_SIZES.length - 1]));
    this.first = new Uint16Array(this.ring.capacity * L);
    this.ownWindow = counts || this.windowSize === window ? null : new WindowCounts(this.windowSize, L, E, this.topK);
    this.steps = 0;
    this.memory.clear();
    this.ranks = null;
    this.firstMs = null;
    this.lastMs = null;
    this.version++;
  }

  /** Adds a batch; `derived`: the producer's logits metrics up to its end (with `logits: 'posted'`). */
  add(b: RoutingBatch, derived?: unknown): CollapseWarning[] {
    if (b.length === 0) return [];
    const slot0 = this.ring.end;
    const fired = this.stats.add(b, derived);
    this.coact?.add(b);
    if (b.rank) (this.ranks ??= new RankLoads(this.layers, this.experts, this.topK)).add(b);
    this.ring.push(b);
    const L = this.layers;
    const K = this.topK;
    const cap = this.ring.capacity;
    for (let t = 0; t < b.length; t++) {
      const s = ((slot0 + t) % cap) * L;
      for (let l = 0; l < L; l++) this.first[s + l] = firstChoice(b, (t * L + l) * K, K);
    }
    if (this.ownWindow) for (let t = 0; t < b.length; t++) this.ownWindow.push(b.experts, t * L * K);
    const t0 = Number(b.tNs[0]! / 1_000_000n);
    const t1 = Number(b.tNs[b.length - 1]! / 1_000_000n);
    if (this.firstMs === null) this.firstMs = t0;
    this.lastMs = t1;
    this.version++;
    return fired;
  }

  /**
   * Adds count rows to the run counts (RoutingStats.addCounts: the load metrics are the token formulas). Per-device
   * counts go in as the columns of a model whose schema has one "expert" per device (see ModelOptions.counts).
   */
  addCounts(b: CountBatch): void {
    if (!this.countsOnly) throw new Error('RoutingModel was not created for counts');
    if (b.length === 0) return;
    this.stats.addCounts(b.axis === 'device' ? { ...b, axis: 'expert' } : b);
    this.steps += b.length;
    const t0 = Number(b.tNs[0]! / 1_000_000n);
    const t1 = Number(b.tNs[b.length - 1]! / 1_000_000n);
    if (t0 > 0 && this.firstMs === null) this.firstMs = t0;
    if (t1 > 0) this.lastMs = t1;
    this.version++;
  }

  addMemory(s: MemorySample): void {
    this.memory.push(s);
    this.version++;
  }

  /** Highest-weight expert of token i at layer index l (the token must be in the ring). */
  firstChoiceOf(i: number, l: number): number {
    if (!this.ring.has(i)) throw new RangeError(`token ${i} is no longer held`);
    return this.first[(i % this.ring.capacity) * this.layers + l]!;
  }

  /** The display window: its counts and token range, or null before any token. */
  displayWindow(): WindowCounts {
    return this.ownWindow ?? this.stats.window!;
  }

  get displayWindowSize(): number {
    return this.windowSize;
  }

  /** Changes the display window's length, refilling it from the token ring (the detector keeps its own). */
  setDisplayWindow(size: number): void {
    if (size === this.windowSize || this.countsOnly) return;
    this.windowSize = size;
    if (size === this.options.window) this.ownWindow = null;
    else {
      const w = new WindowCounts(size, this.layers, this.experts, this.topK);
      const r = this.ring;
      for (let i = Math.max(r.start, r.end - size); i < r.end; i++) w.push(r.expertsOf(i), 0);
      this.ownWindow = w;
    }
    this.version++;
  }
}
