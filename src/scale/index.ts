/**
 * Counting pushed down to an engine (docs/scale.md): a folder or glob of trace files (Arrow traces, moescope
 * Parquet exports) → count records per (step window, MoE layer, expert) computed where the data lies → one
 * count stream (a RoutingStream of kind 'counts'), which `stats`, `check`, `diff`, `report` and `plan` read like
 * a count trace, computing every metric with their own formulas.
 *
 *   openDataset(arg, { skipBad })                the files, checked (src/scale/dataset.ts)
 *   countDataset(ds, { engine, window })         a CountTable of the dataset, by `stream` or `duckdb`
 *   datasetStream(ds, table, engine)             that table as a RoutingStream
 */
import type { RoutingStream } from '../core/routing-stream.js';
import { UserError } from '../core/errors.js';
import { CountTable } from './count-table.js';
import type { Dataset } from './dataset.js';
import type { DuckDbOptions } from './duckdb-engine.js';

export { openDataset, type Dataset, type DatasetFile, type SkippedFile } from './dataset.js';
export { isDatasetArg, datasetFiles } from './inputs.js';
export { CountTable } from './count-table.js';
export { COUNTS_SQL, renderSql } from './sql.js';

export const ENGINES = ['stream', 'duckdb'] as const;
export type Engine = (typeof ENGINES)[number];

export interface CountOptions extends DuckDbOptions {
  engine: Engine;
  /** Steps per count row (default 1: one row per step). */
  window?: number;
}

/** The count records of a dataset, computed by the engine. */
export async function countDataset(ds: Dataset, opts: CountOptions): Promise<CountTable> {
  const window = opts.window ?? 1;
  if (!Number.isSafeInteger(window) || window < 1)
    throw new UserError(`--step-window must be an integer ≥ 1, got ${window}`);
  if (opts.engine === 'stream') {
    const { streamCounts } = await import('./stream-engine.js');
    return streamCounts(ds, window);
  }
  const table = new CountTable(ds.schema.layers.length, ds.schema.experts);
  const arrow = ds.files.filter((f) => f.format === 'arrow');
  if (arrow.length) {
    const { streamCounts } = await import('./stream-engine.js');
    table.merge(await streamCounts({ ...ds, files: arrow }, window));
  }
  const { duckdbCounts } = await import('./duckdb-engine.js');
  await duckdbCounts(ds, window, table, opts);
  return table;
}

/**
 * The engine a command uses when none is given: DuckDB past one file (docs/scale.md) when there is Parquet for it
 * to read (DuckDB reads no Arrow IPC stream: a folder of Arrow traces is streamed either way).
 */
export function defaultEngine(ds: Dataset): Engine {
  return ds.files.length > 1 && ds.files.some((f) => f.format === 'parquet') ? 'duckdb' : 'stream';
}

/** The dataset's counts as a count stream: one CountBatch, its rows the step windows in order. */
export function datasetStream(ds: Dataset, table: CountTable): RoutingStream {
  const batch = table.toBatch();
  const notes = [...ds.notes];
  return {
    label: ds.label,
    schema: ds.schema,
    meta: ds.meta,
    kind: 'counts',
    countInfo: { axis: 'expert', bins: ds.schema.experts, topKKnown: true, expertsKnown: true },
    tokens: null,
    notes,
    async *items() {
      if (batch.length) yield { kind: 'counts', batch };
    },
    end: async () => ({ complete: true, truncated: null, error: null }),
    seek: null,
    close() {},
  };
}
