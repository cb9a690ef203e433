/** The stable JSON form (docs/ci.md § JSON): NaN and missing values become null. */
import type { GateResult } from '../../gate/verdict.js';
import { moescopeVersion } from '../../core/version.js';

const num = (v: number | null | undefined): number | null =>
  v === null || v === undefined || !Number.isFinite(v) ? null : v;

export function formatJson(r: GateResult): string {
  const doc = {
    moescope: moescopeVersion(),
    command: r.command,
    passed: r.passed,
    subject: r.subject,
    ...r.data,
    columns: r.columns.map((c) => ({ key: c.key, label: c.label })),
    rows: r.rows.map((row) => ({
      layer: row.layer,
      ...(row.shape !== undefined ? { shape: row.shape } : {}),
      ...Object.fromEntries(r.columns.map((c) => [c.key, num(row.values[c.key])])),
    })),
    verdicts: r.verdicts.map((v) => ({
      rule: v.id,
      layer: v.layer,
      ...(v.shape !== undefined ? { shape: v.shape } : {}),
      metric: v.column,
      label: v.label,
      value: num(v.value),
      bound: v.bound,
      limit: v.limit,
      pass: v.pass,
      source: v.source,
    })),
    notes: r.notes,
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
