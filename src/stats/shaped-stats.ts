/**
 * RoutingStats over a stream whose layers may differ in E and K: one RoutingStats per shape (src/core/shapes.ts),
 * each fed its layers in their own shape, so every layer's metrics are over its own E and K. A uniform stream is
 * one RoutingStats fed the batches untouched.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { groupBatch, groupCounts, type ShapeGroup, shapeGroups } from '../core/shapes.js';
import type { CountBatch } from '../core/routing-stream.js';
import { type LayerMetrics, RoutingStats, type RoutingStatsOptions, type Scope } from './routing-stats.js';

export class ShapedStats {
  readonly schema: RoutingSchema;
  readonly groups: ShapeGroup[];
  readonly stats: RoutingStats[];
  /** Layer l of the stream is layer `at` of group `group`. */
  private readonly where: { group: number; at: number }[];

  constructor(schema: RoutingSchema, options: RoutingStatsOptions = {}) {
    this.schema = schema;
    this.groups = shapeGroups(schema);
    // Per-layer options are given in stream layer order: each shape takes its own layers'.
    const z = options.zeroExperts;
    const labels = options.layerLabels;
    this.stats = this.groups.map(
      (g) =>
        new RoutingStats(g.schema, {
          ...options,
          ...(z ? { zeroExperts: g.positions.map((l) => z[l]) } : {}),
          ...(labels ? { layerLabels: g.positions.map((l) => labels[l]!) } : {}),
        }),
    );
    this.where = [];
    this.groups.forEach((g, group) => {
      g.positions.forEach((l, at) => {
        this.where[l] = { group, at };
      });
    });
  }

  add(b: RoutingBatch): void {
    this.stats.forEach((s, i) => s.add(groupBatch(b, this.schema, this.groups[i]!)));
  }

  /** Load counts per (step, layer, expert), `bins` the largest E: each shape takes its layers' own experts. */
  addCounts(b: CountBatch): void {
    this.stats.forEach((s, i) => s.addCounts(groupCounts(b, this.schema, this.groups[i]!)));
  }

  get tokens(): number {
    return this.stats[0]!.tokens;
  }

  /** Count rows (steps) added with addCounts. */
  get steps(): number {
    return this.stats[0]!.steps;
  }

  /** The run's load of the l-th MoE layer of the stream: its own E counts. */
  load(l: number): Float64Array {
    const w = this.where[l]!;
    const s = this.stats[w.group]!;
    const E = s.schema.experts;
    return s.load.subarray(w.at * E, (w.at + 1) * E);
  }

  /** Metrics of the l-th MoE layer of the stream, over its own E and K. */
  layerMetrics(l: number, scope: Scope = 'run'): LayerMetrics {
    const w = this.where[l]!;
    return this.stats[w.group]!.layerMetrics(w.at, scope);
  }

  close(): void {
    for (const s of this.stats) s.close();
  }
}
