/**
 * The SQL moescope sends to an engine, one text per aggregate, kept here alone (docs/scale.md prints them, and
 * test/scale/sql-docs.test.ts checks that the doc shows these exact texts). Standard SQL as DuckDB and Trino take
 * it (`UNNEST … WITH ORDINALITY`); docs/scale.md gives the one clause BigQuery and Spark SQL spell differently.
 *
 * Placeholders, filled by `renderSql`: {source} the table of a dataset's rows (DuckDB: `read_parquet([…])`),
 * {step} the step of a row (`t.step`, or `0` when the dataset has no step column), {window} steps per window,
 * {topK} K. Slots are 1-based (ORDINALITY), layer-major: slot s is MoE layer ⌊(s−1)/K⌋.
 */

/**
 * Assignments per (step window, MoE layer, expert): the count records (CountBatch rows) every count-defined
 * metric is computed from by moescope's own formulas. A null step (rows whose producer gave none) counts in window 0.
 */
export const COUNTS_SQL = `SELECT
  CAST(floor(COALESCE({step}, 0) / {window}) AS BIGINT) * {window} AS step_window,
  CAST(floor((u.slot - 1) / {topK}) AS BIGINT) AS layer,
  CAST(u.expert AS BIGINT) AS expert,
  CAST(count(*) AS DOUBLE) AS assignments
FROM {source} AS t
CROSS JOIN UNNEST(t.experts) WITH ORDINALITY AS u(expert, slot)
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
  if (!Number.isSafeInteger(p.window) || p.window < 1) throw new RangeError(`window must be an integer ≥ 1, got ${p.window}`);
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
