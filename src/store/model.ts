/**
 * RoutingModel: everything the TUI knows about one stream, fed batch by batch — the stats accumulators
 * (src/stats: run and window counts, collapse detector, co-activation), ring buffers of recent tokens and memory
 * samples, and stream timing. Mutable and fast; views never read it directly but through frames (frame.ts).
 *
 * A stream whose layers differ in E or K (src/core/batch.ts § RoutingSchema) is measured one shape at a time, as
 * `stats` does (src/core/shapes.ts): one ShapePart per (E, K), each fed its layers in their own shape, so every
 * accumulator and metric sees a layer's own experts and never a padding slot. A uniform stream is one part fed the
 * batches untouched. What the views read is indexed by the stream's layer (0 … L−1) whatever part holds it.
 */
import { expertsAt, type RoutingBatch, type RoutingSchema, topKAt } from '../core/batch.js';
import { groupBatch, groupRow, type ShapeGroup, shapeGroups } from '../core/shapes.js';
import type { CountBatch } from '../core/routing-stream.js';
import type { MemorySample } from '../core/memory.js';
import { layerLabels, type StreamMeta } from '../core/stream.js';
import { sanitizeLine } from '../core/sanitize.js';
import {
  DEFAULT_COLLAPSE_WINDOW,
  RankLoads,
  RoutingStats,
  WindowCounts,
  type CollapseRules,
  type CollapseWarning,
  type LayerMetrics,
  type Scope,
} from '../stats/index.js';
import type { LogitsSnapshot } from '../stats/live-logits.js';
import { ChunkedCoactivation } from './coact-chunks.js';
import { firstChoice } from '../stats/choice.js';
import { SampleRing, TokenRing } from './ring.js';

export interface ModelOptions {
  /** Tokens of the collapse detector's window and the initial display window (default: src/stats' DEFAULT_COLLAPSE_WINDOW, as in `stats` and `report`). */
  window?: number;
  /** Recent tokens kept for the token stream and the routing debugger. */
  ringTokens?: number;
  /** Memory samples kept for sparklines. */
  memorySamples?: number;
  collapse?: Partial<CollapseRules> | false;
  /**
   * 'posted': logits metrics come with the batches, computed by the producer (the engine worker, see
   * src/stats/live-logits.ts) and passed to add(); default 'here': scored on this thread. Never a worker that this
   * thread would wait for: it draws.
   */
  logits?: 'here' | 'posted';
  /**
   * The stream carries load counts, not tokens (a count trace, a Prometheus watch): no window, collapse detector,
   * co-activation or token ring — the views show the counts over the whole stream. With per-device counts the
   * schema's experts are the devices (the caller builds it so) and each bin is shown as a column.
   */
  counts?: boolean;
}

export const DEFAULT_WINDOW = DEFAULT_COLLAPSE_WINDOW;
const DEFAULT_RING_TOKENS = 16384;
/** Display windows `w` cycles through. */
export const WINDOW_SIZES = [64, 256, 512, 1024, 4096] as const;
/** Co-activation keeps L·E² counters; above this many it is skipped (the view says so). */
const MAX_COACT_COUNTERS = 32 * 1024 * 1024;

/** The accumulators of the layers of one shape (E, K), in their own shape. */
export interface ShapePart {
  group: ShapeGroup;
  stats: RoutingStats;
  coact: ChunkedCoactivation | null;
  /** Per-rank load when the stream's rows carry a rank (`listen`, a merged trace); null otherwise. */
  ranks: RankLoads | null;
  /** Display window when its length differs from the detector's; null = use stats.window. */
  ownWindow: WindowCounts | null;
}

export class RoutingModel {
  readonly schema: RoutingSchema;
  readonly meta: StreamMeta;
  readonly options: Required<Omit<ModelOptions, 'collapse' | 'logits' | 'counts'>> &
    Pick<ModelOptions, 'collapse' | 'logits'>;
  /** Fed load counts (a count stream) rather than tokens. */
  readonly countsOnly: boolean;
  /** Each layer's own E and K (the schema's E and K for every layer of a uniform stream). */
  readonly layerExperts: readonly number[];
  readonly layerTopK: readonly number[];
  /** Count rows (steps) added. */
  steps = 0;
  /** One part per shape, in the order their first layer appears (one part for a uniform stream). */
  parts!: ShapePart[];
  /** Layer l of the stream is layer `at` of part `part`. */
  readonly where: readonly { part: number; at: number }[];
  private readonly groups: ShapeGroup[];
  ring!: TokenRing;
  /** First choice (highest-weight expert) per ring slot per layer, from stats' firstChoice. */
  private first!: Uint16Array;
  readonly memory: SampleRing;
  private windowSize: number;
  /** Every collapse warning of every part, in the order they fired (layerIndex: the stream's layer). */
  warnings: CollapseWarning[] = [];
  /** Bumped by every change; frames remember the version they were built from. */
  version = 0;
  /**
   * What the stream says it cannot vouch for, read once from its header: routers whose weights the engine could not
   * follow to the mixing (their selection is the model's, their weights are not known), and each layer's
   * zero-computation experts (LongCat-Flash). Texts from the file are sanitised here.
   */
  readonly fidelity: Fidelity;
  /** Capture time (ms since epoch) of the first and the latest token. */
  firstMs: number | null = null;
  lastMs: number | null = null;

  constructor(schema: RoutingSchema, meta: StreamMeta, options: ModelOptions = {}) {
    this.schema = schema;
    this.meta = meta;
    this.options = {
      window: options.window ?? DEFAULT_WINDOW,
      ringTokens: options.ringTokens ?? DEFAULT_RING_TOKENS,
      memorySamples: options.memorySamples ?? 600,
      collapse: options.collapse,
      logits: options.logits,
    };
    this.countsOnly = options.counts ?? false;
    this.windowSize = this.options.window;
    this.memory = new SampleRing(this.options.memorySamples);
    this.layerExperts = schema.layers.map((_, l) => expertsAt(schema, l));
    this.layerTopK = schema.layers.map((_, l) => topKAt(schema, l));
    this.groups = shapeGroups(schema);
    const where: { part: number; at: number }[] = [];
    this.groups.forEach((g, part) => {
      g.positions.forEach((l, at) => {
        where[l] = { part, at };
      });
    });
    this.where = where;
    // Load counts (per device, often) carry no expert ids the header's zero experts could name.
    this.fidelity = fidelityOf(
      this.countsOnly ? { ...meta, routers: meta.routers.map(withoutZero) } : meta,
      schema,
      this.layerExperts,
    );
    this.reset();
  }

  get layers(): number {
    return this.schema.layers.length;
  }
  /** The largest E of any layer (every layer's, when uniform). */
  get experts(): number {
    return this.schema.experts;
  }
  /** The largest K of any layer (every layer's, when uniform). */
  get topK(): number {
    return this.schema.topK;
  }
  /** Whether the layers differ in E or K (more than one part). */
  get mixed(): boolean {
    return this.parts.length > 1;
  }
  /** The first part's stats: the whole stream's when its layers are uniform. */
  get stats(): RoutingStats {
    return this.parts[0]!.stats;
  }
  get tokens(): number {
    return this.parts[0]!.stats.tokens;
  }
  get hasCoactivation(): boolean {
    return this.parts.every((p) => p.coact !== null);
  }

  /** The part holding stream layer l, and l's index within it. */
  partOf(l: number): { part: ShapePart; at: number } {
    const w = this.where[l]!;
    return { part: this.parts[w.part]!, at: w.at };
  }

  /** Forgets everything (replay seeks backwards by resetting and feeding again). */
  reset(): void {
    const { window, ringTokens, collapse, logits } = this.options;
    const counts = this.countsOnly;
    const labels = layerLabels(this.meta.routers, this.schema.layers);
    this.parts = this.groups.map((g) => {
      const s = g.schema;
      const E = s.experts;
      return {
        group: g,
        stats: counts
          ? new RoutingStats(s, { window: 0, collapse: false })
          : new RoutingStats(s, {
              window,
              collapse,
              logits: logits ?? 'here',
              // Warnings name the router as the views do (its model layer and role where roles differ).
              layerLabels: g.positions.map((l) => labels[l]!),
              // LongCat's zero-computation experts: balance over the real experts, as `stats` measures it.
              zeroExperts: g.positions.map((l) => this.meta.routers[l]?.zeroExperts?.ids),
            }),
        coact: !counts && s.layers.length * E * E <= MAX_COACT_COUNTERS ? new ChunkedCoactivation(s) : null,
        ranks: null,
        ownWindow:
          counts || this.windowSize === window ? null : new WindowCounts(this.windowSize, s.layers.length, E, s.topK),
      };
    });
    this.ring = new TokenRing(this.schema, counts ? 1 : Math.max(ringTokens, WINDOW_SIZES[WINDOW_SIZES.length - 1]));
    this.first = new Uint16Array(this.ring.capacity * this.layers);
    this.warnings = [];
    this.steps = 0;
    this.memory.clear();
    this.firstMs = null;
    this.lastMs = null;
    this.version++;
  }

  /** Adds a batch; `derived`: the producer's logits metrics up to its end (with `logits: 'posted'`). */
  add(b: RoutingBatch, derived?: unknown): CollapseWarning[] {
    if (b.length === 0) return [];
    const slot0 = this.ring.end;
    const fired: CollapseWarning[] = [];
    for (const p of this.parts) {
      const g = p.group;
      const gb = groupBatch(b, this.schema, g);
      const f = p.stats.add(gb, this.parts.length === 1 ? derived : partSnapshot(derived, g));
      // The part's detector names the layer by its position in the part: the views want the stream's.
      for (const w of f) w.layerIndex = g.positions[w.layerIndex]!;
      fired.push(...f);
      p.coact?.add(gb);
      if (b.rank) (p.ranks ??= new RankLoads(g.schema.layers.length, g.schema.experts, g.schema.topK)).add(gb);
      if (p.ownWindow) {
        const lk = g.schema.layers.length * g.schema.topK;
        for (let t = 0; t < b.length; t++) p.ownWindow.push(gb.experts, t * lk);
      }
    }
    // Parts fire in part order within a batch; the stream's order is by token.
    if (this.parts.length > 1) fired.sort((x, y) => x.firstToken - y.firstToken);
    for (const w of fired) this.warnings.push(w);
    this.ring.push(b);
    const L = this.layers;
    const K = this.topK;
    const ks = this.layerTopK;
    const cap = this.ring.capacity;
    for (let t = 0; t < b.length; t++) {
      const s = ((slot0 + t) % cap) * L;
      for (let l = 0; l < L; l++) this.first[s + l] = firstChoice(b, (t * L + l) * K, ks[l]!);
    }
    const t0 = Number(b.tNs[0]! / 1_000_000n);
    const t1 = Number(b.tNs[b.length - 1]! / 1_000_000n);
    if (this.firstMs === null) this.firstMs = t0;
    this.lastMs = t1;
    this.version++;
    return fired;
  }

  /**
   * What the producer computed up to the last batch, sent after it (a stream's DerivedItem: the final logits
   * snapshot the engine worker held back); as `derived` of add() without a batch.
   */
  addDerived(derived: unknown): void {
    for (const p of this.parts) p.stats.addPosted(this.parts.length === 1 ? derived : partSnapshot(derived, p.group));
    this.version++;
  }

  /**
   * Adds count rows to the run counts (RoutingStats.addCounts: the load metrics are the token formulas). Per-device
   * counts go in as the columns of a model whose schema has one "expert" per device (see ModelOptions.counts).
   * A count stream has one shape (docs/trace-format.md § Count traces): one part.
   */
  addCounts(b: CountBatch): void {
    if (!this.countsOnly) throw new Error('RoutingModel was not created for counts');
    if (b.length === 0) return;
    this.stats.addCounts(b.axis === 'device' ? { ...b, axis: 'expert' } : b);
    this.steps += b.length;
    const t0 = Number(b.tNs[0]! / 1_000_000n);
    const t1 = Number(b.tNs[b.length - 1]! / 1_000_000n);
    if (t0 > 0 && this.firstMs === null) this.firstMs = t0;
    if (t1 > 0) this.lastMs = t1;
    this.version++;
  }

  addMemory(s: MemorySample): void {
    this.memory.push(s);
    this.version++;
  }

  /** Highest-weight expert of token i at layer index l (the token must be in the ring). */
  firstChoiceOf(i: number, l: number): number {
    if (!this.ring.has(i)) throw new RangeError(`token ${i} is no longer held`);
    return this.first[(i % this.ring.capacity) * this.layers + l]!;
  }

  /** A part's display window: its counts and token range. */
  displayWindowOf(p: ShapePart): WindowCounts {
    return p.ownWindow ?? p.stats.window!;
  }

  /** The display window of the (first) part: its token count and range are every part's. */
  displayWindow(): WindowCounts {
    return this.displayWindowOf(this.parts[0]!);
  }

  /** Whether the display window is the detector's own (its metrics come whole from RoutingStats). */
  get displayIsDetectorWindow(): boolean {
    return this.parts[0]!.ownWindow === null;
  }

  get displayWindowSize(): number {
    return this.windowSize;
  }

  /**
   * Assignment counts of the scope as one L·E matrix (E the largest): layer l's own experts at l·E … l·E + E_l − 1,
   * zeros past them (a layer with fewer experts has no expert there: views draw nothing, src/store/frame.ts).
   * A copy: it stays as it is while the model moves on.
   */
  loadCounts(scope: Scope): Float64Array {
    const run = scope === 'run' || this.countsOnly;
    if (this.parts.length === 1) {
      const p = this.parts[0]!;
      return Float64Array.from(run ? p.stats.load : this.displayWindowOf(p).counts);
    }
    return this.padded((p) => (run ? p.stats.load : this.displayWindowOf(p).counts));
  }

  /**
   * The detector's window counts (the run's without a window), as loadCounts lays them out: a live view of the
   * accumulator for a uniform stream (copy before keeping), a copy for mixed shapes.
   */
  detectorCounts(): Float64Array | Int32Array {
    if (this.parts.length === 1) return this.stats.window ? this.stats.window.counts : this.stats.load;
    return this.padded((p) => p.stats.window?.counts ?? p.stats.load);
  }

  /** Each part's L_p·E_p matrix placed at its layers' rows of one L·E matrix (E the largest), zeros past a layer's E. */
  private padded(of: (p: ShapePart) => Float64Array | Int32Array): Float64Array {
    const E = this.experts;
    const out = new Float64Array(this.layers * E);
    for (const p of this.parts) {
      const src = of(p);
      const e = p.group.schema.experts;
      p.group.positions.forEach((l, at) => {
        out.set(src.subarray(at * e, (at + 1) * e), l * E);
      });
    }
    return out;
  }

  /** Metrics of stream layer l over its own E and K (RoutingStats.layerMetrics of its part). */
  layerMetrics(l: number, scope: Scope = 'run'): LayerMetrics {
    const { part, at } = this.partOf(l);
    return part.stats.layerMetrics(at, scope);
  }

  /** Warnings still active, over every part. */
  get activeWarnings(): number {
    let n = 0;
    for (const p of this.parts) n += p.stats.detector ? p.stats.detector.activeWarnings().length : 0;
    return n;
  }

  /** Warnings fired but not kept (stats' per-rule limit), over every part. */
  get suppressedWarnings(): number {
    let n = 0;
    for (const p of this.parts) n += p.stats.detector ? p.stats.detector.suppressed : 0;
    return n;
  }

  /** Changes the display window's length, refilling it from the token ring (the detector keeps its own). */
  setDisplayWindow(size: number): void {
    if (size === this.windowSize || this.countsOnly) return;
    this.windowSize = size;
    for (const p of this.parts) {
      if (size === this.options.window) p.ownWindow = null;
      else {
        const g = p.group;
        const M = g.schema.layers.length;
        const k = g.schema.topK;
        const w = new WindowCounts(size, M, g.schema.experts, k);
        const r = this.ring;
        const row = new Uint16Array(M * k);
        for (let i = Math.max(r.start, r.end - size); i < r.end; i++)
          w.push(groupRow(r.expertsOf(i), this.schema, g, row), 0);
        p.ownWindow = w;
      }
    }
    this.version++;
  }
}

/** A router whose weights were not followed to the mixing (StreamMeta's `mixing: "not-followed"`). */
export interface UnfollowedRouter {
  /** The stream's layer index (0 … L−1). */
  index: number;
  /** The views' label of that layer (layerLabels). */
  label: string;
  /** Why, from the header (sanitised, one line); "no reason recorded" when the header gives none. */
  note: string;
}

export interface Fidelity {
  /** Routers whose recorded weights are not what the experts were multiplied by, in layer order. */
  unfollowed: UnfollowedRouter[];
  /** Per stream layer: whether its recorded weights are the model's (false: not followed, weights unknown). */
  weightsKnown: boolean[];
  /** Per stream layer: its zero-computation experts and their kind (sanitised), or null. */
  zeroExperts: ({ ids: number[]; kind: string } | null)[];
  /** The same as an L·E mask (E the largest; 1 = zero expert), or null when no layer has any. */
  zeroMask: Uint8Array | null;
}

function withoutZero(r: StreamMeta['routers'][number]): StreamMeta['routers'][number] {
  return { ...r, zeroExperts: null };
}

function fidelityOf(meta: StreamMeta, schema: RoutingSchema, layerExperts: readonly number[]): Fidelity {
  const L = schema.layers.length;
  const labels = layerLabels(meta.routers, schema.layers);
  // The header's routers are the stream's layers in order (as `stats` reads them).
  const routers = meta.routers.slice(0, L);
  const unfollowed: UnfollowedRouter[] = [];
  const weightsKnown = schema.layers.map(() => true);
  const zeroExperts: Fidelity['zeroExperts'] = schema.layers.map(() => null);
  routers.forEach((r, l) => {
    if (r.mixing === 'not-followed') {
      weightsKnown[l] = false;
      unfollowed.push({
        index: l,
        label: labels[l]!,
        note: sanitizeLine(String(r.mixingNote || 'no reason recorded')),
      });
    }
    const z = r.zeroExperts;
    if (z && Array.isArray(z.ids) && z.ids.length > 0)
      zeroExperts[l] = { ids: [...z.ids], kind: sanitizeLine(String(z.kind)) };
  });
  // The mask over the stream's layout (each layer's ids within its own E: stats checks them, src/stats/zero-experts.ts).
  const E = schema.experts;
  let zeroMask: Uint8Array | null = null;
  zeroExperts.forEach((z, l) => {
    if (!z) return;
    zeroMask ??= new Uint8Array(L * E);
    for (const e of z.ids) if (Number.isInteger(e) && e >= 0 && e < layerExperts[l]!) zeroMask[l * E + e] = 1;
  });
  return { unfollowed, weightsKnown, zeroExperts, zeroMask };
}

/** The producer's logits snapshot of the whole stream (live-logits.ts), cut to one part's layers. */
function partSnapshot(derived: unknown, g: ShapeGroup): LogitsSnapshot | undefined {
  const s = derived as LogitsSnapshot | null | undefined;
  if (!s || typeof s !== 'object' || !Array.isArray(s.layers)) return undefined;
  return { ...s, layers: g.positions.map((l) => s.layers[l]!) };
}
