/**
 * RoutingStats: the incremental accumulator behind both the live views and `moescope stats`.
 * Fed batches in stream order (`add`), it keeps per layer per expert assignment counts over the whole run and
 * over a sliding window of W tokens, the logits sums every loss needs (when the schema has logits), and runs the
 * collapse detector on the window. Cost: O(L·K) per token for counts and window, O(L·E) per token with logits.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { countAssignments } from './counts.js';
import { WindowCounts } from './window.js';
import { RowScorer } from './scores.js';
import { firstChoice } from './choice.js';
import { CollapseDetector, defaultCollapseRules, type CollapseRules, type CollapseWarning } from './collapse.js';
import { coverageExperts, deadExperts, loadCv, loadEntropy, loadMaxVio, topNShare } from './load.js';
import { gshardAuxLoss, hfAuxLoss, importanceLoss, switchAuxLoss, seqAuxLossTerm } from './losses.js';

export type Scope = 'run' | 'window';

export interface RoutingStatsOptions {
  /** Sliding window in tokens (default 1024); 0 turns the window and the collapse detector off. */
  window?: number;
  /** Collapse rules overriding the defaults (`defaultCollapseRules`), or false to turn detection off. */
  collapse?: Partial<CollapseRules> | false;
  /** N of the top-N share (default K). */
  topN?: number;
}

/** Metrics that need router logits: null without them (and in the window scope). */
export interface LogitsMetrics {
  /** HF load_balancing_loss_func on this layer alone (K at balance); in `global`, pooled over layers as HF does. */
  hfAuxLoss: number | null;
  /** Switch / Megatron aux loss without coefficient (1 at balance). */
  switchAuxLoss: number | null;
  /** GShard loss with first-choice counts (1 at balance). */
  gshardAuxLoss: number | null;
  /** DeepSeek sequence-wise aux loss without α, mean over sequences (1 at balance). */
  seqAuxLoss: number | null;
  /** CV² of the summed probabilities (Shazeer et al. 2017; 0 at balance). */
  importanceLoss: number | null;
  /** Router z-loss: mean over tokens of logsumexp(logits)². */
  zLoss: number | null;
  /** Mean per-token routing entropy / ln E. */
  tokenEntropy: number | null;
  /** Mean score gap between the K-th and (K+1)-th expert. */
  routerMargin: number | null;
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

const NO_LOGITS: LogitsMetrics = {
  hfAuxLoss: null,
  switchAuxLoss: null,
  gshardAuxLoss: null,
  seqAuxLoss: null,
  importanceLoss: null,
  zLoss: null,
  tokenEntropy: null,
  routerMargin: null,
};

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
  private n = 0;
  private readonly logitSums: LogitSums | null;

  constructor(schema: RoutingSchema, options: RoutingStatsOptions = {}) {
    const L = schema.layers.length;
    const E = schema.experts;
    const K = schema.topK;
    if (L < 1 || E < 1 || K < 1 || K > E) throw new UserError(`invalid routing schema: ${L} layers, ${E} experts, top-${K}`);
    this.schema = schema;
    this.layers = L;
    this.experts = E;
    this.topK = K;
    this.topN = options.topN ?? K;
    this.load = new Float64Array(L * E);
    const w = options.window ?? 1024;
    this.window = w > 0 ? new WindowCounts(w, L, E, K) : null;
    this.detector =
      this.window && options.collapse !== false
        ? new CollapseDetector(schema.layers, E, { ...defaultCollapseRules(E, w), ...(options.collapse ?? {}) })
        : null;
    this.logitSums = schema.hasLogits ? new LogitSums(schema) : null;
  }

  /** Tokens seen so far. */
  get tokens(): number {
    return this.n;
  }

  /** Whether logits metrics are being computed. */
  get hasLogits(): boolean {
    return this.logitSums !== null;
  }

  /** Adds a batch (tokens in stream order); returns the collapse warnings that fired within it. */
  add(batch: RoutingBatch): CollapseWarning[] {
    const N = batch.length;
    const L = this.layers;
    const K = this.topK;
    if (batch.experts.length !== N * L * K)
      throw new UserError(`batch has ${batch.experts.length} expert ids for ${N} tokens; the schema needs ${L}×${K} per token`);
    countAssignments(batch.experts, 0, N, L, K, this.experts, this.load);
    const fired: CollapseWarning[] = [];
    const w = this.window;
    if (w) {
      const lk = L * K;
      const det = this.detector;
      const stride = det ? det.rules.stride : 0;
      for (let t = 0; t < N; t++) {
        w.push(batch.experts, t * lk);
        if (det && w.full && (this.n + t + 1) % stride === 0) for (const x of det.evaluate(w)) fired.push(x);
      }
    }
    if (this.logitSums && batch.logits) this.logitSums.add(batch);
    this.n += N;
    return fired;
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
    const tokens = scope === 'run' ? this.n : this.window!.tokens;
    const logits = scope === 'run' && this.logitSums ? this.logitSums.layer(l) : NO_LOGITS;
    return {
      layer: this.schema.layers[l]!,
      tokens,
      load,
      share: load.map((c) => (total > 0 ? c / total : 0)),
      cv: loadCv(m, base, E),
      maxVio: loadMaxVio(m, base, E),
      entropy: loadEntropy(m, base, E),
      deadExperts: deadExperts(m, base, E),
      topNShare: topNShare(m, base, E, this.topN),
      coverage90: coverageExperts(m, base, E, 0.9),
      ...logits,
    };
  }

  snapshot(scope: Scope = 'run'): StatsSnapshot {
    const layers: LayerMetrics[] = [];
    for (let l = 0; l < this.layers; l++) layers.push(this.layerMetrics(l, scope));
    const mean = (f: (m: LayerMetrics) => number | null): number | null => {
      if (layers.length === 0 || f(layers[0]!) === null) return null;
      let s = 0;
      for (const x of layers) s += f(x)!;
      return s / layers.length;
    };
    const run = scope === 'run';
    const ls = run ? this.logitSums : null;
    const range = run ? { start: 0, end: this.n } : { start: this.window!.start, end: this.window!.end };
    return {
      scope,
      tokens: this.n,
      range,
      topN: this.topN,
      layers,
      global: {
        tokens: range.end - range.start,
        hfAuxLoss: ls ? ls.pooledHfAuxLoss() : null,
        hfAuxLossLayerMean: mean((m) => m.hfAuxLoss),
        switchAuxLoss: mean((m) => m.switchAuxLoss),
        gshardAuxLoss: mean((m) => m.gshardAuxLoss),
        seqAuxLoss: mean((m) => m.seqAuxLoss),
        importanceLoss: mean((m) => m.importanceLoss),
        zLoss: mean((m) => m.zLoss),
        tokenEntropy: mean((m) => m.tokenEntropy),
        routerMargin: mean((m) => m.routerMargin),
        cv: mean((m) => m.cv)!,
        maxVio: mean((m) => m.maxVio)!,
        maxVioWorst: layers.reduce((a, m) => Math.max(a, m.maxVio), -Infinity),
        entropy: mean((m) => m.entropy)!,
        deadExperts: layers.reduce((a, m) => a + m.deadExperts, 0),
      },
    };
  }
}

/**
 * Per-layer sums over the tokens whose logits were captured (rows with a NaN logit are skipped — the batch
 * builder writes NaN for a token whose logits are missing).
 */
class LogitSums {
  private readonly L: number;
  private readonly E: number;
  private readonly K: number;
  private readonly scorer: RowScorer;
  /** Rows with logits, per layer. */
  readonly rows: Float64Array;
  /** Σ_t prob[t,e] (router convention). */
  readonly probSum: Float64Array;
  /** Σ_t softmax[t,e] (HF convention; the same array as probSum for softmax routers). */
  readonly softSum: Float64Array;
  /** Recorded assignments, over rows with logits. */
  readonly count: Float64Array;
  /** Top-K of the logits (what HF's loss selects). */
  readonly hfCount: Float64Array;
  /** Recorded first choice (the highest-weight slot). */
  readonly top1: Float64Array;
  readonly zSum: Float64Array;
  readonly entSum: Float64Array;
  readonly marginSum: Float64Array;
  readonly marginRows: Float64Array;
  // DeepSeek sequence-wise loss: the sequence being accumulated and the finished ones.
  private seqId = -1;
  private readonly seqCount: Float64Array;
  private readonly seqProb: Float64Array;
  private readonly seqRows: Float64Array;
  private readonly seqLossSum: Float64Array;
  private readonly seqDone: Float64Array;

  constructor(schema: RoutingSchema) {
    const L = (this.L = schema.layers.length);
    const E = (this.E = schema.experts);
    this.K = schema.topK;
    this.scorer = new RowScorer(E, schema.topK, schema.scoring);
    const le = () => new Float64Array(L * E);
    const l1 = () => new Float64Array(L);
    this.rows = l1();
    this.probSum = le();
    this.softSum = schema.scoring === 'softmax' ? this.probSum : le();
    this.count = le();
    this.hfCount = le();
    this.top1 = le();
    this.zSum = l1();
    this.entSum = l1();
    this.marginSum = l1();
    this.marginRows = l1();
    this.seqCount = le();
    this.seqProb = le();
    this.seqRows = l1();
    this.seqLossSum = l1();
    this.seqDone = l1();
  }

  add(b: RoutingBatch): void {
    const { L, E, K } = this;
    const logits = b.logits!;
    if (logits.length !== b.length * L * E)
      throw new UserError(`batch has ${logits.length} logits for ${b.length} tokens; the schema needs ${L}×${E} per token`);
    const sc = this.scorer;
    const soft = sc.soft;
    const prob = sc.prob;
    const sep = soft !== prob;
    for (let t = 0; t < b.length; t++) {
      const seq = b.seq[t]!;
      if (seq !== this.seqId) {
        this.closeSequence();
        this.seqId = seq;
      }
      for (let l = 0; l < L; l++) {
        if (!sc.score(logits, (t * L + l) * E)) continue;
        const base = l * E;
        this.rows[l]!++;
        this.seqRows[l]!++;
        for (let e = 0; e < E; e++) {
          const p = prob[e]!;
          this.probSum[base + e]! += p;
          this.seqProb[base + e]! += p;
        }
        if (sep) for (let e = 0; e < E; e++) this.softSum[base + e]! += soft[e]!;
        for (let j = 0; j < K; j++) this.hfCount[base + sc.rank[j]!]!++;
        const o = (t * L + l) * K;
        for (let j = 0; j < K; j++) {
          const x = b.experts[o + j]!;
          this.count[base + x]!++;
          this.seqCount[base + x]!++;
        }
        const first = firstChoice(b, o, K);
        this.top1[base + first]!++;
        this.zSum[l]! += sc.lse * sc.lse;
        this.entSum[l]! += sc.entropy;
        if (!Number.isNaN(sc.margin)) {
          this.marginSum[l]! += sc.margin;
          this.marginRows[l]!++;
        }
      }
    }
  }

  private closeSequence(): void {
    const { L, E, K } = this;
    for (let l = 0; l < L; l++) {
      const T = this.seqRows[l]!;
      if (T === 0) continue;
      this.seqLossSum[l]! += seqAuxLossTerm(this.seqCount, this.seqProb, l * E, E, K, T);
      this.seqDone[l]!++;
      this.seqRows[l] = 0;
    }
    this.seqCount.fill(0);
    this.seqProb.fill(0);
  }

  layer(l: number): LogitsMetrics {
    const { E, K } = this;
    const T = this.rows[l]!;
    if (T === 0) return NO_LOGITS;
    const base = l * E;
    // The open sequence counts as a finished one in the snapshot (it may still grow).
    const open = this.seqRows[l]!;
    const seqSum = this.seqLossSum[l]! + (open > 0 ? seqAuxLossTerm(this.seqCount, this.seqProb, base, E, K, open) : 0);
    const seqN = this.seqDone[l]! + (open > 0 ? 1 : 0);
    return {
      hfAuxLoss: hfAuxLoss(this.hfCount, this.softSum, base, E, T),
      switchAuxLoss: switchAuxLoss(this.count, this.probSum, base, E, K, T),
      gshardAuxLoss: gshardAuxLoss(this.top1, this.probSum, base, E, T),
      seqAuxLoss: seqSum / seqN,
      importanceLoss: importanceLoss(this.probSum, base, E),
      zLoss: this.zSum[l]! / T,
      tokenEntropy: this.entSum[l]! / T,
      routerMargin: this.marginRows[l]! > 0 ? this.marginSum[l]! / this.marginRows[l]! : null,
    };
  }

  /** HF's loss exactly as HF pools it: all layers' rows form one matrix. */
  pooledHfAuxLoss(): number | null {
    const { L, E } = this;
    let N = 0;
    for (let l = 0; l < L; l++) N += this.rows[l]!;
    if (N === 0) return null;
    let s = 0;
    for (let e = 0; e < E; e++) {
      let c = 0;
      let p = 0;
      for (let l = 0; l < L; l++) {
        c += this.hfCount[l * E + e]!;
        p += this.softSum[l * E + e]!;
      }
      s += (c / N) * (p / N);
    }
    return E * s;
  }
}
