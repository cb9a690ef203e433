/**
 * Assignment counts over the last W tokens, sliding one token at a time in O(L·K): a ring keeps each token's
 * L·K expert ids so the oldest token can be subtracted when a new one arrives. Alongside the counts it keeps,
 * per layer, Σc² (for CV), Σ c·ln c (for entropy) and the number of experts at zero, updated per assignment,
 * so the collapse detector can evaluate every layer without rescanning the ring.
 */
import { UserError } from '../core/errors.js';

export class WindowCounts {
  /** Window length in tokens. */
  readonly size: number;
  readonly layers: number;
  readonly experts: number;
  readonly topK: number;
  /** Assignments per layer per expert in the window: counts[l·E + e]. Read-only for callers. */
  readonly counts: Int32Array;
  /** Σ_e c² per layer. */
  readonly sumSq: Float64Array;
  /** Σ_e c·ln c per layer. */
  readonly sumXlogX: Float64Array;
  /** Experts with zero assignments in the window, per layer. */
  readonly zeros: Int32Array;
  private readonly ring: Uint16Array;
  private readonly xlogx: Float64Array;
  /** xlogx[c + 1] − xlogx[c] and xlogx[c − 1] − xlogx[c], each the float the slide would compute: one load, not two. */
  private readonly up: Float64Array;
  private readonly down: Float64Array;
  private head = 0;
  private filled = 0;
  /** Index (in stream order) of the next token to arrive. */
  private next = 0;

  constructor(size: number, layers: number, experts: number, topK: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new UserError(`window must be a positive number of tokens, got ${size}`);
    this.size = size;
    this.layers = layers;
    this.experts = experts;
    this.topK = topK;
    this.counts = new Int32Array(layers * experts);
    this.sumSq = new Float64Array(layers);
    this.sumXlogX = new Float64Array(layers);
    this.zeros = new Int32Array(layers).fill(experts);
    this.ring = new Uint16Array(size * layers * topK);
    // c ranges over 0 … W·K (K slots could repeat an expert in malformed data); a table avoids a log per update.
    const maxC = size * topK + 1;
    this.xlogx = new Float64Array(maxC + 1);
    for (let c = 2; c <= maxC; c++) this.xlogx[c] = c * Math.log(c);
    this.up = new Float64Array(maxC + 1);
    this.down = new Float64Array(maxC + 1);
    for (let c = 0; c < maxC; c++) this.up[c] = this.xlogx[c + 1]! - this.xlogx[c]!;
    for (let c = 1; c <= maxC; c++) this.down[c] = this.xlogx[c - 1]! - this.xlogx[c]!;
  }

  /** Tokens currently in the window (≤ size). */
  get tokens(): number {
    return this.filled;
  }

  /** Stream index of the first token in the window. */
  get start(): number {
    return this.next - this.filled;
  }

  /** Stream index one past the last token in the window. */
  get end(): number {
    return this.next;
  }

  get full(): boolean {
    return this.filled === this.size;
  }

  /** Slides the window by one token whose L·K expert ids start at experts[offset]. Ids must be < E (checked upstream). */
  push(experts: Uint16Array, offset: number): void {
    this.pushTokens(experts, offset, 1);
  }

  /**
   * Slides the window by n consecutive tokens (token-major, L·K ids each, from experts[offset]): the same counts and
   * running sums as n calls of push, bit for bit — each layer's sums take the same additions in the same order —
   * but a layer at a time, its sums in locals, over runs that neither fill the window nor wrap the ring midway.
   */
  pushTokens(experts: Uint16Array, offset: number, n: number): void {
    const lk = this.layers * this.topK;
    while (n > 0) {
      const full = this.filled === this.size;
      let m = Math.min(n, this.size - this.head);
      if (!full) m = Math.min(m, this.size - this.filled);
      this.pushRun(experts, offset, m, full);
      offset += m * lk;
      n -= m;
    }
  }

  private pushRun(experts: Uint16Array, offset: number, m: number, full: boolean): void {
    const L = this.layers;
    const K = this.topK;
    const E = this.experts;
    const lk = L * K;
    const ring = this.ring;
    const counts = this.counts;
    const up = this.up;
    const down = this.down;
    for (let l = 0; l < L; l++) {
      const base = l * E;
      let sq = this.sumSq[l]!;
      let xl = this.sumXlogX[l]!;
      let z = this.zeros[l]!;
      for (let u = 0, ro = this.head * lk + l * K, src = offset + l * K; u < m; u++, ro += lk, src += lk) {
        // The oldest token leaves (its ids are where the new one's go in the ring), then the new one enters.
        if (full)
          for (let j = 0; j < K; j++) {
            const idx = base + ring[ro + j]!;
            const c = counts[idx]!;
            counts[idx] = c - 1;
            sq -= 2 * c - 1;
            xl += down[c]!;
            if (c === 1) z++;
          }
        for (let j = 0; j < K; j++) {
          const x = experts[src + j]!;
          ring[ro + j] = x;
          const idx = base + x;
          const c = counts[idx]!;
          counts[idx] = c + 1;
          sq += 2 * c + 1;
          xl += up[c]!;
          if (c === 0) z--;
        }
      }
      this.sumSq[l] = sq;
      this.sumXlogX[l] = xl;
      this.zeros[l] = z;
    }
    this.head += m;
    this.next += m;
    if (!full) this.filled += m;
    if (this.head === this.size) {
      this.head = 0;
      this.resum(); // once per W tokens: clears the rounding the incremental Σ c·ln c picks up
    }
  }

  private resum(): void {
    const E = this.experts;
    for (let l = 0; l < this.layers; l++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += this.xlogx[this.counts[l * E + e]!]!;
      this.sumXlogX[l] = s;
    }
  }

  /** Normalised load entropy of layer l in the window, from the running sums (same value as loadEntropy). */
  entropy(l: number): number {
    const s = this.filled * this.topK;
    if (s <= 0 || this.experts < 2) return NaN;
    return Math.max(0, Math.log(s) - this.sumXlogX[l]! / s) / Math.log(this.experts);
  }

  /** Largest expert count of layer l in the window (O(E)). */
  maxCount(l: number): number {
    const E = this.experts;
    let m = 0;
    for (let e = l * E, end = e + E; e < end; e++) if (this.counts[e]! > m) m = this.counts[e]!;
    return m;
  }

  /** Empties the window (the run totals elsewhere are unaffected). */
  clear(): void {
    this.counts.fill(0);
    this.sumSq.fill(0);
    this.sumXlogX.fill(0);
    this.zeros.fill(this.experts);
    this.head = 0;
    this.filled = 0;
  }
}
