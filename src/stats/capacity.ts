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
  // The batch being filled: B·L·K experts and weights.
  private readonly bufExperts: Uint16Array;
  private readonly bufWeights: Float32Array;
  /** The same weights as order keys: a larger weight has a smaller key (see weightOrderKey). */
  private readonly bufKeys: Uint16Array;
  private fill = 0;
  private batches = 0;
  private assignments = 0;
  private tokens = 0;
  private readonly dropped: Float64Array; // L·E
  private readonly weightTotal: Float64Array; // L
  private readonly droppedWeight: Float64Array; // 2·L: [policy][layer]
  private readonly affected: Float64Array; // 2·L
  private readonly fully: Float64Array; // 2·L
  // Scratch for one layer of one batch. After the expert pass, start[e] … start[e+1] is expert e's slice.
  private readonly start: Int32Array;
  private readonly order: Int32Array;
  private readonly lostPerToken: Uint16Array;
  private readonly orderProbs: Int32Array;
  private readonly scratch: Int32Array;
  private readonly buckets: Int32Array;

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
    this.bufWeights = new Float32Array(B * this.L * this.K);
    this.bufKeys = new Uint16Array(B * this.L * this.K);
    this.dropped = new Float64Array(this.L * this.E);
    this.weightTotal = new Float64Array(this.L);
    this.droppedWeight = new Float64Array(2 * this.L);
    this.affected = new Float64Array(2 * this.L);
    this.fully = new Float64Array(2 * this.L);
    this.start = new Int32Array(this.E + 1);
    this.order = new Int32Array(B * this.K);
    this.lostPerToken = new Uint16Array(B);
    this.orderProbs = new Int32Array(B * this.K);
    this.scratch = new Int32Array(B * this.K);
    this.buckets = new Int32Array(257);
  }

  add(b: RoutingBatch): void {
    const lk = this.L * this.K;
    const B = this.options.batchTokens;
    let t = 0;
    while (t < b.length) {
      const n = Math.min(B - this.fill, b.length - t);
      this.bufExperts.set(b.experts.subarray(t * lk, (t + n) * lk), this.fill * lk);
      const w = b.weights;
      for (let i = t * lk, j = this.fill * lk, end = (t + n) * lk; i < end; i++, j++) {
        this.bufWeights[j] = F16_TO_F32[w[i]!]!;
        this.bufKeys[j] = weightOrderKey(w[i]!);
      }
      this.fill += n;
      t += n;
      if (this.fill === B) this.flush();
    }
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
        capacity: capacityFor(Math.min(this.options.batchTokens, Math.max(this.tokens, 1)), this.K, E, this.options.capacityFactor),
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

  private flush(): void {
    const { L, E, K } = this;
    const T = this.fill;
    const n = T * K;
    const cap = capacityFor(T, K, E, this.options.capacityFactor);
    const ex = this.bufExperts;
    const wt = this.bufWeights;
    const keys = this.bufKeys;
    const byPos = this.order;
    const byProbs = this.orderProbs;
    const tmp = this.scratch;
    const start = this.start;
    const lost = this.lostPerToken;
    for (let l = 0; l < L; l++) {
      // This layer's assignments (buffer indices) in token order.
      let wsum = 0;
      for (let t = 0, q = 0; t < T; t++)
        for (let j = 0, i = (t * L + l) * K; j < K; j++, i++, q++) {
          tmp[q] = i;
          wsum += wt[i]!;
        }
      this.weightTotal[l]! += wsum;
      // position policy order: grouped by expert, token order within (stable counting sort).
      countingSort(tmp, byPos, n, (i) => ex[i]!, E, start);
      // probs policy order: by weight key (two stable byte passes), then grouped by expert — so within an
      // expert, highest weight first and, among equal weights, the earlier token first.
      countingSort(tmp, byProbs, n, (i) => keys[i]! & 0xff, 256, this.buckets);
      countingSort(byProbs, tmp, n, (i) => keys[i]! >>> 8, 256, this.buckets);
      countingSort(tmp, byProbs, n, (i) => ex[i]!, E, start);
      for (let e = 0; e < E; e++) {
        const over = start[e + 1]! - start[e]! - cap;
        if (over > 0) this.dropped[l * E + e]! += over;
      }
      for (let p = 0; p < 2; p++) {
        const order = p === 0 ? byProbs : byPos;
        lost.fill(0, 0, T);
        for (let e = 0; e < E; e++) {
          const a = start[e]!;
          const end = start[e + 1]!;
          for (let q = a + cap; q < end; q++) this.drop(p, l, order[q]!, lost);
        }
        for (let t = 0; t < T; t++) {
          if (lost[t]! > 0) this.affected[p * L + l]!++;
          if (lost[t]! >= K) this.fully[p * L + l]!++;
        }
      }
    }
    this.tokens += T;
    this.assignments += T * K * L;
    this.batches++;
    this.fill = 0;
  }

  private drop(p: number, l: number, i: number, lost: Uint16Array): void {
    this.droppedWeight[p * this.L + l]! += this.bufWeights[i]!;
    lost[Math.floor(i / (this.L * this.K))]!++;
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

/**
 * Stable counting sort of src[0 … n) into dst by bucket(item) ∈ [0, buckets); `start` (length ≥ buckets + 1)
 * receives each bucket's first position, start[buckets] = n.
 */
function countingSort(src: Int32Array, dst: Int32Array, n: number, bucket: (i: number) => number, buckets: number, start: Int32Array): void {
  start.fill(0, 0, buckets + 1);
  for (let q = 0; q < n; q++) start[bucket(src[q]!) + 1]!++;
  for (let b = 0; b < buckets; b++) start[b + 1]! += start[b]!;
  const next = start.slice(0, buckets);
  for (let q = 0; q < n; q++) {
    const i = src[q]!;
    dst[next[bucket(i)]!++] = i;
  }
}
