/** Where `check`, `diff` and `report` get routing from: a recorded trace, or a model run over prompts. */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import type { StreamMeta } from '../core/stream.js';
import { UserError } from '../core/errors.js';

export interface RoutingSource {
  /** How reports name it: the trace path, or "MODEL over PROMPTS". */
  label: string;
  schema: RoutingSchema;
  meta: StreamMeta | null;
  /** Tokens, when known before reading. */
  tokens?: number;
  /** Caveats about the data (e.g. a trace whose writer did not finish), shown with results. */
  notes: string[];
  /** Batches in stream order. */
  batches(): AsyncIterable<RoutingBatch>;
  /** Releases files; safe to call twice. */
  close(): void;
}

/** A source over batches already in memory (tests, and models run to completion). */
export function memorySource(label: string, schema: RoutingSchema, batches: RoutingBatch[], meta: StreamMeta | null = null): RoutingSource {
  return {
    label,
    schema,
    meta,
    tokens: batches.reduce((n, b) => n + b.length, 0),
    notes: [],
    async *batches() {
      yield* batches;
    },
    close() {},
  };
}

/**
 * A recorded trace. A truncated file (cut inside a message) is refused: a gate must not pass on part of a run
 * whose recorder crashed. A trace without end-of-stream marker but with whole batches is read, with a note.
 */
export async function traceSource(path: string): Promise<RoutingSource> {
  const { openTrace } = await import('../trace/index.js');
  const t = openTrace(path);
  const cut = t.truncated;
  if (cut) {
    t.close();
    const lost = cut.rowsLost === null ? 'an unknown number of' : String(cut.rowsLost);
    throw new UserError(`${path} is truncated at byte ${cut.atByte} (${lost} tokens lost); re-record it, or gate on a complete trace`);
  }
  const notes: string[] = [];
  if (!t.complete) notes.push(`${path} has no end-of-stream marker: its recorder was killed or is still writing; ${t.tokenCount} complete tokens were read`);
  return {
    label: path,
    schema: t.schema,
    meta: t.meta,
    tokens: t.tokenCount,
    notes,
    async *batches() {
      yield* t.batches();
    },
    close: () => t.close(),
  };
}
