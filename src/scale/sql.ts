/**
 * The SQL moescope sends to an engine, one text per aggregate, kept here alone (docs/scale.md prints them, and
 * test/scale/dataset.test.ts checks that the doc shows these exact texts).
 *
 * The counts are a join of the token rows with a table of the L·K slots, not an UNNEST: `experts[s.slot]` keeps
 * the Parquet file's min/max statistics of the expert ids (an UNNEST loses them), and the slot table has its own,
 * so DuckDB knows every group key's range and counts into a dense array (PERFECT_HASH_GROUP_BY) instead of
 * hashing 148 M rows on three keys: 4–5× less CPU, measured in bench/RESULTS.md. That array has 2^bits cells, bits
 * the sum of the keys' ranges' bits: the step's range is bounded by running the query over steps
 * {first}…{last} at most STEP_SPAN apart (src/scale/duckdb-engine.ts), so memory does not grow with the run.
 * The same text is standard SQL (a cross join, 1-based array subscript): Trino runs it as is; docs/scale.md gives
 * the BigQuery and Spark SQL spellings.
 *
 * Placeholders, filled by `renderSql`: {source} the table of a dataset's rows (DuckDB: `read_parquet([…])`),
 * {step} the step of a row (`COALESCE(t.step, 0)`, or `0` when the dataset has no step column), {topK} K,
 * {slotCount} L·K, {first} and {last} the steps counted. Slots are 1-based, layer-major: slot s is MoE layer
 * ⌊(s−1)/K⌋.
 */

/** The slot table: one row per slot of the flat `experts` list, with its MoE layer. */
export const SLOTS_SQL = `CREATE TEMP TABLE slots AS
SELECT i + 1 AS slot, i // {topK} AS layer
FROM range({slotCount}) AS r(i)`;

/**
 * The slot table of layers that differ in K (mixed shapes, docs/trace-format.md): only each layer's own K slots; the
 * padding slots past them (NO_EXPERT) are not in it, so they are never counted. {layerTopK}: each layer's K.
 */
export const SHAPED_SLOTS_SQL = `CREATE TEMP TABLE slots AS
SELECT i + 1 AS slot, i // {topK} AS layer
FROM range({slotCount}) AS r(i)
WHERE i % {topK} < [{layerTopK}][i // {topK} + 1]`;

/** The steps present (the engine splits them into ranges of at most STEP_SPAN for the counts). */
export const STEPS_SQL = `SELECT DISTINCT {step} AS step FROM {source} AS t`;

/**
 * Assignments per (step, MoE layer, expert): the count records (CountBatch rows) every count-defined metric is
 * computed from by moescope's own formulas. A null step (rows whose producer gave none) counts as step 0; moescope
 * sums the steps of a window (`--step-window`).
 */
export const COUNTS_SQL = `SELECT
  {step} AS step,
  s.layer AS layer,
  t.experts[s.slot] AS expert,
  count(*) AS assignments
FROM {source} AS t CROSS JOIN slots AS s
WHERE {step} BETWEEN {first} AND {last}
GROUP BY 1, 2, 3`;

export interface SqlParams {
  source: string;
  /** Whether the rows have a `step` column. */
  hasStep: boolean;
  topK: number;
  /** MoE layers (the slot table has layers · topK rows). */
  layers: number;
  /** Each layer's own K, when layers differ (SHAPED_SLOTS_SQL). */
  layerTopK?: readonly number[];
  /** The steps counted: {first}…{last} (COUNTS_SQL). */
  first?: number;
  last?: number;
}

/** The SQL text with its placeholders filled. */
export function renderSql(sql: string, p: SqlParams): string {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
    return String(v);
  };
  return sql
    .replaceAll('{source}', p.source)
    .replaceAll('{step}', p.hasStep ? 'COALESCE(t.step, 0)' : '0')
    .replaceAll('{topK}', int('topK', p.topK, 1))
    .replaceAll('{slotCount}', int('slots', p.topK * p.layers, 1))
    .replaceAll('{layerTopK}', (p.layerTopK ?? []).map((k, i) => int(`layerTopK[${i}]`, k, 1)).join(', '))
    .replaceAll('{first}', int('first', p.first ?? 0, 0))
    .replaceAll('{last}', int('last', p.last ?? 0, 0));
}

/** A string literal in SQL (file paths). */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
