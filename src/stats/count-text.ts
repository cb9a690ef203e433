/** The readable form of `moescope stats` on a count trace; input is the stable JSON, so text and JSON agree. */
import type { CountStatsJson } from './count-analysis.js';
import { METRICS, balancedText } from './catalogue.js';
import { NO_VALUE } from '../core/number-format.js';
import { formatTable } from '../core/text-table.js';

function num(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined) return NO_VALUE;
  if (Number.isNaN(v)) return 'n/a';
  return v.toFixed(digits);
}

function count(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(1);
}

/** Columns right-aligned under their headers (the shared table helper). */
function table(head: string[][], rows: string[][]): string[] {
  return formatTable([...head, ...rows], { align: head[0]!.map(() => 'right' as const) });
}

export interface CountTextContext {
  file: string;
  model: string | null;
  source: string;
  truncatedNote: string | null;
  /** What the counts are, in the heading line (default: `count trace (SOURCE)`). */
  subject?: string;
  /** Lines after the heading (a dataset's files, engine and skipped files). */
  extra?: string[];
}

export function formatCountStatsText(s: CountStatsJson, ctx: CountTextContext): string {
  const { schema } = s;
  const L = schema.layers.length;
  const out: string[] = [];
  out.push(`moescope stats  ${ctx.file}`);
  const what = s.axis === 'expert' ? `${s.bins} experts` : `${s.bins} devices (no expert ids)`;
  out.push(
    `  ${ctx.subject ?? `count trace (${ctx.source})`}: ${count(s.steps)} steps · ${count(s.assignments)} assignments` +
      `${s.tokens !== null ? ` · ${count(s.tokens)} tokens (÷ top-${schema.topK})` : ' · tokens unknown (top-k not recorded)'}` +
      ` · ${L} MoE layers × ${what}${ctx.model ? ` · ${ctx.model}` : ''}`,
  );
  if (ctx.truncatedNote) out.push(`  ${ctx.truncatedNote}`);
  for (const line of ctx.extra ?? []) out.push(`  ${line}`);
  out.push('');
  if (s.layers && s.global) {
    const g = s.global;
    const E = schema.experts;
    out.push('Load per layer (assignments per expert, summed over every step; docs/metrics.md)');
    // The catalogue's text columns that counts define (src/stats/catalogue.ts), as `stats` shows them for tokens.
    const cols = METRICS.filter((m) => m.text && !m.needsTokens);
    const head = [
      ['layer', ...cols.map((m) => m.short.replace('{N}', String(s.topN)))],
      ['', ...cols.map((m) => m.convention)],
      ['bal.', ...cols.map((m) => balancedText(m, E, schema.topK, s.topN))],
    ];
    const rows = s.layers.map((m) => [String(m.layer), ...cols.map((c) => num(c.layer(m), c.digits))]);
    rows.push(['mean', ...cols.map((c) => (c.layerMean ? num(c.layerMean(g), c.digits) : ''))]);
    out.push(...table(head, rows));
    out.push(`  (dead: total over layers; worst layer MaxVio ${num(g.maxVioWorst)})`);
    out.push('');
  }
  if (s.layers && s.global && s.marginHistograms) {
    const g = s.global;
    const E = schema.experts;
    out.push('Router logits per layer (summed by the engine over every file; docs/metrics.md § Losses, § Router)');
    const cols = METRICS.filter((m) => m.needsLogits);
    const head = [
      ['layer', ...cols.map((m) => m.short.replace('{N}', String(s.topN)))],
      ['', ...cols.map((m) => m.convention)],
      ['bal.', ...cols.map((m) => balancedText(m, E, schema.topK, s.topN))],
    ];
    const rows = s.layers.map((m) => [String(m.layer), ...cols.map((c) => num(c.layer(m), c.digits))]);
    rows.push(['mean', ...cols.map((c) => (c.layerMean ? num(c.layerMean(g), c.digits) : ''))]);
    out.push(...table(head, rows));
    const pooled = cols.find((c) => c.global && c.layerMean && c.global(g) !== c.layerMean(g));
    if (pooled)
      out.push(`  (${pooled.label}, pooled over layers as its source does: ${num(pooled.global!(g), pooled.digits)})`);
    const bins = s.marginHistograms[0]?.counts.length ?? 0;
    out.push(`  router-margin histogram, ${bins} bins of [0, 1] (rows per bin, lowest margins first):`);
    s.marginHistograms.forEach((h, l) =>
      out.push(`    layer ${s.layers![l]!.layer}: ${h.counts.map(count).join(' ')}`),
    );
    out.push('');
  }
  const d = s.devices;
  if (d) {
    const from =
      d.placement === 'counts'
        ? 'counted per device'
        : d.placement === 'trace'
          ? `the recorded placement: ${d.slots} slots per layer${d.replicatedExperts ? `, up to ${d.replicatedExperts} experts replicated (a replica takes an even share of its expert's load)` : ', no replicas'}`
          : `contiguous placement over ${d.devices} devices (--devices)`;
    out.push(`Balancedness over ${d.devices} devices (mean ÷ busiest device load; 1 = even) — ${from}`);
    out.push(`  SGLang convention (mean over layers of (mean+1e-5)/(max+1e-5)): ${num(d.sglang)}`);
    out.push(`  vLLM convention (Σ mean ÷ Σ max over layers):                 ${num(d.vllm)}`);
    if (d.perStep)
      out.push(
        `  per step, SGLang convention (as its "[Expert Balancedness]" log): mean ${num(d.perStep.mean)}, worst ${num(d.perStep.min)}, last ${num(d.perStep.last)}`,
      );
    const total = d.totals.reduce((a, x) => a + x, 0);
    if (d.devices <= 16 && total > 0)
      out.push(`  share per device: ${d.totals.map((t, i) => `${i}:${((t / total) * 100).toFixed(1)}%`).join(' ')}`);
    out.push('');
  } else if (s.axis === 'expert') {
    out.push('Balancedness: give --devices D (contiguous placement), or `moescope plan` for EPLB before / after');
    out.push('');
  }
  if (s.drift) {
    out.push(
      `Drift: JS divergence (bits) of each layer's load, first ${s.drift.steps} steps vs last ${s.drift.steps}: mean ${num(s.drift.mean, 4)}, worst ${num(s.drift.worst, 4)}`,
    );
    out.push('');
  }
  out.push(
    ctx.subject
      ? 'Not computed from counts (they need per-token routing):'
      : 'Not in this trace (it holds load counts per step, no per-token routing):',
  );
  for (const m of s.needsTokens) out.push(`  - ${m}`);
  return `${out.join('\n')}\n`;
}
