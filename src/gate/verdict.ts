/**
 * The shape `check` and `diff` hand to the output formatters (src/report/result-formats): a table of the measured
 * numbers, one verdict per (scope, rule) and whether all passed. Formatters only lay this out.
 */

export interface Verdict {
  /** Stable rule id (`max-maxvio`, `max-drift`): the JUnit testcase name. */
  id: string;
  /** What was measured, with its convention. */
  label: string;
  /** The flag or config key that set the limit. */
  source: string;
  /** Model layer id, or null for the model as a whole. */
  layer: number | null;
  /** Layers that differ in E or K: which shape's whole-model row ("8 experts top-2"); absent otherwise. */
  shape?: string;
  /** Key of the table column holding the measured value (for highlighting). */
  column: string;
  /** Measured value; NaN when undefined (e.g. no tokens reached the layer). */
  value: number;
  limit: number;
  bound: 'max' | 'min';
  pass: boolean;
  /** Why `value` is undefined when it is NaN (default: no assignments reached it). */
  undefinedBecause?: string;
}

export interface Column {
  key: string;
  label: string;
  /** Digits after the point; 0 for counts. */
  digits: number;
}

export interface Row {
  /** Model layer id, or null for the whole-model row. */
  layer: number | null;
  /** Layers that differ in E or K: the whole-model row of this shape ("8 experts top-2"); absent otherwise. */
  shape?: string;
  /** Values by column key; null = not available (shown as NO_VALUE, "—"). */
  values: Record<string, number | null>;
}

export interface GateResult {
  command: 'check' | 'diff';
  /** What was checked: a trace path, "BASE → NEW", a model. */
  subject: string;
  /** Context lines shown above the table: [label, value]. */
  facts: [string, string][];
  columns: Column[];
  rows: Row[];
  verdicts: Verdict[];
  /** Caveats worth showing with the result (e.g. "router agreement not computed: …"). */
  notes: string[];
  passed: boolean;
  /** Command-specific machine-readable data, merged into the JSON output. */
  data: Record<string, unknown>;
}

/** "layer 3", "overall", or with layers of different shapes "overall (8 experts top-2)". */
export function scopeName(layer: number | null, shape?: string): string {
  return layer !== null ? `layer ${layer}` : shape ? `overall (${shape})` : 'overall';
}

/** A verdict for one limit: NaN never passes (an undefined metric cannot show the gate holds). */
export function judge(v: Omit<Verdict, 'pass'>): Verdict {
  const pass = Number.isFinite(v.value) && (v.bound === 'max' ? v.value <= v.limit : v.value >= v.limit);
  return { ...v, pass };
}
