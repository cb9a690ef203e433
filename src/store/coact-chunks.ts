/**
 * The live views' co-activation counts (src/stats/coactivation.ts), added CHUNK tokens at a time. Coactivation
 * counts layer by layer so that one layer's E² counters stay in cache over a batch; live batches are small (one
 * token per decode step), so each token's 28 pairs per layer landed on cold counters: at DeepSeek-V3 scale
 * (58 × 256², 15 MiB of counters) about 35 µs per token, against about 9 µs in chunks of 1,024 (measured with
 * stats' Coactivation over the synthetic stream of bench/ingest.ts). The counts are integers, so adding them
 * later in larger groups gives the same counts; every read adds the held tokens first.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { Coactivation, type CoactivationPair } from '../stats/coactivation.js';

/** Tokens held before they are counted. */
const CHUNK = 1024;

export class ChunkedCoactivation {
  private readonly coact: Coactivation;
  /** The held tokens' expert ids, L·K per token, as in a batch. */
  private readonly held: Uint16Array;
  private readonly lk: number;
  private tokens = 0;

  constructor(schema: RoutingSchema) {
    this.coact = new Coactivation(schema);
    this.lk = schema.layers.length * schema.topK;
    this.held = new Uint16Array(CHUNK * this.lk);
  }

  add(b: Pick<RoutingBatch, 'length' | 'experts'>): void {
    const { lk } = this;
    for (let t = 0; t < b.length; ) {
      const n = Math.min(b.length - t, CHUNK - this.tokens);
      this.held.set(b.experts.subarray(t * lk, (t + n) * lk), this.tokens * lk);
      this.tokens += n;
      t += n;
      if (this.tokens === CHUNK) this.flush();
    }
  }

  /** The `count` pairs of layer l with the highest ratio, every token added so far counted (Coactivation.topPairs). */
  topPairs(l: number, count: number): CoactivationPair[] {
    this.flush();
    return this.coact.topPairs(l, count);
  }

  private flush(): void {
    if (this.tokens === 0) return;
    // Coactivation reads a batch's length and expert ids only.
    this.coact.add({ length: this.tokens, experts: this.held.subarray(0, this.tokens * this.lk) } as RoutingBatch);
    this.tokens = 0;
  }
}
