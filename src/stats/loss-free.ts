/**
 * DeepSeek auxiliary-loss-free balancing (arXiv 2408.15664; DeepSeek-V3 arXiv 2412.19437 §2.1.2) replayed on a
 * trace: experts are selected by top-K of s + b (s = router score: sigmoid for sigmoid routers, softmax
 * probability otherwise) and, after every simulated batch of `stepTokens` tokens, b_i ← b_i + u·sign(c̄ − c_i).
 *
 * Pass 1 (`add`) runs the updates over the trace and records the load under the evolving bias (what training
 * with this rule would have routed). Pass 2 (`route`, optional, the same batches again) freezes the final bias and
 * routes every token with it: the routing that bias gives. Plain top-K on s + b (no group/node limit).
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { rankTopInto } from '../core/topk.js';
import { loadMaxVio } from './load.js';
import { routerScores } from './scores.js';

export interface LossFreeOptions {
  /** Bias update speed u (DeepSeek-V3: 0.001). */
  rate: number;
  /** Tokens per simulated batch between updates. */
  stepTokens: number;
}

export interface LossFreeLayer {
  layer: number;
  /** The bias per expert after the last update. */
  bias: number[];
  /** MaxVio of the load under the evolving bias (pass 1). */
  maxVioOnline: number;
  /** MaxVio of the load routed with the final bias (pass 2), or null when pass 2 was not run. */
  maxVioFinal: number | null;
  /** Load per expert routed with the final bias (pass 2), or null. */
  loadFinal: number[] | null;
  /** Share of assignments the final bias moves to another expert compared with the recorded routing (pass 2). */
  changedShare: number | null;
}

export interface LossFreeResult {
  rate: number;
  stepTokens: number;
  steps: number;
  /** Tokens with logits used. */
  tokens: number;
  layers: LossFreeLayer[];
  maxVioOnline: number;
  maxVioFinal: number | null;
}

export class LossFreeBalancer {
  readonly schema: RoutingSchema;
  readonly options: LossFreeOptions;
  private readonly L: number;
  private readonly E: number;
  private readonly K: number;
  /** b[l·E + e]. */
  readonly bias: Float64Array;
  private readonly stepCount: Float64Array;
  private readonly online: Float64Array;
  private readonly final: Float64Array;
  private readonly changed: Float64Array;
  private readonly routedRows: Float64Array;
  private readonly scores: Float64Array;
  private readonly biased: Float64Array;
  private readonly idx: Int32Array;
  private readonly val: Float64Array;
  private readonly mark: Int32Array;
  private stamp = 0;
  private inStep = 0;
  private steps = 0;
  /** Tokens seen by pass 1. */
  tokens = 0;
  private routed = 0;

  constructor(schema: RoutingSchema, options: LossFreeOptions) {
    if (!schema.hasLogits) throw new UserError('loss-free balancing needs router logits; this stream has none');
    if (!(options.rate > 0) || !Number.isFinite(options.rate))
      throw new UserError(`bias update rate must be a positive number, got ${options.rate}`);
    if (!Number.isInteger(options.stepTokens) || options.stepTokens < 1)
      throw new UserError(`bias update step must be a positive number of tokens, got ${options.stepTokens}`);
    this.schema = schema;
    this.options = options;
    const L = (this.L = schema.layers.length);
    const E = (this.E = schema.experts);
    this.K = schema.topK;
    this.bias = new Float64Array(L * E);
    this.stepCount = new Float64Array(L * E);
    this.online = new Float64Array(L * E);
    this.final = new Float64Array(L * E);
    this.changed = new Float64Array(L);
    this.routedRows = new Float64Array(L);
    this.scores = new Float64Array(E);
    this.biased = new Float64Array(E);
    this.idx = new Int32Array(this.K);
    this.val = new Float64Array(this.K);
    this.mark = new Int32Array(E);
  }

  /** Top-K of s + b for token t, layer l into this.idx; false when the token has no valid logits. */
  private select(b: RoutingBatch, t: number, l: number): boolean {
    const E = this.E;
    if (!routerScores(b.logits!, (t * this.L + l) * E, E, this.schema.scoring, this.scores)) return false;
    const base = l * E;
    for (let e = 0; e < E; e++) this.biased[e] = this.scores[e]! + this.bias[base + e]!;
    rankTopInto(this.biased, 0, E, this.idx, this.val);
    return true;
  }

  /** Pass 1: route with the current bias, update it every stepTokens tokens. */
  add(b: RoutingBatch): void {
    if (!b.logits) return;
    const { L, E, K } = this;
    for (let t = 0; t < b.length; t++) {
      for (let l = 0; l < L; l++) {
        if (!this.select(b, t, l)) continue;
        for (let j = 0; j < K; j++) {
          const i = l * E + this.idx[j]!;
          this.stepCount[i]!++;
          this.online[i]!++;
        }
      }
      this.tokens++;
      if (++this.inStep === this.options.stepTokens) this.update();
    }
  }

  private update(): void {
    const { L, E } = this;
    const u = this.options.rate;
    for (let l = 0; l < L; l++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += this.stepCount[l * E + e]!;
      const mean = s / E;
      for (let e = 0; e < E; e++) this.bias[l * E + e]! += u * Math.sign(mean - this.stepCount[l * E + e]!);
    }
    this.stepCount.fill(0);
    this.inStep = 0;
    this.steps++;
  }

  /** Pass 2: route the same batches with the final (frozen) bias. Call after every `add`. */
  route(b: RoutingBatch): void {
    if (!b.logits) return;
    const { L, E, K } = this;
    for (let t = 0; t < b.length; t++) {
      for (let l = 0; l < L; l++) {
        if (!this.select(b, t, l)) continue;
        this.routedRows[l]!++;
        const s = ++this.stamp;
        const o = (t * L + l) * K;
        for (let j = 0; j < K; j++) this.mark[b.experts[o + j]!] = s;
        for (let j = 0; j < K; j++) {
          const e = this.idx[j]!;
          this.final[l * E + e]!++;
          if (this.mark[e] !== s) this.changed[l]!++;
        }
      }
      this.routed++;
    }
  }

  result(): LossFreeResult {
    const { E, K } = this;
    const pass2 = this.routed > 0;
    const layers = this.schema.layers.map((layer, l) => ({
      layer,
      bias: Array.from(this.bias.subarray(l * E, (l + 1) * E)),
      maxVioOnline: loadMaxVio(this.online, l * E, E),
      maxVioFinal: pass2 ? loadMaxVio(this.final, l * E, E) : null,
      loadFinal: pass2 ? Array.from(this.final.subarray(l * E, (l + 1) * E)) : null,
      changedShare: pass2 && this.routedRows[l]! > 0 ? this.changed[l]! / (this.routedRows[l]! * K) : null,
    }));
    const mean = (f: (x: LossFreeLayer) => number) => layers.reduce((s, x) => s + f(x), 0) / layers.length;
    return {
      rate: this.options.rate,
      stepTokens: this.options.stepTokens,
      steps: this.steps,
      tokens: this.tokens,
      layers,
      maxVioOnline: mean((x) => x.maxVioOnline),
      maxVioFinal: pass2 ? mean((x) => x.maxVioFinal!) : null,
    };
  }
}
