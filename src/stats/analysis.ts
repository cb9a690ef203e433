/**
 * TraceAnalysis: everything `moescope stats` reports, composed from the incremental accumulators, and the
 * stable JSON form (docs/metrics.md § The stats JSON). The caller (the command) reads the trace and feeds the
 * batches: `add` for every batch; then, if `wantsSecondPass`, `route` for every batch again; then `result`.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import {
  RoutingStats,
  globalMetrics,
  type LayerMetrics,
  type GlobalMetrics,
  type RoutingStatsOptions,
} from './routing-stats.js';
import { DEFAULT_COLLAPSE_WINDOW } from './defaults.js';
import { MAX_WARNINGS_PER_RULE, type CollapseRuleName, type CollapseRules, type CollapseWarning } from './collapse.js';
import { CapacitySim, type LayerCapacity, type PolicyDrops } from './capacity.js';
import { Coactivation, randomCoactivation, type CoactivationPair } from './coactivation.js';
import { RepeatRate, randomTopTwoOverlap } from './repeat.js';
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
  /**
   * Whether to run the whole-token analyses (domains, vocabulary, loss-free replay; default true). Off in the
   * analysis of a layer range (src/stats/layer-split.ts): they read every layer, so one WholeTokenAnalyses over the
   * whole batches runs them beside the ranges.
   */
  wholeToken?: boolean;
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
  private readonly whole: WholeTokenAnalyses | null;

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
    this.whole = options.wholeToken === false ? null : new WholeTokenAnalyses(schema, options);
  }

  add(b: RoutingBatch): CollapseWarning[] {
    const fired = this.stats.add(b);
    this.capacity.add(b);
    this.coact?.add(b);
    this.repeat.add(b);
    this.whole?.add(b);
    return fired;
  }

  get wantsSecondPass(): boolean {
    return this.whole?.wantsSecondPass ?? false;
  }

  route(b: RoutingBatch): void {
    this.whole?.route(b);
  }

  /** The layers' share of the result (all of this analysis' layers, from position `firstLayer` of the trace's). */
  layerPart(firstLayer = 0): LayerPart {
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
    const w = this.stats.window;
    const det = this.stats.detector;
    return {
      firstLayer,
      tokens: snap.tokens,
      topN: snap.topN,
      layers,
      pooledHfAuxLoss: snap.global.hfAuxLoss,
      capacityBatches: cap.batches,
      capacityAssignments: this.capacity.assignmentCount,
      repeatPairs: rep.layers[0]?.pairs ?? 0,
      window: w && det ? { tokens: w.size, rules: det.rules } : null,
      warnings: this.stats.warnings,
      firedByRule: det ? det.firedByRule() : {},
    };
  }

  result(extraGlobal: { balancedness?: unknown } = {}): StatsJson {
    const whole = this.whole ? this.whole.result() : { domains: [], vocabulary: null, lossFree: null };
    return mergeStats(this.schema, this.options, [this.layerPart()], whole, extraGlobal);
  }
}

/** The analyses that read every layer of a token (domain and vocabulary specialisation, the loss-free replay). */
export class WholeTokenAnalyses {
  private readonly options: AnalysisOptions;
  private readonly domains: DomainSpecialisation;
  private readonly vocab: VocabSpecialisation | null;
  private readonly lossFree: LossFreeBalancer | null;

  constructor(schema: RoutingSchema, options: AnalysisOptions) {
    this.options = options;
    this.domains = new DomainSpecialisation(schema);
    this.vocab = options.vocabLayer === null ? null : new VocabSpecialisation(schema, options.vocabLayer);
    this.lossFree = schema.hasLogits
      ? new LossFreeBalancer(schema, { rate: options.biasRate, stepTokens: options.batchTokens })
      : null;
  }

  add(b: RoutingBatch): void {
    this.domains.add(b);
    this.vocab?.add(b);
    this.lossFree?.add(b);
  }

  get wantsSecondPass(): boolean {
    return this.lossFree !== null && this.options.lossFreeSecondPass;
  }

  route(b: RoutingBatch): void {
    this.lossFree?.route(b);
  }

  result(): WholeTokenPart {
    return {
      domains: this.domains.result(),
      vocabulary: this.vocab ? this.vocab.result() : null,
      lossFree: this.lossFree && this.lossFree.tokens > 0 ? this.lossFree.result() : null,
    };
  }
}

/**
 * One range of consecutive layers' share of a StatsJson: the per-layer rows and the raw values the overall ones
 * are made from. The analyses are independent per layer, so a trace's layers can be analysed in ranges (in
 * worker threads: src/stats/layer-threads.ts) and put back together by `mergeStats`, byte for byte the result of
 * one analysis over every layer.
 */
export interface LayerPart {
  /** Position of the range's first layer among the trace's MoE layers. */
  firstLayer: number;
  tokens: number;
  topN: number;
  layers: StatsLayerJson[];
  /** HF's loss pooled over the range's layers: mergeable only as one part (ranges are split without logits). */
  pooledHfAuxLoss: number | null;
  capacityBatches: number;
  /** Assignments the capacity simulation met, over the range's layers. */
  capacityAssignments: number;
  repeatPairs: number;
  window: { tokens: number; rules: CollapseRules } | null;
  /** Warnings kept, in the order they fired; their layerIndex counts from the range's first layer. */
  warnings: CollapseWarning[];
  /** Warnings fired per rule, kept or not. */
  firedByRule: Partial<Record<CollapseRuleName, number>>;
}

/** The analyses over whole tokens: counted once, by the thread that sees every layer. */
export interface WholeTokenPart {
  domains: DomainResult[];
  vocabulary: VocabResult | null;
  lossFree: LossFreeResult | null;
}

/**
 * The StatsJson of a whole trace from its layer ranges' parts (in layer order, covering every layer once) and the
 * whole-token analyses. Overall values are computed from the per-layer ones in layer order, as one analysis does.
 * Collapse warnings: every range evaluates at the same tokens, and one evaluation visits layers in order, so the
 * one analysis' order is the ranges' lists merged by first token, earlier ranges first among equals; the kept limit
 * per rule is applied again to that order (a warning kept overall was kept by its range, which saw fewer before it).
 */
export function mergeStats(
  schema: RoutingSchema,
  options: AnalysisOptions,
  parts: readonly LayerPart[],
  whole: WholeTokenPart,
  extraGlobal: { balancedness?: unknown } = {},
): StatsJson {
  const first = parts[0]!;
  if (parts.length > 1 && parts.some((p) => p.pooledHfAuxLoss !== null))
    throw new Error('the pooled HF loss cannot be merged from layer ranges: analyse a trace with logits whole');
  const layers = parts.flatMap((p) => p.layers);
  if (layers.length !== schema.layers.length)
    throw new Error(`layer parts cover ${layers.length} layers; the schema has ${schema.layers.length}`);
  const meanOf = (xs: (number | null)[]): number | null =>
    xs.length === 0 || xs.some((x) => x === null) ? null : xs.reduce<number>((a, b) => a + b!, 0) / xs.length;
  const policyMean = (p: 'probs' | 'position'): PolicyDrops => ({
    droppedWeightShare: meanOf(layers.map((x) => x.capacity[p].droppedWeightShare)) ?? 0,
    tokensAffected: meanOf(layers.map((x) => x.capacity[p].tokensAffected)) ?? 0,
    tokensFullyDropped: meanOf(layers.map((x) => x.capacity[p].tokensFullyDropped)) ?? 0,
  });
  let dropAll = 0;
  for (const x of layers) {
    let d = 0;
    for (const c of x.capacity.droppedPerExpert) d += c;
    dropAll += d;
  }
  const assignments = parts.reduce((a, p) => a + p.capacityAssignments, 0);
  const global = globalMetrics(layers, first.tokens, first.pooledHfAuxLoss);
  const E = schema.experts;
  const K = schema.topK;
  const coact = options.coactivationPairs > 0 && K > 1;
  const { warnings, suppressed } = mergeWarnings(parts);
  return {
    version: STATS_JSON_VERSION,
    tokens: first.tokens,
    schema,
    topN: first.topN,
    layers,
    global: { ...global, ...extraGlobal },
    capacity: {
      capacityFactor: options.capacityFactor,
      batchTokens: options.batchTokens,
      batches: first.capacityBatches,
      droppedShare: assignments > 0 ? dropAll / assignments : 0,
      probs: policyMean('probs'),
      position: policyMean('position'),
    },
    repeat: {
      pairs: first.repeatPairs,
      firstChoice: meanOf(layers.map((x) => x.repeat.firstChoice)),
      topTwoOverlap: meanOf(layers.map((x) => x.repeat.topTwoOverlap)),
      randomFirstChoice: 1 / E,
      randomTopTwoOverlap: K >= 2 && E >= 2 ? randomTopTwoOverlap(E) : null,
    },
    coactivation: coact ? { randomRatio: randomCoactivation(E, K) } : null,
    nonFinite: {
      logitRows: global.nonFiniteLogitRows,
      weightRows: layers.reduce((a, x) => a + x.nonFiniteWeightRows, 0),
    },
    domains: whole.domains,
    vocabulary: whole.vocabulary,
    lossFree: whole.lossFree,
    window: first.window,
    warnings,
    warningsSuppressed: suppressed,
  };
}

/** The ranges' warnings in the one analysis' order, the kept limit per rule applied again; and how many were not kept. */
function mergeWarnings(parts: readonly LayerPart[]): { warnings: CollapseWarning[]; suppressed: number } {
  const at = parts.map(() => 0);
  const kept: Partial<Record<CollapseRuleName, number>> = {};
  const warnings: CollapseWarning[] = [];
  for (;;) {
    let best = -1;
    for (let i = 0; i < parts.length; i++) {
      const w = parts[i]!.warnings[at[i]!];
      if (w && (best < 0 || w.firstToken < parts[best]!.warnings[at[best]!]!.firstToken)) best = i;
    }
    if (best < 0) break;
    const p = parts[best]!;
    const w = p.warnings[at[best]!++]!;
    const n = (kept[w.rule] = (kept[w.rule] ?? 0) + 1);
    if (n <= MAX_WARNINGS_PER_RULE)
      warnings.push(p.firstLayer === 0 ? w : { ...w, layerIndex: w.layerIndex + p.firstLayer });
  }
  let fired = 0;
  for (const p of parts) for (const n of Object.values(p.firedByRule)) fired += n;
  return { warnings, suppressed: fired - warnings.length };
}
