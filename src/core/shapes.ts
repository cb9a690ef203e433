/**
 * Mixed layer shapes (src/core/batch.ts § RoutingSchema): a stream whose layers differ in E or K split into uniform
 * sub-streams, one per shape, so every metric runs unchanged over each layer's own E and K and never sees a padded
 * slot. The split copies the per-layer columns of the group's layers (their own K slots, their own E logits) and
 * shares the per-token columns.
 */
import { expertsAt, type RoutingBatch, type RoutingSchema, topKAt } from './batch.js';
import type { CountBatch } from './routing-stream.js';

/** Layers of one shape: their positions (0 … L−1) in the stream and the uniform schema over them. */
export interface ShapeGroup {
  positions: number[];
  schema: RoutingSchema;
}

/** The stream's layers grouped by (E, K), groups in the order their first layer appears; one group when uniform. */
export function shapeGroups(s: RoutingSchema): ShapeGroup[] {
  const groups: ShapeGroup[] = [];
  const key = new Map<string, ShapeGroup>();
  s.layers.forEach((id, l) => {
    const E = expertsAt(s, l);
    const K = topKAt(s, l);
    const k = `${E}/${K}`;
    let g = key.get(k);
    if (!g) {
      g = { positions: [], schema: { layers: [], experts: E, topK: K, scoring: s.scoring, hasLogits: s.hasLogits } };
      key.set(k, g);
      groups.push(g);
    }
    g.positions.push(l);
    g.schema.layers.push(id);
  });
  return groups;
}

/** The per-layer columns a batch is split by (a RoutingBatch, or the rows a logits sum reads). */
type LayerColumns = Pick<RoutingBatch, 'length' | 'experts' | 'weights' | 'logits'>;

/** The batch's routing at the group's layers, in the group's own shape (per-token columns shared, not copied). */
export function groupBatch<B extends LayerColumns>(b: B, s: RoutingSchema, g: ShapeGroup): B {
  const L = s.layers.length;
  const K = s.topK;
  const E = s.experts;
  const M = g.positions.length;
  const k = g.schema.topK;
  const e = g.schema.experts;
  if (M === L && k === K && e === E) return b;
  const n = b.length;
  const experts = new Uint16Array(n * M * k);
  const weights = new Uint16Array(n * M * k);
  const logits = b.logits ? new Uint16Array(n * M * e) : null;
  for (let t = 0; t < n; t++)
    for (let j = 0; j < M; j++) {
      const src = (t * L + g.positions[j]!) * K;
      const dst = (t * M + j) * k;
      experts.set(b.experts.subarray(src, src + k), dst);
      weights.set(b.weights.subarray(src, src + k), dst);
      if (logits) {
        const ls = (t * L + g.positions[j]!) * E;
        logits.set(b.logits!.subarray(ls, ls + e), (t * M + j) * e);
      }
    }
  return { ...b, experts, weights, logits };
}

/**
 * A count batch (rows × L layers × bins, bins the largest E) at the group's layers, each row `e` bins wide: the
 * group's own experts; bins past a layer's own E are padding and never read.
 */
export function groupCounts(b: CountBatch, s: RoutingSchema, g: ShapeGroup): CountBatch {
  const L = s.layers.length;
  const W = b.bins;
  const M = g.positions.length;
  const e = b.axis === 'expert' ? g.schema.experts : W;
  if (M === L && e === W) return b;
  const counts = new Float64Array(b.length * M * e);
  for (let r = 0; r < b.length; r++)
    for (let j = 0; j < M; j++) {
      const src = (r * L + g.positions[j]!) * W;
      counts.set(b.counts.subarray(src, src + e), (r * M + j) * e);
    }
  return { ...b, bins: e, counts };
}

/** "8 experts top-2": the shape of a group, as text output names it. */
export function shapeLabel(s: RoutingSchema): string {
  return `${s.experts} experts top-${s.topK}`;
}

/**
 * One token's L·K expert ids (the stream's layout) as the group's M·k (its layers, their own k slots), into `out`.
 */
export function groupRow(row: Uint16Array, s: RoutingSchema, g: ShapeGroup, out: Uint16Array): Uint16Array {
  const K = s.topK;
  const k = g.schema.topK;
  const M = g.positions.length;
  if (M === s.layers.length && k === K) return row;
  for (let j = 0; j < M; j++) {
    const src = g.positions[j]! * K;
    out.set(row.subarray(src, src + k), j * k);
  }
  return out;
}
