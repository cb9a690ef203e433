/**
 * A dataset: the trace files a folder or glob names (src/scale/inputs.ts), each opened far enough to know it is a
 * moescope token trace — an Arrow trace (its schema and batch index) or a moescope Parquet export (its footer) —
 * and that its routing schema matches the first file's. A corrupt, foreign or mismatched file stops everything
 * with one line naming it, unless the user asked to skip such files (`--skip-bad`): then they are listed, with
 * why, in the result.
 */
import { describeLayerShapes, mixedShapes, type RoutingSchema } from '../core/batch.js';
import { UserError, describeError } from '../core/errors.js';
import type { StreamMeta } from '../core/stream.js';
import { openTrace } from '../trace/index.js';
import { looksLikeParquet, readParquetTraceInfo } from '../trace/parquet-footer.js';
import { datasetFiles } from './inputs.js';

export interface DatasetFile {
  path: string;
  format: 'parquet' | 'arrow';
  /** Tokens (rows) the file holds. */
  rows: number;
  hasStep: boolean;
  hasLogits: boolean;
  bytes: number;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface Dataset {
  /** The argument as the user gave it. */
  label: string;
  files: DatasetFile[];
  skipped: SkippedFile[];
  schema: RoutingSchema;
  meta: StreamMeta;
  /** Caveats shown with results (files without end-of-stream marker). */
  notes: string[];
}

export interface OpenDatasetOptions {
  /** Leave out corrupt, foreign and mismatched files (listed in `skipped`) instead of refusing the dataset. */
  skipBad?: boolean;
}

interface Probe {
  file: DatasetFile;
  schema: RoutingSchema;
  meta: StreamMeta;
  note: string | null;
}

function probe(path: string): Probe {
  if (looksLikeParquet(path) || /\.parquet$/i.test(path)) {
    const info = readParquetTraceInfo(path);
    return {
      file: {
        path,
        format: 'parquet',
        rows: info.rows,
        hasStep: info.columns.includes('step'),
        hasLogits: info.columns.includes('logits'),
        bytes: info.bytes,
      },
      schema: info.header.schema,
      meta: info.header.meta,
      note: null,
    };
  }
  const t = openTrace(path);
  try {
    if (t.kind !== 'tokens') throw new UserError(`${path} is a count trace: a dataset is made of token traces`);
    const cut = t.truncated;
    if (cut)
      throw new UserError(
        `${path} is truncated at byte ${cut.atByte} (${cut.rowsLost ?? 'an unknown number of'} tokens lost)`,
      );
    return {
      file: {
        path,
        format: 'arrow',
        rows: t.tokenCount,
        hasStep: t.columns.includes('step'),
        hasLogits: t.schema.hasLogits,
        bytes: t.fileBytes,
      },
      schema: t.schema,
      meta: t.meta,
      note: t.complete ? null : `${path} has no end-of-stream marker: its ${t.tokenCount} complete tokens were counted`,
    };
  } finally {
    t.close();
  }
}

const shape = (s: RoutingSchema) =>
  mixedShapes(s)
    ? `${s.layers.length} MoE layers (${describeLayerShapes(s)}), ${s.scoring}`
    : `${s.layers.length} MoE layers (${s.layers.join(',')}) × ${s.experts} experts, top-${s.topK}, ${s.scoring}`;

export function openDataset(arg: string, opts: OpenDatasetOptions = {}): Dataset {
  const paths = datasetFiles(arg);
  const files: DatasetFile[] = [];
  const skipped: SkippedFile[] = [];
  const notes: string[] = [];
  let first: Probe | null = null;
  const bad = (path: string, reason: string) => {
    if (!opts.skipBad)
      throw new UserError(
        `${reason}${paths.length > 1 ? ` (--skip-bad computes from the other files and lists this one)` : ''}`,
      );
    skipped.push({ path, reason });
  };
  for (const path of paths) {
    let p: Probe;
    try {
      p = probe(path);
    } catch (e) {
      const msg = describeError(e);
      bad(path, msg.includes(path) ? msg : `${path}: ${msg}`);
      continue;
    }
    if (first && shape(p.schema) !== shape(first.schema)) {
      bad(path, `${path} has ${shape(p.schema)}; ${first.file.path} has ${shape(first.schema)}`);
      continue;
    }
    first ??= p;
    files.push(p.file);
    if (p.note) notes.push(p.note);
  }
  if (!first)
    throw new UserError(
      `${arg}: no readable moescope trace among its ${paths.length} files (${skipped.length} skipped)`,
    );
  if (skipped.length)
    notes.push(
      `${skipped.length} of ${paths.length} files skipped (--skip-bad): ${skipped.map((s) => s.reason).join('; ')}`,
    );
  return { label: arg, files, skipped, schema: { ...first.schema, hasLogits: false }, meta: first.meta, notes };
}
