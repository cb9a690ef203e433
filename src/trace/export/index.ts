/**
 * `moescope export TRACE --jsonl OUT --parquet OUT`: one exporter per format, each consuming the trace as a
 * RoutingStream (src/core/routing-stream.ts) batch by batch into a temporary file renamed into place only when
 * complete.
 */
import { UserError } from '../../core/errors.js';
import { resolveOutput } from '../../core/output.js';
import type { RoutingStream } from '../../core/routing-stream.js';
import { openTrace, type Truncation } from '../reader.js';
import { traceStream } from '../stream.js';
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

type Exporter = (stream: RoutingStream, path: string, inputs: readonly string[]) => Promise<number>;

/** Runs `write` into `sink`, keeping the output only when it completes. */
async function atomically<S extends { close(): void; abort(): void }>(
  sink: S,
  write: (sink: S) => Promise<number>,
): Promise<number> {
  try {
    const n = await write(sink);
    sink.close();
    return n;
  } catch (e) {
    sink.abort();
    throw e;
  }
}

const EXPORTERS: Record<ExportFormat, Exporter> = {
  jsonl: (stream, path, inputs) =>
    atomically(new TextSink(path, inputs), (out) =>
      stream.kind === 'counts' ? writeCountsJsonl(stream, out) : writeJsonl(stream, out),
    ),
  parquet: (stream, path, inputs) =>
    atomically(new AtomicFile(path, inputs), (out) =>
      stream.kind === 'counts' ? writeCountsParquet(stream, out) : writeParquet(stream, out),
    ),
};

/** Writes each requested output; returns what was written, notes, and the source's truncation (if cut short). */
export async function exportTrace(
  tracePath: string,
  outputs: Partial<Record<ExportFormat, string>>,
): Promise<{
  results: ExportResult[];
  notes: string[];
  truncated: Truncation | null;
  tokens: number;
  unit: 'tokens' | 'steps';
}> {
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
    // One stream per output (a stream is read once), over the one reader; streaming exporters keep no batch.
    const streams = wanted.map(() => traceStream(trace, { reuse: true }));
    const { complete, truncated } = await streams[0]!.end();
    const tokens = streams[0]!.tokens!;
    const notes: string[] = [];
    if (!truncated && !complete)
      notes.push(
        `${tracePath} has no end-of-stream marker (recording interrupted or still running); exporting its ${tokens} tokens`,
      );
    const results: ExportResult[] = [];
    for (const [i, format] of wanted.entries())
      results.push({
        format,
        path: outputs[format]!,
        tokens: await EXPORTERS[format](streams[i]!, outputs[format]!, [tracePath]),
      });
    return { results, notes, truncated, tokens, unit: trace.kind === 'counts' ? 'steps' : 'tokens' };
  } finally {
    trace.close();
  }
}
