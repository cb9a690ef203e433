/** Plain text for terminals and CI logs: context, an aligned table (broken limits marked "!"), then each failure. */
import type { GateResult } from '../../gate/verdict.js';
import { fmt } from '../../core/number-format.js';
import { cellKey, failedCells, failureLine, failures, summaryLine } from './verdicts.js';

export function formatText(r: GateResult): string {
  const out: string[] = [`moescope ${r.command}: ${r.subject}`];
  const w = Math.max(0, ...r.facts.map(([k]) => k.length));
  for (const [k, v] of r.facts) out.push(`  ${k.padEnd(w)}  ${v}`);
  out.push('');
  const bad = failedCells(r);
  const header = ['layer', ...r.columns.map((c) => c.label)];
  const body = r.rows.map((row) => [
    row.layer === null ? 'overall' : String(row.layer),
    ...r.columns.map((c) => fmt(row.values[c.key], c.digits) + (bad.has(cellKey(row.layer, c.key)) ? '!' : ' ')),
  ]);
  const widths = header.map((h, i) => Math.max(h.length + (i > 0 ? 1 : 0), ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  out.push(line(header.map((h, i) => (i > 0 ? `${h} ` : h))).trimEnd());
  for (const b of body) out.push(line(b).trimEnd());
  out.push('');
  for (const note of r.notes) out.push(`note: ${note}`);
  for (const v of failures(r)) out.push(`FAIL ${failureLine(v)}`);
  if (bad.size > 0) out.push('("!" marks a value that broke its limit)');
  out.push(`${r.passed ? 'PASS' : 'FAIL'}: ${summaryLine(r)}.`);
  return out.join('\n') + '\n';
}

