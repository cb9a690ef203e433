/**
 * Frames: immutable snapshots of the model that views render. Built at most ~15 times a second (and at once when
 * the selection changes), so views never see a half-applied batch and never compute anything themselves.
 * Every number comes from src/stats (load.ts, relative-load.ts, margin-histogram.ts, device-load.ts, token-rate.ts,
 * memory-use.ts …); this module only gathers inputs from the model and copies the results.
 */
import { F16_TO_F32 } from '../core/f16.js';
import { layerLabels } from '../core/stream.js';
import type { GpuMemory } from '../core/memory.js';
import {
  RowScorer,
  busiestExpert,
  busiestRealExpert,
  deviceShares,
  deviceSlotsPerLayer,
  deviceWeightBytes,
  fractionsOfPeak,
  loadShares,
  marginHistogram,
  meanSampleIntervalMs,
  memoryUsedShare,
  recentTokenRate,
  layerBalance,
  loadBalance,
  realRelativeLoadsInto,
  totalLoad,
  uniformTopNShare,
  zeroShare,
  hasZeroExperts,
  type CollapseWarning,
  type LayerMetrics,
  type MarginHistogram,
  type Scope,
} from '../stats/index.js';
import { randomCoactivation, type CoactivationPair } from '../stats/coactivation.js';
import { meanOfPresent } from '../stats/routing-stats.js';
import type { PlacementSpec } from './placement-spec.js';
import { balancedness, balancednessOfDeviceLoads } from '../stats/balancedness.js';
import { deviceLoads, layerMap, type Placement } from '../stats/placement.js';
import type { Fidelity, RoutingModel } from './model.js';

export interface Selection {
  scope: Scope;
  /** Selected MoE layer index (0 … L−1). */
  layer: number;
  /** Selected token (stream index), or null. */
  token: number | null;
  /** Where experts live, for the Devices view (null: not given). */
  placement: PlacementSpec | null;
  /**
   * Tokens the frame copies for the token stream: up to `span` either side of the selected token (or before the
   * newest), with their first choice at the selected layer. Absent or 0: none (panes that do not show text).
   */
  tokenSpan?: number;
  /** Count the distinct sequences held (the plain summary). */
  countSequences?: boolean;
}

export interface Histogram extends MarginHistogram {
  /** Tokens the histogram covers: [start, end). */
  range: { start: number; end: number };
}

export interface LayerDetail {
  index: number;
  metrics: LayerMetrics;
  /** Assignments counted in the scope (tokens × K). */
  assignments: number;
  /** Top-N share at perfect balance, N/E. */
  uniformTopNShare: number;
  /** Per expert, its share ÷ the busiest expert's share (1 for the busiest; all 0 with no load): bar lengths. */
  shareOfBusiest: number[];
  /** Most co-activated pairs over the run (null when the model is too large to keep the L·E² counts). */
  coactivation: CoactivationPair[] | null;
  /** coact(i, j) under independent uniform routing, (K−1)/(E−1). */
  coactivationBaseline: number;
  /** Router margin (K-th minus (K+1)-th score) over recent tokens with logits; null without logits. */
  margins: Histogram | null;
}

export interface TokenLayerRouting {
  /** The model's own layer index. */
  layer: number;
  experts: number[];
  /** NaN where the weights were not followed to the mixing (weightsKnown false). */
  weights: number[];
  /** False: the engine could not follow this router's weights to the mixing; the selection is the model's, the
   * weights are not known (views show that, never a number). */
  weightsKnown: boolean;
  /** K-th minus (K+1)-th router score; null without logits. */
  margin: number | null;
  /** Routing entropy / ln E; null without logits. */
  entropy: number | null;
}

export interface TokenDetail {
  index: number;
  text: string;
  tokenId: number;
  seq: number;
  pos: number;
  isPrompt: boolean;
  tag: string | null;
  layers: TokenLayerRouting[];
}

export interface DeviceLoad {
  device: number;
  /** Expert slots per layer on it (replicas included), averaged over layers. */
  slots: number;
  /** Weight bytes of those slots over all layers; null when the stream does not know expert sizes. */
  weightBytes: number | null;
  /** Share of all assignments (over all layers, current scope) landing on it; 1/D at balance. */
  loadShare: number;
  /** loadShare ÷ 1/D (1 = even). */
  relLoad: number;
}

export interface DeviceSummary {
  devices: number;
  /** "contiguous", or the plan file. */
  label: string;
  loads: DeviceLoad[];
  /** Balancedness, both conventions (stats/balancedness.ts). */
  sglang: number;
  vllm: number;
}

export interface GpuView extends GpuMemory {
  /** usedBytes / totalBytes (NaN when the total is unknown). */
  usedShare: number;
}

export interface MemoryView {
  gpus: GpuView[] | null;
  /** Used bytes per GPU over the kept samples, oldest first. */
  gpuHistory: number[][];
  hostRssBytes: number | null;
  rssHistory: number[];
  ortBytes: number | null;
  /** Samples kept. */
  samples: number;
  /** Mean interval between samples, ms; null with fewer than two. */
  intervalMs: number | null;
}

/** A held token as the stream shows it, copied into the frame. */
export interface StreamToken {
  index: number;
  text: string;
  /** First choice in the selected layer. */
  expert: number;
  isPrompt: boolean;
  seq: number;
  tag: string | null;
}

export interface Frame {
  /** Model version this frame shows. */
  version: number;
  tokens: number;
  scope: Scope;
  /** Tokens of the display window. */
  windowSize: number;
  /** Tokens the scope covers: [start, end). */
  range: { start: number; end: number };
  layerIds: readonly number[];
  /** What the views print after "L" for each layer: its id, or its model layer and role when routers differ in role. */
  layerLabels: readonly string[];
  /** The largest E and K of any layer (every layer's, when the layers are uniform). */
  experts: number;
  topK: number;
  /**
   * Each layer's own E and K. Layers may differ (src/core/batch.ts § RoutingSchema): the L·E arrays below keep E
   * columns per layer, and a layer's columns past its own E hold no expert (relLoad NaN, counts 0) — views draw
   * nothing there.
   */
  layerExperts: readonly number[];
  layerTopK: readonly number[];
  hasLogits: boolean;
  /** L·E: each expert's load share ÷ the uniform share 1/E (1 = balanced, 0 = idle); NaN for a layer with no load. */
  relLoad: Float32Array;
  /** L·E assignment counts of the scope. */
  counts: Float64Array;
  /** Balance per layer: over its own E, or over its real experts when it has zero-computation experts (as `stats`). */
  cv: Float32Array;
  maxVio: Float32Array;
  entropy: Float32Array;
  /** Experts with no assignment, per layer (of its own E; of its real experts where it has zero experts). */
  dead: Int32Array;
  /** Experts the dead count and the balance are over, per layer: E, less its zero-computation experts. */
  balancedExperts: Int32Array;
  /** Share of each layer's token-slots routed to zero-computation experts (stats' zeroShare); NaN where none. */
  zeroShare: Float32Array;
  /** Mean of zeroShare over the layers that have zero experts (stats' whole-model zeroShare); null when none has. */
  zeroShareMean: number | null;
  /** Routers whose weights were not followed, the layers' zero experts (src/store/model.ts Fidelity). */
  fidelity: Fidelity;
  /** Busiest expert per layer (a real one, where it has zero experts) and its share of the layer's assignments. */
  busiest: Int32Array;
  busiestShare: Float32Array;
  /** Every warning fired, newest first. */
  warnings: CollapseWarning[];
  activeWarnings: number;
  suppressedWarnings: number;
  /** The detector's window, tokens (0 when off). */
  detectorWindow: number;
  /** Tokens held in the ring at this frame: [start, end). */
  ring: { start: number; end: number };
  /** Copies of the held tokens the selection asked for (Selection.tokenSpan), oldest first; [] when none. */
  stream: readonly StreamToken[];
  /** Distinct sequences among the held tokens (Selection.countSequences), or null. */
  sequences: number | null;
  /** Tokens per second of stream time over the last few seconds; null before two timestamps. */
  tokensPerSecond: number | null;
  /** Stream time from the first to the latest token, ms. */
  elapsedMs: number | null;
  layer: LayerDetail | null;
  token: TokenDetail | null;
  memory: MemoryView;
  devices: DeviceSummary | null;
  /** Per producer rank (multi-rank streams: `listen`, merged traces), whole run; null for single-process sources. */
  ranks: RankRow[] | null;
}

/** One rank of a multi-rank stream: its tokens, where they go in the selected layer, and on which devices. */
export interface RankRow {
  rank: number;
  tokens: number;
  /** Selected layer: the rank's busiest expert and its share of the rank's assignments. */
  busiest: number;
  busiestShare: number;
  /** Selected layer: MaxVio of the rank's own tokens. */
  maxVio: number;
  /** With a placement: share of the rank's assignments (all layers) each device receives. */
  deviceShares: number[] | null;
}

const RATE_SPAN_MS = 5000;

export function buildFrame(model: RoutingModel, sel: Selection): Frame {
  const L = model.layers;
  const E = model.experts;
  const stats = model.stats;
  // A count stream has no token window: its views show the counts of the whole stream.
  const run = sel.scope === 'run' || model.countsOnly;
  const w = run ? null : model.displayWindow();
  const counts = model.loadCounts(run ? 'run' : 'window');
  const relLoad = new Float32Array(L * E).fill(Number.NaN);
  const cv = new Float32Array(L);
  const maxVio = new Float32Array(L);
  const entropy = new Float32Array(L);
  const dead = new Int32Array(L);
  const balancedExperts = new Int32Array(L);
  const zeroShares = new Float32Array(L).fill(Number.NaN);
  // The layers' shares unrounded, for their mean (the whole-model zero share `stats` reports).
  const zeroShares64: number[] = [];
  const busiest = new Int32Array(L);
  const busiestShare = new Float32Array(L);
  const fidelity = model.fidelity;
  const mask = fidelity.zeroMask;
  for (let l = 0; l < L; l++) {
    // Every layer over its own experts: the columns past them are no experts at all. A layer with zero-computation
    // experts is balanced over its real experts (the same stats functions `moescope stats` reads).
    const e = model.layerExperts[l]!;
    const base = l * E;
    realRelativeLoadsInto(counts, base, e, mask, base, relLoad, base);
    const bal = loadBalance(counts, base, e, mask, base);
    cv[l] = bal.cv;
    maxVio[l] = bal.maxVio;
    entropy[l] = bal.entropy;
    dead[l] = bal.deadExperts;
    const z = fidelity.zeroExperts[l];
    balancedExperts[l] = z ? e - z.ids.length : e;
    if (z && mask) {
      const share = zeroShare(counts, base, e, mask, base);
      zeroShares[l] = share;
      zeroShares64.push(share);
    }
    const b = busiestRealExpert(counts, base, e, mask, base);
    busiest[l] = b.expert;
    busiestShare[l] = b.share;
  }
  const warnings = model.warnings.slice().reverse();
  const layer = Math.min(Math.max(0, sel.layer), L - 1);
  return {
    version: model.version,
    tokens: stats.tokens,
    scope: run ? 'run' : sel.scope,
    windowSize: model.displayWindowSize,
    // A refilled display window counts from 0 internally: its range in stream terms ends at the newest token.
    range: w ? { start: stats.tokens - w.tokens, end: stats.tokens } : { start: 0, end: stats.tokens },
    layerIds: model.schema.layers,
    layerLabels: layerLabels(model.meta.routers, model.schema.layers),
    experts: E,
    topK: model.topK,
    layerExperts: model.layerExperts,
    layerTopK: model.layerTopK,
    hasLogits: model.schema.hasLogits,
    relLoad,
    counts,
    cv,
    maxVio,
    entropy,
    dead,
    balancedExperts,
    zeroShare: zeroShares,
    zeroShareMean: meanOfPresent(zeroShares64),
    fidelity,
    busiest,
    busiestShare,
    warnings,
    activeWarnings: model.activeWarnings,
    suppressedWarnings: model.suppressedWarnings,
    detectorWindow: stats.window ? stats.window.size : 0,
    ring: { start: model.ring.start, end: model.ring.end },
    stream: sel.tokenSpan ? copyStream(model, layer, sel.token, sel.tokenSpan) : [],
    sequences: sel.countSequences ? countSequences(model) : null,
    tokensPerSecond: rate(model),
    elapsedMs: model.firstMs !== null && model.lastMs !== null ? model.lastMs - model.firstMs : null,
    layer: stats.tokens > 0 ? layerDetail(model, layer, run ? 'run' : sel.scope) : null,
    token: sel.token !== null && model.ring.has(sel.token) ? tokenDetail(model, sel.token) : null,
    memory: memoryView(model),
    devices: sel.placement && stats.tokens > 0 ? deviceSummary(model, counts, sel.placement) : null,
    ranks: model.parts[0]!.ranks ? rankRows(model, layer, sel.placement) : null,
  };
}

function rankRows(model: RoutingModel, layer: number, spec: PlacementSpec | null): RankRow[] {
  const L = model.layers;
  const { part, at } = model.partOf(layer);
  const r = part.ranks!;
  // Every part counts every row: the same ranks in each, each over its own layers.
  const byPart = model.parts.map((p) => new Map(p.ranks ? p.ranks.ranks().map((x) => [x.rank, x.counts]) : []));
  const layerLoad = (rank: number, l: number): Float64Array => {
    const w = model.where[l]!;
    const e = model.parts[w.part]!.group.schema.experts;
    return byPart[w.part]!.get(rank)!.subarray(w.at * e, (w.at + 1) * e);
  };
  const e = part.group.schema.experts;
  return r.ranks().map((x) => {
    const b = busiestExpert(x.counts, at * e, e);
    let onDevices: number[] | null = null;
    if (spec) {
      const loads = Array.from({ length: L }, (_, l) => layerLoad(x.rank, l));
      onDevices = deviceShares(placedDeviceLoads(loads, spec.placement)).shares;
    }
    return {
      rank: x.rank,
      tokens: x.tokens,
      busiest: b.expert,
      busiestShare: b.share,
      maxVio: r.maxVio(x.rank, at),
      deviceShares: onDevices,
    };
  });
}

/**
 * Per-layer device loads under a placement (stats' deviceLoads). Layers of different E (placement-spec.ts) have
 * loads, and maps, of different lengths — a plan per shape may give them the same number of slots: each layer is
 * placed on its own.
 */
function placedDeviceLoads(loads: Float64Array[], placement: Placement): Float64Array[] {
  const maps = placement.phy2log;
  const ragged =
    loads.some((x) => x.length !== loads[0]!.length) ||
    (maps.length > 1 && maps.some((m) => m.length !== maps[0]!.length));
  if (!ragged) return balancedness(loads, placement).devices;
  return loads.map((x, l) => deviceLoads([x], { devices: placement.devices, phy2log: [layerMap(placement, l)] })[0]!);
}

/**
 * The tokens around the anchor (the selected token, or the newest) copied out of the ring: a frame is a snapshot,
 * and the ring moves on under it.
 */
function copyStream(model: RoutingModel, l: number, token: number | null, span: number): StreamToken[] {
  const r = model.ring;
  const anchor = token !== null && r.has(token) ? token : r.end - 1;
  const from = Math.max(r.start, anchor - span);
  const to = Math.min(r.end, anchor + span);
  const out: StreamToken[] = [];
  for (let i = from; i < to; i++)
    out.push({
      index: i,
      text: r.token(i),
      expert: model.firstChoiceOf(i, l),
      isPrompt: r.isPromptAt(i),
      seq: r.seqOf(i),
      tag: r.tagOf(i),
    });
  return out;
}

function countSequences(model: RoutingModel): number {
  const r = model.ring;
  const seqs = new Set<number>();
  for (let i = r.start; i < r.end; i++) seqs.add(r.seqOf(i));
  return seqs.size;
}

function rate(model: RoutingModel): number | null {
  const r = model.ring;
  return recentTokenRate((i) => r.timeMs(i), r.start, r.end, RATE_SPAN_MS);
}

function layerDetail(model: RoutingModel, l: number, scope: Selection['scope']): LayerDetail {
  const { part, at } = model.partOf(l);
  const stats = part.stats;
  const w = model.displayWindowOf(part);
  const E = part.group.schema.experts;
  const K = part.group.schema.topK;
  let metrics: LayerMetrics;
  if (scope === 'run' || w === stats.window) metrics = stats.layerMetrics(at, scope);
  else {
    // A display window of another length than the detector's: the same load metrics, on its counts.
    const base = at * E;
    const c = w.counts;
    const zero = stats.zeroMask;
    metrics = {
      ...stats.layerMetrics(at, 'window'),
      tokens: w.tokens,
      load: Array.from(c.subarray(base, base + E)),
      share: Array.from(loadShares(c, base, E)),
      ...layerBalance(c, base, E, stats.topN, zero, base),
      zeroShare: zero && hasZeroExperts(zero, at, E) ? zeroShare(c, base, E, zero, base) : null,
    };
  }
  return {
    index: l,
    metrics,
    assignments: totalLoad(metrics.load, 0, metrics.load.length),
    // At balance over the experts the metrics are over (the real ones, where the layer has zero experts).
    uniformTopNShare: uniformTopNShare(stats.topN, E - (model.fidelity.zeroExperts[l]?.ids.length ?? 0)),
    shareOfBusiest: fractionsOfPeak(metrics.share),
    coactivation: part.coact ? part.coact.topPairs(at, 8) : null,
    coactivationBaseline: randomCoactivation(E, K),
    margins: model.schema.hasLogits ? layerMargins(model, l) : null,
  };
}

/**
 * Scoring every held token's logits is the costliest part of a frame (up to 16,384 rows × E), and a key press
 * rebuilds the frame without new data: keep the last histogram per model until its version or layer changes.
 */
const marginCache = new WeakMap<RoutingModel, { version: number; layer: number; hist: Histogram | null }>();

function layerMargins(model: RoutingModel, l: number): Histogram | null {
  const hit = marginCache.get(model);
  if (hit && hit.version === model.version && hit.layer === l) return hit.hist;
  const hist = scoreLayerMargins(model, l);
  marginCache.set(model, { version: model.version, layer: l, hist });
  return hist;
}

function scoreLayerMargins(model: RoutingModel, l: number): Histogram | null {
  const r = model.ring;
  // The layer's own E and K; its logits sit at l·E of the row (E the largest), padding past its own E.
  const E = model.layerExperts[l]!;
  const K = model.layerTopK[l]!;
  const stride = model.experts;
  if (K >= E) return null;
  const scorer = new RowScorer(E, K, model.schema.scoring);
  // Gathers the margins of the newest tokens with logits; binning is stats' marginHistogram.
  const margins: number[] = [];
  let start = r.end;
  for (let i = r.end - 1; i >= r.start && r.hasLogits(i); i--) {
    start = i;
    if (scorer.score(r.logitsOf(i)!, l * stride)) margins.push(scorer.margin);
  }
  const h = marginHistogram(margins);
  return h.total === 0 ? null : { ...h, range: { start, end: r.end } };
}

function tokenDetail(model: RoutingModel, i: number): TokenDetail {
  const r = model.ring;
  const L = model.layers;
  const stride = model.experts;
  const logits = r.logitsOf(i);
  // One scorer per shape: each layer's routing over its own E and K (no padding slot is shown).
  const scorers = new Map<string, RowScorer>();
  const layers: TokenLayerRouting[] = [];
  for (let l = 0; l < L; l++) {
    const E = model.layerExperts[l]!;
    const K = model.layerTopK[l]!;
    const experts: number[] = [];
    const weights: number[] = [];
    for (let k = 0; k < K; k++) {
      experts.push(r.expert(i, l, k));
      weights.push(F16_TO_F32[r.weightBits(i, l, k)]!);
    }
    let margin: number | null = null;
    let entropy: number | null = null;
    if (logits) {
      const key = `${E}/${K}`;
      let scorer = scorers.get(key);
      if (!scorer) scorers.set(key, (scorer = new RowScorer(E, K, model.schema.scoring)));
      if (scorer.score(logits, l * stride)) {
        margin = Number.isFinite(scorer.margin) ? scorer.margin : null;
        entropy = scorer.entropy;
      }
    }
    layers.push({
      layer: model.schema.layers[l]!,
      experts,
      weights,
      weightsKnown: model.fidelity.weightsKnown[l]!,
      margin,
      entropy,
    });
  }
  return {
    index: i,
    text: r.token(i),
    tokenId: r.tokenIdOf(i),
    seq: r.seqOf(i),
    pos: r.posOf(i),
    isPrompt: r.isPromptAt(i),
    tag: r.tagOf(i),
    layers,
  };
}

function memoryView(model: RoutingModel): MemoryView {
  const samples = model.memory.toArray();
  const latest = samples[samples.length - 1] ?? null;
  const gpus = latest?.gpus
    ? latest.gpus.map((g) => ({ ...g, usedShare: memoryUsedShare(g.usedBytes, g.totalBytes) }))
    : null;
  const gpuHistory = (gpus ?? []).map((g) =>
    samples.map((s) => s.gpus?.find((x) => x.index === g.index)?.usedBytes ?? 0),
  );
  const n = samples.length;
  const intervalMs = n >= 2 ? meanSampleIntervalMs(samples[0]!.tNs, samples[n - 1]!.tNs, n) : null;
  return {
    gpus,
    gpuHistory,
    hostRssBytes: latest ? latest.hostRssBytes : null,
    rssHistory: samples.map((s) => s.hostRssBytes),
    ortBytes: latest?.ortBytes ?? null,
    samples: n,
    intervalMs,
  };
}

function deviceSummary(model: RoutingModel, counts: Float64Array, spec: PlacementSpec): DeviceSummary {
  const L = model.layers;
  const E = model.experts;
  const { placement } = spec;
  const D = placement.devices;
  const loads = Array.from({ length: L }, (_, l) => counts.subarray(l * E, l * E + model.layerExperts[l]!));
  const devLoads = placedDeviceLoads(loads, placement);
  const b = balancednessOfDeviceLoads(devLoads);
  const shares = deviceShares(devLoads);
  const sizes = model.meta.routers.map((r) => r.expertBytes ?? null);
  const bytes =
    sizes.length === L && sizes.every((s): s is number => s !== null) ? deviceWeightBytes(placement, sizes) : null;
  const slots = deviceSlotsPerLayer(placement, L);
  return {
    devices: D,
    label: spec.label,
    loads: Array.from({ length: D }, (_, d) => ({
      device: d,
      slots: slots[d]!,
      weightBytes: bytes ? bytes[d]! : null,
      loadShare: shares.shares[d]!,
      relLoad: shares.relative[d]!,
    })),
    sglang: b.sglang,
    vllm: b.vllm,
  };
}
