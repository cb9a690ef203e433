/**
 * GitHub Actions workflow commands: one `::error` annotation per broken limit, then a `::notice` with the summary
 * (https://docs.github.com/actions/reference/workflow-commands-for-github-actions). Values are escaped as the
 * runner expects: %, CR and LF in messages; also : and , in properties.
 */
import { scopeName, type GateResult } from '../../gate/verdict.js';
import { failureLine, failures, summaryLine } from './verdicts.js';

export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export function formatGithub(r: GateResult, file?: string): string {
  const out: string[] = [];
  const fileProp = file ? `file=${escapeProperty(file)},` : '';
  for (const v of failures(r)) {
    const title = escapeProperty(`moescope ${r.command}: ${v.id} (${scopeName(v.layer, v.shape)})`);
    out.push(`::error ${fileProp}title=${title}::${escapeData(`${r.subject}: ${failureLine(v)}`)}`);
  }
  for (const n of r.notes) out.push(`::warning title=${escapeProperty(`moescope ${r.command}`)}::${escapeData(n)}`);
  out.push(
    `::notice title=${escapeProperty(`moescope ${r.command}`)}::${escapeData(`${r.subject}: ${summaryLine(r)}`)}`,
  );
  return out.join('\n') + '\n';
}
