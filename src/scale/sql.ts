/**
 * The SQL moescope sends to an engine, one text per aggregate, kept here alone (docs/scale.md prints them, and
 * test/scale/dataset.test.ts checks that the doc shows these exact texts). DuckDB's dialect (PostgreSQL's too):
 * `unnest` and `generate_subscripts` side by side in the select list, `//` integer division — measured 2× faster
 * in DuckDB than the standard `CROSS JOIN UNNEST … WITH ORDINALITY` with float division (bench/RESULTS.md);
 * docs/scale.md gives the standard form for Trino, BigQuery and Spark SQL.
 *
 * Placeholders, filled by `renderSql`: {source} the table of a dataset's rows (DuckDB: `read_parquet([…])`),
 * {step} the step of a row (`t.step`, or `0` when the dataset has no step column), {window} steps per window,
 * {topK} K. Slots are 1-based, layer-major: slot s is MoE layer ⌊(s−1)/K⌋.
 */

/**
 * Assignments per (step window, MoE layer, expert): the count records (CountBatch rows) every count-defined
 * metric is computed from by moescope's own formulas. A null step (rows whose producer gave none) counts in window 0.
 */
export const COUNTS_SQL = `SELECT
  COALESCE(u.step, 0) // {window} * {window} AS step_window,
  (u.slot - 1) // {topK} AS layer,
  u.expert AS expert,
  count(*) AS assignments
FROM (
  SELECT {step} AS step, unnest(t.experts) AS expert, generate_subscripts(t.experts, 1) AS slot
  FROM {source} AS t
) AS u
GROUP BY 1, 2, 3`;

export interface SqlParams {
  source: string;
  /** Whether the rows have a `step` column. */
  hasStep: boolean;
  window: number;
  topK: number;
}

/** The SQL text with its placeholders filled. */
export function renderSql(sql: string, p: SqlParams): string {
  if (!Number.isSafeInteger(p.window) || p.window < 1)
    throw new RangeError(`window must be an integer ≥ 1, got ${p.window}`);
  if (!Number.isSafeInteger(p.topK) || p.topK < 1) throw new RangeError(`topK must be an integer ≥ 1, got ${p.topK}`);
  return sql
    .replaceAll('{source}', p.source)
    .replaceAll('{step}', p.hasStep ? 't.step' : '0')
    .replaceAll('{window}', String(p.window))
    .replaceAll('{topK}', String(p.topK));
}

/** A string literal in SQL (file paths). */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
