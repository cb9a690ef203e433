/**
 * Ring buffers of per-token data: the last C tokens of the stream, addressed by their stream index, so views can
 * show text, per-layer routing and (when captured) router logits of recent tokens without keeping a whole run.
 * A token stays readable until C newer tokens have arrived (`has(i)`).
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import type { MemorySample } from '../core/memory.js';

export class TokenRing {
  readonly capacity: number;
  /** Tokens whose logits are kept (≤ capacity; logits are L·E per token, so this ring is shorter). */
  readonly logitsCapacity: number;
  readonly L: number;
  readonly K: number;
  readonly E: number;
  private readonly seq: Uint32Array;
  private readonly pos: Uint32Array;
  private readonly tokenId: Int32Array;
  private readonly text: string[];
  private readonly isPrompt: Uint8Array;
  private readonly tMs: Float64Array;
  private readonly tag: (string | null)[];
  private readonly experts: Uint16Array;
  private readonly weights: Uint16Array;
  private readonly logits: Uint16Array | null;
  private next = 0;

  constructor(schema: RoutingSchema, capacity: number, logitsBytes = 64 * 1024 * 1024) {
    this.L = schema.layers.length;
    this.K = schema.topK;
    this.E = schema.experts;
    this.capacity = Math.max(1, capacity);
    const c = this.capacity;
    this.seq = new Uint32Array(c);
    this.pos = new Uint32Array(c);
    this.tokenId = new Int32Array(c);
    this.text = new Array<string>(c).fill('');
    this.isPrompt = new Uint8Array(c);
    this.tMs = new Float64Array(c);
    this.tag = new Array<string | null>(c).fill(null);
    this.experts = new Uint16Array(c * this.L * this.K);
    this.weights = new Uint16Array(c * this.L * this.K);
    const le = this.L * this.E;
    this.logitsCapacity = schema.hasLogits ? Math.max(1, Math.min(c, Math.floor(logitsBytes / (2 * le)))) : 0;
    this.logits = schema.hasLogits ? new Uint16Array(this.logitsCapacity * le) : null;
  }

  /** Stream index one past the newest token. */
  get end(): number {
    return this.next;
  }

  /** Stream index of the oldest token still held. */
  get start(): number {
    return Math.max(0, this.next - this.capacity);
  }

  has(i: number): boolean {
    return i >= this.start && i < this.next;
  }

  hasLogits(i: number): boolean {
    return this.logits !== null && i >= Math.max(0, this.next - this.logitsCapacity) && i < this.next;
  }

  push(b: RoutingBatch): void {
    const lk = this.L * this.K;
    const le = this.L * this.E;
    for (let t = 0; t < b.length; t++) {
      const s = this.next % this.capacity;
      this.seq[s] = b.seq[t]!;
      this.pos[s] = b.pos[t]!;
      this.tokenId[s] = b.tokenId[t]!;
      this.text[s] = b.token[t] ?? '';
      this.isPrompt[s] = b.isPrompt[t]!;
      this.tMs[s] = Number(b.tNs[t]! / 1_000_000n);
      this.tag[s] = b.tag ? (b.tag[t] ?? null) : null;
      this.experts.set(b.experts.subarray(t * lk, (t + 1) * lk), s * lk);
      this.weights.set(b.weights.subarray(t * lk, (t + 1) * lk), s * lk);
      if (this.logits && b.logits) {
        const ls = this.next % this.logitsCapacity;
        this.logits.set(b.logits.subarray(t * le, (t + 1) * le), ls * le);
      }
      this.next++;
    }
  }

  clear(): void {
    this.next = 0;
  }

  private slot(i: number): number {
    if (!this.has(i)) throw new RangeError(`token ${i} is not in the ring [${this.start}, ${this.next})`);
    return i % this.capacity;
  }

  token(i: number): string {
    return this.text[this.slot(i)]!;
  }
  seqOf(i: number): number {
    return this.seq[this.slot(i)]!;
  }
  posOf(i: number): number {
    return this.pos[this.slot(i)]!;
  }
  tokenIdOf(i: number): number {
    return this.tokenId[this.slot(i)]!;
  }
  isPromptAt(i: number): boolean {
    return this.isPrompt[this.slot(i)] === 1;
  }
  /** Capture time in ms since the epoch. */
  timeMs(i: number): number {
    return this.tMs[this.slot(i)]!;
  }
  tagOf(i: number): string | null {
    return this.tag[this.slot(i)]!;
  }
  /** Expert id of slot k at layer index l. */
  expert(i: number, l: number, k: number): number {
    return this.experts[(this.slot(i) * this.L + l) * this.K + k]!;
  }
  /** Routing weight (float16 bits) of slot k at layer index l. */
  weightBits(i: number, l: number, k: number): number {
    return this.weights[(this.slot(i) * this.L + l) * this.K + k]!;
  }
  /** The L·K expert ids of token i (a view: valid until the ring wraps). */
  expertsOf(i: number): Uint16Array {
    const lk = this.L * this.K;
    const s = this.slot(i);
    return this.experts.subarray(s * lk, (s + 1) * lk);
  }
  /** The L·E logits (float16 bits) of token i, or null when not kept. */
  logitsOf(i: number): Uint16Array | null {
    if (!this.hasLogits(i)) return null;
    const le = this.L * this.E;
    const s = i % this.logitsCapacity;
    return this.logits!.subarray(s * le, (s + 1) * le);
  }
}

/** The last `capacity` memory samples, oldest first. */
export class SampleRing {
  private readonly buf: MemorySample[] = [];
  constructor(readonly capacity: number) {}
  push(s: MemorySample): void {
    this.buf.push(s);
    if (this.buf.length > this.capacity) this.buf.splice(0, this.buf.length - this.capacity);
  }
  clear(): void {
    this.buf.length = 0;
  }
  get length(): number {
    return this.buf.length;
  }
  latest(): MemorySample | null {
    return this.buf[this.buf.length - 1] ?? null;
  }
  /** A copy, oldest first. */
  toArray(): MemorySample[] {
    return this.buf.slice();
  }
  /** Samples with tNs < t (for replay seeking). */
  truncateAfter(tNs: bigint): void {
    let n = this.buf.length;
    while (n > 0 && this.buf[n - 1]!.tNs > tNs) n--;
    this.buf.length = n;
  }
}
