/**
 * History of a long run for the dashboard (src/dash): after every batch the model receives, one step is recorded —
 * each layer's MaxVio and CV over the sliding window, and its balancedness over the placement's devices — and every
 * memory sample records the GPUs' used bytes and the host RSS. Both go into stats' BucketHistory (downsampled,
 * bounded: a day of steps keeps as many points as a minute). `HistoryModel` is the TUI's RoutingModel with this
 * history attached, so the dashboard reads the same model, feeds and store as the Ink views — no second pipeline.
 * Every number comes from src/stats (load.ts, balancedness.ts, history.ts); this module gathers and copies.
 */
import { sliceBatch, type RoutingBatch, type RoutingSchema } from '../core/batch.js';
import type { MemorySample } from '../core/memory.js';
import type { CountBatch } from '../core/routing-stream.js';
import type { StreamMeta } from '../core/stream.js';
import { hasZeroExperts, loadCv, loadMaxVio, realLoad, type CollapseWarning } from '../stats/index.js';
import { balancednessOfDeviceLoads } from '../stats/balancedness.js';
import { layerMap, type Placement } from '../stats/placement.js';
import { DeviceMap } from '../stats/device-map.js';
import { BucketHistory, bucketRates, worstChannels } from '../stats/history.js';
import { RoutingModel, type ModelOptions } from './model.js';

/** Points kept per chart, whatever the run length. */
export const HISTORY_POINTS = 256;

export type BalanceMetric = 'maxVio' | 'cv' | 'balancedness';
export const BALANCE_METRICS: readonly BalanceMetric[] = ['maxVio', 'cv', 'balancedness'];

export interface HistoryOptions {
  /** Buckets per series (default HISTORY_POINTS). */
  points?: number;
  /**
   * Tokens per step: a step is recorded at every `stepTokens`-th token, however the source cuts its batches, so a
   * trace read in large batches has the same points as the same run seen live. Default: the collapse detector's
   * stride, window / 16.
   */
  stepTokens?: number;
  /** Devices for the balancedness history; null: one device, no balancedness. */
  placement?: Placement | null;
  /** Zero-computation experts (L·E, 1 = zero; model.ts Fidelity): those layers' MaxVio and CV are over the real experts. */
  zeroMask?: Uint8Array | null;
}

export interface LayerSeries {
  /** Position among the MoE layers, and the model's own layer id. */
  layerIndex: number;
  layer: number;
  /** Mean per bucket, oldest first (NaN: no value in that bucket). */
  values: number[];
  /** Mean of the newest bucket. */
  latest: number;
}

export interface MetricHistory {
  metric: BalanceMetric;
  /** The worst layers by their newest value (highest; lowest for balancedness), worst first. */
  worst: LayerSeries[];
}

export interface HistoryView {
  /** Buckets (chart points) and steps (batches) per bucket. */
  points: number;
  span: number;
  /** Steps recorded in all. */
  steps: number;
  /** Stream tokens and capture time (ms since the epoch) at the end of each bucket, oldest first. */
  tokens: number[];
  timeMs: number[];
  maxVio: MetricHistory;
  cv: MetricHistory;
  /** null without a placement over more than one device. */
  balancedness: MetricHistory | null;
  /** Tokens per second of stream time in each bucket (stats' bucketRates). */
  rate: number[];
  memory: MemoryHistory | null;
}

export interface MemoryHistory {
  points: number;
  /** Used bytes per GPU (mean per bucket), by GPU index; empty without GPUs. */
  gpus: { index: number; name: string; used: number[] }[];
  rss: number[];
}

export class RoutingHistory {
  readonly layers: number;
  /** Columns per layer in the counts `record` reads (the largest E). */
  readonly experts: number;
  /** Each layer's own E (layers may differ: its columns past that are no experts). */
  readonly layerExperts: readonly number[];
  readonly placement: Placement | null;
  readonly points: number;
  /** Channels: MaxVio of each layer, then CV, then balancedness. */
  readonly balance: BucketHistory;
  memory: BucketHistory | null = null;
  private gpuNames: { index: number; name: string }[] = [];
  private readonly step: Float64Array;
  /** One map for every layer, or (layers of different E: ragged slot maps) one map per layer. */
  private readonly deviceMaps: DeviceMap[] | null;
  private readonly zeroMask: Uint8Array | null;
  /** Per layer: whether it has zero-computation experts (then its balance reads the real experts' load). */
  private readonly zeroLayers: boolean[];
  /** Per layer, its device loads at the current step (reused). */
  private readonly devLoads: Float64Array[];

  constructor(layers: number, experts: number, opts: HistoryOptions = {}, layerExperts?: readonly number[]) {
    this.layers = layers;
    this.experts = experts;
    this.layerExperts = layerExperts ?? new Array<number>(layers).fill(experts);
    this.placement = opts.placement && opts.placement.devices > 1 ? opts.placement : null;
    const mask = opts.zeroMask ?? null;
    this.zeroMask = mask;
    this.zeroLayers = Array.from({ length: layers }, (_, l) => hasZeroExperts(mask, l, experts));
    this.points = opts.points ?? HISTORY_POINTS;
    this.balance = new BucketHistory(3 * layers, this.points);
    this.step = new Float64Array(3 * layers).fill(NaN);
    const p = this.placement;
    const uniform = this.layerExperts.every((e) => e === experts);
    this.deviceMaps = !p
      ? null
      : uniform
        ? [new DeviceMap(p, layers, experts)]
        : this.layerExperts.map((e, l) => new DeviceMap({ devices: p.devices, phy2log: [layerMap(p, l)] }, 1, e));
    this.devLoads = this.placement
      ? Array.from({ length: layers }, () => new Float64Array(this.placement!.devices))
      : [];
  }

  clear(): void {
    this.balance.clear();
    this.memory = null;
    this.gpuNames = [];
  }

  /** Records one step: per-layer MaxVio and CV of `counts` (L·E), balancedness of its device loads. */
  record(tokens: number, tMs: number, counts: Float64Array | Int32Array): void {
    const L = this.layers;
    const E = this.experts;
    const v = this.step;
    const own = this.layerExperts;
    for (let l = 0; l < L; l++) {
      if (this.zeroLayers[l]) {
        const real = realLoad(counts, l * E, own[l]!, this.zeroMask!, l * E);
        v[l] = loadMaxVio(real, 0, real.length);
        v[L + l] = loadCv(real, 0, real.length);
        continue;
      }
      v[l] = loadMaxVio(counts, l * E, own[l]!);
      v[L + l] = loadCv(counts, l * E, own[l]!);
    }
    const maps = this.deviceMaps;
    if (maps) {
      if (maps.length === 1) for (let l = 0; l < L; l++) maps[0]!.layerInto(counts, l, this.devLoads[l]!);
      else
        for (let l = 0; l < L; l++) maps[l]!.layerInto(counts.subarray(l * E, l * E + own[l]!), 0, this.devLoads[l]!);
      const b = balancednessOfDeviceLoads(this.devLoads);
      for (let l = 0; l < L; l++) v[2 * L + l] = b.perLayer[l]!;
    }
    this.balance.push(tokens, tMs, v);
  }

  recordMemory(tokens: number, s: MemorySample): void {
    const gpus = s.gpus ?? [];
    if (!this.memory) {
      this.gpuNames = gpus.map((g) => ({ index: g.index, name: g.name }));
      this.memory = new BucketHistory(this.gpuNames.length + 1, this.points);
    }
    const v = new Float64Array(this.gpuNames.length + 1).fill(NaN);
    this.gpuNames.forEach((g, i) => {
      const m = gpus.find((x) => x.index === g.index);
      if (m) v[i] = m.usedBytes;
    });
    v[this.gpuNames.length] = s.hostRssBytes;
    this.memory.push(tokens, Number(s.tNs / 1_000_000n), v);
  }

  /** Copies for the dashboard: the worst `worst` layers of each metric, rates and memory. */
  view(layerIds: readonly number[], worst = 3): HistoryView {
    const h = this.balance;
    const L = this.layers;
    const metric = (m: BalanceMetric, offset: number, lower: boolean): MetricHistory => {
      const channels = Array.from({ length: L }, (_, l) => offset + l);
      return {
        metric: m,
        worst: worstChannels(h, channels, worst, lower).map((c) => ({
          layerIndex: c - offset,
          layer: layerIds[c - offset]!,
          values: Array.from(h.means(c)),
          latest: h.latestMean(c),
        })),
      };
    };
    const mem = this.memory;
    return {
      points: h.length,
      span: h.span,
      steps: h.steps,
      tokens: Array.from(h.x1.subarray(0, h.length)),
      timeMs: Array.from(h.t1.subarray(0, h.length)),
      maxVio: metric('maxVio', 0, false),
      cv: metric('cv', L, false),
      balancedness: this.placement ? metric('balancedness', 2 * L, true) : null,
      rate: Array.from(bucketRates(h)),
      memory: mem
        ? {
            points: mem.length,
            gpus: this.gpuNames.map((g, i) => ({ ...g, used: Array.from(mem.means(i)) })),
            rss: Array.from(mem.means(this.gpuNames.length)),
          }
        : null,
    };
  }
}

/**
 * The TUI's model with a history: every batch it receives also records a step (the sliding window's counts, or
 * the run's when the window is off), every memory sample a memory point; a reset (replay seeking back) clears it.
 */
export class HistoryModel extends RoutingModel {
  history!: RoutingHistory;
  readonly stepTokens: number;

  constructor(schema: RoutingSchema, meta: StreamMeta, options: ModelOptions & HistoryOptions = {}) {
    super(schema, meta, options);
    this.history = new RoutingHistory(
      schema.layers.length,
      schema.experts,
      { ...options, zeroMask: this.fidelity.zeroMask },
      this.layerExperts,
    );
    this.stepTokens = Math.max(1, Math.floor(options.stepTokens ?? this.options.window / 16));
  }

  override reset(): void {
    super.reset();
    this.assignments = 0;
    // Called by the base constructor before `history` exists.
    (this.history as RoutingHistory | undefined)?.clear();
  }

  override add(b: RoutingBatch): CollapseWarning[] {
    const S = this.stepTokens;
    const fired: CollapseWarning[] = [];
    // A step at every S-th token, wherever the batches are cut (a trace's long record batches are split there).
    for (let a = 0; a < b.length; ) {
      const take = Math.min(b.length - a, S - (this.tokens % S));
      const part = a === 0 && take === b.length ? b : sliceBatch(b, this.schema, a, a + take);
      const f = super.add(part);
      if (f.length > 0) fired.push(...f);
      a += take;
      if (this.tokens % S === 0) this.recordStep();
    }
    return fired;
  }

  /**
   * A count stream (a Prometheus watch, a count trace): every row is a step of its own — the history of per-interval
   * balance — recorded at the assignments so far (its first layer's: tokens × K), so the rate is assignments/s.
   */
  override addCounts(b: CountBatch): void {
    const L = this.layers;
    const W = L * b.bins;
    for (let r = 0; r < b.length; r++) {
      const row = b.counts.subarray(r * W, (r + 1) * W);
      super.addCounts({ ...b, length: 1, step: b.step.subarray(r, r + 1), tNs: b.tNs.subarray(r, r + 1), counts: row });
      for (let e = 0; e < b.bins; e++) this.assignments += row[e]!;
      this.history.record(this.assignments, this.lastMs ?? 0, row);
    }
  }
  /** Count streams: assignments of the first layer so far (the history's x). */
  private assignments = 0;

  private recordStep(): void {
    this.history.record(this.tokens, this.lastMs ?? 0, this.detectorCounts());
  }

  override addMemory(s: MemorySample): void {
    super.addMemory(s);
    this.history.recordMemory(this.tokens, s);
  }
}
