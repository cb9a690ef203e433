/** Plain text for terminals and CI logs: context, an aligned table (broken limits marked "!"), then each failure. */
import { scopeName, type GateResult } from '../../gate/verdict.js';
import { fmt } from '../../core/number-format.js';
import { formatTable } from '../../core/text-table.js';
import { cellKey, failedCells, failureLine, failures, summaryLine } from './verdicts.js';

export function formatText(r: GateResult): string {
  const out: string[] = [`moescope ${r.command}: ${r.subject}`];
  const w = Math.max(0, ...r.facts.map(([k]) => k.length));
  for (const [k, v] of r.facts) out.push(`  ${k.padEnd(w)}  ${v}`);
  out.push('');
  const bad = failedCells(r);
  const header = ['layer', ...r.columns.map((c) => c.label)];
  const body = r.rows.map((row) => [
    row.layer === null ? scopeName(null, row.shape) : String(row.layer),
    ...r.columns.map(
      (c) => fmt(row.values[c.key], c.digits) + (bad.has(cellKey(row.layer, c.key, row.shape)) ? '!' : ' '),
    ),
  ]);
  // Headers end in a space where the cells end in "!" or " ", so labels line up with the digits.
  out.push(...formatTable([header.map((h, i) => (i > 0 ? `${h} ` : h)), ...body], { indent: '' }));
  out.push('');
  for (const note of r.notes) out.push(`note: ${note}`);
  for (const v of failures(r)) out.push(`FAIL ${failureLine(v)}`);
  if (bad.size > 0) out.push('("!" marks a value that broke its limit)');
  out.push(`${r.passed ? 'PASS' : 'FAIL'}: ${summaryLine(r)}.`);
  return out.join('\n') + '\n';
}
