/**
 * The embedded engine: DuckDB (`@duckdb/node-api`) runs the count SQL (src/scale/sql.ts) over the dataset's Parquet
 * files on every core — the slot table, the steps present, then the counts over ranges of at most `stepSpan`
 * steps (so that DuckDB's dense group-by array stays under 2^PERFECT_BITS cells) — out of core: memory is capped by `memory_limit` and what does not fit spills to a
 * temporary folder of its own, removed afterwards. DuckDB has no Arrow IPC stream reader without an extension
 * it would download, so a dataset's Arrow traces are counted by the stream engine beside it and the tables summed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, describeError } from '../core/errors.js';
import type { CountTable } from './count-table.js';
import type { Dataset } from './dataset.js';
import { COUNTS_SQL, SHAPED_SLOTS_SQL, SLOTS_SQL, STEPS_SQL, renderSql, sqlString } from './sql.js';

export interface DuckDbOptions {
  /** Worker threads (default: every core). */
  threads?: number;
  /** DuckDB's memory_limit (default 1GB): beyond it, DuckDB spills to disk. */
  memoryLimit?: string;
  /** Most steps per count query (default stepSpan(L, E)); smaller in tests, to run several. */
  stepSpan?: number;
}

export const DEFAULT_MEMORY_LIMIT = '1GB';

/**
 * The most bits of DuckDB's dense group-by array (PERFECT_HASH_GROUP_BY, 2^bits cells of a count: 2^20 is about
 * 10 MB per thread). DuckDB gives each key ⌊log₂(range + 1)⌋ + 1 bits (its values and NULL), range the key's
 * max − min from statistics; past this it hashes instead (the same counts, slower).
 */
export const PERFECT_BITS = 20;

const keyBits = (values: number) => Math.floor(Math.log2(values + 1)) + 1;

/**
 * The most steps one count query spans: the step key gets the bits the layer and expert keys leave (30 steps at
 * DeepSeek-V3 scale, 58 layers × 256 experts), at least one step.
 */
export function stepSpan(layers: number, experts: number): number {
  const bits = PERFECT_BITS - keyBits(layers) - keyBits(experts);
  return Math.max(1, 2 ** bits - 2);
}

/**
 * The {source} of the SQL: the files listed, `union_by_name` so that DuckDB reads every footer when it plans (a
 * file's columns may differ: step) — which also gives it the min/max statistics of each column over all the files,
 * the ranges the dense group-by needs (over a glob, or without union_by_name, DuckDB plans from no statistics and
 * hashes); Hive partition folders are not read as columns (the key is the file's own column).
 */
export function parquetSource(paths: string[], opts: { filename?: boolean } = {}): string {
  const filename = opts.filename ? ', filename = true' : '';
  return `read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true, hive_partitioning = false${filename})`;
}

/** Runs one statement; a DuckDB error becomes one line naming the dataset. */
export type RunSql = (sql: string) => Promise<import('@duckdb/node-api').DuckDBResultReader>;

/**
 * An embedded DuckDB for the duration of `fn`: every core (or `threads`), memory capped at `memoryLimit`, spilling
 * to a temporary folder of its own that is removed afterwards.
 */
export async function withDuckDb(
  label: string,
  opts: DuckDbOptions,
  fn: (run: RunSql) => Promise<void>,
): Promise<void> {
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
      await fn(async (sql: string) => {
        try {
          return await con.runAndReadAll(sql);
        } catch (e) {
          throw new UserError(`DuckDB could not count ${label}: ${describeError(e).split('\n')[0]}`);
        }
      });
    } finally {
      con.closeSync();
    }
  } finally {
    instance?.closeSync();
    rmSync(spill, { recursive: true, force: true });
  }
}

/** Counts the dataset's Parquet files with DuckDB into `table`. */
export async function duckdbCounts(
  ds: Dataset,
  window: number,
  table: CountTable,
  opts: DuckDbOptions = {},
): Promise<void> {
  const files = ds.files.filter((f) => f.format === 'parquet');
  if (files.length === 0) return;
  await withDuckDb(ds.label, opts, async (run) => {
    const source = parquetSource(files.map((f) => f.path));
    const { layers, topK, layerTopK } = ds.schema;
    const params = {
      source,
      hasStep: files.some((f) => f.hasStep),
      topK,
      layers: layers.length,
      ...(layerTopK ? { layerTopK } : {}),
    };
    await run(`SET perfect_ht_threshold = ${PERFECT_BITS}`);
    // Layers that differ in K: a slot table of their own slots only (padding is never counted).
    await run(renderSql(layerTopK ? SHAPED_SLOTS_SQL : SLOTS_SQL, params));
    const present = (await run(renderSql(STEPS_SQL, params))).getColumns()[0] as (number | bigint)[];
    const steps = present.map(Number).sort((a, b) => a - b);
    const span = opts.stepSpan ?? stepSpan(layers.length, ds.schema.experts);
    for (let i = 0; i < steps.length; ) {
      const first = steps[i]!;
      while (i < steps.length && steps[i]! - first < span) i++;
      const reader = await run(renderSql(COUNTS_SQL, { ...params, first, last: steps[i - 1]! }));
      // Integer columns arrive as bigint or number depending on their DuckDB type: Number() takes either.
      const [step, layer, expert, n] = reader.getColumns() as (number | bigint)[][];
      for (let r = 0; r < n!.length; r++) {
        const s = Number(step![r]);
        table.add(Math.floor(s / window) * window, Number(layer![r]), Number(expert![r]), Number(n![r]));
      }
    }
  });
}
