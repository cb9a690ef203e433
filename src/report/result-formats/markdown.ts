/** GitHub-flavoured Markdown for `$GITHUB_STEP_SUMMARY` and PR comments. */
import { scopeName, type GateResult } from '../../gate/verdict.js';
import { fmt, fmtValue } from '../../core/number-format.js';
import { cellKey, failedCells, failures, summaryLine } from './verdicts.js';

/** Text safe inside a Markdown table cell. */
function mdCell(s: string): string {
  return s
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ')
    .replace(/([*_`<>[\]])/g, '\\$1');
}

export function formatMarkdown(r: GateResult): string {
  const out: string[] = [];
  out.push(`### ${r.passed ? '✅' : '❌'} moescope ${r.command}: ${summaryLine(r)}`, '');
  out.push(`**${mdCell(r.subject)}**`, '');
  for (const [k, v] of r.facts) out.push(`- ${mdCell(k)}: ${mdCell(v)}`);
  out.push('');
  const bad = failedCells(r);
  out.push(`| layer | ${r.columns.map((c) => mdCell(c.label)).join(' | ')} |`);
  out.push(`|---:|${r.columns.map(() => '---:').join('|')}|`);
  for (const row of r.rows) {
    const cells = r.columns.map((c) => {
      const s = fmt(row.values[c.key], c.digits);
      return bad.has(cellKey(row.layer, c.key, row.shape)) ? `**${s}** ❌` : s;
    });
    out.push(
      `| ${row.layer === null ? `**${mdCell(scopeName(null, row.shape))}**` : row.layer} | ${cells.join(' | ')} |`,
    );
  }
  out.push('');
  const failed = failures(r);
  if (failed.length > 0) {
    out.push('#### Broken limits', '', '| scope | rule | measured | limit | set by |', '|---|---|---:|---:|---|');
    for (const v of failed) {
      out.push(
        `| ${mdCell(scopeName(v.layer, v.shape))} | ${mdCell(v.label)} | ${fmtValue(v.value)} | ${v.bound === 'max' ? '≤' : '≥'} ${fmtValue(v.limit)} | \`${v.source}\` |`,
      );
    }
    out.push('');
  }
  for (const n of r.notes) out.push(`> ${mdCell(n)}`, '');
  return out.join('\n');
}
