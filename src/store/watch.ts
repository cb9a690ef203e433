/**
 * What the `watch` view shows, kept up to date from the counts stream: per layer × GPU, the last interval's and the
 * whole watch's load relative to an even share, balancedness per layer (SGLang's formula, src/stats), and the
 * balancedness of every interval so far (the line over time). Views draw snapshots of it; they compute nothing.
 *
 * The whole watch's counts are the store's RoutingModel fed through addCounts — the one path every count stream
 * takes (`replay` of a count trace, `dash --watch`); this model adds the per-interval view on top.
 */
import type { CountBatch } from '../core/routing-stream.js';
import { balancednessOfDeviceLoads } from '../stats/balancedness.js';
import { RoutingModel } from './model.js';

export interface WatchLoads {
  /** Per layer, each GPU's load ÷ the layer's mean GPU load (1 = even); 0 for an idle layer. */
  relative: Float64Array[];
  /** Per layer, (mean + 1e-5) / (max + 1e-5). */
  perLayer: number[];
  /** Mean over layers: SGLang's balancedness. */
  balancedness: number;
  assignments: number;
}

export interface WatchSnapshot {
  layers: number[];
  gpus: number;
  intervals: number;
  last: WatchLoads | null;
  total: WatchLoads | null;
  /** Balancedness of each interval with traffic, oldest first (capped). */
  history: number[];
  /** The server's own mean balancedness (sglang:eplb_balancedness) over the last interval, when published. */
  serverMean: number | null;
  ended: boolean;
  error: string | null;
}

const HISTORY = 600;

function loadsOf(counts: Float64Array, L: number, G: number): WatchLoads {
  const rows = Array.from({ length: L }, (_, l) => counts.subarray(l * G, (l + 1) * G));
  const b = balancednessOfDeviceLoads(rows);
  const relative = rows.map((r, l) => Float64Array.from(r, (v) => (b.mean[l]! > 0 ? v / b.mean[l]! : 0)));
  return { relative, perLayer: b.perLayer, balancedness: b.sglang, assignments: counts.reduce((a, v) => a + v, 0) };
}

export class WatchModel {
  /** The whole watch: the store's model of a count stream, one "expert" per GPU (RoutingModel.addCounts). */
  readonly model: RoutingModel;
  private snap: WatchSnapshot;
  version = 0;

  constructor(
    readonly layers: number[],
    readonly gpus: number,
  ) {
    const schema = { layers, experts: gpus, topK: 1, scoring: 'softmax' as const, hasLogits: false };
    this.model = new RoutingModel(
      schema,
      { model: null, routers: [], tokenizer: null, devices: [], source: 'watch' },
      { counts: true },
    );
    this.snap = {
      layers,
      gpus,
      intervals: 0,
      last: null,
      total: null,
      history: [],
      serverMean: null,
      ended: false,
      error: null,
    };
  }

  add(b: CountBatch, serverMean: number | null = null): void {
    const L = this.layers.length;
    const G = this.gpus;
    const history = this.snap.history.slice(-(HISTORY - b.length));
    let last: WatchLoads | null = this.snap.last;
    for (let r = 0; r < b.length; r++) {
      last = loadsOf(b.counts.subarray(r * L * G, (r + 1) * L * G), L, G);
      if (last.assignments > 0) history.push(last.balancedness);
    }
    this.model.addCounts(b);
    const total = loadsOf(this.model.stats.load, L, G);
    this.snap = {
      ...this.snap,
      intervals: this.model.steps,
      last,
      total,
      history,
      serverMean: serverMean ?? this.snap.serverMean,
    };
    this.version++;
  }

  end(error: string | null): void {
    this.snap = { ...this.snap, ended: true, error };
    this.version++;
  }

  snapshot(): WatchSnapshot {
    return this.snap;
  }
}
