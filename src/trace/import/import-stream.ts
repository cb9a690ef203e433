/**
 * What importers produce: a RoutingStream (src/core/routing-stream.ts). Each importer is a generator of
 * ImportEvents — `open` once it knows the schema (after a header line, a first pass, a file's shape), then the
 * stream's items — and importStream() runs it up to `open`, so the stream says what it is before its data. The
 * import command writes the stream with the trace writer (src/trace/write-stream.ts).
 *
 * TokenItems turns tokens pushed one at a time (or batches) into TokensItems of the writer's batch size, with
 * memory samples riding on the next token, as a trace stores them.
 */
import {
  RoutingBatchBuilder,
  type OptionalColumn,
  type RoutingBatch,
  type RoutingSchema,
  type TokenRouting,
} from '../../core/batch.js';
import { describeError } from '../../core/errors.js';
import type { MemorySample } from '../../core/memory.js';
import type { CountInfo, RoutingStream, StreamEnd, StreamItem, TokensItem } from '../../core/routing-stream.js';
import type { StreamMeta } from '../../core/stream.js';
import { routersFor, validateSchema } from '../arrow-schema.js';
import { defaultBatchTokens } from '../writer.js';
import { writeStreamTrace } from '../write-stream.js';
import type { Duplicates } from './duplicates.js';

/** What `import` wrote. */
export interface ImportResult {
  tokens: number;
  /** What was written: a token trace (default) or a count trace. */
  kind?: 'tokens' | 'counts';
  /** Rows (steps) of a count trace. */
  steps?: number;
  schema: RoutingSchema;
  /** Things the user should know (skipped records, inferred values). */
  notes: string[];
  /** Tokens skipped as duplicates of tokens already imported (src/trace/import/duplicates.ts). */
  duplicates: number;
}

/** An importer's stream: a RoutingStream that also says how many duplicate tokens it skipped. */
export interface ImportedStream extends RoutingStream {
  /** Tokens skipped as duplicates so far (all of them once items() has ended). */
  readonly duplicates: number;
}

/** Writes an importer's stream as the trace `output` (atomically, never over one of `inputs`). */
export async function writeImport(
  stream: ImportedStream,
  output: string,
  inputs: readonly string[],
): Promise<ImportResult> {
  const w = await writeStreamTrace(stream, output, { inputs });
  const notes = stream.notes;
  const duplicates = stream.duplicates;
  return w.kind === 'counts'
    ? { tokens: 0, kind: 'counts', steps: w.rows, schema: stream.schema, notes, duplicates }
    : { tokens: w.rows, schema: stream.schema, notes, duplicates };
}

/** The importer knows what it holds: the stream's schema, meta and, for counts, their axis and bins. */
export interface ImportOpen {
  kind: 'open';
  schema: RoutingSchema;
  meta: Omit<StreamMeta, 'routers'> & { routers?: StreamMeta['routers'] };
  /** Optional per-token columns the batches carry (step, rank, dropped). */
  columns?: readonly OptionalColumn[];
  /** Present for a count stream. */
  countInfo?: CountInfo;
}

export type ImportEvent = ImportOpen | StreamItem;

/**
 * The stream of an importer's events. Runs the importer until it yields `open` (errors up to there throw here);
 * `notes` is the importer's array of things the user should know, complete once `items()` has ended; `dups`, its
 * count of duplicate tokens skipped.
 */
export function importStream(
  label: string,
  events: Generator<ImportEvent, void, undefined>,
  notes: string[],
  dups: Duplicates | null = null,
): ImportedStream {
  const first = events.next();
  if (first.done || first.value.kind !== 'open') {
    events.return();
    throw new Error(`${label}: the importer yielded data before saying what it holds`);
  }
  const open = first.value;
  validateSchema(open.schema);
  const given: StreamMeta = { routers: [], ...open.meta }; // routers first: the header's key order as before
  const meta: StreamMeta = { ...given, routers: routersFor(open.schema, given) };
  let settle!: (e: StreamEnd) => void;
  const ended = new Promise<StreamEnd>((r) => (settle = r));
  return {
    label,
    schema: open.schema,
    meta,
    kind: open.countInfo ? 'counts' : 'tokens',
    tokens: null,
    columns: open.columns ?? [],
    ...(open.countInfo ? { countInfo: open.countInfo } : {}),
    notes,
    get duplicates() {
      return dups?.tokens ?? 0;
    },
    async *items() {
      try {
        for (let r = events.next(); !r.done; r = events.next()) {
          if (r.value.kind === 'open') throw new Error(`${label}: the importer said twice what it holds`);
          yield r.value;
        }
        settle({ complete: true, truncated: null, error: null });
      } catch (e) {
        settle({ complete: false, truncated: null, error: describeError(e) });
        throw e;
      } finally {
        events.return(); // a consumer that stops early closes the importer's files
      }
    },
    end: () => ended,
    seek: null,
    close() {
      events.return();
      settle({ complete: false, truncated: null, error: null });
    },
  };
}

/** Tokens pushed one at a time or by batch, handed out as TokensItems of the trace writer's batch size. */
export class TokenItems {
  private readonly builder: RoutingBatchBuilder;
  private next = 0;
  private memory: MemorySample[] = [];

  constructor(schema: RoutingSchema, columns: readonly OptionalColumn[] = []) {
    this.builder = new RoutingBatchBuilder(schema, defaultBatchTokens(schema), columns);
  }

  /** Adds a token; returns the batch it completed, if it did. */
  push(token: TokenRouting): TokensItem | null {
    this.builder.push(token);
    return this.builder.full ? this.drain() : null;
  }

  /** A whole batch (the importer's own arrays, not reused), after the tokens pushed before it. */
  batch(batch: RoutingBatch): TokensItem[] {
    const pushed = this.drain();
    const item = this.item(batch);
    return pushed ? [pushed, item] : [item];
  }

  /** A memory sample, carried by the next token; returns the tokens pushed before it, if any. */
  sample(sample: MemorySample): TokensItem | null {
    const pushed = this.drain();
    this.memory.push(sample);
    return pushed;
  }

  /** The tokens pushed and not yet handed out. Samples after the last token have no row to ride on and go. */
  finish(): TokensItem | null {
    return this.drain();
  }

  private drain(): TokensItem | null {
    return this.builder.length > 0 ? this.item(this.builder.finish()) : null;
  }

  private item(batch: RoutingBatch): TokensItem {
    const firstToken = this.next;
    const memory = this.memory.map((sample) => ({ token: firstToken, sample }));
    this.memory = [];
    this.next += batch.length;
    return { kind: 'tokens', batch, firstToken, memory };
  }
}
