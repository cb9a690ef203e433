/**
 * The single-process engine: every file read in turn by moescope itself — Arrow traces with the trace reader
 * (one batch at a time, the counting loop `stats` runs), Parquet exports with hyparquet (one row group at a time).
 * The reference the pushed-down engines are tested against, and the baseline bench/scale.ts measures them by.
 */
import { expertsAt, NO_STEP, topKAt } from '../core/batch.js';
import { UserError, describeError } from '../core/errors.js';
import { openTrace } from '../trace/index.js';
import { countAssignments, countShapedAssignments } from '../stats/counts.js';
import { CountTable } from './count-table.js';
import type { Dataset, DatasetFile } from './dataset.js';

/** Counts every file of the dataset into one table of step windows. */
export async function streamCounts(ds: Dataset, window: number): Promise<CountTable> {
  const L = ds.schema.layers.length;
  const table = new CountTable(L, ds.schema.experts);
  for (const f of ds.files) {
    try {
      if (f.format === 'arrow') countArrow(f, ds, window, table);
      else await countParquet(f, ds, window, table);
    } catch (e) {
      throw new UserError(`${f.path}: ${describeError(e)}`);
    }
  }
  return table;
}

function countArrow(f: DatasetFile, ds: Dataset, window: number, table: CountTable): void {
  const s = ds.schema;
  const { layers, experts: E, topK: K } = s;
  const L = layers.length;
  // Layers that differ in E or K: each layer's own slots counted (padding never), into rows E wide.
  const count = s.layerTopK
    ? (ex: Uint16Array, a: number, e: number, out: Float64Array) =>
        countShapedAssignments(ex, a, e, K, E, s.layerTopK!, s.layerExperts!, out)
    : (ex: Uint16Array, a: number, e: number, out: Float64Array) => countAssignments(ex, a, e, L, K, E, out);
  const t = openTrace(f.path);
  try {
    for (const b of t.batches(0, { reuse: true })) {
      const step = b.step;
      if (!step) {
        count(b.experts, 0, b.length, table.window(0));
        continue;
      }
      // Runs of tokens in one window are counted by one call (a step holds thousands of consecutive tokens).
      const win = (i: number) => (step[i] === NO_STEP ? 0 : Math.floor(step[i]! / window) * window);
      for (let a = 0; a < b.length; ) {
        const w = win(a);
        let e = a + 1;
        while (e < b.length && win(e) === w) e++;
        count(b.experts, a, e, table.window(w));
        a = e;
      }
    }
  } finally {
    t.close();
  }
}

/** Rows per hyparquet read: bounds the decoded JS arrays (about 100 bytes per list element). */
const PARQUET_ROWS = 2048;

async function countParquet(f: DatasetFile, ds: Dataset, window: number, table: CountTable): Promise<void> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
  const { layers, experts: E, topK: K } = ds.schema;
  const L = layers.length;
  const LK = L * K;
  const kOf = layers.map((_, l) => topKAt(ds.schema, l));
  const eOf = layers.map((_, l) => expertsAt(ds.schema, l));
  const file = await asyncBufferFromFile(f.path);
  const metadata = await parquetMetadataAsync(file);
  const columns = f.hasStep ? ['experts', 'step'] : ['experts'];
  for (let rowStart = 0; rowStart < f.rows; rowStart += PARQUET_ROWS) {
    const rowEnd = Math.min(f.rows, rowStart + PARQUET_ROWS);
    const rows = (await parquetReadObjects({ file, metadata, columns, rowStart, rowEnd })) as {
      experts: number[];
      step?: number | null;
    }[];
    // Never loop on a promise the data does not keep: rows missing where the footer put them are corruption.
    if (rows.length !== rowEnd - rowStart)
      throw new UserError(`rows ${rowStart}…${rowEnd - 1} hold ${rows.length} rows: the file is corrupt`);
    for (const r of rows) {
      const ids = r.experts;
      if (!Array.isArray(ids) || ids.length !== LK)
        throw new UserError(`a row's experts list has ${Array.isArray(ids) ? ids.length : 'no'} ids, expected ${LK}`);
      const s = r.step ?? 0;
      const m = table.window(Math.floor(Number(s) / window) * window);
      for (let i = 0; i < LK; i++) {
        const l = Math.floor(i / K);
        if (i - l * K >= kOf[l]!) continue; // a padding slot past the layer's own K (mixed shapes)
        const e = ids[i]!;
        if (!(e >= 0 && e < eOf[l]!))
          throw new UserError(`expert id ${e} out of range: the schema has ${eOf[l]} experts per layer`);
        m[l * E + e]!++;
      }
    }
  }
}
