/**
 * `moescope check`: the routing of a source measured by src/stats, every configured limit judged per layer and
 * for the model as a whole. The numbers come from RoutingStats; this module only picks and compares them.
 */
import { describeSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { RoutingStats, type GlobalMetrics, type LayerMetrics } from '../stats/index.js';
import { logitsScorer } from '../stats/logits-thread.js';
import { GATED } from '../stats/catalogue.js';
import { hasCheckRules, type GateConfig } from './config.js';
import { groupBatch, groupCounts, shapeGroups, shapeLabel } from '../core/shapes.js';
import { layerPositions, subsetBatch, subsetCounts, subsetSchema } from './subset.js';
import { RULES, type MetricKey, type RuleSpec, type Thresholds } from './rules.js';
import type { RoutingStream } from '../core/routing-stream.js';
import { judge, type Column, type GateResult, type Row, type Verdict } from './verdict.js';
import { fmtCount } from '../core/number-format.js';

/** Table columns, one per metric a rule reads (label and digits from the catalogue). */
const COLUMNS: Record<MetricKey, Column> = Object.fromEntries(
  GATED.map((m) => [m.key, { key: m.key, label: m.label, digits: m.digits }]),
) as Record<MetricKey, Column>;

/** Rows (token × layer) whose float16 router logits hold +Inf, per layer (their z-loss is +Inf). */
class InfiniteLogits {
  readonly positive: Float64Array;
  constructor(
    private readonly L: number,
    private readonly E: number,
  ) {
    this.positive = new Float64Array(L);
  }
  add(b: { length: number; logits: Uint16Array | null }): void {
    const logits = b.logits;
    if (!logits) return;
    const { L, E } = this;
    for (let r = 0; r < b.length * L; r++) {
      for (let i = r * E, end = i + E; i < end; i++) {
        if (logits[i] === 0x7c00) {
          this.positive[r % L]!++;
          break;
        }
      }
    }
  }
}

function layerValues(m: LayerMetrics): Record<MetricKey, number | null> {
  return Object.fromEntries(GATED.map((x) => [x.key, x.layer(m)])) as Record<MetricKey, number | null>;
}

/** The whole-model row: RoutingStats' `global` as the catalogue aggregates it (null where it has none). */
function overallValues(g: GlobalMetrics): Record<MetricKey, number | null> {
  return Object.fromEntries(GATED.map((x) => [x.key, x.global ? x.global(g) : null])) as Record<
    MetricKey,
    number | null
  >;
}

/** Rules whose metric has no whole-model aggregate. */
const NO_OVERALL: ReadonlySet<MetricKey> = new Set(
  GATED.filter((m) => m.global === null).map((m) => m.key as MetricKey),
);

function validateAgainst(cfg: GateConfig, source: RoutingStream): void {
  const { schema } = source;
  const where = cfg.source ?? 'config';
  if (cfg.layers) layerPositions(schema, cfg.layers, `--layers / ${where} layers`);
  for (const id of cfg.perLayer.keys()) layerPositions(schema, [id], `${where} perLayer`);
  for (const rule of RULES) {
    if (cfg.overall[rule.key] !== undefined && NO_OVERALL.has(rule.metric))
      throw new UserError(
        `${where}: overall.${rule.key} is not defined for the model as a whole (set it in thresholds or perLayer)`,
      );
    if (!rule.needsLogits || schema.hasLogits) continue;
    const set =
      cfg.thresholds[rule.key] !== undefined ||
      cfg.overall[rule.key] !== undefined ||
      [...cfg.perLayer.values()].some((t) => t[rule.key] !== undefined);
    if (set && source.kind === 'counts')
      throw new UserError(
        `${rule.flag} needs per-token router logits, and ${source.label} is a count trace (load counts per step, no per-token data)`,
      );
    if (set)
      throw new UserError(
        `${rule.flag} needs router logits, and ${source.label} has none (record with logits, e.g. \`moescope run --record … --logits\`)`,
      );
  }
}

/** Limits that apply to a layer: `thresholds`, with that layer's `perLayer` entries replacing them. */
function limitsFor(cfg: GateConfig, layer: number): { limits: Thresholds; origin: Partial<Record<string, string>> } {
  const origin: Partial<Record<string, string>> = {};
  const where = cfg.source ?? 'config';
  const flagged = cfg.flagged;
  for (const rule of RULES) {
    if (cfg.thresholds[rule.key] !== undefined)
      origin[rule.key] = flagged.has(rule.key) ? rule.flag : `${where} thresholds.${rule.key}`;
  }
  const own = cfg.perLayer.get(layer) ?? {};
  for (const k of Object.keys(own)) origin[k] = `${where} perLayer.${layer}.${k}`;
  return { limits: { ...cfg.thresholds, ...own }, origin };
}

function verdictsFor(
  rules: readonly RuleSpec[],
  layer: number | null,
  limits: Thresholds,
  origin: Partial<Record<string, string>>,
  values: Record<MetricKey, number | null>,
  undefinedBecause: Partial<Record<MetricKey, string>> = {},
): Verdict[] {
  const out: Verdict[] = [];
  for (const rule of rules) {
    const limit = limits[rule.key];
    if (limit === undefined) continue;
    const value = values[rule.metric];
    out.push(
      judge({
        id: rule.id,
        label: rule.label,
        source: origin[rule.key] ?? rule.flag,
        layer,
        column: rule.metric,
        value: value ?? NaN,
        limit,
        bound: rule.bound,
        ...(undefinedBecause[rule.metric] ? { undefinedBecause: undefinedBecause[rule.metric] } : {}),
      }),
    );
  }
  return out;
}

/** threads: the caller may block (a command, not a view): score large routers' logits in a worker. */
export async function runCheck(
  source: RoutingStream,
  cfg: GateConfig,
  opts: { threads?: boolean } = {},
): Promise<GateResult> {
  if (!hasCheckRules(cfg))
    throw new UserError(
      'no thresholds to check: give limits such as --max-maxvio 1.5 --max-dead 0, or a config file (docs/ci.md)',
    );
  validateAgainst(cfg, source);
  const full = source.schema;
  const positions = cfg.layers ? layerPositions(full, cfg.layers, '--layers') : full.layers.map((_, i) => i);
  const schema = subsetSchema(full, positions);
  // Layers that differ in E or K (src/core/shapes.ts) are measured one shape at a time, each over its own E and K;
  // a uniform stream is one group, its batches handed on untouched.
  const groups = shapeGroups(schema);
  const mixed = groups.length > 1;
  const parts = groups.map((g) => ({
    g,
    stats: new RoutingStats(g.schema, {
      window: 0,
      collapse: false,
      topN: 1,
      logits: logitsScorer(g.schema, opts.threads ?? false),
      // LongCat's zero-computation experts: the limits judge the real experts' balance, as `stats` reports it.
      zeroExperts: g.positions.map((p) => source.meta?.routers[positions[p]!]?.zeroExperts?.ids),
    }),
    // Router logits that overflowed (float16 ±Inf) drop out of every logit metric; a gate must not pass on that.
    inf: g.schema.hasLogits ? new InfiniteLogits(g.schema.layers.length, g.schema.experts) : null,
  }));
  // Token batches and count batches (a count trace) fill the same load counts: one formula for both.
  const L = full.layers.length;
  for await (const item of source.items()) {
    if (item.kind === 'tokens') {
      const part = subsetBatch(item.batch, full, positions);
      for (const p of parts) {
        const own = groupBatch(part, schema, p.g);
        p.stats.add(own);
        p.inf?.add(own);
      }
    } else if (item.kind === 'counts') {
      const part = subsetCounts(item.batch, L, positions);
      for (const p of parts) p.stats.addCounts(groupCounts(part, schema, p.g));
    }
  }
  const counts = source.kind === 'counts';
  const stats = parts[0]!.stats;
  if (stats.tokens === 0)
    throw new UserError(`${source.label} holds no ${counts ? 'counts' : 'tokens'}: nothing to check`);
  const snaps = parts.map((p) => p.stats.snapshot('run'));
  for (const p of parts) p.stats.close();

  // Per layer, in the stream's order, each from its shape's stats.
  const layerRows: { m: LayerMetrics; infinite: boolean }[] = [];
  parts.forEach((p, i) =>
    p.g.positions.forEach((pos, at) => {
      layerRows[pos] = { m: snaps[i]!.layers[at]!, infinite: (p.inf?.positive[at] ?? 0) > 0 };
    }),
  );
  const rows: Row[] = [];
  const verdicts: Verdict[] = [];
  for (const { m, infinite } of layerRows) {
    const values = layerValues(m);
    // logsumexp over a row with a +Inf logit is +Inf: the layer's z-loss is infinite, not the mean of the rest.
    if (infinite) values.zLoss = Infinity;
    // Rows with a NaN or −Inf logit were left out of the mean: it is not the layer's z-loss, and a limit on it fails.
    else if ((m.nonFiniteLogitRows ?? 0) > 0) values.zLoss = NaN;
    rows.push({ layer: m.layer, values });
    const { limits, origin } = limitsFor(cfg, m.layer);
    const why =
      Number.isNaN(values.zLoss) && (m.nonFiniteLogitRows ?? 0) > 0
        ? { zLoss: `${fmtCount(m.nonFiniteLogitRows!)} token rows have NaN/−Inf logits` }
        : {};
    verdicts.push(...verdictsFor(RULES, m.layer, limits, origin, values, why));
  }
  // The whole-model row: one per shape when layers differ (a mean over layers of different E is no one's metric).
  const where = cfg.source ?? 'config';
  const overallOrigin = Object.fromEntries(Object.keys(cfg.overall).map((k) => [k, `${where} overall.${k}`]));
  let nonFiniteRows = 0;
  parts.forEach((p, i) => {
    const snap = snaps[i]!;
    const overall = overallValues(snap.global);
    if (p.inf?.positive.some((n) => n > 0)) overall.zLoss = Infinity; // a mean over layers with an infinite one
    const nonFinite = snap.global.nonFiniteLogitRows ?? 0;
    nonFiniteRows += nonFinite;
    if (!(overall.zLoss === Infinity) && nonFinite > 0) overall.zLoss = NaN;
    const shape = mixed ? { shape: shapeLabel(p.g.schema) } : {};
    rows.push({ layer: null, values: overall, ...shape });
    const overallWhy =
      Number.isNaN(overall.zLoss) && nonFinite > 0
        ? { zLoss: `${fmtCount(nonFinite)} token rows have NaN/−Inf logits` }
        : {};
    verdicts.push(
      ...verdictsFor(RULES, null, cfg.overall, overallOrigin, overall, overallWhy).map((v) => ({ ...v, ...shape })),
    );
  });
  const allLayers = layerRows.map((r) => r.m);

  const columns = GATED.filter((m) => !m.needsLogits || schema.hasLogits).map((m) => COLUMNS[m.key as MetricKey]);
  const passed = verdicts.every((v) => v.pass);
  const facts: [string, string][] = [];
  if (source.meta?.model) facts.push(['model', source.meta.model]);
  if (counts)
    facts.push(['steps', `${fmtCount(stats.steps)} (a count trace: load counts per step, no per-token data)`]);
  else facts.push(['tokens', fmtCount(stats.tokens)]);
  if (nonFiniteRows > 0)
    facts.push([
      'non-finite logits',
      `${fmtCount(nonFiniteRows)} token-layer rows with NaN/±Inf router logits, left out of the logit metrics (layers ${allLayers
        .filter((m) => (m.nonFiniteLogitRows ?? 0) > 0)
        .map((m) => m.layer)
        .join(
          ', ',
        )}): z-loss is infinite where a logit is +Inf, undefined where one is NaN or −Inf, and a z-loss limit fails there`,
    ]);
  facts.push(['routing', describeSchema(full)]);
  if (cfg.layers) facts.push(['layers checked', schema.layers.join(', ')]);
  if (cfg.source) facts.push(['config', cfg.source]);
  facts.push([
    mixed ? 'overall rows' : 'overall row',
    mixed
      ? `one per shape (${groups.map((g) => `${shapeLabel(g.schema)}: layer${g.schema.layers.length > 1 ? 's' : ''} ${g.schema.layers.join(', ')}`).join('; ')}): mean over its checked layers; dead experts summed`
      : 'mean over the checked layers; dead experts summed',
  ]);
  return {
    command: 'check',
    subject: source.label,
    facts,
    columns,
    rows,
    verdicts,
    notes: [...source.notes],
    passed,
    data: {
      tokens: stats.tokens,
      schema: {
        layers: full.layers,
        experts: full.experts,
        topK: full.topK,
        scoring: full.scoring,
        hasLogits: full.hasLogits,
        ...(full.layerExperts ? { layerExperts: full.layerExperts, layerTopK: full.layerTopK } : {}),
      },
      layersChecked: schema.layers,
      config: cfg.source,
    },
  };
}
