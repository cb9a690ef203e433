/**
 * RoutingStats: the incremental accumulator behind both the live views and `moescope stats`.
 * Fed batches in stream order (`add`), it keeps per layer per expert assignment counts over the whole run and
 * over a sliding window of W tokens, the logits sums every loss needs (when the schema has logits), and runs the
 * collapse detector on the window. Cost: O(L·K) per token for counts and window, O(L·E) per token with logits.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import type { CountBatch } from '../core/count-batch.js';
import { UserError } from '../core/errors.js';
import { addCountRows, countAssignments } from './counts.js';
import { WindowCounts } from './window.js';
import { DEFAULT_COLLAPSE_WINDOW } from './defaults.js';
import { LogitSums, NO_LOGITS, type LogitsMetrics } from './logit-sums.js';
import type { LogitsThread } from './logits-thread.js';
import { isLogitsSnapshot, type LogitsSnapshot } from './live-logits.js';
import { CollapseDetector, defaultCollapseRules, type CollapseRules, type CollapseWarning } from './collapse.js';
import { hasZeroExperts, layerBalance, zeroExpertMask, zeroShare } from './zero-experts.js';

export type Scope = 'run' | 'window';
export type { LogitsMetrics } from './logit-sums.js';

export interface RoutingStatsOptions {
  /** Sliding window in tokens (default DEFAULT_COLLAPSE_WINDOW); 0 turns the window and the collapse detector off. */
  window?: number;
  /** Collapse rules overriding the defaults (`defaultCollapseRules`), or false to turn detection off. */
  collapse?: Partial<CollapseRules> | false;
  /** N of the top-N share (default K). */
  topN?: number;
  /**
   * Where the logits metrics come from (schemas with logits): 'here' (default) scores each batch in add();
   * a LogitsThread the caller started scores them in its worker — same results, bit for bit, read after waiting
   * for it (never on a thread that draws; RoutingStats takes it over and close() stops it); 'posted' takes them
   * from the LogitsSnapshot the producer computed and passes to add() (live-logits.ts, the engine worker).
   * RoutingStats itself never starts a thread or waits.
   */
  logits?: 'here' | 'posted' | LogitsThread;
  /**
   * Zero-computation experts per layer (LongCat-Flash; the router summaries' `zeroExperts.ids`, in layer order):
   * the load metrics and collapse rules of those layers cover the real experts only, and `zeroShare` is measured.
   */
  zeroExperts?: readonly (readonly number[] | null | undefined)[];
  /**
   * How collapse warnings name each layer (default its id): where routers differ in role (JetMoE's attention and
   * MLP routers), the views' labels ("1 attn"), src/core/stream.ts layerLabels.
   */
  layerLabels?: readonly string[];
}

/** Metrics of one layer. */
export interface LayerMetrics extends LogitsMetrics {
  /** The model's own layer index. */
  layer: number;
  /** Tokens counted. */
  tokens: number;
  /** Assignments per expert. */
  load: number[];
  /** load / Σ load (1/E each at balance). */
  share: number[];
  cv: number;
  maxVio: number;
  /** Normalised entropy of the load (1 at balance). */
  entropy: number;
  deadExperts: number;
  /** Share of assignments on the topN busiest experts (topN/E at balance). */
  topNShare: number;
  /** Fewest experts carrying ≥ 90% of assignments. */
  coverage90: number;
  /** Share of the layer's token-slots routed to zero-computation experts; null when the layer has none. With zero
   * experts, cv … coverage90 above are over the real experts only (load and share still list every expert). */
  zeroShare: number | null;
}

/** Over all layers: the logits metrics are means over layers, except hfAuxLoss (pooled). */
export interface GlobalMetrics extends LogitsMetrics {
  tokens: number;
  /** Mean over layers of the per-layer HF loss (pooling lets layers cancel; this does not). */
  hfAuxLossLayerMean: number | null;
  /** Mean over layers. */
  cv: number;
  /** Mean over layers of the per-layer MaxVio (DeepSeek's MaxVio_global averaged over layers). */
  maxVio: number;
  /** Largest per-layer MaxVio. */
  maxVioWorst: number;
  /** Mean over layers. */
  entropy: number;
  /** Dead (layer, expert) pairs in all. */
  deadExperts: number;
  /** Mean over the layers that have zero-computation experts of their zeroShare; null when none has. */
  zeroShare: number | null;
}

export interface StatsSnapshot {
  scope: Scope;
  /** Tokens seen in all. */
  tokens: number;
  /** Token range [start, end) the metrics cover. */
  range: { start: number; end: number };
  topN: number;
  layers: LayerMetrics[];
  global: GlobalMetrics;
}

export class RoutingStats {
  readonly schema: RoutingSchema;
  readonly layers: number;
  readonly experts: number;
  readonly topK: number;
  readonly topN: number;
  /** Assignments per layer per expert over the whole run: load[l·E + e]. Read-only for callers. */
  readonly load: Float64Array;
  /** The sliding window, or null when off. */
  readonly window: WindowCounts | null;
  readonly detector: CollapseDetector | null;
  /** Zero-computation experts, 1 per l·E + e (src/stats/zero-experts.ts); null when no layer has any. */
  readonly zeroMask: Uint8Array | null;
  private n = 0;
  /** Assignments of the first layer added from count rows (tokens = that ÷ K: every token picks K per layer). */
  private countedAssignments = 0;
  /** Count rows (steps) added with addCounts. */
  private countRows = 0;
  private readonly logitSums: LogitSums | null;
  /** The worker filling logitSums, when it is not filled here; null once closed. */
  private thread: LogitsThread | null = null;
  /** Logits metrics come with the batches (options.logits 'posted'); the latest one received. */
  private readonly postedMode: boolean;
  private posted: LogitsSnapshot | null = null;

  constructor(schema: RoutingSchema, options: RoutingStatsOptions = {}) {
    const L = schema.layers.length;
    const E = schema.experts;
    const K = schema.topK;
    if (L < 1 || E < 1 || K < 1 || K > E)
      throw new UserError(`invalid routing schema: ${L} layers, ${E} experts, top-${K}`);
    this.schema = schema;
    this.layers = L;
    this.experts = E;
    this.topK = K;
    this.topN = options.topN ?? K;
    this.load = new Float64Array(L * E);
    const w = options.window ?? DEFAULT_COLLAPSE_WINDOW;
    this.window = w > 0 ? new WindowCounts(w, L, E, K) : null;
    this.zeroMask = zeroExpertMask(options.zeroExperts ?? [], L, E);
    // The hot-expert threshold's default (3/E) counts the real experts only, as the rule does.
    let realE = E;
    for (let l = 0; l < L && this.zeroMask; l++) {
      let n = 0;
      for (let e = 0; e < E; e++) if (!this.zeroMask[l * E + e]) n++;
      realE = Math.min(realE, n);
    }
    this.detector =
      this.window && options.collapse !== false
        ? new CollapseDetector(
            schema.layers,
            E,
            { ...defaultCollapseRules(realE, w), ...(options.collapse ?? {}) },
            this.zeroMask,
            options.layerLabels,
          )
        : null;
    const mode = options.logits ?? 'here';
    this.postedMode = schema.hasLogits && mode === 'posted';
    if (!schema.hasLogits || mode === 'posted') this.logitSums = null;
    else if (mode === 'here') this.logitSums = new LogitSums(schema);
    else {
      this.thread = mode;
      this.logitSums = mode.sums;
    }
  }

  /**
   * Stops the logits worker, if any, once it has added every batch (the metrics stay readable; later batches are
   * scored in the calling thread). Not needed for correctness: an abandoned worker never keeps the process alive.
   */
  close(): void {
    this.thread?.close();
    this.thread = null;
  }

  /** Tokens seen so far (from count rows: the first layer's assignments ÷ K). */
  get tokens(): number {
    return this.n + this.countedAssignments / this.topK;
  }

  /** Count rows (steps) added with addCounts. */
  get steps(): number {
    return this.countRows;
  }

  /**
   * Adds load counts per (step, layer, expert) — a count trace's rows — to the same run counts that `add` fills
   * from tokens, so every load metric (layerMetrics, snapshot) is the one formula for both. Counts carry no
   * per-token data: the window, the collapse detector and the logits metrics need tokens, so a RoutingStats fed
   * counts must be created with `window: 0` and a schema without logits.
   */
  addCounts(b: CountBatch): void {
    if (b.axis !== 'expert')
      throw new UserError(`load counts per ${b.axis} have no expert ids: expert metrics need counts per expert`);
    if (b.bins !== this.experts)
      throw new UserError(`count rows have ${b.bins} experts per layer; the schema has ${this.experts}`);
    if (this.window || this.logitSums) throw new Error('RoutingStats fed counts needs window: 0 and no logits');
    const W = this.layers * this.experts;
    if (b.counts.length !== b.length * W)
      throw new UserError(
        `count batch has ${b.counts.length} counts for ${b.length} rows; the schema needs ${this.layers}×${this.experts} per row`,
      );
    this.countedAssignments += addCountRows(b.counts, b.length, this.layers, this.experts, this.load);
    this.countRows += b.length;
  }

  /**
   * Sets the logits metrics of a stats object fed counts (`logits: 'posted'`): the snapshot an engine's logits sums
   * give (src/scale, logitsSnapshotOf).
   */
  postLogits(snapshot: LogitsSnapshot): void {
    if (!this.postedMode) throw new Error("postLogits needs a schema with logits and logits: 'posted'");
    this.posted = snapshot;
  }

  /** The producer's snapshot sent without a batch (`logits: 'posted'`): as `posted` of add(); others ignored. */
  addPosted(posted: unknown): void {
    if (this.postedMode && isLogitsSnapshot(posted, this.layers)) this.posted = posted;
  }

  /** Whether logits metrics are being computed. */
  get hasLogits(): boolean {
    return this.logitSums !== null || this.postedMode;
  }

  /**
   * Adds a batch (tokens in stream order); returns the collapse warnings that fired within it. With
   * `logits: 'posted'`, `posted` is the producer's LogitsSnapshot up to the end of this batch (live-logits.ts).
   */
  add(batch: RoutingBatch, posted?: unknown): CollapseWarning[] {
    const N = batch.length;
    const L = this.layers;
    const K = this.topK;
    if (batch.experts.length !== N * L * K)
      throw new UserError(
        `batch has ${batch.experts.length} expert ids for ${N} tokens; the schema needs ${L}×${K} per token`,
      );
    const logits = this.logitSums ? batch.logits : null;
    if (logits && logits.length !== N * L * this.experts)
      throw new UserError(
        `batch has ${logits.length} logits for ${N} tokens; the schema needs ${L}×${this.experts} per token`,
      );
    countAssignments(batch.experts, 0, N, L, K, this.experts, this.load);
    const fired: CollapseWarning[] = [];
    const w = this.window;
    if (w) {
      const lk = L * K;
      const det = this.detector;
      const stride = det ? det.rules.stride : 0;
      // Runs of tokens up to each evaluation (after every stride-th token of the stream).
      for (let t = 0; t < N; ) {
        const m = det ? Math.min(N - t, stride - ((this.n + t) % stride)) : N - t;
        w.pushTokens(batch.experts, t * lk, m);
        t += m;
        if (det && w.full && (this.n + t) % stride === 0) for (const x of det.evaluate(w)) fired.push(x);
      }
    }
    if (logits) {
      if (this.thread) this.thread.push(batch);
      else this.logitSums!.add(batch);
    }
    this.addPosted(posted);
    this.n += N;
    return fired;
  }

  /** The run's logits metrics of layer l: scored here or by the thread, or the producer's; NO_LOGITS without. */
  private logitsOf(l: number): LogitsMetrics {
    if (this.postedMode) return this.posted?.layers[l] ?? NO_LOGITS;
    return this.logitSums ? this.syncedLogitSums().layer(l) : NO_LOGITS;
  }

  /** The logits sums, complete up to the last batch added (waits for the worker, if any). */
  private syncedLogitSums(): LogitSums {
    this.thread?.sync();
    return this.logitSums!;
  }

  /** Every warning fired so far (cleared ones carry clearedAt). */
  get warnings(): CollapseWarning[] {
    return this.detector ? this.detector.warnings : [];
  }

  /** Counts of one scope as an L·E matrix (a live view into the accumulator: copy before keeping). */
  loadMatrix(scope: Scope = 'run'): Float64Array | Int32Array {
    if (scope === 'run') return this.load;
    if (!this.window) throw new Error('RoutingStats was created without a window');
    return this.window.counts;
  }

  /** Metrics of the l-th MoE layer (0 … L−1). */
  layerMetrics(l: number, scope: Scope = 'run'): LayerMetrics {
    const E = this.experts;
    const m = this.loadMatrix(scope);
    const base = l * E;
    const load = Array.from(m.subarray(base, base + E));
    const total = load.reduce((a, b) => a + b, 0);
    const tokens = scope === 'run' ? this.tokens : this.window!.tokens;
    const logits = scope === 'run' ? this.logitsOf(l) : NO_LOGITS;
    // A layer with zero-computation experts is balanced over its real experts (LongCat's own convention).
    const zero = hasZeroExperts(this.zeroMask, l, E);
    return {
      layer: this.schema.layers[l]!,
      tokens,
      load,
      share: load.map((c) => (total > 0 ? c / total : 0)),
      ...layerBalance(m, base, E, this.topN, this.zeroMask, base),
      zeroShare: zero ? zeroShare(m, base, E, this.zeroMask!, base) : null,
      ...logits,
    };
  }

  snapshot(scope: Scope = 'run'): StatsSnapshot {
    const layers: LayerMetrics[] = [];
    for (let l = 0; l < this.layers; l++) layers.push(this.layerMetrics(l, scope));
    const run = scope === 'run';
    const pooledHf = !run
      ? null
      : this.postedMode
        ? (this.posted?.pooledHfAuxLoss ?? null)
        : this.logitSums
          ? this.syncedLogitSums().pooledHfAuxLoss()
          : null;
    const range = run ? { start: 0, end: this.tokens } : { start: this.window!.start, end: this.window!.end };
    return {
      scope,
      tokens: this.tokens,
      range,
      topN: this.topN,
      layers,
      global: globalMetrics(layers, range.end - range.start, pooledHf),
    };
  }
}

/** Mean of the values that are there (null when none is): the whole-model zero-expert share from the layers'. */
export function meanOfPresent(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/** The per-layer values `globalMetrics` reads (LayerMetrics, or a layer of the stats JSON). */
export type LayerMetricsCore = Omit<LayerMetrics, 'share' | 'load' | 'layer' | 'tokens' | 'topNShare' | 'coverage90'>;

/**
 * The metrics over all layers from the per-layer ones, in layer order (the one definition, for a snapshot and for
 * a merge of layer ranges): means over layers, the worst MaxVio, sums of dead experts and non-finite rows; the HF
 * loss pooled over layers comes in as `pooledHf`.
 */
export function globalMetrics(
  layers: readonly LayerMetricsCore[],
  tokens: number,
  pooledHf: number | null,
): GlobalMetrics {
  const mean = (f: (m: LayerMetricsCore) => number | null): number | null => {
    if (layers.length === 0 || f(layers[0]!) === null) return null;
    let s = 0;
    for (const x of layers) s += f(x)!;
    return s / layers.length;
  };
  return {
    tokens,
    hfAuxLoss: pooledHf,
    hfAuxLossLayerMean: mean((m) => m.hfAuxLoss),
    switchAuxLoss: mean((m) => m.switchAuxLoss),
    gshardAuxLoss: mean((m) => m.gshardAuxLoss),
    seqAuxLoss: mean((m) => m.seqAuxLoss),
    importanceLoss: mean((m) => m.importanceLoss),
    zLoss: mean((m) => m.zLoss),
    tokenEntropy: mean((m) => m.tokenEntropy),
    routerMargin: mean((m) => m.routerMargin),
    nonFiniteLogitRows: layers.some((m) => m.nonFiniteLogitRows !== null)
      ? layers.reduce((a, m) => a + (m.nonFiniteLogitRows ?? 0), 0)
      : null,
    cv: mean((m) => m.cv)!,
    maxVio: mean((m) => m.maxVio)!,
    maxVioWorst: layers.reduce((a, m) => Math.max(a, m.maxVio), -Infinity),
    entropy: mean((m) => m.entropy)!,
    deadExperts: layers.reduce((a, m) => a + m.deadExperts, 0),
    zeroShare: meanOfPresent(layers.map((m) => m.zeroShare)),
  };
}
