/**
 * A trace as a RoutingStream (src/core/routing-stream.ts): every complete batch with the memory samples its rows
 * carry, random access for replay, and how the file ends (end-of-stream marker, truncation). With `follow`, the
 * stream tails a growing trace until its writer finishes or the stream is closed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CountsItem, RoutingStream, StreamEnd, TokenSeek, TokensItem } from '../core/routing-stream.js';
import { META_KEY } from './arrow-schema.js';
import type { TraceChunk, TraceReader } from './reader.js';

export interface TraceStreamOptions {
  /** How results name it (default: the path). */
  label?: string;
  /** Tail the file: yield what is appended until the end-of-stream marker or close(). */
  follow?: boolean;
  /** How often to look for growth when following, ms (default 200). */
  pollMs?: number;
  /**
   * Read every batch into one reused buffer: each item is valid only until the next is read (streaming
   * aggregations that keep nothing; see TraceReader ReadOptions).
   */
  reuse?: boolean;
}

/** The header JSON exactly as the file stores it. */
const recordedHeader = (reader: TraceReader): string =>
  reader.arrowSchema.metadata.get(META_KEY) ?? JSON.stringify(reader.header);

const asItem = (c: TraceChunk): TokensItem => ({
  kind: 'tokens',
  batch: c.batch,
  firstToken: c.firstToken,
  memory: c.memory,
});

/** The stream over an open trace; closing the stream closes the reader. */
export function traceStream(reader: TraceReader, opts: TraceStreamOptions = {}): RoutingStream {
  if (reader.kind === 'counts') return countTraceStream(reader, opts);
  const label = opts.label ?? reader.path;
  const follow = opts.follow ?? false;
  const abort = new AbortController();
  const notes: string[] = [];
  if (!follow && !reader.complete && !reader.truncated)
    notes.push(
      `${label} has no end-of-stream marker: its recorder was killed or is still writing; ${reader.tokenCount} complete tokens were read`,
    );
  const fileEnd = (error: string | null = null): StreamEnd => ({
    complete: reader.complete,
    truncated: reader.truncated,
    error,
  });
  let settle: (e: StreamEnd) => void = () => {};
  const ended: Promise<StreamEnd> = follow ? new Promise((res) => (settle = res)) : Promise.resolve(fileEnd());
  const seek: TokenSeek = {
    get tokenCount() {
      return reader.tokenCount;
    },
    *chunks(fromToken = 0) {
      for (const c of reader.chunks(fromToken)) yield asItem(c);
    },
    memorySamples: () => reader.memorySamples(),
  };
  return {
    label,
    schema: reader.schema,
    meta: reader.meta,
    kind: 'tokens',
    tokens: follow ? null : reader.tokenCount,
    columns: reader.columns,
    recordedHeader: recordedHeader(reader),
    notes,
    async *items() {
      if (!follow) {
        for (const c of reader.chunks(0, { reuse: opts.reuse })) yield asItem(c);
        return;
      }
      try {
        for await (const c of reader.follow({ fromToken: 0, pollMs: opts.pollMs, signal: abort.signal }))
          yield asItem(c);
        settle(fileEnd());
      } catch (e) {
        settle(fileEnd(e instanceof Error ? e.message : String(e)));
        throw e;
      }
    },
    end: () => ended,
    seek,
    close() {
      abort.abort();
      settle(fileEnd());
      reader.close();
    },
  };
}

/**
 * A count trace (docs/trace-format.md § Count traces) as a stream of `counts` items, one per record batch; with
 * `follow`, polling for appended batches until the end-of-stream marker or close(). Not seekable.
 */
function countTraceStream(reader: TraceReader, opts: TraceStreamOptions): RoutingStream {
  const label = opts.label ?? reader.path;
  const follow = opts.follow ?? false;
  const pollMs = opts.pollMs ?? 200;
  const abort = new AbortController();
  const notes: string[] = [];
  if (!follow && !reader.complete && !reader.truncated)
    notes.push(
      `${label} has no end-of-stream marker: its recorder was killed or is still writing; ${reader.rowCount} complete steps were read`,
    );
  const fileEnd = (error: string | null = null): StreamEnd => ({
    complete: reader.complete,
    truncated: reader.truncated,
    error,
  });
  let settle: (e: StreamEnd) => void = () => {};
  const ended: Promise<StreamEnd> = follow ? new Promise((res) => (settle = res)) : Promise.resolve(fileEnd());
  return {
    label,
    schema: reader.schema,
    meta: reader.meta,
    kind: 'counts',
    tokens: follow ? null : reader.rowCount,
    countInfo: reader.countInfo!,
    recordedHeader: recordedHeader(reader),
    notes,
    async *items(): AsyncGenerator<CountsItem> {
      let next = 0;
      try {
        for (;;) {
          for (; next < reader.batchCount; next++) {
            if (abort.signal.aborted) break;
            yield { kind: 'counts', batch: reader.readCountBatch(next) };
          }
          if (!follow || reader.complete || abort.signal.aborted) break;
          try {
            await sleep(pollMs, undefined, { signal: abort.signal });
          } catch {
            break; // closed
          }
          reader.refresh();
        }
        settle(fileEnd());
      } catch (e) {
        settle(fileEnd(e instanceof Error ? e.message : String(e)));
        throw e;
      }
    },
    end: () => ended,
    seek: null,
    close() {
      abort.abort();
      settle(fileEnd());
      reader.close();
    },
  };
}
