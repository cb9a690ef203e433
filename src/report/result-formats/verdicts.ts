/** Sentences about verdicts, shared by every output format so they all say the same thing. */
import { scopeName, type GateResult, type Verdict } from '../../gate/verdict.js';
import { fmtValue } from '../../core/number-format.js';

/** "MaxVio (DeepSeek, global) = 2.31 > limit 1.5"; an undefined value: "… is undefined (no assignments), limit ≤ 1.5" */
export function verdictSentence(v: Verdict): string {
  const allowed = v.bound === 'max' ? '≤' : '≥';
  if (Number.isNaN(v.value))
    return `${v.label} is undefined (${v.undefinedBecause ?? 'no assignments'}), limit ${allowed} ${fmtValue(v.limit)}`;
  const rel = v.pass ? allowed : v.bound === 'max' ? '>' : '<';
  return `${v.label} = ${fmtValue(v.value)} ${rel} limit ${fmtValue(v.limit)}`;
}

/** "layer 3: MaxVio (DeepSeek, global) = 2.31 > limit 1.5 (--max-maxvio)" */
export function failureLine(v: Verdict): string {
  return `${scopeName(v.layer, v.shape)}: ${verdictSentence(v)} (${v.source})`;
}

export function failures(r: GateResult): Verdict[] {
  return r.verdicts.filter((v) => !v.pass);
}

/** "2 of 24 checks failed" / "all 24 checks passed" */
export function summaryLine(r: GateResult): string {
  const n = r.verdicts.length;
  const f = failures(r).length;
  const noun = n === 1 ? 'check' : 'checks';
  return f === 0 ? `all ${n} ${noun} passed` : `${f} of ${n} ${noun} failed`;
}

/** Which (layer, column) cells broke a limit, for highlighting in tables. */
export function failedCells(r: GateResult): Set<string> {
  return new Set(failures(r).map((v) => cellKey(v.layer, v.column, v.shape)));
}

export function cellKey(layer: number | null, column: string, shape?: string): string {
  return `${scopeName(layer, shape)}/${column}`;
}
