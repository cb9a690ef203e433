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
    const lk = this.layers * this.topK;
    const k = this.topK;
    const E = this.experts;
    const ring = this.ring;
    const ro = this.head * lk;
    if (this.filled === this.size) {
      for (let l = 0, i = ro; l < this.layers; l++) {
        const base = l * E;
        for (let j = 0; j < k; j++, i++) this.dec(l, base + ring[i]!);
      }
    } else this.filled++;
    for (let l = 0, i = 0; l < this.layers; l++) {
      const base = l * E;
      for (let j = 0; j < k; j++, i++) {
        const x = experts[offset + i]!;
        ring[ro + i] = x;
        this.inc(l, base + x);
      }
    }
    this.head++;
    this.next++;
    if (this.head === this.size) {
      this.head = 0;
      this.resum(); // once per W tokens: clears the rounding the incremental Σ c·ln c picks up
    }
  }

  private inc(l: number, idx: number): void {
    const c = this.counts[idx]!;
    this.counts[idx] = c + 1;
    this.sumSq[l] += 2 * c + 1;
    this.sumXlogX[l] += this.xlogx[c + 1]! - this.xlogx[c]!;
    if (c === 0) this.zeros[l]!--;
  }

  private dec(l: number, idx: number): void {
    const c = this.counts[idx]!;
    this.counts[idx] = c - 1;
    this.sumSq[l] -= 2 * c - 1;
    this.sumXlogX[l] += this.xlogx[c - 1]! - this.xlogx[c]!;
    if (c === 1) this.zeros[l]!++;
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
