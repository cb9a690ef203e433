/**
 * LogitSums: the per-layer sums behind every metric that needs router logits (docs/metrics.md § Router, § Losses),
 * accumulated row by row (one token at one layer) by RowSumsKernel. RoutingStats owns one, either in its own
 * thread or — for large routers — in a worker (logits-thread.ts). All state lives in one Float64Array, which may
 * sit on a SharedArrayBuffer: the worker adds, RoutingStats reads the metrics after waiting for it.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { firstChoice } from './choice.js';
import { gshardAuxLoss, hfAuxLoss, importanceLoss, seqAuxLossTerm, switchAuxLoss } from './losses.js';
import { RowSumsKernel } from './row-kernel.js';

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
  /** Scratch of the reader: probClosed + seqProb (not shared). */
  private probTotal: Float64Array | null = null;

  /** Float64 values of the state of a schema's sums: the size of the `memory` to pass. */
  static size(schema: RoutingSchema): number {
    const L = schema.layers.length;
    const le = L * schema.experts;
    return 1 + 10 * L + (schema.scoring === 'softmax' ? 6 : 7) * le;
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
      seqProb,
      softAcc,
    } = this;
    const logits = b.logits!;
    const experts = b.experts;
    // The kernel (≈ 2.5 MiB of tables on first use) is made by the adding side only.
    const kernel = (this.kernel ??= new RowSumsKernel(E, K, this.scoring, L));
    const rank = kernel.rank;
    for (let t = 0; t < b.length; t++) {
      const seq = b.seq[t]! + 1;
      if (seq !== this.state[0]) {
        this.closeSequence();
        this.state[0] = seq;
      }
      for (let l = 0; l < L; l++) {
        const base = l * E;
        // Σ_t prob goes into the open sequence's sums only; the run's total is the closed sequences' plus these
        // (probSum()), which saves a second per-expert accumulation per row.
        if (!kernel.add(logits, (t * L + l) * E, l, seqProb, softAcc, base)) {
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
    const { probClosed, seqProb } = this;
    for (let i = 0; i < probClosed.length; i++) probClosed[i]! += seqProb[i]!;
    this.seqCount.fill(0);
    seqProb.fill(0);
  }

  /** Σ_t prob[t,e] over every row so far (router convention), rows `from` … `to`−1 of the L·E matrix. */
  private probSum(from: number, to: number): Float64Array {
    const p = (this.probTotal ??= new Float64Array(this.L * this.E));
    const { probClosed, seqProb } = this;
    for (let i = from * this.E; i < to * this.E; i++) p[i] = probClosed[i]! + seqProb[i]!;
    return p;
  }

  layer(l: number): LogitsMetrics {
    const { E, K } = this;
    const T = this.rows[l]!;
    const nonFinite = this.nonFinite[l]!;
    if (T === 0) return nonFinite > 0 ? { ...NO_LOGITS, nonFiniteLogitRows: nonFinite } : NO_LOGITS;
    const base = l * E;
    // The open sequence counts as a finished one in the snapshot (it may still grow).
    const open = this.seqRows[l]!;
    const seqSum = this.seqLossSum[l]! + (open > 0 ? seqAuxLossTerm(this.seqCount, this.seqProb, base, E, K, open) : 0);
    const seqN = this.seqDone[l]! + (open > 0 ? 1 : 0);
    const probSum = this.probSum(l, l + 1);
    return {
      hfAuxLoss: hfAuxLoss(this.hfCount, this.softAcc ?? probSum, base, E, T),
      switchAuxLoss: switchAuxLoss(this.count, probSum, base, E, K, T),
      gshardAuxLoss: gshardAuxLoss(this.top1, probSum, base, E, T),
      seqAuxLoss: seqSum / seqN,
      importanceLoss: importanceLoss(probSum, base, E),
      zLoss: this.zSum[l]! / T,
      tokenEntropy: this.entSum[l]! / T,
      routerMargin: this.marginRows[l]! > 0 ? this.marginSum[l]! / this.marginRows[l]! : null,
      nonFiniteLogitRows: nonFinite,
    };
  }

  /** HF's loss exactly as HF pools it: all layers' rows form one matrix. */
  pooledHfAuxLoss(): number | null {
    const { L, E } = this;
    let N = 0;
    for (let l = 0; l < L; l++) N += this.rows[l]!;
    if (N === 0) return null;
    const softSum = this.softAcc ?? this.probSum(0, L);
    let s = 0;
    for (let e = 0; e < E; e++) {
      let c = 0;
      let p = 0;
      for (let l = 0; l < L; l++) {
        c += this.hfCount[l * E + e]!;
        p += softSum[l * E + e]!;
      }
      s += (c / N) * (p / N);
    }
    return E * s;
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
