/**
 * The embedded engine: DuckDB (`@duckdb/node-api`) runs the count SQL (src/scale/sql.ts) over the dataset's Parquet
 * files on every core, out of core: memory is capped by `memory_limit` and what does not fit spills to a
 * temporary folder of its own, removed afterwards. DuckDB has no Arrow IPC stream reader without an extension
 * it would download, so a dataset's Arrow traces are counted by the stream engine beside it and the tables summed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, describeError } from '../core/errors.js';
import type { CountTable } from './count-table.js';
import type { Dataset } from './dataset.js';
import { COUNTS_SQL, renderSql, sqlString } from './sql.js';

export interface DuckDbOptions {
  /** Worker threads (default: every core). */
  threads?: number;
  /** DuckDB's memory_limit (default 1GB): beyond it, DuckDB spills to disk. */
  memoryLimit?: string;
}

export const DEFAULT_MEMORY_LIMIT = '1GB';

/** Counts the dataset's Parquet files with DuckDB into `table`. */
export async function duckdbCounts(
  ds: Dataset,
  window: number,
  table: CountTable,
  opts: DuckDbOptions = {},
): Promise<void> {
  const files = ds.files.filter((f) => f.format === 'parquet');
  if (files.length === 0) return;
  let duck: typeof import('@duckdb/node-api');
  try {
    duck = await import('@duckdb/node-api');
  } catch (e) {
    throw new UserError(`--engine duckdb: cannot load @duckdb/node-api (${describeError(e)}); use --engine stream`);
  }
  const spill = mkdtempSync(join(tmpdir(), 'moescope-duckdb-'));
  const threads = opts.threads ?? availableParallelism();
  let instance: import('@duckdb/node-api').DuckDBInstance | null = null;
  try {
    instance = await duck.DuckDBInstance.create(':memory:', {
      threads: String(threads),
      memory_limit: opts.memoryLimit ?? DEFAULT_MEMORY_LIMIT,
      temp_directory: spill,
      // Row order does not matter to a sum: lets DuckDB stream instead of keeping insertion order.
      preserve_insertion_order: 'false',
    });
    const con = await instance.connect();
    try {
      const source = `read_parquet([${files.map((f) => sqlString(f.path)).join(', ')}], union_by_name = true, hive_partitioning = false)`;
      const sql = renderSql(COUNTS_SQL, {
        source,
        hasStep: files.some((f) => f.hasStep),
        window,
        topK: ds.schema.topK,
      });
      let reader;
      try {
        reader = await con.runAndReadAll(sql);
      } catch (e) {
        throw new UserError(`DuckDB could not count ${ds.label}: ${describeError(e).split('\n')[0]}`);
      }
      // Integer columns arrive as bigint or number depending on their DuckDB type: Number() takes either.
      const [steps, layers, experts, n] = reader.getColumns() as (number | bigint)[][];
      for (let i = 0; i < n!.length; i++)
        table.add(Number(steps![i]), Number(layers![i]), Number(experts![i]), Number(n![i]));
    } finally {
      con.closeSync();
    }
  } finally {
    instance?.closeSync();
    rmSync(spill, { recursive: true, force: true });
  }
}
