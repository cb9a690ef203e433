/**
 * Where a command's routing comes from when its input names a dataset (a folder, a glob or a Parquet export;
 * docs/scale.md): the files checked, counted by the chosen engine, and handed on as a count stream — or, for one
 * Arrow trace, the trace itself as before.
 */
import { UserError } from '../core/errors.js';
import type { RoutingStream } from '../core/routing-stream.js';
import type { DatasetFlags } from './options.js';
import type { CountTable, Dataset, Engine } from '../scale/index.js';

export interface DatasetCounts {
  ds: Dataset;
  table: CountTable;
  engine: Engine;
  /** Seconds the engine took to count. */
  seconds: number;
}

const DATASET_ONLY: (keyof DatasetFlags)[] = ['engine', 'skipBad', 'stepWindow', 'memoryLimit', 'threads'];

/** Whether `arg` is a dataset; refuses dataset flags on a single Arrow trace (they would do nothing). */
export async function isDataset(arg: string, flags: DatasetFlags): Promise<boolean> {
  const { isDatasetArg } = await import('../scale/inputs.js');
  if (isDatasetArg(arg)) return true;
  const given = DATASET_ONLY.filter((k) => flags[k] !== undefined);
  if (given.length)
    throw new UserError(
      `${arg} is one Arrow trace: ${given.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')} apply to a folder, a glob or Parquet`,
    );
  return false;
}

export async function countDatasetArg(arg: string, flags: DatasetFlags): Promise<DatasetCounts> {
  const { openDataset, countDataset, defaultEngine } = await import('../scale/index.js');
  const ds = openDataset(arg, { skipBad: flags.skipBad });
  const engine = flags.engine ?? defaultEngine(ds);
  if (engine === 'stream' && (flags.memoryLimit !== undefined || flags.threads !== undefined))
    throw new UserError('--memory-limit and --threads apply to --engine duckdb');
  const t0 = performance.now();
  const table = await countDataset(ds, {
    engine,
    ...(flags.stepWindow !== undefined ? { window: flags.stepWindow } : {}),
    ...(flags.memoryLimit !== undefined ? { memoryLimit: flags.memoryLimit } : {}),
    ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
  });
  return { ds, table, engine, seconds: (performance.now() - t0) / 1000 };
}

/** The routing of `arg`: a dataset's count stream, or the one trace (refused when cut short, as the gate wants). */
export async function routingSource(arg: string, flags: DatasetFlags): Promise<RoutingStream> {
  if (await isDataset(arg, flags)) {
    const c = await countDatasetArg(arg, flags);
    const { datasetStream } = await import('../scale/index.js');
    const s = datasetStream(c.ds, c.table);
    s.notes.unshift(datasetNote(c));
    return s;
  }
  const { traceSource } = await import('../gate/source.js');
  return traceSource(arg);
}

/** One line saying what was counted, by which engine, and what was skipped. */
export function datasetNote(c: DatasetCounts): string {
  const tokens = c.ds.files.reduce((a, f) => a + f.rows, 0);
  return (
    `dataset ${c.ds.label}: ${c.ds.files.length} files, ${tokens.toLocaleString('en-US')} tokens, counted by ${c.engine} in ${c.seconds.toFixed(2)} s` +
    ` into ${c.table.windows} step window${c.table.windows === 1 ? '' : 's'}` +
    (c.ds.skipped.length ? `; skipped ${c.ds.skipped.length}: ${c.ds.skipped.map((s) => s.path).join(', ')}` : '')
  );
}
