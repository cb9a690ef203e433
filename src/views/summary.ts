/**
 * The plain summary printed instead of the TUI when there is no terminal (or with --no-ui): the stream, per-layer
 * balance over the whole run, and the collapse warnings. Formats a frame; computes nothing.
 */
import { describeSchema, type RoutingSchema } from '../core/batch.js';
import type { StreamMeta } from '../core/stream.js';
import { buildFrame, type Frame } from '../store/frame.js';
import type { RoutingModel } from '../store/model.js';
import type { PlacementSpec } from '../store/placement-spec.js';
import { formatTable } from '../core/text-table.js';
import { metric, type MetricSpec } from '../stats/catalogue.js';
import { fmtDuration, fmtInt, fmtNum, fmtPct } from './number-text.js';

export interface SummaryHeader {
  /** "replay trace.arrows", "demo: tiny-moe" … */
  title: string;
  /** Extra lines under the title (trace completeness, truncation …). */
  notes?: string[];
}

export function formatSummary(
  model: RoutingModel,
  header: SummaryHeader,
  placement: PlacementSpec | null = null,
): string {
  const f = buildFrame(model, { scope: 'run', layer: 0, token: null, placement, countSequences: true });
  const schema: RoutingSchema = model.schema;
  const meta: StreamMeta = model.meta;
  const out: string[] = [];
  out.push(`moescope ${header.title}`);
  out.push(`  ${describeSchema(schema)}${meta.model ? ` · model ${meta.model}` : ''} · source ${meta.source}`);
  const seqs = f.sequences ?? 0;
  if (model.countsOnly)
    out.push(
      `  ${fmtInt(model.steps)} steps of load counts · ${fmtInt(Math.round(f.tokens))} tokens (assignments ÷ top-${schema.topK}) · ${fmtDuration(f.elapsedMs)} of stream time`,
    );
  else
    out.push(
      `  ${fmtInt(f.tokens)} tokens${f.ring.start === 0 ? ` in ${seqs} sequence${seqs === 1 ? '' : 's'}` : ''} · ${fmtDuration(f.elapsedMs)} of stream time` +
        (f.tokensPerSecond !== null ? ` · ${fmtNum(f.tokensPerSecond, 1)} tok/s at the end` : ''),
    );
  for (const n of header.notes ?? []) out.push(`  ${n}`);
  if (f.tokens === 0) {
    out.push('  no tokens');
    return out.join('\n') + '\n';
  }
  out.push('');
  out.push('  balance over the whole run (docs/metrics.md)');
  // Labels and digits from the metric catalogue (src/stats/catalogue.ts).
  const [cv, maxVio, entropy, dead] = ['cv', 'maxVio', 'entropy', 'dead'].map(metric) as [
    MetricSpec,
    MetricSpec,
    MetricSpec,
    MetricSpec,
  ];
  const rows: string[][] = [['layer', cv.label, maxVio.label, entropy.label, dead.label, 'busiest expert']];
  f.layerLabels.forEach((label, l) => {
    rows.push([
      `L${label}`,
      fmtNum(f.cv[l], cv.digits),
      fmtNum(f.maxVio[l], maxVio.digits),
      fmtNum(f.entropy[l], entropy.digits),
      fmtNum(f.dead[l], dead.digits),
      `e${f.busiest[l]} ${fmtPct(f.busiestShare[l])}`,
    ]);
  });
  out.push(
    ...formatTable(rows, { align: rows[0]!.map((_, i) => (i === 0 || i === rows[0]!.length - 1 ? 'left' : 'right')) }),
  );
  out.push(...fidelityText(f));
  out.push('');
  if (model.countsOnly) out.push('  collapse detection needs per-token data: a count trace has none');
  else if (f.detectorWindow === 0) out.push('  collapse detection off');
  else if (f.warnings.length === 0)
    out.push(
      `  no collapse warnings (rules over ${fmtInt(f.detectorWindow)}-token windows${f.tokens < f.detectorWindow ? '; the stream is shorter than one window' : ''})`,
    );
  else {
    out.push(
      `  collapse warnings: ${f.warnings.length} fired, ${f.activeWarnings} still active (rules over ${fmtInt(f.detectorWindow)}-token windows), newest first`,
    );
    for (const w of f.warnings.slice(0, 10))
      out.push(
        `    token ${fmtInt(w.firstToken).padStart(7)}  ${w.rule.padEnd(11)}  ${w.message}${w.clearedAt !== null ? ` (cleared at ${fmtInt(w.clearedAt)})` : ''}`,
      );
    if (f.warnings.length > 10)
      out.push(`    … ${f.warnings.length - 10} more (moescope stats TRACE --json lists all)`);
  }
  if (f.devices) {
    out.push('');
    out.push(
      `  placement ${f.devices.label} over ${f.devices.devices} devices: balancedness SGLang ${fmtNum(f.devices.sglang, 3)}, vLLM ${fmtNum(f.devices.vllm, 3)}`,
    );
    out.push('    ' + f.devices.loads.map((d) => `dev${d.device} ${fmtPct(d.loadShare)}`).join('  '));
  }
  return out.join('\n') + '\n';
}

/**
 * Lines about what the stream cannot vouch for (the frame's fidelity): zero-computation experts and their share of
 * the slots (the table's balance is over the real experts), and routers whose weights were not followed to the
 * mixing, each named with why.
 */
export function fidelityText(f: Frame): string[] {
  const out: string[] = [];
  const zero = f.fidelity.zeroExperts.flatMap((z, l) => (z ? [{ l, z }] : []));
  if (zero.length)
    out.push(
      `  zero-computation experts (${[...new Set(zero.map((x) => x.z.kind))].join(', ')}): the balance above is over the real experts; share of slots routed to them: ${zero
        .map(({ l, z }) => `L${f.layerLabels[l]} (experts ${z.ids.join(', ')}) ${fmtPct(f.zeroShare[l])}`)
        .join(', ')}`,
    );
  for (const u of f.fidelity.unfollowed)
    out.push(
      `  warning: L${u.label}: weights not followed to the mixing (${u.note}); its selection is the model's, its weights are unknown`,
    );
  return out;
}
