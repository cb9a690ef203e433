/**
 * `export --parquet DIR --partition-by rank|step:N`: one trace or many (every rank of a run) → a folder of Parquet
 * files that engines split (docs/scale.md § Writing a dataset): Hive-style folders by the key the user picks —
 * `rank=3/` or `step=1000-1999/` (N steps per range) — one file per (input trace, partition) named after its
 * trace, row groups of at most GROUP_VALUES list elements (about 1,100 DeepSeek-scale tokens: many units for
 * parallel readers), the trace header in each footer (key `moescope`) and the partition under `moescope.partition`.
 *
 * Complete or nothing: each file goes through its own temporary file; an error aborts every file of the export,
 * and an output folder that already holds files is refused (a dataset is never half-replaced).
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { NO_STEP } from '../../core/batch.js';
import { UserError, describeError } from '../../core/errors.js';
import { openTrace, type TraceReader } from '../reader.js';
import { META_KEY } from '../arrow-schema.js';
import { ParquetTraceWriter, memCells } from './parquet.js';
import { AtomicFile } from './sink.js';

export type PartitionKey = { by: 'rank' } | { by: 'step'; steps: number };

/** `rank` or `step:N`. */
export function parsePartition(spec: string): PartitionKey {
  if (spec === 'rank') return { by: 'rank' };
  const m = /^step:(\d+)$/.exec(spec.trim());
  if (m && Number(m[1]) >= 1 && Number.isSafeInteger(Number(m[1]))) return { by: 'step', steps: Number(m[1]) };
  throw new UserError(`--partition-by must be rank or step:N (N steps per range, N ≥ 1), got "${spec}"`);
}

/** A trace's file name without its extension: the name of its file in each partition. */
const stem = (path: string) => basename(path).replace(/\.(arrows?|parquet)$/i, '');

/** Most partition files open at once (file handles; each holds its footer until the end). */
const MAX_OPEN = 1024;

export interface DatasetExportResult {
  folder: string;
  files: number;
  partitions: number;
  tokens: number;
}

export function exportDataset(traces: readonly string[], folder: string, key: PartitionKey): DatasetExportResult {
  if (traces.length === 0) throw new UserError('nothing to export');
  const names = new Map<string, string>();
  for (const t of traces) {
    const n = stem(t);
    const other = names.get(n);
    if (other)
      throw new UserError(`${other} and ${t} would both be written as ${n}.parquet in each partition; rename one`);
    names.set(n, t);
  }
  try {
    if (statSync(folder).isDirectory()) {
      if (readdirSync(folder).length > 0)
        throw new UserError(`${folder} already holds files: give a new or empty folder for the dataset`);
    } else throw new UserError(`${folder} exists and is not a folder`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    try {
      mkdirSync(folder, { recursive: true });
    } catch (e2) {
      throw new UserError(`cannot create ${folder}: ${describeError(e2)}`);
    }
  }
  const writers = new Map<string, { file: AtomicFile; w: ParquetTraceWriter }>();
  const made: string[] = [];
  let tokens = 0;
  const partitions = new Set<string>();
  try {
    let first: string | null = null;
    for (const path of traces) {
      const trace = openTrace(path);
      try {
        if (trace.kind !== 'tokens')
          throw new UserError(`${path} is a count trace: --partition-by exports token traces`);
        if (trace.truncated)
          throw new UserError(`${path} is truncated at byte ${trace.truncated.atByte}: export it on its own first`);
        const shape = JSON.stringify(trace.schema);
        first ??= shape;
        if (shape !== first)
          throw new UserError(`${path} has another routing schema than ${traces[0]}: a dataset holds one model`);
        if (key.by === 'rank' && !trace.columns.includes('rank'))
          throw new UserError(`${path} has no rank column: use --partition-by step:N, or export it alone`);
        if (key.by === 'step' && !trace.columns.includes('step'))
          throw new UserError(`${path} has no step column: use --partition-by rank, or export it alone`);
        tokens += exportOne(trace, stem(path), folder, key, writers, partitions, made);
        for (const { file, w } of writers.values()) {
          w.finish();
          file.close();
        }
        writers.clear();
      } finally {
        trace.close();
      }
    }
  } catch (e) {
    for (const { file } of writers.values()) file.abort();
    for (const p of made) rmSync(p, { force: true });
    throw e;
  }
  return { folder, files: made.length, partitions: partitions.size, tokens };
}

function exportOne(
  trace: TraceReader,
  name: string,
  folder: string,
  key: PartitionKey,
  writers: Map<string, { file: AtomicFile; w: ParquetTraceWriter }>,
  partitions: Set<string>,
  made: string[],
): number {
  const withMem = trace.memorySamples().length > 0;
  const headerJson = trace.arrowSchema.metadata.get(META_KEY) ?? JSON.stringify(trace.header); // as the trace recorded it
  const partOf = (b: import('../../core/batch.js').RoutingBatch, i: number): string => {
    if (key.by === 'rank') return `rank=${b.rank![i]}`;
    const s = b.step![i]!;
    if (s === NO_STEP) return 'step=none';
    const lo = Math.floor(s / key.steps) * key.steps;
    return `step=${lo}-${lo + key.steps - 1}`;
  };
  const writerOf = (part: string) => {
    let x = writers.get(part);
    if (!x) {
      if (writers.size >= MAX_OPEN)
        throw new UserError(
          `${trace.path} spreads over more than ${MAX_OPEN} partitions: choose a coarser --partition-by`,
        );
      const dir = join(folder, part);
      mkdirSync(dir, { recursive: true });
      const path = join(dir, `${name}.parquet`);
      const file = new AtomicFile(path, [trace.path]);
      const w = new ParquetTraceWriter(trace.schema, file, {
        headerJson,
        withMem,
        columns: trace.columns,
        extraMetadata: [
          {
            key: 'moescope.partition',
            value: JSON.stringify({
              by: key.by,
              ...(key.by === 'step' ? { steps: key.steps } : {}),
              value: part.slice(part.indexOf('=') + 1),
            }),
          },
        ],
      });
      x = { file, w };
      writers.set(part, x);
      made.push(path);
      partitions.add(part);
    }
    return x;
  };
  let n = 0;
  for (const c of trace.chunks(0, { reuse: true })) {
    const b = c.batch;
    const mem = withMem ? memCells(c) : null;
    // Runs of rows with one key become row groups of that partition's file.
    for (let a = 0; a < b.length; ) {
      const part = partOf(b, a);
      let e = a + 1;
      while (e < b.length && partOf(b, e) === part) e++;
      writerOf(part).w.write(c, a, e, mem);
      n += e - a;
      a = e;
    }
  }
  return n;
}
