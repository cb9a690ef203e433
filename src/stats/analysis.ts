/**
 * TraceAnalysis: everything `moescope stats` reports, composed from the incremental accumulators, and the
 * stable JSON form (docs/metrics.md § The stats JSON). The caller (the command) reads the trace and feeds the
 * batches: `add` for every batch; then, if `wantsSecondPass`, `route` for every batch again; then `result`.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { RoutingStats, type LayerMetrics, type GlobalMetrics, type RoutingStatsOptions } from './routing-stats.js';
import { DEFAULT_COLLAPSE_WINDOW } from './defaults.js';
import type { CollapseRules, CollapseWarning } from './collapse.js';
import { CapacitySim, type LayerCapacity, type PolicyDrops } from './capacity.js';
import { Coactivation, randomCoactivation, type CoactivationPair } from './coactivation.js';
import { RepeatRate } from './repeat.js';
import { DomainSpecialisation, VocabSpecialisation, type DomainResult, type VocabResult } from './specialisation.js';
import { LossFreeBalancer, type LossFreeResult } from './loss-free.js';

/** Version of the JSON layout below; bumped on any incompatible change. */
export const STATS_JSON_VERSION = 1;

export interface AnalysisOptions {
  /** Sliding window (tokens) for collapse detection; 0 = off. */
  window: number;
  collapse?: Partial<CollapseRules>;
  /** N of the top-N share (default K). */
  topN?: number;
  capacityFactor: number;
  /** Tokens per simulated batch for the capacity simulation and the loss-free bias updates. */
  batchTokens: number;
  /** Co-activation pairs listed per layer (0 = skip co-activation). */
  coactivationPairs: number;
  /** MoE layer index (0 … L−1) for vocabulary specialisation; null = skip. */
  vocabLayer: number | null;
  /** Bias update rate u of the loss-free simulation. */
  biasRate: number;
  /** Whether to route the trace a second time with the final loss-free bias. */
  lossFreeSecondPass: boolean;
  /** Where RoutingStats scores logits (default here; the `stats` command hands it a LogitsThread for large routers). */
  logits?: RoutingStatsOptions['logits'];
  /** Zero-computation experts per layer (RoutingStatsOptions.zeroExperts). */
  zeroExperts?: RoutingStatsOptions['zeroExperts'];
}

export function defaultAnalysisOptions(schema: RoutingSchema): AnalysisOptions {
  return {
    window: DEFAULT_COLLAPSE_WINDOW,
    capacityFactor: 1.25,
    batchTokens: 4096,
    coactivationPairs: 5,
    vocabLayer: schema.layers.length - 1,
    biasRate: 1e-3,
    lossFreeSecondPass: true,
  };
}

export interface StatsLayerJson extends Omit<LayerMetrics, 'share'> {
  /** Token rows with a NaN or ±Inf routing weight: first choices (GShard, repeat, capacity's order) treat them as the lowest. */
  nonFiniteWeightRows: number;
  capacity: Omit<LayerCapacity, 'layer'>;
  repeat: { firstChoice: number | null; topTwoOverlap: number | null };
  coactivation: CoactivationPair[] | null;
}

export interface StatsJson {
  version: number;
  tokens: number;
  schema: RoutingSchema;
  topN: number;
  layers: StatsLayerJson[];
  global: GlobalMetrics & { balancedness?: unknown };
  capacity: {
    capacityFactor: number;
    batchTokens: number;
    batches: number;
    droppedShare: number;
    /** Means over layers. */
    probs: PolicyDrops;
    position: PolicyDrops;
  };
  repeat: {
    pairs: number;
    firstChoice: number | null;
    topTwoOverlap: number | null;
    randomFirstChoice: number;
    randomTopTwoOverlap: number | null;
  };
  coactivation: { randomRatio: number } | null;
  /** Token rows (one token at one layer) with NaN or ±Inf values, over all layers; logitRows null without logits. */
  nonFinite: { logitRows: number | null; weightRows: number };
  domains: DomainResult[];
  vocabulary: VocabResult | null;
  lossFree: LossFreeResult | null;
  window: { tokens: number; rules: CollapseRules } | null;
  warnings: CollapseWarning[];
  warningsSuppressed: number;
}

export class TraceAnalysis {
  readonly schema: RoutingSchema;
  readonly options: AnalysisOptions;
  readonly stats: RoutingStats;
  private readonly capacity: CapacitySim;
  private readonly coact: Coactivation | null;
  private readonly repeat: RepeatRate;
  private readonly domains: DomainSpecialisation;
  private readonly vocab: VocabSpecialisation | null;
  private readonly lossFree: LossFreeBalancer | null;

  constructor(schema: RoutingSchema, options: AnalysisOptions) {
    this.schema = schema;
    this.options = options;
    this.stats = new RoutingStats(schema, {
      window: options.window,
      ...(options.collapse ? { collapse: options.collapse } : {}),
      ...(options.topN !== undefined ? { topN: options.topN } : {}),
      ...(options.logits !== undefined ? { logits: options.logits } : {}),
      ...(options.zeroExperts ? { zeroExperts: options.zeroExperts } : {}),
    });
    this.capacity = new CapacitySim(schema, {
      capacityFactor: options.capacityFactor,
      batchTokens: options.batchTokens,
    });
    this.coact = options.coactivationPairs > 0 && schema.topK > 1 ? new Coactivation(schema) : null;
    this.repeat = new RepeatRate(schema);
    this.domains = new DomainSpecialisation(schema);
    this.vocab = options.vocabLayer === null ? null : new VocabSpecialisation(schema, options.vocabLayer);
    this.lossFree = schema.hasLogits
      ? new LossFreeBalancer(schema, { rate: options.biasRate, stepTokens: options.batchTokens })
      : null;
  }

  add(b: RoutingBatch): CollapseWarning[] {
    const fired = this.stats.add(b);
    this.capacity.add(b);
    this.coact?.add(b);
    this.repeat.add(b);
    this.domains.add(b);
    this.vocab?.add(b);
    this.lossFree?.add(b);
    return fired;
  }

  get wantsSecondPass(): boolean {
    return this.lossFree !== null && this.options.lossFreeSecondPass;
  }

  route(b: RoutingBatch): void {
    this.lossFree?.route(b);
  }

  result(extraGlobal: { balancedness?: unknown } = {}): StatsJson {
    const snap = this.stats.snapshot('run');
    const cap = this.capacity.result();
    const rep = this.repeat.result();
    const layers: StatsLayerJson[] = snap.layers.map((m, l) => {
      const { share: _share, ...rest } = m;
      const { layer: _layer, ...capacity } = cap.layers[l]!;
      return {
        ...rest,
        nonFiniteWeightRows: rep.layers[l]!.nonFiniteWeightRows,
        capacity,
        repeat: { firstChoice: rep.layers[l]!.firstChoice, topTwoOverlap: rep.layers[l]!.topTwoOverlap },
        coactivation: this.coact ? this.coact.topPairs(l, this.options.coactivationPairs) : null,
      };
    });
    const meanOf = (xs: (number | null)[]): number | null =>
      xs.length === 0 || xs.some((x) => x === null) ? null : xs.reduce<number>((a, b) => a + b!, 0) / xs.length;
    const policyMean = (p: 'probs' | 'position'): PolicyDrops => ({
      droppedWeightShare: meanOf(cap.layers.map((x) => x[p].droppedWeightShare)) ?? 0,
      tokensAffected: meanOf(cap.layers.map((x) => x[p].tokensAffected)) ?? 0,
      tokensFullyDropped: meanOf(cap.layers.map((x) => x[p].tokensFullyDropped)) ?? 0,
    });
    const w = this.stats.window;
    const det = this.stats.detector;
    return {
      version: STATS_JSON_VERSION,
      tokens: snap.tokens,
      schema: this.schema,
      topN: snap.topN,
      layers,
      global: { ...snap.global, ...extraGlobal },
      capacity: {
        capacityFactor: cap.capacityFactor,
        batchTokens: cap.batchTokens,
        batches: cap.batches,
        droppedShare: cap.droppedShare,
        probs: policyMean('probs'),
        position: policyMean('position'),
      },
      repeat: {
        pairs: rep.layers[0]?.pairs ?? 0,
        firstChoice: meanOf(rep.layers.map((x) => x.firstChoice)),
        topTwoOverlap: meanOf(rep.layers.map((x) => x.topTwoOverlap)),
        randomFirstChoice: rep.randomFirstChoice,
        randomTopTwoOverlap: rep.randomTopTwoOverlap,
      },
      coactivation: this.coact ? { randomRatio: randomCoactivation(this.schema.experts, this.schema.topK) } : null,
      nonFinite: {
        logitRows: snap.global.nonFiniteLogitRows,
        weightRows: rep.layers.reduce((a, x) => a + x.nonFiniteWeightRows, 0),
      },
      domains: this.domains.result(),
      vocabulary: this.vocab ? this.vocab.result() : null,
      lossFree: this.lossFree && this.lossFree.tokens > 0 ? this.lossFree.result() : null,
      window: w && det ? { tokens: w.size, rules: det.rules } : null,
      warnings: this.stats.warnings,
      warningsSuppressed: det ? det.suppressed : 0,
    };
  }
}
