/**
 * RowSumsKernel: what RowScorer.score (scores.ts) computes from one row of E float16 logits, for callers that only
 * sum the probabilities over rows (LogitSums) — at 58 × 256, about 11× faster for a sigmoid router and 5× for a
 * softmax one than RowScorer plus the summing loops, for live ingest at DeepSeek-V3 scale. RowScorer stays the reference, and the path for the rare rows this one hands back to it;
 * test/stats/row-kernel.test.ts checks that both agree.
 *
 * Why it is fast:
 *  - Lookup tables instead of Math.exp/log1p. Logits are float16, so a function of one logit is a function of 16
 *    bits: LUT holds x, eˣ, σ(x), σ(x)·ln σ(x) for all 65,536 bit patterns, computed by the very expressions of
 *    RowScorer (sigmoid.ts), once (≈ 10 ms, on first use).
 *  - Two passes per row. Pass 1 sums Σeˣ (lse, softmax) and Σσ, Σσ·ln σ (sigmoid) or Σx·eˣ (softmax) — the
 *    entropy of p = w/Σw is ln Σw − Σ w·ln w / Σw with ln w = ln σ(x) or x — and lists the experts above a
 *    threshold. Pass 2 adds prob (and soft) = table value × 1/sum straight into the caller's accumulators.
 *  - The top-(K+1) ranking runs over those few candidates, not all E: ranking all E by insertion costs about an
 *    unpredictable branch per new leader, ~36 per row of 256 — more than both passes together.
 *  - The tables, the row (copied into ROW first) and the candidate list are module-level constants, and the
 *    passes small module-level functions: V8 then folds the arrays' type checks and data pointers out of the
 *    loops instead of reloading them after every store (≈ 15% measured), and compiles each loop on its own.
 *
 * Results: for sigmoid routers prob, entropy, margin and rank are bit for bit RowScorer's (same expressions, same
 * summation order); lse and the softmax (HF's soft, and prob of a softmax router) differ by rounding only, as eˣ is
 * summed without subtracting the row's maximum first — valid within SAFE_MIN…SAFE_MAX, see there.
 */
import { F16_TO_F32 } from '../core/f16.js';
import type { Scoring } from '../core/batch.js';
import { rankTopInto } from '../core/topk.js';
import { RowScorer } from './scores.js';
import { logSigmoid, sigmoid } from './sigmoid.js';

/**
 * eˣ is summed unshifted while the row's maximum m lies in [SAFE_MIN, SAFE_MAX]. That is exact to rounding: no eˣ
 * overflows (e^700 ≈ 1e304, so up to 2^13 experts sum to < 1e308), Σeˣ ≥ e^m stays a normal number, and a logit
 * whose eˣ underflows (x < −708) lies below m − 108, so its probability is < e^−108 — far under one rounding unit
 * of the row's largest probability (≥ 1/E). Rows outside the range take RowScorer's max-shifted path.
 */
const SAFE_MIN = -600;
const SAFE_MAX = 700;

/**
 * For float16 bit pattern h, at h·4: [x, eˣ, σ(x), σ(x)·ln σ(x)]. All four are NaN for a NaN or ±Infinity logit,
 * so a row holding one ends with NaN sums — one check per row instead of one per logit — and its x never passes
 * a `>` test. Interleaved: one logit's values share a cache line.
 */
const LUT = new Float64Array(65536 * 4);
/** sigmoid(x) as `sigmoid` computes it (the router margin's score), per bit pattern. */
const SIG = new Float64Array(65536);
/** Pass 1's row sums: Σeˣ, then Σσ and Σσ·ln σ (sigmoid) or Σx·eˣ (softmax). */
const SUMS = new Float64Array(3);
/** Expert ids are 16-bit, so no row is longer than this. */
const MAX_EXPERTS = 65536;
/** The row being scored (its float16 bits). */
const ROW = new Uint16Array(MAX_EXPERTS);
/** Indices of the row's logits above the threshold, in index order, and their values. */
const CAND = new Int32Array(MAX_EXPERTS);
const CX = new Float64Array(MAX_EXPERTS);
let tablesFilled = false;

function fillTables(): void {
  for (let h = 0; h < 65536; h++) {
    const x = F16_TO_F32[h]!;
    const o = h * 4;
    if (!Number.isFinite(x)) {
      LUT.fill(NaN, o, o + 4);
      SIG[h] = NaN;
      continue;
    }
    const ls = logSigmoid(x);
    const s = Math.exp(ls); // RowScorer's σ: exp(ln σ)
    LUT[o] = x;
    LUT[o + 1] = Math.exp(x);
    LUT[o + 2] = s;
    LUT[o + 3] = s * ls;
    SIG[h] = sigmoid(x);
  }
  tablesFilled = true;
}

export class RowSumsKernel {
  readonly experts: number;
  readonly topK: number;
  readonly scoring: Scoring;
  /** Indices of the K+1 largest logits, largest first (ties: lower index first), as RowScorer.rank. */
  readonly rank: Int32Array;
  /** log Σ exp(x). */
  lse = 0;
  /** Entropy of `prob` divided by ln E. */
  entropy = 0;
  /** Score of the K-th minus the (K+1)-th best expert; NaN when K ≥ E. */
  margin = 0;
  private readonly exact: RowScorer;
  private readonly rankVal: Float64Array;
  private readonly lnE: number;
  /**
   * Per stream (LogitSums: per layer, whose rows look alike from token to token): the next row's threshold,
   * this row's (K+1)-th best logit minus `slack`. Only speed depends on it, never a result: when at least K+1
   * logits exceed it, every other logit is below all of them, so the top K+1 are among the candidates — in the
   * same order and with the same ties as a full ranking, since the candidates are in index order; when fewer
   * exceed it, the row ranks all E.
   */
  private readonly hint: Float64Array;
  /** Per stream: grows when a row had too few candidates, shrinks when it had many. */
  private readonly slack: Float64Array;

  constructor(experts: number, topK: number, scoring: Scoring, streams = 1) {
    if (!(experts >= 1 && experts <= MAX_EXPERTS))
      throw new RangeError(`${experts} experts: expected 1…${MAX_EXPERTS}`);
    if (!tablesFilled) fillTables();
    this.experts = experts;
    this.topK = topK;
    this.scoring = scoring;
    this.exact = new RowScorer(experts, topK, scoring);
    const r = Math.min(topK + 1, experts);
    this.rank = new Int32Array(r);
    this.rankVal = new Float64Array(r);
    this.lnE = Math.log(experts);
    this.hint = new Float64Array(streams).fill(-Infinity);
    this.slack = new Float64Array(streams);
  }

  /**
   * Scores the E logits at logits[offset…], a row of stream `stream` (0 … streams−1): adds its `prob` into
   * probAcc[base + e] and — sigmoid routers only, where it differs from prob — its softmax into softAcc[base + e];
   * sets rank, lse, entropy and margin. False, and nothing added, when a logit is NaN or infinite.
   */
  add(
    logits: Uint16Array,
    offset: number,
    stream: number,
    probAcc: Float64Array,
    softAcc: Float64Array | null,
    base: number,
  ): boolean {
    const E = this.experts;
    const sig = this.scoring === 'sigmoid';
    const t = this.hint[stream]!;
    for (let i = 0; i < E; i++) ROW[i] = logits[offset + i]!;
    let c = sig ? pass1Sigmoid(E, t) : pass1Softmax(E, t);
    const z = SUMS[0]!;
    const a = SUMS[1]!;
    if (z !== z) return false; // a NaN or infinite logit: its table entries are NaN
    const R = this.rank.length;
    const few = c < R;
    if (few) {
      for (let i = 0; i < E; i++) CAND[i] = i;
      c = E;
    }
    rankCandidates(c, this.rank, this.rankVal);
    this.adapt(stream, few, c);
    const max = this.rankVal[0]!;
    // Outside the safe range, or with so many experts near it that Σeˣ overflowed: the exact path.
    if (!(max >= SAFE_MIN && max <= SAFE_MAX && z < Infinity))
      return this.addExact(logits, offset, probAcc, softAcc, base);
    const invZ = 1 / z;
    if (sig) {
      const invS = 1 / a; // a ≥ σ(max) > 0 in the safe range
      pass2Sigmoid(E, probAcc, softAcc!, base, invS, invZ);
      this.entropy = E > 1 ? (Math.log(a) - SUMS[2]! * invS) / this.lnE : 0;
    } else {
      pass2Softmax(E, probAcc, base, invZ);
      this.entropy = E > 1 ? (Math.log(z) - a * invZ) / this.lnE : 0;
    }
    this.lse = Math.log(z);
    const K = this.topK;
    if (K < E) {
      // The scores of the K-th and (K+1)-th best, looked up by their bits.
      const hk = ROW[this.rank[K - 1]!]!;
      const hk1 = ROW[this.rank[K]!]!;
      this.margin = sig ? SIG[hk]! - SIG[hk1]! : (LUT[hk * 4 + 1]! - LUT[hk1 * 4 + 1]!) * invZ;
    } else this.margin = NaN;
    return true;
  }

  /**
   * Next row's threshold: this row's (K+1)-th best minus a slack that grows when the threshold let through fewer
   * than K+1 (the row ranked all E) and halves when it let through more than 4(K+1). 2^-14, the smallest normal
   * float16, is the first step up from 0.
   */
  private adapt(stream: number, few: boolean, c: number): void {
    const R = this.rank.length;
    let s = this.slack[stream]!;
    if (few) s = 2 * s + 2 ** -14;
    else if (c > 4 * R) s *= 0.5;
    this.slack[stream] = s;
    this.hint[stream] = this.rankVal[R - 1]! - s;
  }

  /** A row outside the safe range: RowScorer's exact path, its arrays added into the accumulators. */
  private addExact(
    logits: Uint16Array,
    offset: number,
    probAcc: Float64Array,
    softAcc: Float64Array | null,
    base: number,
  ): boolean {
    const ex = this.exact;
    if (!ex.score(logits, offset)) return false;
    const E = this.experts;
    for (let i = 0; i < E; i++) probAcc[base + i]! += ex.prob[i]!;
    if (ex.prob !== ex.soft) for (let i = 0; i < E; i++) softAcc![base + i]! += ex.soft[i]!;
    this.rank.set(ex.rank);
    this.lse = ex.lse;
    this.entropy = ex.entropy;
    this.margin = ex.margin;
    return true;
  }
}

// The passes over ROW[0 … E). Pass 1 stores each index in CAND unconditionally and keeps it by advancing c by the
// comparison (0 or 1): no branch to mispredict. Sums go to SUMS; the candidate count is returned.

function pass1Sigmoid(E: number, t: number): number {
  let c = 0;
  let z = 0;
  let s = 0;
  let sls = 0;
  for (let i = 0; i < E; i++) {
    const k = ROW[i]! * 4;
    z += LUT[k + 1]!;
    s += LUT[k + 2]!;
    sls += LUT[k + 3]!;
    CAND[c] = i;
    c += +(LUT[k]! > t);
  }
  SUMS[0] = z;
  SUMS[1] = s;
  SUMS[2] = sls;
  return c;
}

function pass1Softmax(E: number, t: number): number {
  let c = 0;
  let z = 0;
  let xz = 0;
  for (let i = 0; i < E; i++) {
    const k = ROW[i]! * 4;
    const x = LUT[k]!;
    const ex = LUT[k + 1]!;
    z += ex;
    xz += x * ex;
    CAND[c] = i;
    c += +(x > t);
  }
  SUMS[0] = z;
  SUMS[1] = xz;
  return c;
}

function pass2Sigmoid(
  E: number,
  probAcc: Float64Array,
  softAcc: Float64Array,
  base: number,
  invS: number,
  invZ: number,
): void {
  for (let i = 0; i < E; i++) {
    const k = ROW[i]! * 4;
    probAcc[base + i]! += LUT[k + 2]! * invS;
    softAcc[base + i]! += LUT[k + 1]! * invZ;
  }
}

function pass2Softmax(E: number, probAcc: Float64Array, base: number, invZ: number): void {
  for (let i = 0; i < E; i++) probAcc[base + i]! += LUT[ROW[i]! * 4 + 1]! * invZ;
}

/**
 * The top rank.length of the c candidates CAND[0 … c) into rank/rankVal, by rankTopInto (src/core/topk.ts) over
 * their values: the candidates are in index order, so its ties rule (lower index first) carries over.
 */
function rankCandidates(c: number, rank: Int32Array, rv: Float64Array): void {
  for (let n = 0; n < c; n++) CX[n] = LUT[ROW[CAND[n]!]! * 4]!;
  rankTopInto(CX, 0, c, rank, rv);
  for (let j = 0; j < rank.length; j++) rank[j] = CAND[rank[j]!]!;
}
