/**
 * `moescope export TRACE --jsonl OUT --parquet OUT`: one exporter per format, each streaming the trace batch by
 * batch into a temporary file renamed into place only when complete.
 */
import { UserError } from '../../core/errors.js';
import { resolveOutput } from '../../core/output.js';
import { openTrace, type TraceReader, type Truncation } from '../reader.js';
import { writeJsonl } from './jsonl.js';
import { writeParquet } from './parquet.js';
import { writeCountsJsonl, writeCountsParquet } from './counts.js';
import { AtomicFile, TextSink } from './sink.js';

export type ExportFormat = 'jsonl' | 'parquet';

export interface ExportResult {
  format: ExportFormat;
  path: string;
  /** Rows written: tokens, or steps of a count trace. */
  tokens: number;
}

type Exporter = (trace: TraceReader, path: string, inputs: readonly string[]) => number;

/** Runs `write` into `sink`, keeping the output only when it completes. */
function atomically<S extends { close(): void; abort(): void }>(sink: S, write: (sink: S) => number): number {
  try {
    const n = write(sink);
    sink.close();
    return n;
  } catch (e) {
    sink.abort();
    throw e;
  }
}

const EXPORTERS: Record<ExportFormat, Exporter> = {
  jsonl: (trace, path, inputs) =>
    atomically(new TextSink(path, inputs), (out) => (trace.kind === 'counts' ? writeCountsJsonl(trace, out) : writeJsonl(trace, out))),
  parquet: (trace, path, inputs) =>
    atomically(new AtomicFile(path, inputs), (out) => (trace.kind === 'counts' ? writeCountsParquet(trace, out) : writeParquet(trace, out))),
};

/** Writes each requested output; returns what was written, notes, and the source's truncation (if cut short). */
export function exportTrace(
  tracePath: string,
  outputs: Partial<Record<ExportFormat, string>>,
): { results: ExportResult[]; notes: string[]; truncated: Truncation | null; tokens: number; unit: 'tokens' | 'steps' } {
  const wanted = (Object.keys(EXPORTERS) as ExportFormat[]).filter((f) => outputs[f] !== undefined);
  if (wanted.length === 0) throw new UserError('say what to write: --jsonl FILE and/or --parquet FILE');
  const seen = new Map<string, ExportFormat>();
  for (const f of wanted) {
    const at = resolveOutput(outputs[f]!, [tracePath], `--${f}`).real; // never the trace itself (src/core/output.ts)
    const other = seen.get(at);
    if (other) throw new UserError(`--${other} and --${f} both write ${outputs[f]}`);
    seen.set(at, f);
  }
  const trace = openTrace(tracePath);
  try {
    const notes: string[] = [];
    if (!trace.truncated && !trace.complete) notes.push(`${tracePath} has no end-of-stream marker (recording interrupted or still running); exporting its ${trace.tokenCount} tokens`);
    const results = wanted.map((format) => ({ format, path: outputs[format]!, tokens: EXPORTERS[format](trace, outputs[format]!, [tracePath]) }));
    return { results, notes, truncated: trace.truncated, tokens: trace.tokenCount, unit: trace.kind === 'counts' ? 'steps' : 'tokens' };
  } finally {
    trace.close();
  }
}
