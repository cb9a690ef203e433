/**
 * RowSumsKernel: what RowScorer.score (scores.ts) computes from one row of E float16 logits, for callers that only
 * sum the probabilities over rows (LogitSums) — at 58 × 256, about 11× faster for a sigmoid router and 5× for a
 * softmax one than RowScorer plus the summing loops, for live ingest at DeepSeek-V3 scale. RowScorer stays the reference, and the path for the rare rows this one hands back to it;
 * test/stats/row-kernel.test.ts checks that both agree.
 *
 * Why it is fast:
 *  - Lookup tables instead of Math.exp/log1p. Logits are float16, so a function of one logit is a function of 16
 *    bits: LUT holds eˣ, σ(x), σ(x)·ln σ(x), x for all 65,536 bit patterns, computed by the very expressions of
 *    RowScorer (sigmoid.ts), once (≈ 10 ms, on first use).
 *  - Two passes per row. Pass 1 sums Σeˣ (lse, softmax) and Σσ, Σσ·ln σ (sigmoid) or Σx·eˣ (softmax) — the
 *    entropy of p = w/Σw is ln Σw − Σ w·ln w / Σw with ln w = ln σ(x) or x — and lists the experts above a
 *    threshold. Pass 2 adds prob (and soft) = table value × 1/sum straight into the accumulators.
 *  - The top-(K+1) ranking runs over those few candidates, not all E: ranking all E by insertion costs about an
 *    unpredictable branch per new leader, ~36 per row of 256 — more than both passes together.
 *  - The passes and the ranking run in WebAssembly (row-kernel.wat: the same float64 operations in the same
 *    order, so the same bits), over one copy of a batch's logits and a copy of the caller's accumulators in the
 *    module's memory (bind / load / addLoaded / unbind): in JavaScript, copying each row in and its terms out and
 *    ranking the candidates cost more than the passes. LogitSums.add: ~2.1× less CPU than with the JavaScript passes
 *    (58 × 256, sigmoid and softmax; bench/RESULTS.md § Live ingest with logits).
 *
 * Results: for sigmoid routers prob, entropy, margin and rank are bit for bit RowScorer's (same expressions, same
 * summation order); lse and the softmax (HF's soft, and prob of a softmax router) differ by rounding only, as eˣ is
 * summed without subtracting the row's maximum first — valid within SAFE_MIN…SAFE_MAX, see there.
 */
import { readFileSync } from 'node:fs';
import { F16_TO_F32 } from '../core/f16.js';
import type { Scoring } from '../core/batch.js';
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

/** The passes in WebAssembly (row-kernel.wat, assembled by `npm run build`): what they export. */
interface Passes {
  memory: WebAssembly.Memory;
  pass1Sigmoid(row: number, E: number, t: number): number;
  pass1Softmax(row: number, E: number, t: number): number;
  pass2Sigmoid(row: number, E: number, invS: number, invZ: number, p: number, s: number): void;
  pass2Softmax(row: number, E: number, invZ: number, p: number): void;
  rankTop(c: number, R: number): void;
}

// Byte addresses in row-kernel.wat's memory (see there). From FREE_AT: the bound accumulators, then the loaded rows.
const LUT_AT = 0;
const SUMS_AT = 0x200000;
const RI_AT = 0x2d0000;
const RV_AT = 0x310000;
const FREE_AT = 0x390000;

/** Expert ids are 16-bit, so no row is longer than this. */
const MAX_EXPERTS = 65536;

/**
 * The module (one per thread, shared by its kernels: a kernel binds its accumulators for one `add` or one
 * LogitSums batch at a time) and views of its memory, remade when it grows.
 */
let W: Passes;
/**
 * For float16 bit pattern h, at h·4: [eˣ, σ(x), σ(x)·ln σ(x), x], computed by the very expressions of RowScorer.
 * All four are NaN for a NaN or ±Infinity logit, so a row holding one ends with NaN sums — one check per row
 * instead of one per logit — and its x never passes a `>` test. Interleaved: one logit's values share a cache
 * line, and pass 1 reads them as two f64x2 pairs.
 */
let LUT: Float64Array;
/** Pass 1's row sums: Σeˣ, then Σσ and Σσ·ln σ (sigmoid) or Σx·eˣ (softmax). */
let SUMS: Float64Array;
/** rankTop's result: the indices of the row's top rank.length logits, largest first, and their values. */
let RI: Int32Array;
let RV: Float64Array;
/** The whole memory as float64 (the bound accumulators) and as uint16 (the loaded rows). */
let F64: Float64Array;
let U16: Uint16Array;
/** sigmoid(x) as `sigmoid` computes it (the router margin's score), per bit pattern. */
const SIG = new Float64Array(65536);
let tablesFilled = false;
/** The kernel whose accumulators are in the memory now (bind … unbind): one at a time per thread. */
let bound: RowSumsKernel | null = null;

function views(): void {
  const buf = W.memory.buffer;
  LUT = new Float64Array(buf, LUT_AT, 65536 * 4);
  SUMS = new Float64Array(buf, SUMS_AT, 3);
  RI = new Int32Array(buf, RI_AT, MAX_EXPERTS);
  RV = new Float64Array(buf, RV_AT, MAX_EXPERTS);
  F64 = new Float64Array(buf);
  U16 = new Uint16Array(buf);
}

/** Grows the memory to at least `bytes` (a multiple of 8). */
function reserve(bytes: number): void {
  const have = W.memory.buffer.byteLength;
  if (bytes <= have) return;
  W.memory.grow(Math.ceil((bytes - have) / 65536));
  views();
}

function fillTables(): void {
  const bytes = readFileSync(new URL('./row-kernel.wasm', import.meta.url));
  W = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Passes;
  views();
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
    LUT[o] = Math.exp(x);
    LUT[o + 1] = s;
    LUT[o + 2] = s * ls;
    LUT[o + 3] = x;
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
  // What bind() / load() placed in the module's memory: the caller's accumulators and a run of its logits.
  private probAcc: Float64Array | null = null;
  private softAcc: Float64Array | null = null;
  private accLen = 0;
  /** Float64 index of the bound prob (then soft) accumulators; uint16 index of the loaded logits. */
  private readonly probAt = FREE_AT / 8;
  private softAt = FREE_AT / 8;
  private rowsAt = FREE_AT / 2;
  /** logits[from …) of the caller are at rowsAt. */
  private from = 0;
  private loaded = 0;

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
    this.lnE = Math.log(experts);
    this.hint = new Float64Array(streams).fill(-Infinity);
    this.slack = new Float64Array(streams);
  }

  /**
   * Scores the E logits at logits[offset…], a row of stream `stream` (0 … streams−1): adds its `prob` into
   * probAcc[base + e] and — sigmoid routers only, where it differs from prob — its softmax into softAcc[base + e];
   * sets rank, lse, entropy and margin. False, and nothing added, when a logit is NaN or infinite.
   * One row on its own (it copies the row and E accumulators in and out); LogitSums scores whole batches with
   * bind / load / addLoaded / unbind instead.
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
    this.bind(probAcc.subarray(base, base + E), sig ? softAcc!.subarray(base, base + E) : null);
    this.load(logits, offset, offset + E);
    const ok = this.addLoaded(offset, stream, 0);
    this.unbind();
    return ok;
  }

  /**
   * Copies the caller's accumulators (prob; soft for sigmoid routers) into the module's memory: addLoaded adds
   * there, unbind copies them back. Nothing else may touch them in between.
   */
  bind(probAcc: Float64Array, softAcc: Float64Array | null): void {
    if (bound) throw new Error('RowSumsKernel.bind: another kernel of this thread is bound');
    bound = this;
    const n = probAcc.length;
    this.probAcc = probAcc;
    this.softAcc = this.scoring === 'sigmoid' ? softAcc : null;
    this.accLen = n;
    this.softAt = this.probAt + n;
    this.rowsAt = (this.softAt + (this.softAcc ? n : 0)) * 4;
    reserve(this.rowsAt * 2);
    F64.set(probAcc, this.probAt);
    if (this.softAcc) F64.set(this.softAcc, this.softAt);
    this.loaded = 0;
  }

  /** Copies the accumulators back to the caller's arrays (see bind). */
  unbind(): void {
    const n = this.accLen;
    this.probAcc!.set(F64.subarray(this.probAt, this.probAt + n));
    if (this.softAcc) this.softAcc.set(F64.subarray(this.softAt, this.softAt + n));
    this.probAcc = this.softAcc = null;
    bound = null;
  }

  /** Copies logits[from … to) into the module's memory (one copy for the rows of many tokens), for addLoaded. */
  load(logits: Uint16Array, from: number, to: number): void {
    reserve((this.rowsAt + (to - from)) * 2 + 8);
    U16.set(logits.subarray(from, to), this.rowsAt);
    this.from = from;
    this.loaded = to - from;
  }

  /**
   * `add` for the row at logits[offset …] of the last load(), into the bound accumulators at [base + e]:
   * the same results, bit for bit.
   */
  addLoaded(offset: number, stream: number, base: number): boolean {
    const E = this.experts;
    const at = this.rowsAt + offset - this.from;
    if (bound !== this || offset < this.from || offset - this.from + E > this.loaded)
      throw new RangeError('RowSumsKernel.addLoaded: the row is not loaded, or the kernel not bound');
    const sig = this.scoring === 'sigmoid';
    const t = this.hint[stream]!;
    const w = W;
    const row = at * 2;
    let c = sig ? w.pass1Sigmoid(row, E, t) : w.pass1Softmax(row, E, t);
    const z = SUMS[0]!;
    const a = SUMS[1]!;
    if (z !== z) return false; // a NaN or infinite logit: its table entries are NaN
    const R = this.rank.length;
    const few = c < R;
    // Too few above the threshold: every logit is a candidate (pass 1 again, its sums the same).
    if (few) c = sig ? w.pass1Sigmoid(row, E, -Infinity) : w.pass1Softmax(row, E, -Infinity);
    w.rankTop(c, R);
    const rank = this.rank;
    const ri = RI;
    for (let j = 0; j < R; j++) rank[j] = ri[j]!;
    this.adapt(stream, few, c, RV[R - 1]!);
    const max = RV[0]!;
    // Outside the safe range, or with so many experts near it that Σeˣ overflowed: the exact path.
    if (!(max >= SAFE_MIN && max <= SAFE_MAX && z < Infinity)) return this.addExact(at, base);
    const invZ = 1 / z;
    const p = (this.probAt + base) * 8;
    if (sig) {
      const invS = 1 / a; // a ≥ σ(max) > 0 in the safe range
      w.pass2Sigmoid(row, E, invS, invZ, p, (this.softAt + base) * 8);
      this.entropy = E > 1 ? (Math.log(a) - SUMS[2]! * invS) / this.lnE : 0;
    } else {
      w.pass2Softmax(row, E, invZ, p);
      this.entropy = E > 1 ? (Math.log(z) - a * invZ) / this.lnE : 0;
    }
    this.lse = Math.log(z);
    const K = this.topK;
    if (K < E) {
      // The scores of the K-th and (K+1)-th best, looked up by their bits.
      const hk = U16[at + this.rank[K - 1]!]!;
      const hk1 = U16[at + this.rank[K]!]!;
      this.margin = sig ? SIG[hk]! - SIG[hk1]! : (LUT[hk * 4]! - LUT[hk1 * 4]!) * invZ;
    } else this.margin = NaN;
    return true;
  }

  /**
   * Next row's threshold: this row's (K+1)-th best minus a slack that grows when the threshold let through fewer
   * than K+1 (the row ranked all E) and halves when it let through more than 4(K+1). 2^-14, the smallest normal
   * float16, is the first step up from 0.
   */
  private adapt(stream: number, few: boolean, c: number, last: number): void {
    const R = this.rank.length;
    let s = this.slack[stream]!;
    if (few) s = 2 * s + 2 ** -14;
    else if (c > 4 * R) s *= 0.5;
    this.slack[stream] = s;
    this.hint[stream] = last - s;
  }

  /** A row outside the safe range: RowScorer's exact path, its arrays added into the bound accumulators. */
  private addExact(at: number, base: number): boolean {
    const ex = this.exact;
    if (!ex.score(U16, at)) return false;
    const E = this.experts;
    const f = F64;
    const p = this.probAt + base;
    for (let i = 0; i < E; i++) f[p + i]! += ex.prob[i]!;
    const s = this.softAt + base;
    if (ex.prob !== ex.soft) for (let i = 0; i < E; i++) f[s + i]! += ex.soft[i]!;
    this.rank.set(ex.rank);
    this.lse = ex.lse;
    this.entropy = ex.entropy;
    this.margin = ex.margin;
    return true;
  }
}
