/**
 * LogitSums: the per-layer sums behind every metric that needs router logits (docs/metrics.md § Router, § Losses),
 * accumulated row by row (one token at one layer) by RowSumsKernel. RoutingStats owns one, either in its own
 * thread or — for large routers — in a worker (logits-thread.ts). All state lives in one Float64Array, which may
 * sit on a SharedArrayBuffer: the worker adds, RoutingStats reads the metrics after waiting for it.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { firstChoice } from './choice.js';
import { gshardAuxLoss, hfAuxLoss, importanceLoss, seqAuxLossTerm, switchAuxLoss } from './losses.js';
import { MARGIN_BINS, marginBin, marginHistogramOfCounts, type MarginHistogram } from './margin-histogram.js';
import { RowSumsKernel } from './row-kernel.js';

/** Logits copied into the kernel's memory at a time (RowSumsKernel.load): 2 MiB, 70 tokens at 58 × 256. */
const CHUNK_BYTES = 2 << 20;

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
  /**
   * Token rows with a NaN or ±Inf among their logits (not a row whose logits are all NaN: that is how a token
   * without captured logits is recorded). Every metric above leaves them out; in `global`, the sum over layers.
   */
  nonFiniteLogitRows: number | null;
}

export const NO_LOGITS: LogitsMetrics = {
  hfAuxLoss: null,
  switchAuxLoss: null,
  gshardAuxLoss: null,
  seqAuxLoss: null,
  importanceLoss: null,
  zLoss: null,
  tokenEntropy: null,
  routerMargin: null,
  nonFiniteLogitRows: null,
};

/**
 * The sums every logits metric is a formula of, per MoE layer: what LogitSums accumulates row by row, and what an
 * engine computes as SQL over a dataset's files (src/scale/logit-sql.ts). logitsLayerMetrics, pooledHfAuxLoss and
 * marginHistogramOf turn either into metrics, so the formulas exist once. Flat arrays, layer-major: `[l]` for the
 * per-layer sums, `[l·E + e]` for the per-expert ones, `[l·MARGIN_BINS + b]` for the margin histogram.
 */
export interface LogitSumRecord {
  layers: number;
  experts: number;
  topK: number;
  /** T: rows (token × layer) with finite logits. */
  rows: Float64Array;
  /** Σ_t prob[t,e] in the router's convention (scores.ts: softmax, or normalised sigmoid). */
  prob: Float64Array;
  /** Σ_t softmax[t,e] (HF's convention) for sigmoid routers; null for softmax routers, where it is `prob`. */
  soft: Float64Array | null;
  /** Recorded assignments (the trace's experts), over rows with logits. */
  count: Float64Array;
  /** Top-K of the logits (what HF's loss selects; ties to the lower id). */
  hfCount: Float64Array;
  /** Recorded first choice (the highest-weight slot; ties to the earlier slot). */
  top1: Float64Array;
  /** Σ_t logsumexp(x_t)². */
  zSum: Float64Array;
  /** Σ_t entropy(prob_t) / ln E. */
  entSum: Float64Array;
  /** Σ_t margin_t (K-th minus (K+1)-th score) and the rows that have one (K < E). */
  marginSum: Float64Array;
  marginRows: Float64Array;
  /** Σ over sequences of the DeepSeek sequence-wise term (seqAuxLossTerm), and the sequences. */
  seqLossSum: Float64Array;
  seqs: Float64Array;
  /** Rows left out for a NaN or ±Inf among finite logits. */
  nonFinite: Float64Array;
  /** Margins per bin of marginBin(margin, MARGIN_BINS). */
  marginHist: Float64Array;
}

/** A record of zeros (an engine adds into it). */
export function emptyLogitSumRecord(schema: RoutingSchema): LogitSumRecord {
  const L = schema.layers.length;
  const E = schema.experts;
  const le = () => new Float64Array(L * E);
  const l1 = () => new Float64Array(L);
  return {
    layers: L,
    experts: E,
    topK: schema.topK,
    rows: l1(),
    prob: le(),
    soft: schema.scoring === 'softmax' ? null : le(),
    count: le(),
    hfCount: le(),
    top1: le(),
    zSum: l1(),
    entSum: l1(),
    marginSum: l1(),
    marginRows: l1(),
    seqLossSum: l1(),
    seqs: l1(),
    nonFinite: l1(),
    marginHist: new Float64Array(L * MARGIN_BINS),
  };
}

/** Adds the sums of `from` into `into` (the same schema): files summed apart. */
export function addLogitSumRecord(into: LogitSumRecord, from: LogitSumRecord): void {
  const keys = [
    'rows',
    'prob',
    'soft',
    'count',
    'hfCount',
    'top1',
    'zSum',
    'entSum',
    'marginSum',
    'marginRows',
    'seqLossSum',
    'seqs',
    'nonFinite',
    'marginHist',
  ] as const;
  for (const k of keys) {
    const a = into[k];
    const b = from[k];
    if (!a || !b) continue;
    for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
  }
}

/** The logits metrics of layer l from its sums (docs/metrics.md § Losses, § Router). */
export function logitsLayerMetrics(r: LogitSumRecord, l: number): LogitsMetrics {
  const { experts: E, topK: K } = r;
  const T = r.rows[l]!;
  const nonFinite = r.nonFinite[l]!;
  if (T === 0) return nonFinite > 0 ? { ...NO_LOGITS, nonFiniteLogitRows: nonFinite } : NO_LOGITS;
  const base = l * E;
  return {
    hfAuxLoss: hfAuxLoss(r.hfCount, r.soft ?? r.prob, base, E, T),
    switchAuxLoss: switchAuxLoss(r.count, r.prob, base, E, K, T),
    gshardAuxLoss: gshardAuxLoss(r.top1, r.prob, base, E, T),
    seqAuxLoss: r.seqLossSum[l]! / r.seqs[l]!,
    importanceLoss: importanceLoss(r.prob, base, E),
    zLoss: r.zSum[l]! / T,
    tokenEntropy: r.entSum[l]! / T,
    routerMargin: r.marginRows[l]! > 0 ? r.marginSum[l]! / r.marginRows[l]! : null,
    nonFiniteLogitRows: nonFinite,
  };
}

/** HF's loss exactly as HF pools it: all layers' rows form one matrix. */
export function pooledHfAuxLoss(r: LogitSumRecord): number | null {
  const { layers: L, experts: E } = r;
  let N = 0;
  for (let l = 0; l < L; l++) N += r.rows[l]!;
  if (N === 0) return null;
  const softSum = r.soft ?? r.prob;
  // Per expert, the sums over layers — taken layer by layer along rows of memory, each expert's in layer order
  // as a loop over l per expert would (the same sums, bit for bit), instead of striding E values per step.
  const c = new Float64Array(E);
  const p = new Float64Array(E);
  for (let l = 0; l < L; l++) {
    const base = l * E;
    for (let e = 0; e < E; e++) {
      c[e]! += r.hfCount[base + e]!;
      p[e]! += softSum[base + e]!;
    }
  }
  let s = 0;
  for (let e = 0; e < E; e++) s += (c[e]! / N) * (p[e]! / N);
  return E * s;
}

/** The router-margin histogram of layer l (margin-histogram.ts), from the record's bin counts. */
export function marginHistogramOf(r: LogitSumRecord, l: number): MarginHistogram {
  return marginHistogramOfCounts(Array.from(r.marginHist.subarray(l * MARGIN_BINS, (l + 1) * MARGIN_BINS)));
}

/** What LogitSums reads of a batch (the worker hands it views of its ring slots). */
export type LogitsRows = Pick<RoutingBatch, 'length' | 'seq' | 'experts' | 'weights' | 'logits'>;

/**
 * Per-layer sums over the tokens whose logits were captured (rows with a NaN logit are skipped — the batch
 * builder writes NaN for a token whose logits are missing). Rows skipped for a NaN or ±Inf among finite logits
 * (an overflow, a broken kernel) are counted, so the metrics can say what they left out.
 */
export class LogitSums {
  private readonly L: number;
  private readonly E: number;
  private readonly K: number;
  private readonly scoring: RoutingSchema['scoring'];
  private kernel: RowSumsKernel | null = null;
  /** [0]: the open sequence's id + 1 (0 before the first token, so that all-zero memory is the empty state). */
  private readonly state: Float64Array;
  /** Rows with logits, per layer. */
  private readonly rows: Float64Array;
  /** Σ_t softmax[t,e] (HF convention) for sigmoid routers; softmax routers' are the prob sums. */
  private readonly softAcc: Float64Array | null;
  /** Recorded assignments, over rows with logits. */
  private readonly count: Float64Array;
  /** Top-K of the logits (what HF's loss selects). */
  private readonly hfCount: Float64Array;
  /** Recorded first choice (the highest-weight slot). */
  private readonly top1: Float64Array;
  private readonly zSum: Float64Array;
  private readonly entSum: Float64Array;
  private readonly marginSum: Float64Array;
  private readonly marginRows: Float64Array;
  // DeepSeek sequence-wise loss: the open sequence and the finished ones.
  private readonly seqCount: Float64Array;
  /** Σ prob over the open sequence's rows — the only per-row prob sum (see probSum()). */
  private readonly seqProb: Float64Array;
  /** Σ prob over the closed sequences. */
  private readonly probClosed: Float64Array;
  private readonly seqRows: Float64Array;
  private readonly seqLossSum: Float64Array;
  private readonly seqDone: Float64Array;
  /** Rows left out for a NaN or ±Inf among finite logits, per layer. */
  private readonly nonFinite: Float64Array;
  /** Margins per (layer, bin of marginBin). */
  private readonly marginHist: Float64Array;
  /** Scratch of the reader: probClosed + seqProb, and the sequence sums with the open one (not shared). */
  private probTotal: Float64Array | null = null;
  private seqLossTotal: Float64Array | null = null;
  private seqsTotal: Float64Array | null = null;

  /** Float64 values of the state of a schema's sums: the size of the `memory` to pass. */
  static size(schema: RoutingSchema): number {
    const L = schema.layers.length;
    const le = L * schema.experts;
    return 1 + (10 + MARGIN_BINS) * L + (schema.scoring === 'softmax' ? 6 : 7) * le;
  }

  /**
   * memory: LogitSums.size(schema) values, all zero to start empty (on a SharedArrayBuffer, to share the sums
   * with a worker: one side adds, the other reads once the adder has finished).
   */
  constructor(schema: RoutingSchema, memory: Float64Array = new Float64Array(LogitSums.size(schema))) {
    const L = (this.L = schema.layers.length);
    const E = (this.E = schema.experts);
    this.K = schema.topK;
    this.scoring = schema.scoring;
    if (memory.length !== LogitSums.size(schema))
      throw new RangeError(`LogitSums needs ${LogitSums.size(schema)} values, got ${memory.length}`);
    let at = 0;
    const take = (n: number) => memory.subarray(at, (at += n));
    const le = () => take(L * E);
    const l1 = () => take(L);
    this.state = take(1);
    this.rows = l1();
    this.softAcc = schema.scoring === 'softmax' ? null : le();
    this.count = le();
    this.hfCount = le();
    this.top1 = le();
    this.zSum = l1();
    this.entSum = l1();
    this.marginSum = l1();
    this.marginRows = l1();
    this.seqCount = le();
    this.seqProb = le();
    this.probClosed = le();
    this.seqRows = l1();
    this.seqLossSum = l1();
    this.seqDone = l1();
    this.nonFinite = l1();
    this.marginHist = take(L * MARGIN_BINS);
  }

  /** Adds a batch whose logits hold L·E values per token (the caller checks). */
  add(b: LogitsRows): void {
    const {
      L,
      E,
      K,
      rows,
      seqRows,
      hfCount,
      count,
      seqCount,
      top1,
      zSum,
      entSum,
      marginSum,
      marginRows,
      marginHist,
      seqProb,
      softAcc,
    } = this;
    const logits = b.logits!;
    const experts = b.experts;
    // The kernel (≈ 2.5 MiB of tables on first use) is made by the adding side only.
    const kernel = (this.kernel ??= new RowSumsKernel(E, K, this.scoring, L));
    const rank = kernel.rank;
    // The kernel adds into its own copy of the open sequence's prob sums (and the softmax sums) and reads the
    // rows from one copy of CHUNK_BYTES of logits at a time; unbind copies the sums back (before a sequence
    // closes, which reads them, and at the end).
    kernel.bind(seqProb, softAcc);
    const chunk = Math.max(1, Math.floor(CHUNK_BYTES / (2 * L * E)));
    /** Tokens before this one have their rows in the kernel's memory (bind forgets them). */
    let loadedTo = 0;
    for (let t = 0; t < b.length; t++) {
      const seq = b.seq[t]! + 1;
      if (seq !== this.state[0]) {
        kernel.unbind();
        this.closeSequence();
        this.state[0] = seq;
        kernel.bind(seqProb, softAcc);
        loadedTo = t;
      }
      if (t >= loadedTo) {
        loadedTo = Math.min(b.length, t + chunk);
        kernel.load(logits, t * L * E, loadedTo * L * E);
      }
      for (let l = 0; l < L; l++) {
        const base = l * E;
        // Σ_t prob goes into the open sequence's sums only; the run's total is the closed sequences' plus these
        // (probSum()), which saves a second per-expert accumulation per row.
        if (!kernel.addLoaded((t * L + l) * E, l, base)) {
          if (!allNaN(logits, (t * L + l) * E, E)) this.nonFinite[l]!++;
          continue;
        }
        rows[l]!++;
        seqRows[l]!++;
        for (let j = 0; j < K; j++) hfCount[base + rank[j]!]!++;
        const o = (t * L + l) * K;
        for (let j = 0; j < K; j++) {
          const x = experts[o + j]!;
          count[base + x]!++;
          seqCount[base + x]!++;
        }
        top1[base + firstChoice(b, o, K)]!++;
        zSum[l]! += kernel.lse * kernel.lse;
        entSum[l]! += kernel.entropy;
        if (!Number.isNaN(kernel.margin)) {
          marginSum[l]! += kernel.margin;
          marginRows[l]!++;
          marginHist[l * MARGIN_BINS + marginBin(kernel.margin, MARGIN_BINS)]!++;
        }
      }
    }
    kernel.unbind();
  }

  /**
   * Ends the open sequence, so that the next row starts a new one even with the same seq id (an engine reading
   * files in turn: a sequence is a seq id within one file).
   */
  endSequence(): void {
    this.closeSequence();
    this.state[0] = 0;
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
    const { probClosed, seqProb } = this;
    for (let i = 0; i < probClosed.length; i++) probClosed[i]! += seqProb[i]!;
    this.seqCount.fill(0);
    seqProb.fill(0);
  }

  /**
   * The sums so far as a record, valid for layers `from` … `to`−1 (the others' prob and sequence sums are not
   * filled): the open sequence counts as a finished one (it may still grow). Views of this object's memory and
   * scratch: read before adding more.
   */
  record(from = 0, to = this.L): LogitSumRecord {
    const { L, E, K } = this;
    const prob = (this.probTotal ??= new Float64Array(L * E));
    const seqLossSum = (this.seqLossTotal ??= new Float64Array(L));
    const seqs = (this.seqsTotal ??= new Float64Array(L));
    const { probClosed, seqProb } = this;
    for (let i = from * E; i < to * E; i++) prob[i] = probClosed[i]! + seqProb[i]!;
    for (let l = from; l < to; l++) {
      const open = this.seqRows[l]!;
      seqLossSum[l] =
        this.seqLossSum[l]! + (open > 0 ? seqAuxLossTerm(this.seqCount, this.seqProb, l * E, E, K, open) : 0);
      seqs[l] = this.seqDone[l]! + (open > 0 ? 1 : 0);
    }
    return {
      layers: L,
      experts: E,
      topK: K,
      rows: this.rows,
      prob,
      soft: this.softAcc,
      count: this.count,
      hfCount: this.hfCount,
      top1: this.top1,
      zSum: this.zSum,
      entSum: this.entSum,
      marginSum: this.marginSum,
      marginRows: this.marginRows,
      seqLossSum,
      seqs,
      nonFinite: this.nonFinite,
      marginHist: this.marginHist,
    };
  }

  layer(l: number): LogitsMetrics {
    return logitsLayerMetrics(this.record(l, l + 1), l);
  }

  /** HF's loss exactly as HF pools it: all layers' rows form one matrix. */
  pooledHfAuxLoss(): number | null {
    return pooledHfAuxLoss(this.record());
  }
}

/** Whether the E float16 logits at `offset` are all NaN (a token recorded without logits). */
function allNaN(logits: Uint16Array, offset: number, E: number): boolean {
  for (let i = offset, end = offset + E; i < end; i++) {
    const h = logits[i]!;
    if ((h & 0x7c00) !== 0x7c00 || (h & 0x03ff) === 0) return false;
  }
  return true;
}
