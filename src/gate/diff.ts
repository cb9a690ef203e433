/**
 * `moescope diff BASE NEW`: per MoE layer, how far the load distribution moved (total variation and
 * Jensen–Shannon between the two traces' expert shares) and — on the tokens both traces hold in the same context —
 * how often the routers still pick the same experts (OLMoE's router saturation). Formulas: src/stats; this module
 * reads the traces, aligns identical tokens and judges the limits.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { describeSchema, expertsAt, mixedShapes, topKAt } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { RouterAgreement, jsDivergence, loadMaxVio, type AgreementResult } from '../stats/index.js';
import { ShapedStats } from '../stats/shaped-stats.js';
import { totalVariation } from '../stats/drift.js';
import { fmtCount } from '../core/number-format.js';
import type { DiffThresholds, GateConfig } from './config.js';
import type { RoutingStream } from '../core/routing-stream.js';
import { layerPositions, subsetBatch, subsetCounts, subsetSchema } from './subset.js';
import { TokenAligner, type AlignSummary } from './token-align.js';
import { judge, type Column, type GateResult, type Row, type Verdict } from './verdict.js';

interface Side {
  source: RoutingStream;
  positions: number[];
  schema: RoutingSchema;
  /** Loads per layer, each over its own E when layers differ in shape. */
  stats: ShapedStats;
}

function sideOf(source: RoutingStream, common: number[]): Side {
  const positions = layerPositions(source.schema, common, source.label);
  const schema: RoutingSchema = { ...subsetSchema(source.schema, positions), hasLogits: false };
  return { source, positions, schema, stats: new ShapedStats(schema, { window: 0, collapse: false }) };
}

/**
 * Reads both traces once, in step (the side with fewer tokens read goes next), so tokens the traces share meet
 * while both are in flight: the loads go into each side's RoutingStats, the identical tokens through the aligner
 * into the agreement accumulator, and nothing else is kept. A count trace adds its counts to its load matrix;
 * agreement needs tokens on both sides.
 */
async function readBoth(
  a: Side,
  b: Side,
  align: boolean,
): Promise<{ result: AgreementResult; summary: AlignSummary } | null> {
  const acc = align ? new RouterAgreement(a.schema, b.schema) : null;
  const aligner = acc
    ? new TokenAligner([a.schema, b.schema], (x, y) => {
        acc.addA(x);
        acc.addB(y);
      })
    : null;
  const sides = [a, b] as const;
  const its = sides.map((s) => s.source.items()[Symbol.asyncIterator]());
  const done = [false, false];
  const read = [0, 0];
  try {
    while (!done[0] || !done[1]) {
      const i: 0 | 1 = done[0] ? 1 : done[1] ? 0 : read[0]! <= read[1]! ? 0 : 1;
      const next = await its[i]!.next();
      if (next.done) {
        done[i] = true;
        continue;
      }
      const item = next.value;
      const side = sides[i];
      const L = side.source.schema.layers.length;
      if (item.kind === 'counts') {
        side.stats.addCounts(subsetCounts(item.batch, L, side.positions));
        read[i] += item.batch.length;
        continue;
      }
      if (item.kind !== 'tokens') continue;
      const sub = subsetBatch(item.batch, side.source.schema, side.positions);
      const narrowed: RoutingBatch = { ...sub, logits: null };
      side.stats.add(narrowed);
      aligner?.add(i, narrowed);
      read[i] += narrowed.length;
    }
    if (!acc || !aligner) return null;
    return { summary: aligner.finish(), result: acc.result() };
  } finally {
    aligner?.close();
  }
}

const COLUMNS: Column[] = [
  { key: 'tv', label: 'TV', digits: 4 },
  { key: 'js', label: 'JS (bits)', digits: 4 },
  { key: 'agreement', label: 'agreement', digits: 3 },
  { key: 'firstChoice', label: 'same 1st', digits: 3 },
  { key: 'maxVioBase', label: 'MaxVio base', digits: 3 },
  { key: 'maxVioNew', label: 'MaxVio new', digits: 3 },
];

function limitsFrom(cfg: GateConfig): { limits: DiffThresholds; origin: Record<string, string> } {
  const where = cfg.source ?? 'config';
  const flags: Record<keyof DiffThresholds, string> = {
    maxDrift: '--max-drift',
    maxTv: '--max-tv',
    minAgreement: '--min-agreement',
  };
  const origin: Record<string, string> = {};
  for (const k of Object.keys(cfg.diff) as (keyof DiffThresholds)[])
    origin[k] = cfg.flagged.has(`diff.${k}`) ? flags[k] : `${where} diff.${k}`;
  return { limits: cfg.diff, origin };
}

function sideText(s: RoutingStream, stats: ShapedStats): string {
  return s.kind === 'counts' ? `count trace, ${fmtCount(stats.steps)} steps` : `${fmtCount(stats.tokens)} tokens`;
}

/** layers, experts, topK, and each layer's own E and K when they differ. */
function shapeData(s: RoutingSchema): Record<string, unknown> {
  return {
    layers: s.layers,
    experts: s.experts,
    topK: s.topK,
    ...(s.layerExperts ? { layerExperts: s.layerExperts, layerTopK: s.layerTopK } : {}),
  };
}

/**
 * Layers compared must have one shape on both sides: a load over E experts is not comparable with one over E′, and
 * where layers differ in shape (src/core/shapes.ts) a k that differs would be a different model. One line names the
 * first layer that differs.
 */
function refuseShapeDifference(base: RoutingStream, next: RoutingStream, common: readonly number[]): void {
  const sa = base.schema;
  const sb = next.schema;
  const mixed = mixedShapes(sa) || mixedShapes(sb);
  for (const id of common) {
    const i = sa.layers.indexOf(id);
    const j = sb.layers.indexOf(id);
    const ea = expertsAt(sa, i);
    const eb = expertsAt(sb, j);
    const ka = topKAt(sa, i);
    const kb = topKAt(sb, j);
    if (ea !== eb || (mixed && ka !== kb))
      throw new UserError(
        `layer ${id} routes over ${ea} experts top-${ka} in ${base.label}, ${eb} experts top-${kb} in ${next.label}: ` +
          'the traces differ in layer shapes and their loads cannot be compared',
      );
  }
}

export async function runDiff(base: RoutingStream, next: RoutingStream, cfg: GateConfig): Promise<GateResult> {
  const sa = base.schema;
  const sb = next.schema;
  if (sa.experts !== sb.experts && !mixedShapes(sa) && !mixedShapes(sb))
    throw new UserError(
      `${base.label} routes over ${sa.experts} experts per layer, ${next.label} over ${sb.experts}: their loads cannot be compared`,
    );
  let common = sa.layers.filter((l) => sb.layers.includes(l));
  if (common.length === 0)
    throw new UserError(
      `${base.label} (MoE layers ${sa.layers.join(', ')}) and ${next.label} (${sb.layers.join(', ')}) share no MoE layer`,
    );
  if (cfg.layers) {
    layerPositions({ ...sa, layers: common }, cfg.layers, '--layers (layers both traces hold)');
    common = common.filter((l) => cfg.layers!.includes(l));
  }
  refuseShapeDifference(base, next, common);
  const notes: string[] = [...base.notes, ...next.notes];
  const onlyA = sa.layers.filter((l) => !common.includes(l) && !cfg.layers);
  const onlyB = sb.layers.filter((l) => !common.includes(l) && !cfg.layers);
  if (onlyA.length) notes.push(`MoE layers only in ${base.label}, not compared: ${onlyA.join(', ')}`);
  if (onlyB.length) notes.push(`MoE layers only in ${next.label}, not compared: ${onlyB.join(', ')}`);

  const a = sideOf(base, common);
  const b = sideOf(next, common);
  const anyCounts = base.kind === 'counts' || next.kind === 'counts';
  const aligned = await readBoth(a, b, !anyCounts);
  if (a.stats.tokens === 0) throw new UserError(`${base.label} holds no tokens: nothing to compare`);
  if (b.stats.tokens === 0) throw new UserError(`${next.label} holds no tokens: nothing to compare`);
  const agreement =
    aligned && aligned.summary.pairs > 0 ? { result: aligned.result, baseTokens: a.stats.tokens } : null;
  if (aligned) {
    const [ua, ub] = aligned.summary.unordered;
    const say = (n: number, label: string) =>
      notes.push(
        `${fmtCount(n)} sequence${n === 1 ? ' of ' + label + ' goes' : 's of ' + label + ' go'} back in position: identical tokens after that point are not paired`,
      );
    if (ua) say(ua, base.label);
    if (ub) say(ub, next.label);
    const [da, db] = aligned.summary.dropped;
    if (da + db)
      notes.push(
        `${fmtCount(da + db)} sequences stopped pairing where a token could not wait for its partner (the spill file reached its limit)`,
      );
  }
  if (anyCounts)
    notes.push('router agreement not computed: a count trace holds load counts per step, no per-token routing');
  else if (!agreement)
    notes.push(
      'router agreement not computed: the traces hold no identical tokens (same sequence, position and token id, in the same context)',
    );
  const { limits, origin } = limitsFrom(cfg);
  if (limits.minAgreement !== undefined && anyCounts)
    throw new UserError(`${origin.minAgreement} needs per-token routing in both traces; a count trace has none`);
  if (limits.minAgreement !== undefined && !agreement)
    throw new UserError(
      `${origin.minAgreement} needs both traces to hold the same tokens (record both on the same prompts); these share none`,
    );

  const rows: Row[] = [];
  const verdicts: Verdict[] = [];
  common.forEach((layer, l) => {
    // Each layer over its own E (the same on both sides: refuseShapeDifference).
    const E = expertsAt(a.schema, l);
    const la = a.stats.load(l);
    const lb = b.stats.load(l);
    const tv = totalVariation(la, 0, lb, 0, E);
    const js = jsDivergence(la, 0, lb, 0, E);
    const ag = agreement?.result.layers[l] ?? null;
    rows.push({
      layer,
      values: {
        tv,
        js,
        agreement: ag?.overlap ?? null,
        firstChoice: ag?.firstChoice ?? null,
        maxVioBase: loadMaxVio(la, 0, E),
        maxVioNew: loadMaxVio(lb, 0, E),
      },
    });
    const v = (
      id: string,
      label: string,
      column: string,
      value: number,
      limit: number | undefined,
      bound: 'max' | 'min',
      key: string,
    ) => {
      if (limit !== undefined)
        verdicts.push(judge({ id, label, source: origin[key]!, layer, column, value, limit, bound }));
    };
    v('max-drift', 'load drift, Jensen–Shannon (bits)', 'js', js, limits.maxDrift, 'max', 'maxDrift');
    v('max-tv', 'load drift, total variation', 'tv', tv, limits.maxTv, 'max', 'maxTv');
    if (ag)
      v(
        'min-agreement',
        'router agreement |TopK ∩ TopK| / K',
        'agreement',
        ag.overlap ?? NaN,
        limits.minAgreement,
        'min',
        'minAgreement',
      );
  });

  const facts: [string, string][] = [
    ['base', `${base.label} — ${sideText(base, a.stats)}, ${describeSchema(sa)}`],
    ['new', `${next.label} — ${sideText(next, b.stats)}, ${describeSchema(sb)}`],
    [
      'identical tokens',
      agreement ? `${fmtCount(agreement.result.tokens)} of ${fmtCount(agreement.baseTokens)} in base` : 'none',
    ],
    ['TV', 'total variation ½ Σ |p − q| of the expert shares (0 same … 1 disjoint)'],
    ['JS', 'Jensen–Shannon divergence of the expert shares, base 2 (0 same … 1 disjoint)'],
    ['agreement', 'mean |TopK_base ∩ TopK_new| / K on identical tokens (OLMoE router saturation; 1 = same experts)'],
  ];
  return {
    command: 'diff',
    subject: `${base.label} → ${next.label}`,
    facts,
    columns: COLUMNS,
    rows,
    verdicts,
    notes,
    passed: verdicts.every((x) => x.pass),
    data: {
      base: { trace: base.label, tokens: a.stats.tokens, ...shapeData(sa) },
      new: { trace: next.label, tokens: b.stats.tokens, ...shapeData(sb) },
      identicalTokens: agreement?.result.tokens ?? 0,
      agreement: agreement ? { overlap: agreement.result.overlap, firstChoice: agreement.result.firstChoice } : null,
    },
  };
}
