/**
 * CountAnalysis: what `moescope stats` reports for a count trace (load counts per step, layer and bin — SGLang's
 * expert-distribution dumps, Prometheus scrapes, vLLM's EPLB windows). Every number is a formula that counts
 * define, computed by the same code as from tokens:
 *  - per-expert load metrics (CV, MaxVio, entropy, dead, top-N share, coverage) — RoutingStats.addCounts fills the
 *    same run counts that tokens fill, and layerMetrics / snapshot read them (axis expert);
 *  - balancedness, both conventions — balancedness.ts over per-device loads: the counts themselves (axis device),
 *    or per-expert loads under the trace's placement (its redundant replicas sharing their expert's load) or a
 *    contiguous one over `devices`;
 *  - drift — jsDivergence between the load of the first and the last quarter of the steps.
 * Metrics that need one row per token (losses, router margins, co-activation, capacity drops, repetition,
 * specialisation, loss-free replay) are listed in `needsTokens`, never estimated.
 */
import type { RoutingSchema } from '../core/batch.js';
import type { CountAxis, CountBatch } from '../core/count-batch.js';
import { UserError } from '../core/errors.js';
import { RoutingStats, type GlobalMetrics, type LayerMetrics } from './routing-stats.js';
import { balancednessOfDeviceLoads, balancedness } from './balancedness.js';
import { contiguousPlacement, deviceLoads, type Placement } from './placement.js';
import { deviceTotals } from './device-load.js';
import { jsDivergence } from './load.js';
import { METRICS } from './catalogue.js';
import { marginHistogramOf, type LogitSumRecord } from './logit-sums.js';
import { logitsSnapshotOf } from './live-logits.js';
import type { MarginHistogram } from './margin-histogram.js';

const COUNT_STATS_JSON_VERSION = 1;

/**
 * What a count trace cannot give: the catalogue's per-layer metrics flagged `needsTokens` (src/stats/catalogue.ts),
 * then the per-token analyses `moescope stats` runs beside them.
 */
const perTokenMetrics = (withLogits: boolean): string[] => [
  ...METRICS.filter((m) => m.needsTokens && !(withLogits && m.needsLogits)).map((m) => `${m.label} (${m.convention})`),
  'co-activation of expert pairs',
  'capacity-factor drops',
  'consecutive-token repetition',
  'domain and vocabulary specialisation',
  'DeepSeek loss-free balancing replay',
  'collapse warnings over a token window',
];

export interface CountInfo {
  axis: CountAxis;
  bins: number;
  /** Whether schema.topK is the producer's K (tokens = assignments ÷ K); false: tokens are unknown. */
  topKKnown: boolean;
  /** Placement the counts were measured under (redundant replicas included), when the producer had one. */
  placement?: { devices: number; phy2log: number[][] } | null;
}

export interface CountAnalysisOptions {
  /** Total rows the caller will add (from the trace index): fixes the first / last quarter for drift. */
  totalSteps: number;
  /** Balancedness of expert counts over D devices, contiguous placement (overrides the trace's placement). */
  devices?: number;
  /** N of the top-N share (default K). */
  topN?: number;
  /**
   * The logits sums of the same tokens (a dataset's, from an engine: src/scale/logit-engine.ts): the logits metrics
   * (losses, z-loss, entropy, margins) are then computed from them by the same formulas as from a stream.
   */
  logits?: LogitSumRecord;
}

export type CountLayerMetrics = Omit<LayerMetrics, 'share'>;

export interface CountDevicesJson {
  /** Where the expert → device mapping came from: the trace's own placement, a contiguous one, or device counts. */
  placement: 'trace' | 'contiguous' | 'counts';
  devices: number;
  /** Slots (physical experts) per layer, replicas included; null for device counts. */
  slots: number | null;
  /** Logical experts with more than one slot, per layer (max over layers); null for device counts. */
  replicatedExperts: number | null;
  /** Of the loads summed over all steps. */
  sglang: number;
  vllm: number;
  perLayer: number[];
  /** Per device, load summed over layers and steps. */
  totals: number[];
  /** SGLang's balancedness of each step on its own (what its "[Expert Balancedness]" log line shows per pass). */
  perStep: { mean: number; min: number; last: number } | null;
}

export interface CountStatsJson {
  version: number;
  kind: 'counts';
  axis: CountAxis;
  bins: number;
  steps: number;
  /** Σ counts over steps, bins and layers. */
  assignments: number;
  /** Tokens (first layer's assignments ÷ K); null when K is unknown. */
  tokens: number | null;
  schema: RoutingSchema;
  topN: number;
  /** Per-expert metrics; null for device counts (no expert ids). */
  layers: CountLayerMetrics[] | null;
  /** The whole-model metrics (the logits ones are null unless the counts came with logits sums). */
  global: GlobalMetrics | null;
  /** Per layer, the router-margin histogram (from logits sums); null without them. */
  marginHistograms?: MarginHistogram[] | null;
  devices: CountDevicesJson | null;
  /** JS divergence (bits) of each layer's load over the first quarter of the steps from the last quarter. */
  drift: { steps: number; perLayer: number[]; mean: number; worst: number } | null;
  /** Metrics that need per-token data: this trace has none. */
  needsTokens: readonly string[];
}

export class CountAnalysis {
  readonly schema: RoutingSchema;
  readonly info: CountInfo;
  private readonly stats: RoutingStats | null;
  private readonly L: number;
  private readonly W: number;
  private readonly placement: Placement | null;
  private readonly placementFrom: CountDevicesJson['placement'] | null;
  private readonly deviceSum: Float64Array | null;
  private readonly quarter: number;
  private readonly first: Float64Array;
  private readonly last: Float64Array;
  private readonly total: number;
  private rows = 0;
  private assignments = 0;
  private stepBal: number[] = [];
  private readonly logits: LogitSumRecord | null;

  constructor(schema: RoutingSchema, info: CountInfo, opts: CountAnalysisOptions) {
    this.schema = schema;
    this.info = info;
    this.L = schema.layers.length;
    this.W = this.L * info.bins;
    this.total = opts.totalSteps;
    this.logits = opts.logits ?? null;
    if (this.logits && info.axis !== 'expert') throw new Error('logits sums come with per-expert counts');
    if (info.axis === 'expert') {
      this.stats = new RoutingStats(
        { ...schema, hasLogits: this.logits !== null },
        {
          window: 0,
          collapse: false,
          ...(this.logits ? { logits: 'posted' as const } : {}),
          ...(opts.topN !== undefined ? { topN: opts.topN } : {}),
        },
      );
      if (opts.devices !== undefined) {
        if (opts.devices > schema.experts)
          throw new UserError(`--devices ${opts.devices} is more than the ${schema.experts} experts per layer`);
        this.placement = contiguousPlacement(schema.experts, opts.devices);
        this.placementFrom = 'contiguous';
      } else if (info.placement) {
        this.placement = { devices: info.placement.devices, phy2log: info.placement.phy2log };
        this.placementFrom = 'trace';
      } else {
        this.placement = null;
        this.placementFrom = null;
      }
      this.deviceSum = null;
    } else {
      if (opts.devices !== undefined)
        throw new UserError('--devices applies to per-expert counts; this trace counts per device already');
      this.stats = null;
      this.placement = null;
      this.placementFrom = 'counts';
      this.deviceSum = new Float64Array(this.W);
    }
    this.quarter = Math.floor(this.total / 4);
    this.first = new Float64Array(this.quarter > 0 ? this.W : 0);
    this.last = new Float64Array(this.quarter > 0 ? this.W : 0);
  }

  add(b: CountBatch): void {
    if (b.axis !== this.info.axis || b.bins !== this.info.bins)
      throw new UserError(`count rows are ${b.axis} × ${b.bins}; the trace says ${this.info.axis} × ${this.info.bins}`);
    this.stats?.addCounts(b);
    const W = this.W;
    const c = b.counts;
    const bins = this.info.bins;
    for (let r = 0; r < b.length; r++) {
      const row = c.subarray(r * W, (r + 1) * W);
      const idx = this.rows + r;
      for (let j = 0; j < W; j++) this.assignments += row[j]!;
      if (this.deviceSum) for (let j = 0; j < W; j++) this.deviceSum[j]! += row[j]!;
      if (this.quarter > 0 && idx < this.quarter) for (let j = 0; j < W; j++) this.first[j]! += row[j]!;
      if (this.quarter > 0 && idx >= this.total - this.quarter) for (let j = 0; j < W; j++) this.last[j]! += row[j]!;
      const perLayer = Array.from({ length: this.L }, (_, l) => row.subarray(l * bins, (l + 1) * bins));
      if (this.deviceSum) this.stepBal.push(balancednessOfDeviceLoads(perLayer).sglang);
      else if (this.placement)
        this.stepBal.push(balancednessOfDeviceLoads(deviceLoads(perLayer, this.placement)).sglang);
    }
    this.rows += b.length;
  }

  result(): CountStatsJson {
    if (this.rows === 0) throw new UserError('the count trace holds no complete rows: nothing to measure');
    const s = this.schema;
    const bins = this.info.bins;
    let layers: CountLayerMetrics[] | null = null;
    let global: CountStatsJson['global'] = null;
    let devices: CountDevicesJson | null = null;
    const perStep = this.stepBal.length
      ? {
          mean: this.stepBal.reduce((a, x) => a + x, 0) / this.stepBal.length,
          min: Math.min(...this.stepBal),
          last: this.stepBal[this.stepBal.length - 1]!,
        }
      : null;
    if (this.stats) {
      if (this.logits) this.stats.postLogits(logitsSnapshotOf(this.logits, this.stats.tokens));
      const snap = this.stats.snapshot('run');
      layers = snap.layers.map(({ share: _share, ...m }) => ({ ...m, tokens: this.info.topKKnown ? m.tokens : NaN }));
      const g = snap.global;
      global = g;
      if (this.placement) {
        const E = s.experts;
        const loads = Array.from({ length: this.L }, (_, l) => this.stats!.load.subarray(l * E, (l + 1) * E));
        const b = balancedness(loads, this.placement);
        const maps = this.placement.phy2log;
        let replicated = 0;
        for (const m of maps) {
          const seen = new Map<number, number>();
          for (let i = 0; i < m.length; i++) seen.set(m[i]!, (seen.get(m[i]!) ?? 0) + 1);
          replicated = Math.max(replicated, [...seen.values()].filter((n) => n > 1).length);
        }
        devices = {
          placement: this.placementFrom!,
          devices: this.placement.devices,
          slots: maps[0]!.length,
          replicatedExperts: replicated,
          sglang: b.sglang,
          vllm: b.vllm,
          perLayer: b.perLayer,
          totals: deviceTotals(b.devices),
          perStep,
        };
      }
    } else {
      const rows = Array.from({ length: this.L }, (_, l) => this.deviceSum!.subarray(l * bins, (l + 1) * bins));
      const b = balancednessOfDeviceLoads(rows);
      devices = {
        placement: 'counts',
        devices: bins,
        slots: null,
        replicatedExperts: null,
        sglang: b.sglang,
        vllm: b.vllm,
        perLayer: b.perLayer,
        totals: deviceTotals(rows),
        perStep,
      };
    }
    let drift: CountStatsJson['drift'] = null;
    if (this.quarter > 0 && this.rows === this.total) {
      const perLayer = s.layers.map((_, l) => jsDivergence(this.first, l * bins, this.last, l * bins, bins));
      const finite = perLayer.filter((x) => Number.isFinite(x));
      drift = {
        steps: this.quarter,
        perLayer,
        mean: finite.length ? finite.reduce((a, x) => a + x, 0) / finite.length : NaN,
        worst: finite.length ? Math.max(...finite) : NaN,
      };
    }
    const firstLayer = this.stats ? this.stats.tokens : NaN;
    return {
      version: COUNT_STATS_JSON_VERSION,
      kind: 'counts',
      axis: this.info.axis,
      bins,
      steps: this.rows,
      assignments: this.assignments,
      tokens: this.info.topKKnown && this.stats ? firstLayer : null,
      schema: s,
      topN: this.stats ? this.stats.topN : 0,
      layers,
      global,
      devices,
      drift,
      ...(this.logits ? { marginHistograms: s.layers.map((_, l) => marginHistogramOf(this.logits!, l)) } : {}),
      needsTokens: perTokenMetrics(this.logits !== null),
    };
  }
}
