/**
 * `moescope diff BASE NEW`: per MoE layer, how far the load distribution moved (total variation and
 * Jensen–Shannon between the two traces' expert shares) and — on the tokens both traces hold in the same context —
 * how often the routers still pick the same experts (OLMoE's router saturation). Formulas: src/stats; this module
 * reads the traces, aligns identical tokens and judges the limits.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { describeSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { RouterAgreement, RoutingStats, jsDivergence, loadMaxVio, type AgreementResult } from '../stats/index.js';
import { totalVariation } from '../stats/drift.js';
import { fmtCount } from '../core/number-format.js';
import type { DiffThresholds, GateConfig } from './config.js';
import type { RoutingStream } from '../core/routing-stream.js';
import { concatBatches, layerPositions, selectRows, subsetBatch, subsetCounts, subsetSchema } from './subset.js';
import { judge, type Column, type GateResult, type Row, type Verdict } from './verdict.js';

/** Tokens fed to the agreement accumulator at a time (bounds the aligned copies). */
const ALIGN_CHUNK = 4096;

interface Side {
  source: RoutingStream;
  positions: number[];
  schema: RoutingSchema;
  stats: RoutingStats;
  /** All tokens, common layers only, logits dropped (for alignment); null when agreement is impossible. */
  kept: RoutingBatch[] | null;
}

async function readSide(source: RoutingStream, common: number[], keep: boolean): Promise<Side> {
  const positions = layerPositions(source.schema, common, source.label);
  const schema: RoutingSchema = { ...subsetSchema(source.schema, positions), hasLogits: false };
  const stats = new RoutingStats(schema, { window: 0, collapse: false });
  // A count trace has no tokens to align: its side adds its counts to the same load matrix, agreement is skipped.
  const kept: RoutingBatch[] | null = keep && source.kind === 'tokens' ? [] : null;
  const L = source.schema.layers.length;
  for await (const item of source.items()) {
    if (item.kind === 'counts') {
      stats.addCounts(subsetCounts(item.batch, L, positions));
      continue;
    }
    if (item.kind !== 'tokens') continue;
    const b = item.batch;
    const sub = subsetBatch(b, source.schema, positions);
    const narrowed: RoutingBatch = { ...sub, logits: null };
    stats.add(narrowed);
    // subsetBatch returns the reader's batch when every layer is kept: copy so its buffer (with logits) can go.
    if (kept) kept.push(sub === b ? { ...narrowed, experts: b.experts.slice(), weights: b.weights.slice() } : narrowed);
  }
  return { source, positions, schema, stats, kept };
}

/**
 * Pairs of token indices (base, new) holding the same token in the same context: per sequence id, tokens in
 * position order while positions and token ids agree; the first difference ends the pairing for that sequence
 * (everything after it sees a different prefix).
 */
export function identicalTokens(a: RoutingBatch, b: RoutingBatch): { ia: Int32Array; ib: Int32Array } {
  const bySeq = (x: RoutingBatch) => {
    const m = new Map<number, number[]>();
    for (let i = 0; i < x.length; i++) {
      const s = x.seq[i]!;
      let l = m.get(s);
      if (!l) m.set(s, (l = []));
      l.push(i);
    }
    for (const l of m.values()) l.sort((p, q) => x.pos[p]! - x.pos[q]! || p - q);
    return m;
  };
  const sa = bySeq(a);
  const sb = bySeq(b);
  const ia: number[] = [];
  const ib: number[] = [];
  for (const [seq, la] of sa) {
    const lb = sb.get(seq);
    if (!lb) continue;
    const n = Math.min(la.length, lb.length);
    for (let j = 0; j < n; j++) {
      const p = la[j]!;
      const q = lb[j]!;
      if (a.pos[p] !== b.pos[q] || a.tokenId[p] !== b.tokenId[q]) break;
      ia.push(p);
      ib.push(q);
    }
  }
  return { ia: Int32Array.from(ia), ib: Int32Array.from(ib) };
}

function agreementOf(a: Side, b: Side): { result: AgreementResult; baseTokens: number } | null {
  const A = concatBatches(a.kept!, a.schema);
  const B = concatBatches(b.kept!, b.schema);
  const { ia, ib } = identicalTokens(A, B);
  if (ia.length === 0) return null;
  const acc = new RouterAgreement(a.schema, b.schema);
  for (let s = 0; s < ia.length; s += ALIGN_CHUNK) {
    acc.addA(selectRows(A, a.schema, ia.subarray(s, s + ALIGN_CHUNK)));
    acc.addB(selectRows(B, b.schema, ib.subarray(s, s + ALIGN_CHUNK)));
  }
  return { result: acc.result(), baseTokens: A.length };
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
  const flags: Record<keyof DiffThresholds, string> = { maxDrift: '--max-drift', maxTv: '--max-tv', minAgreement: '--min-agreement' };
  const origin: Record<string, string> = {};
  for (const k of Object.keys(cfg.diff) as (keyof DiffThresholds)[])
    origin[k] = cfg.flagged.has(`diff.${k}`) ? flags[k] : `${where} diff.${k}`;
  return { limits: cfg.diff, origin };
}

function sideText(s: RoutingStream, stats: RoutingStats): string {
  return s.kind === 'counts' ? `count trace, ${fmtCount(stats.steps)} steps` : `${fmtCount(stats.tokens)} tokens`;
}

export async function runDiff(base: RoutingStream, next: RoutingStream, cfg: GateConfig): Promise<GateResult> {
  const sa = base.schema;
  const sb = next.schema;
  if (sa.experts !== sb.experts)
    throw new UserError(`${base.label} routes over ${sa.experts} experts per layer, ${next.label} over ${sb.experts}: their loads cannot be compared`);
  let common = sa.layers.filter((l) => sb.layers.includes(l));
  if (common.length === 0)
    throw new UserError(`${base.label} (MoE layers ${sa.layers.join(', ')}) and ${next.label} (${sb.layers.join(', ')}) share no MoE layer`);
  if (cfg.layers) {
    layerPositions({ ...sa, layers: common }, cfg.layers, '--layers (layers both traces hold)');
    common = common.filter((l) => cfg.layers!.includes(l));
  }
  const notes: string[] = [...base.notes, ...next.notes];
  const onlyA = sa.layers.filter((l) => !common.includes(l) && !cfg.layers);
  const onlyB = sb.layers.filter((l) => !common.includes(l) && !cfg.layers);
  if (onlyA.length) notes.push(`MoE layers only in ${base.label}, not compared: ${onlyA.join(', ')}`);
  if (onlyB.length) notes.push(`MoE layers only in ${next.label}, not compared: ${onlyB.join(', ')}`);

  const a = await readSide(base, common, true);
  const b = await readSide(next, common, true);
  if (a.stats.tokens === 0) throw new UserError(`${base.label} holds no tokens: nothing to compare`);
  if (b.stats.tokens === 0) throw new UserError(`${next.label} holds no tokens: nothing to compare`);
  const anyCounts = base.kind === 'counts' || next.kind === 'counts';
  const agreement = anyCounts ? null : agreementOf(a, b);
  if (anyCounts) notes.push('router agreement not computed: a count trace holds load counts per step, no per-token routing');
  else if (!agreement) notes.push('router agreement not computed: the traces hold no identical tokens (same sequence, position and token id, in the same context)');
  const { limits, origin } = limitsFrom(cfg);
  if (limits.minAgreement !== undefined && anyCounts)
    throw new UserError(`${origin.minAgreement} needs per-token routing in both traces; a count trace has none`);
  if (limits.minAgreement !== undefined && !agreement)
    throw new UserError(`${origin.minAgreement} needs both traces to hold the same tokens (record both on the same prompts); these share none`);

  const E = sa.experts;
  const rows: Row[] = [];
  const verdicts: Verdict[] = [];
  common.forEach((layer, l) => {
    const base = l * E;
    const tv = totalVariation(a.stats.load, base, b.stats.load, base, E);
    const js = jsDivergence(a.stats.load, base, b.stats.load, base, E);
    const ag = agreement?.result.layers[l] ?? null;
    rows.push({
      layer,
      values: {
        tv,
        js,
        agreement: ag?.overlap ?? null,
        firstChoice: ag?.firstChoice ?? null,
        maxVioBase: loadMaxVio(a.stats.load, base, E),
        maxVioNew: loadMaxVio(b.stats.load, base, E),
      },
    });
    const v = (id: string, label: string, column: string, value: number, limit: number | undefined, bound: 'max' | 'min', key: string) => {
      if (limit !== undefined) verdicts.push(judge({ id, label, source: origin[key]!, layer, column, value, limit, bound }));
    };
    v('max-drift', 'load drift, Jensen–Shannon (bits)', 'js', js, limits.maxDrift, 'max', 'maxDrift');
    v('max-tv', 'load drift, total variation', 'tv', tv, limits.maxTv, 'max', 'maxTv');
    if (ag) v('min-agreement', 'router agreement |TopK ∩ TopK| / K', 'agreement', ag.overlap ?? NaN, limits.minAgreement, 'min', 'minAgreement');
  });

  const facts: [string, string][] = [
    ['base', `${base.label} — ${sideText(base, a.stats)}, ${describeSchema(sa)}`],
    ['new', `${next.label} — ${sideText(next, b.stats)}, ${describeSchema(sb)}`],
    ['identical tokens', agreement ? `${fmtCount(agreement.result.tokens)} of ${fmtCount(agreement.baseTokens)} in base` : 'none'],
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
      base: { trace: base.label, tokens: a.stats.tokens, layers: sa.layers, experts: sa.experts, topK: sa.topK },
      new: { trace: next.label, tokens: b.stats.tokens, layers: sb.layers, experts: sb.experts, topK: sb.topK },
      identicalTokens: agreement?.result.tokens ?? 0,
      agreement: agreement ? { overlap: agreement.result.overlap, firstChoice: agreement.result.firstChoice } : null,
    },
  };
}
