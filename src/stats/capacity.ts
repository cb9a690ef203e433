/**
 * Capacity simulation ("expert buffering"): what a capacity factor would drop on this trace.
 * Tokens are grouped into simulated batches of `batchTokens` consecutive tokens; in each, every expert accepts at
 * most capacity = ⌈T·K/E · cf⌉ assignments (Megatron `apply_router_token_dropping`). Over-capacity assignments
 * are dropped by one of two policies:
 *  - `probs`: each expert keeps its highest-weight assignments (ties: the earlier token);
 *  - `position`: each expert keeps the earliest tokens of the batch.
 * Both drop the same number of assignments per expert; they differ in which — hence in the routing weight lost
 * and the tokens hit. Weights are the recorded routing weights.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { F16_TO_F32 } from '../core/f16.js';
import { UserError } from '../core/errors.js';

export type DropPolicy = 'probs' | 'position';
export const DROP_POLICIES: readonly DropPolicy[] = ['probs', 'position'];

export interface CapacityOptions {
  /** Capacity factor cf (> 0). */
  capacityFactor: number;
  /** Tokens per simulated batch. */
  batchTokens: number;
}

export interface PolicyDrops {
  /** Routing weight of the dropped assignments / all routing weight. */
  droppedWeightShare: number;
  /** Share of tokens that lost at least one of their K experts. */
  tokensAffected: number;
  /** Share of tokens that lost all K experts (they pass the layer through the residual only). */
  tokensFullyDropped: number;
}

export interface LayerCapacity {
  layer: number;
  /** Capacity per expert in a full simulated batch. */
  capacity: number;
  /** Dropped assignments / all assignments (the same under both policies). */
  droppedShare: number;
  /** Dropped assignments per expert. */
  droppedPerExpert: number[];
  probs: PolicyDrops;
  position: PolicyDrops;
}

export interface CapacityResult {
  capacityFactor: number;
  batchTokens: number;
  /** Simulated batches (the last may be shorter). */
  batches: number;
  layers: LayerCapacity[];
  /** Over all layers. */
  droppedShare: number;
}

export function capacityFor(tokens: number, topK: number, experts: number, cf: number): number {
  return Math.ceil(((tokens * topK) / experts) * cf);
}

export class CapacitySim {
  readonly schema: RoutingSchema;
  readonly options: CapacityOptions;
  private readonly L: number;
  private readonly E: number;
  private readonly K: number;
  // The batch being filled, layer-major (bufExperts[l·B·K + t·K + j]) so that a layer's simulation reads one
  // contiguous run instead of K ids every L·K: expert ids and weights as float16 bits.
  private readonly bufExperts: Uint16Array;
  private readonly bufWeights: Uint16Array;
  private fill = 0;
  private batches = 0;
  private assignments = 0;
  private tokens = 0;
  private readonly dropped: Float64Array; // L·E
  private readonly weightTotal: Float64Array; // L
  private readonly droppedWeight: Float64Array; // 2·L: [policy][layer]
  private readonly affected: Float64Array; // 2·L
  private readonly fully: Float64Array; // 2·L
  // Scratch for one layer of one batch.
  private readonly seen: Int32Array; // E: assignments met so far per expert
  private readonly next: Int32Array; // E: where each over-capacity expert's slice of `slices` fills next (−1: not over)
  private readonly lostPos: Uint16Array; // B: experts each token lost, position policy
  private readonly lostProbs: Uint16Array; // B: the same, probs policy
  private readonly slices: Int32Array; // B·K: positions of over-capacity experts' assignments, grouped by expert
  private readonly edge: Int32Array; // B·K: one expert's assignments in the bucket where its cut falls
  private readonly hist: Int32Array; // 256: one byte of the order keys

  constructor(schema: RoutingSchema, options: CapacityOptions) {
    if (!(options.capacityFactor > 0) || !Number.isFinite(options.capacityFactor))
      throw new UserError(`capacity factor must be a positive number, got ${options.capacityFactor}`);
    if (!Number.isInteger(options.batchTokens) || options.batchTokens < 1)
      throw new UserError(`capacity batch must be a positive number of tokens, got ${options.batchTokens}`);
    this.schema = schema;
    this.options = options;
    this.L = schema.layers.length;
    this.E = schema.experts;
    this.K = schema.topK;
    const B = options.batchTokens;
    this.bufExperts = new Uint16Array(B * this.L * this.K);
    this.bufWeights = new Uint16Array(B * this.L * this.K);
    this.dropped = new Float64Array(this.L * this.E);
    this.weightTotal = new Float64Array(this.L);
    this.droppedWeight = new Float64Array(2 * this.L);
    this.affected = new Float64Array(2 * this.L);
    this.fully = new Float64Array(2 * this.L);
    this.seen = new Int32Array(this.E);
    this.next = new Int32Array(this.E);
    this.lostPos = new Uint16Array(B);
    this.lostProbs = new Uint16Array(B);
    this.slices = new Int32Array(B * this.K);
    this.edge = new Int32Array(B * this.K);
    this.hist = new Int32Array(256);
  }

  add(b: RoutingBatch): void {
    const { L, K } = this;
    const lk = L * K;
    const B = this.options.batchTokens;
    const bk = B * K;
    const ex = b.experts;
    const w = b.weights;
    const bufE = this.bufExperts;
    const bufW = this.bufWeights;
    let t = 0;
    while (t < b.length) {
      const n = Math.min(B - this.fill, b.length - t);
      // Token-major (t, l, j) → layer-major (l, t, j).
      for (let l = 0; l < L; l++) {
        let src = t * lk + l * K;
        let dst = l * bk + this.fill * K;
        for (let u = 0; u < n; u++, src += lk - K)
          for (let j = 0; j < K; j++, src++, dst++) {
            bufE[dst] = ex[src]!;
            bufW[dst] = w[src]!;
          }
      }
      this.fill += n;
      t += n;
      if (this.fill === B) this.flush();
    }
  }

  /** Assignments simulated so far, over all layers (the denominator of the overall dropped share). */
  get assignmentCount(): number {
    return this.assignments;
  }

  /** Simulates the tokens of the last, partial batch and returns the result. */
  result(): CapacityResult {
    if (this.fill > 0) this.flush();
    const { L, E } = this;
    const layers: LayerCapacity[] = [];
    const perLayerAssign = this.tokens * this.K;
    let dropAll = 0;
    for (let l = 0; l < L; l++) {
      let d = 0;
      for (let e = 0; e < E; e++) d += this.dropped[l * E + e]!;
      dropAll += d;
      const policy = (p: number): PolicyDrops => ({
        droppedWeightShare: this.weightTotal[l]! > 0 ? this.droppedWeight[p * L + l]! / this.weightTotal[l]! : 0,
        tokensAffected: this.tokens > 0 ? this.affected[p * L + l]! / this.tokens : 0,
        tokensFullyDropped: this.tokens > 0 ? this.fully[p * L + l]! / this.tokens : 0,
      });
      layers.push({
        layer: this.schema.layers[l]!,
        capacity: capacityFor(
          Math.min(this.options.batchTokens, Math.max(this.tokens, 1)),
          this.K,
          E,
          this.options.capacityFactor,
        ),
        droppedShare: perLayerAssign > 0 ? d / perLayerAssign : 0,
        droppedPerExpert: Array.from(this.dropped.subarray(l * E, (l + 1) * E)),
        probs: policy(0),
        position: policy(1),
      });
    }
    return {
      capacityFactor: this.options.capacityFactor,
      batchTokens: this.options.batchTokens,
      batches: this.batches,
      layers,
      droppedShare: this.assignments > 0 ? dropAll / this.assignments : 0,
    };
  }

  /**
   * Simulates the filled batch, one layer at a time, in a few O(T·K) passes (no sort). The dropped-weight sums
   * are exact in float64 whatever order they are added in (every float16 value is a multiple of 2⁻²⁴, so sums
   * below 2²⁹ carry no rounding), which lets each policy add its drops in the order it finds them.
   */
  private flush(): void {
    const { L, E, K } = this;
    const T = this.fill;
    const n = T * K;
    const bk = this.options.batchTokens * K;
    const cap = capacityFor(T, K, E, this.options.capacityFactor);
    const seen = this.seen;
    const next = this.next;
    const lostPos = this.lostPos;
    const lostProbs = this.lostProbs;
    const slices = this.slices;
    const hist = this.hist;
    const edge = this.edge;
    // The token of assignment q is q / K: a shift when K is a power of two (not an integer division).
    const kShift = (K & (K - 1)) === 0 ? 31 - Math.clz32(K) : -1;
    for (let l = 0; l < L; l++) {
      const o = l * bk;
      const ex = this.bufExperts.subarray(o, o + n);
      const wb = this.bufWeights.subarray(o, o + n);
      // Weight total (token order, as before) and the position policy: an expert keeps the first `cap`
      // assignments it meets in token order.
      seen.fill(0);
      lostPos.fill(0, 0, T);
      let wsum = 0;
      let lostWeight = 0;
      for (let t = 0, q = 0; t < T; t++)
        for (let j = 0; j < K; j++, q++) {
          const x = F16_TO_F32[wb[q]!]!;
          wsum += x;
          if (++seen[ex[q]!]! > cap) {
            lostWeight += x;
            lostPos[t]!++;
          }
        }
      this.weightTotal[l]! += wsum;
      this.droppedWeight[L + l]! += lostWeight;
      // Over-capacity experts: where their slices of `slices` start, in expert order.
      let over = 0;
      let fillAt = 0;
      for (let e = 0; e < E; e++) {
        const c = seen[e]!;
        if (c > cap) {
          this.dropped[l * E + e]! += c - cap;
          over++;
          next[e] = fillAt;
          fillAt += c;
        } else next[e] = -1;
      }
      lostProbs.fill(0, 0, T);
      if (over > 0) {
        // probs policy: an over-capacity expert keeps its `cap` highest weights (smallest order keys), the earlier
        // token first among equal weights. Its assignments are gathered in token order; a two-level histogram of
        // the key (high byte, then low byte within the boundary bucket) finds the cut without sorting.
        for (let q = 0; q < n; q++) {
          const e = ex[q]!;
          const at = next[e]!;
          if (at >= 0) {
            slices[at] = q;
            next[e] = at + 1;
          }
        }
        lostWeight = 0;
        for (let e = 0, a = 0; e < E; e++) {
          const c = seen[e]!;
          if (c <= cap) continue;
          const end = a + c;
          hist.fill(0);
          for (let s = a; s < end; s++) hist[weightOrderKey(wb[slices[s]!]!) >>> 8]!++;
          let hi = 0;
          let keep = cap;
          while (hist[hi]! <= keep) keep -= hist[hi++]!;
          // One pass over the slice: a key in a higher bucket is dropped; the boundary bucket's assignments are set
          // aside in token order, with a histogram of their low byte.
          hist.fill(0);
          let nb = 0;
          for (let s = a; s < end; s++) {
            const q = slices[s]!;
            const bits = wb[q]!;
            const k = weightOrderKey(bits);
            const kh = k >>> 8;
            if (kh < hi) continue;
            if (kh === hi) {
              hist[k & 0xff]!++;
              edge[nb++] = q;
              continue;
            }
            lostWeight += F16_TO_F32[bits]!;
            lostProbs[kShift >= 0 ? q >>> kShift : (q / K) | 0]!++;
          }
          let lo = 0;
          while (hist[lo]! <= keep) keep -= hist[lo++]!;
          // Keys above hi·256 + lo are dropped; of those equal to it, the first `keep` in token order stay.
          const cut = (hi << 8) | lo;
          for (let s = 0; s < nb; s++) {
            const q = edge[s]!;
            const k = weightOrderKey(wb[q]!);
            if (k < cut || (k === cut && keep-- > 0)) continue;
            lostWeight += F16_TO_F32[wb[q]!]!;
            lostProbs[kShift >= 0 ? q >>> kShift : (q / K) | 0]!++;
          }
          a = end;
        }
        this.droppedWeight[l]! += lostWeight;
      }
      let affPos = 0;
      let fullPos = 0;
      let affProbs = 0;
      let fullProbs = 0;
      for (let t = 0; t < T; t++) {
        const a = lostPos[t]!;
        const b = lostProbs[t]!;
        if (a > 0) affPos++;
        if (a >= K) fullPos++;
        if (b > 0) affProbs++;
        if (b >= K) fullProbs++;
      }
      this.affected[l]! += affProbs;
      this.fully[l]! += fullProbs;
      this.affected[L + l]! += affPos;
      this.fully[L + l]! += fullPos;
    }
    this.tokens += T;
    this.assignments += T * K * L;
    this.batches++;
    this.fill = 0;
  }
}

/**
 * Float16 bits → a 16-bit key that sorts ascending as the values sort descending (NaN last): positive values
 * have bits ordered like their values, negative ones reversed.
 */
export function weightOrderKey(bits: number): number {
  if ((bits & 0x7fff) > 0x7c00) return 0xffff; // NaN
  const ordered = bits & 0x8000 ? ~bits & 0x7fff : bits | 0x8000; // ascending with the value
  return 0xfffe - ordered;
}
