/**
 * `moescope export TRACE --jsonl OUT --parquet OUT`: one exporter per format, each writing atomically.
 * Parquet needs a Parquet writer; apache-arrow's JS build has none and none is bundled yet, so it says so.
 */
import { UserError } from '../../core/errors.js';
import { openTrace, type TraceReader } from '../reader.js';
import { writeJsonl } from './jsonl.js';
import { TextSink } from './sink.js';

export type ExportFormat = 'jsonl' | 'parquet';

export interface ExportResult {
  format: ExportFormat;
  path: string;
  tokens: number;
}

type Exporter = (trace: TraceReader, path: string) => number;

const EXPORTERS: Record<ExportFormat, Exporter> = {
  jsonl: (trace, path) => {
    const out = new TextSink(path);
    try {
      const n = writeJsonl(trace, out);
      out.close();
      return n;
    } catch (e) {
      out.abort();
      throw e;
    }
  },
  parquet: () => {
    throw new UserError(
      'Parquet export is not available in this build (no Parquet writer bundled). pandas/polars/DuckDB read the .arrows ' +
        'trace directly; see docs/trace-format.md for a one-line pyarrow conversion to Parquet',
    );
  },
};

/** Writes each requested output; returns what was written, and notes (e.g. a truncated source). */
export function exportTrace(tracePath: string, outputs: Partial<Record<ExportFormat, string>>): { results: ExportResult[]; notes: string[] } {
  const wanted = (Object.keys(EXPORTERS) as ExportFormat[]).filter((f) => outputs[f] !== undefined);
  if (wanted.length === 0) throw new UserError('say what to write: --jsonl FILE and/or --parquet FILE');
  for (const f of wanted) if (outputs[f] === tracePath) throw new UserError(`--${f} ${tracePath} would overwrite the trace`);
  const trace = openTrace(tracePath);
  try {
    const notes: string[] = [];
    if (trace.truncated)
      notes.push(`${tracePath} is cut inside a batch (${trace.truncated.rowsLost ?? 'an unknown number of'} rows lost); exporting the ${trace.tokenCount} complete tokens`);
    else if (!trace.complete) notes.push(`${tracePath} has no end-of-stream marker (recording interrupted or still running); exporting its ${trace.tokenCount} tokens`);
    const results = wanted.map((format) => ({ format, path: outputs[format]!, tokens: EXPORTERS[format](trace, outputs[format]!) }));
    return { results, notes };
  } finally {
    trace.close();
  }
}
