/**
 * The readable form of `moescope stats`: tables with each metric's convention and balanced value in its header
 * (docs/metrics.md explains every one). Input is the stable JSON, so text and JSON never disagree.
 */
import type { StatsJson } from './analysis.js';
import type { CollapseWarning } from './collapse.js';
import { METRICS, balancedText } from './catalogue.js';
import { NO_VALUE } from '../core/number-format.js';
import { formatTable } from '../core/text-table.js';

export interface TextContext {
  /** Trace path as the user gave it. */
  file: string;
  model: string | null;
  /** Set when the trace was cut short. */
  truncatedNote: string | null;
  /** Lines about the trace itself shown under the header (routers whose weights were not followed to the mixing). */
  notes?: string[];
}

function num(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined) return NO_VALUE;
  if (Number.isNaN(v)) return 'n/a';
  return v.toFixed(digits);
}

function pct(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || Number.isNaN(v) ? NO_VALUE : `${(v * 100).toFixed(digits)}%`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Columns right-aligned under their headers. */
function table(head: string[][], rows: string[][]): string[] {
  return formatTable([...head, ...rows], { align: head[0]!.map(() => 'right' as const) });
}

export function formatStatsText(s: StatsJson, ctx: TextContext): string {
  const { schema } = s;
  const E = schema.experts;
  const K = schema.topK;
  const g = s.global;
  const out: string[] = [];
  out.push(`moescope stats  ${ctx.file}`);
  out.push(
    `  ${count(s.tokens)} tokens · ${schema.layers.length} MoE layers × ${E} experts, top-${K} ${schema.scoring}` +
      `${schema.hasLogits ? ', with logits' : ', no logits (loss columns need them)'}${ctx.model ? ` · ${ctx.model}` : ''}`,
  );
  if (ctx.truncatedNote) out.push(`  ${ctx.truncatedNote}`);
  for (const n of ctx.notes ?? []) out.push(`  ${n}`);
  out.push('');
  out.push('Load per layer (assignments per expert; conventions in docs/metrics.md)');
  // One column per catalogue metric the text table shows (src/stats/catalogue.ts): header, convention, balance.
  const cols = METRICS.filter((m) => m.text);
  const head = [
    ['layer', ...cols.map((m) => m.short.replace('{N}', String(s.topN)))],
    ['', ...cols.map((m) => m.convention)],
    ['bal.', ...cols.map((m) => balancedText(m, E, K, s.topN))],
  ];
  // A logit column over rows with NaN / ±Inf logits left out carries † and the count below the table.
  const badLogits = (n: number | null | undefined) => (n ?? 0) > 0;
  const mark = (c: (typeof cols)[number], bad: boolean, text: string) => (bad && c.needsLogits ? `${text} †` : text);
  const rows = s.layers.map((m) => [
    String(m.layer),
    ...cols.map((c) => mark(c, badLogits(m.nonFiniteLogitRows), num(c.layer(m), c.digits))),
  ]);
  rows.push([
    'mean',
    ...cols.map((c) => (c.layerMean ? mark(c, badLogits(g.nonFiniteLogitRows), num(c.layerMean(g), c.digits)) : '')),
  ]);
  out.push(...table(head, rows));
  out.push(`  (dead: total over layers; worst layer MaxVio ${num(g.maxVioWorst)})`);
  const zero = s.layers.filter((m) => m.zeroShare !== null && m.zeroShare !== undefined);
  if (zero.length)
    out.push(
      `  zero-computation experts (LongCat): the metrics above balance the real experts only; share of slots routed to the zero experts: ${zero
        .map((m) => `layer ${m.layer} ${pct(m.zeroShare)}`)
        .join(', ')}`,
    );
  const nf = s.nonFinite;
  const logitNote = badLogits(nf.logitRows)
    ? `${count(nf.logitRows!)} token rows with NaN/±Inf router logits left out`
    : null;
  const weightNote =
    nf.weightRows > 0
      ? `${count(nf.weightRows)} token rows with NaN/±Inf routing weights (their first choice is a slot's position)`
      : null;
  if (logitNote)
    out.push(
      `  † ${logitNote}: ${s.layers
        .filter((m) => badLogits(m.nonFiniteLogitRows))
        .map((m) => `layer ${m.layer} ${count(m.nonFiniteLogitRows!)}`)
        .join(', ')}`,
    );
  if (weightNote)
    out.push(
      `  ‡ ${weightNote}: ${s.layers
        .filter((m) => m.nonFiniteWeightRows > 0)
        .map((m) => `layer ${m.layer} ${count(m.nonFiniteWeightRows)}`)
        .join(', ')}`,
    );
  out.push('');
  out.push('Auxiliary losses, without their coefficients');
  const losses: [string, number | null, string][] = [
    ['HF load_balancing_loss_func, layers pooled as HF does', g.hfAuxLoss, `balanced = K = ${K}`],
    ['HF loss per layer, mean over layers (pooling can hide imbalance)', g.hfAuxLossLayerMean, `balanced = ${K}`],
    ['Switch / Megatron aux loss, mean over layers', g.switchAuxLoss, 'balanced = 1'],
    ['GShard, first-choice counts', g.gshardAuxLoss, 'balanced = 1'],
    ['DeepSeek sequence-wise, mean over sequences and layers', g.seqAuxLoss, 'balanced = 1'],
    ['Importance loss CV² (Shazeer et al. 2017)', g.importanceLoss, 'balanced = 0'],
    ['Router z-loss, mean logsumexp² (ST-MoE)', g.zLoss, 'lower = smaller logits'],
  ];
  const lw = Math.max(...losses.map((l) => l[0].length));
  for (const [name, v, bal] of losses) {
    // Every loss reads the logits; GShard's first-choice counts read the weights too.
    const notes = [
      logitNote ? `† ${logitNote}` : null,
      weightNote && name.startsWith('GShard') ? `‡ ${count(nf.weightRows)} with NaN/±Inf weights` : null,
    ];
    out.push(`  ${name.padEnd(lw)}  ${num(v).padStart(8)}   ${[bal, ...notes].filter(Boolean).join('; ')}`);
  }
  if (!schema.hasLogits) out.push('  (the trace has no router logits: record with logits to get the losses)');
  const b = g.balancedness as { devices: number; sglang: number; vllm: number } | null | undefined;
  if (b) {
    out.push('');
    out.push(`Balancedness over ${b.devices} devices, contiguous placement (1 = even; mean/max device load)`);
    out.push(
      `  SGLang (mean over layers of ratios) ${num(b.sglang)}   vLLM (ratio of sums over layers) ${num(b.vllm)}`,
    );
  }
  const c = s.capacity;
  out.push('');
  out.push(
    `Capacity factor ${c.capacityFactor}, batches of ${count(c.batchTokens)} tokens (capacity = ⌈T·K/E·cf⌉ per expert)`,
  );
  out.push(`  dropped ${pct(c.droppedShare, 2)} of assignments (mean over layers below)`);
  out.push(
    `  probs policy (keep highest weights):  weight lost ${pct(c.probs.droppedWeightShare, 2)}, tokens hit ${pct(c.probs.tokensAffected)}, tokens with all K dropped ${pct(c.probs.tokensFullyDropped)}` +
      (weightNote ? `; ‡ ${count(nf.weightRows)} token rows with NaN/±Inf weights` : ''),
  );
  out.push(
    `  position policy (keep earliest):      weight lost ${pct(c.position.droppedWeightShare, 2)}, tokens hit ${pct(c.position.tokensAffected)}, tokens with all K dropped ${pct(c.position.tokensFullyDropped)}`,
  );
  const r = s.repeat;
  out.push('');
  out.push(`Consecutive tokens (${count(r.pairs)} pairs; Mixtral's measure)`);
  out.push(
    `  same first choice ${pct(r.firstChoice)} (random ${pct(r.randomFirstChoice)})   top-2 overlap ${pct(r.topTwoOverlap)} (random ${pct(r.randomTopTwoOverlap)})` +
      (weightNote ? `; ‡ ${count(nf.weightRows)} token rows with NaN/±Inf weights` : ''),
  );
  if (s.coactivation) {
    const best = s.layers
      .flatMap((m) => (m.coactivation ?? []).slice(0, 1).map((p) => ({ layer: m.layer, ...p })))
      .sort((a, b2) => b2.ratio - a.ratio)
      .slice(0, 3);
    if (best.length > 0)
      out.push(
        `  strongest co-activation N(i∧j)/N(i): ${best.map((p) => `layer ${p.layer} ${p.a}→${p.b} ${pct(p.ratio)}`).join(', ')} (random ${pct(s.coactivation.randomRatio)})`,
      );
  }
  if (s.lossFree) {
    const lf = s.lossFree;
    out.push('');
    out.push(
      `DeepSeek loss-free balancing replayed (u = ${lf.rate}, update every ${count(lf.stepTokens)} tokens, ${lf.steps} updates)`,
    );
    if (lf.steps === 0)
      out.push(`  the trace is shorter than one update step: no bias update happened (lower --batch-tokens)`);
    const moved = lf.layers.map((x) => x.changedShare).filter((x): x is number => x !== null);
    out.push(
      `  MaxVio: recorded ${num(g.maxVio)} → during the updates ${num(lf.maxVioOnline)} → with the final bias ${num(lf.maxVioFinal)}` +
        (moved.length
          ? `; the final bias moves ${pct(moved.reduce((a, x) => a + x, 0) / moved.length)} of assignments`
          : ''),
    );
  }
  if (s.domains.length > 0) {
    out.push('');
    out.push(`Domain specialisation (share of a tag's tokens per expert; uniform K/E = ${pct(K / E)})`);
    for (const d of s.domains) {
      const top = [...d.layers].sort((a, b2) => b2.specialisation - a.specialisation)[0]!;
      out.push(
        `  ${d.tag} (${count(d.tokens)} tokens): most specialised layer ${top.layer}: ${top.top.map((x) => `expert ${x.expert} ${pct(x.share)}`).join(', ')}`,
      );
    }
  }
  if (s.vocabulary && s.vocabulary.meanMaxShare !== null) {
    out.push('');
    out.push(
      `Vocabulary specialisation at layer ${s.vocabulary.layer}: a repeated token id goes to its usual expert ${pct(s.vocabulary.meanMaxShare)} of the time (uniform ${pct(K / E)}; ${count(s.vocabulary.distinctTokens)} distinct ids)`,
    );
  }
  out.push('');
  if (!s.window) out.push('Collapse detection off.');
  else {
    const active = s.warnings.filter((w) => w.clearedAt === null).length;
    out.push(
      `Collapse warnings over a ${count(s.window.tokens)}-token window: ${count(s.warnings.length + s.warningsSuppressed)}` +
        ` (${count(active)} still active${s.warningsSuppressed ? `, ${count(s.warningsSuppressed)} beyond the per-rule limit counted only` : ''})`,
    );
    if (s.tokens < s.window.tokens)
      out.push(`  the window never filled (${count(s.tokens)} tokens): no rule was evaluated (lower --window)`);
    const byRule = new Map<string, CollapseWarning[]>();
    for (const w of s.warnings) byRule.set(w.rule, [...(byRule.get(w.rule) ?? []), w]);
    for (const [rule, list] of byRule) {
      const layers = new Set(list.map((w) => w.layer));
      out.push(
        `  ${rule}: ${count(list.length)} in ${layers.size} layer${layers.size === 1 ? '' : 's'}, threshold ${Number(list[0]!.threshold.toPrecision(4))}`,
      );
      // The earliest few, then the latest: a collapse that starts late in a noisy run stays visible.
      const shown = list.length <= 4 ? list : [...list.slice(0, 3), list[list.length - 1]!];
      for (const w of shown) {
        if (w === list[list.length - 1] && list.length > 4) out.push('    …');
        out.push(
          `    token ${count(w.firstToken)}: ${w.message}${w.clearedAt !== null ? ` (cleared at ${count(w.clearedAt)})` : ''}`,
        );
      }
    }
  }
  return out.join('\n') + '\n';
}
