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

// ---------------------------------------------------------------------------------------------------------------
// The logits sums (traces with a `logits` column): what every logits metric is a formula of (LogitSumRecord,
// src/stats/logit-sums.ts). One view scores each (token, MoE layer) row of E logits — the row's finiteness, its
// logsumexp, entropy, K-th minus (K+1)-th margin, the router's probabilities, HF's softmax, the top-K of the
// logits — in double precision (the Parquet export's float32 logits are the trace's float16 values exactly);
// three aggregates sum it per layer, per (file, sequence, layer, expert) and per sequence. Nothing but sums leaves
// the engine: moescope's own formulas (src/stats) make the losses from them. Extra placeholders: {experts} E,
// {layerCount} L, {bins} the margin histogram's bins (MARGIN_BINS); {source} must have a `filename` column
// (DuckDB: read_parquet(…, filename = true)).

/** The MoE layers and the experts, as tables to join the token rows with (as the slot table is for counts). */
export const LOGIT_TABLES_SQL = `CREATE TEMP TABLE moe_layers AS SELECT i AS layer FROM range({layerCount}) AS r(i);
CREATE TEMP TABLE moe_experts AS SELECT i AS expert FROM range({experts}) AS r(i);
CREATE TEMP MACRO moe_sigmoid(v) AS CASE WHEN v >= 0 THEN 1 / (1 + exp(-v)) ELSE exp(v) / (1 + exp(v)) END;
CREATE TEMP MACRO moe_log_sigmoid(v) AS CASE WHEN v >= 0 THEN -ln(1 + exp(-v)) ELSE v - ln(1 + exp(v)) END`;

/**
 * One row per (token, MoE layer): its logits x (E of them, as double), whether all are finite (`finite`) or all
 * NaN (`missing`: a token recorded without logits), and — softmax router — logsumexp, entropy / ln E, the margin
 * between the K-th and (K+1)-th probability, the probabilities (`prob`; `soft` the same), HF's top-K of the logits
 * as a 0/1 list over the experts (`hf`; ties to the lower id), the recorded experts and the recorded first choice
 * (highest weight, ties to the earlier slot). Every exp is of x − max. The K-th and (K+1)-th logits come from a
 * sort of the values (a sort of (value, id) pairs costs twice the CPU, measured); the ties rule then picks, among
 * the logits equal to the K-th, the lowest ids.
 */
export const ROUTER_ROWS_SOFTMAX_SQL = `CREATE TEMP VIEW router_rows AS
WITH cells AS (
  SELECT
    t.filename AS file,
    t.seq AS seq,
    l.layer AS layer,
    list_transform(t.logits[l.layer * {experts} + 1 : (l.layer + 1) * {experts}], v -> CAST(v AS DOUBLE)) AS x,
    t.experts[l.layer * {topK} + 1 : (l.layer + 1) * {topK}] AS chosen,
    t.weights[l.layer * {topK} + 1 : (l.layer + 1) * {topK}] AS w
  FROM {source} AS t CROSS JOIN moe_layers AS l
),
ranked AS (
  SELECT *,
    isfinite(list_sum(x)) AS finite,
    list_max(x) AS m,
    list_sort(x, 'DESC')[{topK}:{topK} + 1] AS kth
  FROM cells
),
shifted AS (
  SELECT *,
    kth[1] AS a,
    kth[2] AS b,
    len(list_filter(x, v -> v > kth[1])) AS above,
    list_transform(x, v -> exp(v - m)) AS ex
  FROM ranked
),
summed AS (
  SELECT *, list_sum(ex) AS z FROM shifted
)
SELECT
  file, seq, layer, finite,
  CASE WHEN finite THEN false ELSE list_bool_and(list_transform(x, v -> isnan(v))) END AS missing,
  m + ln(z) AS lse,
  (ln(z) - list_sum(list_transform(x, (v, i) -> (v - m) * ex[i])) / z) / ln({experts}) AS entropy,
  (exp(a - m) - exp(b - m)) / z AS margin,
  list_transform(ex, u -> u / z) AS prob,
  list_transform(ex, u -> u / z) AS soft,
  list_transform(x, (v, i) -> CASE
    WHEN v > a THEN 1
    WHEN v = a AND len(list_filter(x[1:i - 1], u -> u = a)) < {topK} - above THEN 1
    ELSE 0 END) AS hf,
  chosen,
  chosen[list_position(w, list_max(w))] AS first
FROM summed`;

/**
 * The same for a sigmoid router: `prob` is the sigmoid scores normalised to sum 1 (Megatron's and DeepSeek-V3's
 * convention), `soft` the softmax (HF's), entropy that of `prob`, the margin between the K-th and (K+1)-th sigmoid
 * score (src/stats/scores.ts).
 */
export const ROUTER_ROWS_SIGMOID_SQL = `CREATE TEMP VIEW router_rows AS
WITH cells AS (
  SELECT
    t.filename AS file,
    t.seq AS seq,
    l.layer AS layer,
    list_transform(t.logits[l.layer * {experts} + 1 : (l.layer + 1) * {experts}], v -> CAST(v AS DOUBLE)) AS x,
    t.experts[l.layer * {topK} + 1 : (l.layer + 1) * {topK}] AS chosen,
    t.weights[l.layer * {topK} + 1 : (l.layer + 1) * {topK}] AS w
  FROM {source} AS t CROSS JOIN moe_layers AS l
),
ranked AS (
  SELECT *,
    isfinite(list_sum(x)) AS finite,
    list_max(x) AS m,
    list_sort(x, 'DESC')[{topK}:{topK} + 1] AS kth
  FROM cells
),
shifted AS (
  SELECT *,
    kth[1] AS a,
    kth[2] AS b,
    len(list_filter(x, v -> v > kth[1])) AS above,
    list_transform(x, v -> exp(v - m)) AS ex
  FROM ranked
),
scored AS (
  SELECT *, list_transform(x, v -> moe_sigmoid(v)) AS sig FROM shifted
),
summed AS (
  SELECT *,
    list_sum(ex) AS z,
    list_sum(sig) AS s,
    list_sum(list_transform(x, (v, i) -> sig[i] * moe_log_sigmoid(v))) AS sls
  FROM scored
)
SELECT
  file, seq, layer, finite,
  CASE WHEN finite THEN false ELSE list_bool_and(list_transform(x, v -> isnan(v))) END AS missing,
  m + ln(z) AS lse,
  (ln(s) - sls / s) / ln({experts}) AS entropy,
  moe_sigmoid(a) - moe_sigmoid(b) AS margin,
  list_transform(sig, u -> u / s) AS prob,
  list_transform(ex, u -> u / z) AS soft,
  list_transform(x, (v, i) -> CASE
    WHEN v > a THEN 1
    WHEN v = a AND len(list_filter(x[1:i - 1], u -> u = a)) < {topK} - above THEN 1
    ELSE 0 END) AS hf,
  chosen,
  chosen[list_position(w, list_max(w))] AS first
FROM summed`;

/**
 * Per (MoE layer, margin bin): rows with finite logits, Σ logsumexp² (z-loss), Σ entropy, Σ margin, and rows left
 * out for a NaN or ±Inf among finite logits. `bin` is the margin histogram's bin, ⌊margin·bins⌋ clamped to
 * 0 … bins − 1 (src/stats/margin-histogram.ts); NULL for rows without a margin (K = E, or non-finite logits).
 */
export const LOGIT_LAYER_SQL = `SELECT
  layer,
  CASE WHEN finite AND isfinite(margin) THEN least({bins} - 1, greatest(0, floor(margin * {bins}))) END AS bin,
  count(*) FILTER (WHERE finite) AS rows,
  sum(lse * lse) FILTER (WHERE finite) AS lse_squared,
  sum(entropy) FILTER (WHERE finite) AS entropy,
  sum(margin) FILTER (WHERE finite) AS margin,
  count(*) FILTER (WHERE NOT finite AND NOT missing) AS non_finite
FROM router_rows
GROUP BY 1, 2`;

/**
 * Per (file, sequence, MoE layer, expert), over rows with finite logits: rows, Σ prob, Σ softmax, recorded
 * assignments, HF's top-K selections, first choices — each row's E-long lists unnested side by side (a join with
 * the expert table would copy the lists E times: several times slower, measured). A sequence is a seq id within one file (a trace writes each
 * sequence's tokens together; one that a step partition splits counts once per file).
 */
export const LOGIT_SEQUENCES_SQL = `CREATE TEMP TABLE sequence_sums AS
SELECT
  file, seq, layer, expert,
  count(*) AS rows,
  sum(prob) AS prob,
  sum(soft) AS soft,
  sum(chosen) AS chosen,
  sum(hf) AS hf,
  sum(first) AS first
FROM (
  SELECT
    file, seq, layer,
    unnest(range({experts})) AS expert,
    unnest(prob) AS prob,
    unnest(soft) AS soft,
    unnest(list_transform(range({experts}), e -> CAST(list_contains(chosen, e) AS INTEGER))) AS chosen,
    unnest(hf) AS hf,
    unnest(list_transform(range({experts}), e -> CAST(first = e AS INTEGER))) AS first
  FROM router_rows
  WHERE finite
)
GROUP BY ALL`;

/** Per (MoE layer, expert): the sequences' sums summed — the whole dataset's. */
export const LOGIT_EXPERTS_SQL = `SELECT layer, expert, sum(prob) AS prob, sum(soft) AS soft, sum(chosen) AS chosen,
  sum(hf) AS hf, sum(first) AS first
FROM sequence_sums
GROUP BY 1, 2`;

/**
 * Per (file, sequence, MoE layer): its rows T and Σ_e chosen_e · prob_e, the one sum DeepSeek's sequence-wise loss
 * needs per sequence (moescope computes E·dot / (K·T²), switchAuxLossOfDot, and averages over sequences).
 */
export const LOGIT_SEQUENCE_DOT_SQL = `SELECT layer, max(rows) AS rows, sum(chosen * prob) AS dot
FROM sequence_sums
GROUP BY file, seq, layer`;

export interface LogitSqlParams {
  source: string;
  topK: number;
  experts: number;
  layers: number;
  bins: number;
}

/** A logits SQL text with its placeholders filled. */
export function renderLogitSql(sql: string, p: LogitSqlParams): string {
  const int = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be an integer ≥ 1, got ${v}`);
    return String(v);
  };
  return sql
    .replaceAll('{source}', p.source)
    .replaceAll('{topK}', int('topK', p.topK))
    .replaceAll('{experts}', int('experts', p.experts))
    .replaceAll('{layerCount}', int('layers', p.layers))
    .replaceAll('{bins}', int('bins', p.bins));
}
