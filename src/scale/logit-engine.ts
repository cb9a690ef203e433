/**
 * The logits sums of a dataset (traces with a `logits` column; docs/scale.md § Logits): a LogitSumRecord
 * (src/stats/logit-sums.ts) — per layer and expert the probability sums the auxiliary losses need, Σ logsumexp²
 * for the z-loss, the margin histogram, the sequence-wise loss's per-sequence terms — from which stats' formulas
 * make every logits metric, as from a streamed trace.
 *
 *  - `stream`: LogitSums over every row of every file in turn (Arrow batches as they are; Parquet rows read with
 *    hyparquet, their float32 logits turned back into the float16 they are exactly). A sequence ends with its file.
 *  - `duckdb`: the logits SQL of src/scale/sql.ts over the Parquet files (the Arrow ones streamed beside it):
 *    DuckDB scores each (token, layer) row in double precision and returns only sums — the logits never reach JS.
 *
 * Layers that differ in E or K (docs/trace-format.md) are summed one shape at a time (src/core/shapes.ts), each
 * over its layers' own E logits and K slots, so padding never enters a sum: the stream engine splits each batch by
 * shape (groupBatch), DuckDB reads the Parquet rows through a projection that keeps the group's own slices.
 */
import type { RoutingSchema } from '../core/batch.js';
import { groupBatch, type ShapeGroup, shapeGroups } from '../core/shapes.js';
import { UserError, describeError } from '../core/errors.js';
import { f32ToF16 } from '../core/f16.js';
import { openTrace } from '../trace/index.js';
import {
  LogitSums,
  addLogitSumRecord,
  emptyLogitSumRecord,
  type LogitSumRecord,
  type LogitsRows,
} from '../stats/logit-sums.js';
import { seqAuxLossFromDot } from '../stats/losses.js';
import { MARGIN_BINS } from '../stats/margin-histogram.js';
import type { Dataset, DatasetFile } from './dataset.js';
import { parquetSource, withDuckDb, type DuckDbOptions } from './duckdb-engine.js';
import {
  LOGIT_EXPERTS_SQL,
  LOGIT_LAYER_SQL,
  LOGIT_SEQUENCES_SQL,
  LOGIT_SEQUENCE_DOT_SQL,
  LOGIT_TABLES_SQL,
  ROUTER_ROWS_SIGMOID_SQL,
  ROUTER_ROWS_SOFTMAX_SQL,
  renderLogitSql,
} from './sql.js';

/** Whether every file of the dataset has logits (else no logits metric is computed: a part would mislead). */
export function datasetHasLogits(ds: Dataset): boolean {
  return ds.files.length > 0 && ds.files.every((f) => f.hasLogits);
}

/** The schema the logits sums are kept for (the dataset's, which says hasLogits: false for the count path). */
const logitSchema = (ds: Dataset): RoutingSchema => ({ ...ds.schema, hasLogits: true });

/** The dataset's layers by shape: one group when uniform; the records below come one per group, in this order. */
export const logitGroups = (ds: Dataset): ShapeGroup[] => shapeGroups(logitSchema(ds));

/** Sums of each shape group, fed each batch in the group's own shape. */
class GroupedSums {
  readonly groups: ShapeGroup[];
  private readonly sums: LogitSums[];
  constructor(private readonly schema: RoutingSchema) {
    this.groups = shapeGroups(schema);
    this.sums = this.groups.map((g) => new LogitSums(g.schema));
  }
  add(b: LogitsRows): void {
    this.groups.forEach((g, i) => this.sums[i]!.add(groupBatch(b, this.schema, g)));
  }
  endSequence(): void {
    for (const s of this.sums) s.endSequence();
  }
  /** Copies: a record's arrays are views of LogitSums' memory and scratch. */
  records(): LogitSumRecord[] {
    return this.groups.map((g, i) => {
      const out = emptyLogitSumRecord(g.schema);
      addLogitSumRecord(out, this.sums[i]!.record());
      return out;
    });
  }
}

/** Every file read by moescope itself, in path order: one record per shape group (logitGroups). */
export async function streamLogitSums(ds: Dataset): Promise<LogitSumRecord[]> {
  const sums = new GroupedSums(logitSchema(ds));
  for (const f of ds.files) {
    try {
      if (f.format === 'arrow') addArrow(f, sums);
      else await addParquet(f, ds, sums);
    } catch (e) {
      throw new UserError(`${f.path}: ${describeError(e)}`);
    }
    sums.endSequence();
  }
  return sums.records();
}

function addArrow(f: DatasetFile, sums: GroupedSums): void {
  const t = openTrace(f.path);
  try {
    for (const b of t.batches(0, { reuse: true })) if (b.logits) sums.add(b);
  } finally {
    t.close();
  }
}

/** Rows per hyparquet read: with logits a row is L·E numbers (14,848 at DeepSeek-V3 scale), so fewer than counts. */
const PARQUET_ROWS = 256;

async function addParquet(f: DatasetFile, ds: Dataset, sums: GroupedSums): Promise<void> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
  const { layers, experts: E, topK: K } = ds.schema;
  const LK = layers.length * K;
  const LE = layers.length * E;
  const file = await asyncBufferFromFile(f.path);
  const metadata = await parquetMetadataAsync(file);
  const columns = ['seq', 'experts', 'weights', 'logits'];
  for (let rowStart = 0; rowStart < f.rows; rowStart += PARQUET_ROWS) {
    const rowEnd = Math.min(f.rows, rowStart + PARQUET_ROWS);
    const rows = (await parquetReadObjects({ file, metadata, columns, rowStart, rowEnd })) as {
      seq: number;
      experts: number[];
      weights: number[];
      logits: number[];
    }[];
    if (rows.length !== rowEnd - rowStart)
      throw new UserError(`rows ${rowStart}…${rowEnd - 1} hold ${rows.length} rows: the file is corrupt`);
    const n = rows.length;
    const b: LogitsRows = {
      length: n,
      seq: new Uint32Array(n),
      experts: new Uint16Array(n * LK),
      weights: new Uint16Array(n * LK),
      logits: new Uint16Array(n * LE),
    };
    rows.forEach((r, t) => {
      if (r.experts?.length !== LK || r.weights?.length !== LK || r.logits?.length !== LE)
        throw new UserError(`a row's lists are not ${LK} experts and weights and ${LE} logits long`);
      b.seq[t] = Number(r.seq);
      b.experts.set(r.experts, t * LK);
      // The export widened float16 to float32 exactly: back to the same bits.
      for (let i = 0; i < LK; i++) b.weights[t * LK + i] = f32ToF16(r.weights[i]!);
      for (let i = 0; i < LE; i++) b.logits![t * LE + i] = f32ToF16(r.logits[i]!);
    });
    sums.add(b);
  }
}

/**
 * The Parquet files' sums by DuckDB (the Arrow files' by the stream engine), added together: one record per shape
 * group (logitGroups), each from its own pass of the SQL over the group's slices of the rows.
 */
export async function duckdbLogitSums(ds: Dataset, opts: DuckDbOptions = {}): Promise<LogitSumRecord[]> {
  const groups = logitGroups(ds);
  const outs = groups.map((g) => emptyLogitSumRecord(g.schema));
  const arrow = ds.files.filter((f) => f.format === 'arrow');
  if (arrow.length) {
    const sums = await streamLogitSums({ ...ds, files: arrow });
    outs.forEach((out, i) => addLogitSumRecord(out, sums[i]!));
  }
  const files = ds.files.filter((f) => f.format === 'parquet');
  if (files.length === 0) return outs;
  const source = parquetSource(
    files.map((f) => f.path),
    { filename: true },
  );
  for (const [i, g] of groups.entries())
    await duckdbGroupSums(ds, groups.length > 1 ? groupSource(source, ds.schema, g) : source, g, outs[i]!, opts);
  return outs;
}

/**
 * The Parquet rows as one shape group sees them (src/core/shapes.ts groupBatch, in SQL): its layers' own K
 * experts and weights and own E logits, concatenated — a uniform trace of the group's layers, which the logits SQL
 * then reads unchanged.
 */
export function groupSource(source: string, s: RoutingSchema, g: ShapeGroup): string {
  const slices = (col: string, width: number, own: number) =>
    `flatten([${g.positions.map((l) => `${col}[${l * width + 1}:${l * width + own}]`).join(', ')}])`;
  const { topK: k, experts: e } = g.schema;
  return (
    `(SELECT filename, seq, ${slices('experts', s.topK, k)} AS experts, ${slices('weights', s.topK, k)} AS weights,` +
    ` ${slices('logits', s.experts, e)} AS logits FROM ${source})`
  );
}

async function duckdbGroupSums(
  ds: Dataset,
  source: string,
  g: ShapeGroup,
  out: LogitSumRecord,
  opts: DuckDbOptions,
): Promise<void> {
  const { layers, experts: E, topK: K, scoring } = g.schema;
  const p = { source, topK: K, experts: E, layers: layers.length, bins: MARGIN_BINS };
  await withDuckDb(ds.label, opts, async (run) => {
    for (const stmt of renderLogitSql(LOGIT_TABLES_SQL, p).split(';\n')) await run(stmt);
    await run(renderLogitSql(scoring === 'sigmoid' ? ROUTER_ROWS_SIGMOID_SQL : ROUTER_ROWS_SOFTMAX_SQL, p));
    const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
    const rows = (await run(renderLogitSql(LOGIT_LAYER_SQL, p))).getRowObjects();
    for (const r of rows) {
      const l = num(r.layer);
      out.rows[l]! += num(r.rows);
      out.zSum[l]! += num(r.lse_squared);
      out.entSum[l]! += num(r.entropy);
      out.nonFinite[l]! += num(r.non_finite);
      if (r.bin === null || r.bin === undefined) continue;
      out.marginSum[l]! += num(r.margin);
      out.marginRows[l]! += num(r.rows);
      out.marginHist[l * MARGIN_BINS + num(r.bin)]! += num(r.rows);
    }
    await run(renderLogitSql(LOGIT_SEQUENCES_SQL, p));
    for (const r of (await run(renderLogitSql(LOGIT_EXPERTS_SQL, p))).getRowObjects()) {
      const i = num(r.layer) * E + num(r.expert);
      out.prob[i]! += num(r.prob);
      if (out.soft) out.soft[i]! += num(r.soft);
      out.count[i]! += num(r.chosen);
      out.hfCount[i]! += num(r.hf);
      out.top1[i]! += num(r.first);
    }
    for (const r of (await run(renderLogitSql(LOGIT_SEQUENCE_DOT_SQL, p))).getRowObjects()) {
      const l = num(r.layer);
      out.seqLossSum[l]! += seqAuxLossFromDot(num(r.dot), E, K, num(r.rows));
      out.seqs[l]!++;
    }
  });
}

/** The dataset's logits sums by the engine that counted it: one record per shape group (logitGroups). */
export async function datasetLogitSums(
  ds: Dataset,
  engine: 'stream' | 'duckdb',
  opts: DuckDbOptions = {},
): Promise<LogitSumRecord[]> {
  return engine === 'stream' ? streamLogitSums(ds) : duckdbLogitSums(ds, opts);
}
