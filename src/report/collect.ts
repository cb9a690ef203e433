/**
 * Gathers what the HTML report shows, from one pass over a routing source: run metrics and collapse warnings
 * (RoutingStats), per-device load under a contiguous placement (stats/balancedness), and OLMoE's domain
 * specialisation when tokens carry tags (stats/specialisation). Every number is computed by src/stats; this
 * module only feeds it and keeps the results.
 */
import { layerLabels } from '../core/stream.js';
import { expertsAt, mixedShapes, type RoutingSchema } from '../core/batch.js';
import { groupBatch, groupCounts, shapeGroups, shapeLabel } from '../core/shapes.js';
import { UserError } from '../core/errors.js';
import {
  DEFAULT_COLLAPSE_WINDOW,
  DomainSpecialisation,
  RoutingStats,
  type CollapseWarning,
  type GlobalMetrics,
  type LayerMetrics,
} from '../stats/index.js';
import { balancedness, balancednessOfDeviceLoads, type Balancedness } from '../stats/balancedness.js';
import { logitsScorer } from '../stats/logits-thread.js';
import { contiguousPlacement, slotDevice } from '../stats/placement.js';
import type { RoutingStream } from '../core/routing-stream.js';
import type { DomainResult } from '../stats/specialisation.js';

/** More distinct tags than this are not shown one by one (the report would become unreadable). */
const MAX_DOMAINS = 16;

export interface DevicePlacement {
  devices: number;
  /** Expert ids on each device, as [first, last]. */
  ranges: [number, number][];
  /** Layers that differ in E: each shape's ranges ("8 experts top-2" → ranges); `ranges` are the first shape's. */
  shapeRanges: { shape: string; ranges: [number, number][] }[] | null;
  result: Balancedness;
}

/** Which experts each device holds under the contiguous placement, read off the placement's own slot → device rule. */
function deviceRanges(experts: number, devices: number): [number, number][] {
  const map = contiguousPlacement(experts, devices).phy2log[0]!;
  const ranges: [number, number][] = Array.from({ length: devices }, () => [Infinity, -Infinity]);
  for (let s = 0; s < map.length; s++) {
    const r = ranges[slotDevice(s, map.length, devices)]!;
    r[0] = Math.min(r[0], map[s]!);
    r[1] = Math.max(r[1], map[s]!);
  }
  return ranges;
}

export interface ReportData {
  subject: string;
  schema: RoutingSchema;
  model: string | null;
  source: string | null;
  computeDevices: string[];
  tokens: number;
  /** Top-N of `topNShare` (K). */
  topN: number;
  layers: LayerMetrics[];
  /** What follows "layer" for each layer: its id, or its model layer and role when routers differ in role. */
  layerLabels: string[];
  global: GlobalMetrics;
  /** Sliding window (tokens) the collapse detector ran on; 0 when the trace was too short. */
  window: number;
  warnings: CollapseWarning[];
  suppressedWarnings: number;
  placement: DevicePlacement | null;
  /** OLMoE domain specialisation per tag, the MAX_DOMAINS most frequent tags; null when no token has a tag. */
  domains: DomainResult[] | null;
  /** Tags beyond MAX_DOMAINS, not shown. */
  otherDomains: number;
  /** Set for a count trace (load counts per step): its steps; no window, warnings or domains (no per-token data). */
  counts: { steps: number } | null;
  /**
   * Layers that differ in E or K (src/core/shapes.ts): each shape's schema, its layers' positions in `layers`, its
   * whole-model metrics and domain specialisation (then `global` is the first shape's and `domains` null); null when
   * every layer has one shape.
   */
  shapes: ShapeSummary[] | null;
  /** Zero-computation experts of each layer (LongCat-Flash; the router summaries'), null where none: their columns
   * are marked, and the layer's metrics balance the other experts. */
  zeroExperts: ({ ids: number[]; kind: string } | null)[];
  /**
   * Routers whose weights the engine could not follow to the mixing (StreamMeta `mixing: "not-followed"`): the
   * position of the layer in `layers` and why. Their selection (everything this report counts) is the model's;
   * their recorded weights are not.
   */
  unfollowed: { layer: number; note: string }[];
}

export interface ShapeSummary {
  schema: RoutingSchema;
  /** Positions of the shape's layers in ReportData.layers. */
  at: number[];
  global: GlobalMetrics;
  topN: number;
  domains: DomainResult[] | null;
  otherDomains: number;
}

export interface CollectOptions {
  /** Show per-device load for this many devices (contiguous expert placement). */
  devices?: number;
  /** Collapse-detection window in tokens (default DEFAULT_COLLAPSE_WINDOW, as in `stats` and the TUI). */
  window?: number;
  /** The caller may block (a command, not a view): score large routers' logits in a worker thread. */
  threads?: boolean;
}

export async function collectReport(source: RoutingStream, opts: CollectOptions = {}): Promise<ReportData> {
  const schema = source.schema;
  // The fewest experts of any layer bound the devices (each layer is placed over its own E).
  const E = Math.min(...schema.layers.map((_, l) => expertsAt(schema, l)));
  if (opts.devices !== undefined && (opts.devices < 1 || opts.devices > E))
    throw new UserError(
      `--devices must be between 1 and the ${E} experts ${mixedShapes(schema) ? 'of the smallest layer' : 'per layer'}, got ${opts.devices}`,
    );
  const counts = source.kind === 'counts';
  // A count trace has no tokens to slide a window over: its counts fill the same load matrix, nothing else.
  const window = counts ? 0 : (opts.window ?? DEFAULT_COLLAPSE_WINDOW);
  const zeroExperts = schema.layers.map((_, l) => source.meta?.routers[l]?.zeroExperts ?? null);
  // Layers that differ in E or K are measured one shape at a time, over their own E and K (one group if uniform).
  const groups = shapeGroups(schema);
  const parts = groups.map((g) => ({
    g,
    stats: new RoutingStats(g.schema, {
      window,
      logits: logitsScorer(g.schema, opts.threads ?? false),
      zeroExperts: g.positions.map((pos) => zeroExperts[pos]?.ids),
    }),
    domains: new DomainSpecialisation(g.schema),
  }));
  for await (const item of source.items()) {
    for (const p of parts) {
      if (item.kind === 'tokens') {
        const own = groupBatch(item.batch, schema, p.g);
        p.stats.add(own);
        p.domains.add(own);
      } else if (item.kind === 'counts') p.stats.addCounts(groupCounts(item.batch, schema, p.g));
    }
  }
  const stats = parts[0]!.stats;
  if (stats.tokens === 0) throw new UserError(`${source.label} holds no tokens: nothing to report`);
  const snaps = parts.map((p) => p.stats.snapshot('run'));
  for (const p of parts) p.stats.close();
  const snap = snaps[0]!;
  const layers: LayerMetrics[] = [];
  parts.forEach((p, i) => p.g.positions.forEach((pos, at) => (layers[pos] = snaps[i]!.layers[at]!)));

  let placement: DevicePlacement | null = null;
  if (opts.devices !== undefined) {
    const D = opts.devices;
    // Each shape's layers placed contiguously over their own E; the device loads of every layer then give both
    // balancedness conventions over all layers (the same D devices hold every layer).
    const devices: Float64Array[] = [];
    parts.forEach((p, i) => {
      const r = balancedness(
        snaps[i]!.layers.map((m) => m.load),
        contiguousPlacement(p.g.schema.experts, D),
      );
      p.g.positions.forEach((pos, at) => (devices[pos] = r.devices[at]!));
    });
    const result = { ...balancednessOfDeviceLoads(devices), devices };
    const ranges = deviceRanges(parts[0]!.g.schema.experts, D);
    const shapeRanges =
      parts.length > 1
        ? parts.map((p) => ({ shape: shapeLabel(p.g.schema), ranges: deviceRanges(p.g.schema.experts, D) }))
        : null;
    placement = { devices: D, ranges, shapeRanges, result };
  }

  const domainsOf = (d: DomainSpecialisation) => {
    const byTokens = d.result().sort((a, b) => b.tokens - a.tokens || a.tag.localeCompare(b.tag));
    return {
      domains: byTokens.length > 0 ? byTokens.slice(0, MAX_DOMAINS) : null,
      otherDomains: Math.max(0, byTokens.length - MAX_DOMAINS),
    };
  };
  const shapes =
    parts.length > 1
      ? parts.map((p, i) => ({
          schema: p.g.schema,
          at: p.g.positions,
          global: snaps[i]!.global,
          topN: snaps[i]!.topN,
          ...domainsOf(p.domains),
        }))
      : null;
  const own = shapes ? { domains: null, otherDomains: 0 } : domainsOf(parts[0]!.domains);
  // Warnings of every shape, each naming its layer's position in the stream.
  const warnings = parts
    .flatMap((p) => p.stats.warnings.map((w) => ({ ...w, layerIndex: p.g.positions[w.layerIndex]! })))
    .sort((a, b) => a.window.start - b.window.start);

  return {
    subject: source.label,
    schema,
    model: source.meta?.model ?? null,
    source: source.meta?.source ?? null,
    computeDevices: source.meta?.devices ?? [],
    tokens: stats.tokens,
    topN: snap.topN,
    layers,
    layerLabels: layerLabels(source.meta?.routers ?? [], schema.layers),
    global: snap.global,
    window: !counts && stats.tokens >= window ? window : 0,
    warnings,
    suppressedWarnings: parts.reduce((n, p) => n + (p.stats.detector?.suppressed ?? 0), 0),
    placement,
    ...own,
    counts: counts ? { steps: stats.steps } : null,
    shapes,
    zeroExperts,
    unfollowed: schema.layers.flatMap((_, l) => {
      const r = source.meta?.routers[l];
      return r?.mixing === 'not-followed' ? [{ layer: l, note: r.mixingNote || 'no reason recorded' }] : [];
    }),
  };
}
