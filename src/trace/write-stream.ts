/**
 * A whole RoutingStream written as a trace file (what `import` does with an importer's stream): token streams
 * through TraceWriter, count streams through CountTraceWriter, atomically — the file appears complete or not at
 * all, and never over one of `inputs` (src/core/output.ts) — or, for a live stream, in place as it grows.
 */
import { sliceBatch } from '../core/batch.js';
import type { RoutingStream, TokensItem } from '../core/routing-stream.js';
import { CountTraceWriter } from './count-writer.js';
import { TraceWriter } from './writer.js';

export interface WrittenTrace {
  kind: 'tokens' | 'counts';
  /** Tokens, or steps of a count trace. */
  rows: number;
}

export interface WriteStreamOptions {
  /** The command's input files: the trace is never written over one of them. */
  inputs?: readonly string[];
  /**
   * A token stream that grows while it is written (import megatron --follow): the trace is written in place, so
   * `replay --follow` can show it, and a stream that fails keeps what was written, finished with its end marker.
   */
  live?: boolean;
}

export async function writeStreamTrace(
  stream: RoutingStream,
  path: string,
  opts: WriteStreamOptions = {},
): Promise<WrittenTrace> {
  try {
    if (stream.kind === 'counts') return { kind: 'counts', rows: await writeCounts(stream, path, opts.inputs) };
    return { kind: 'tokens', rows: await writeTokens(stream, path, opts.inputs, opts.live ?? false) };
  } finally {
    stream.close();
  }
}

async function writeTokens(
  stream: RoutingStream,
  path: string,
  inputs: readonly string[] | undefined,
  live: boolean,
): Promise<number> {
  const w = TraceWriter.create(path, {
    schema: stream.schema,
    meta: stream.meta,
    atomic: !live,
    columns: stream.columns ?? [],
    inputs,
  });
  try {
    for await (const item of stream.items()) {
      if (item.kind === 'tokens') writeItem(w, item);
      else if (item.kind === 'memory') w.writeMemory(item.sample);
      else throw new Error(`${stream.label}: load counts in a token stream`);
    }
    w.close();
    return w.tokensWritten;
  } catch (e) {
    if (live) w.close();
    else w.abort();
    throw e;
  }
}

/** A batch with its memory samples, each written before the row that carries it. */
function writeItem(w: TraceWriter, item: TokensItem): void {
  const b = item.batch;
  let at = 0;
  for (const m of item.memory) {
    const row = m.token - item.firstToken;
    if (row > at) {
      w.write(sliceBatch(b, w.schema, at, row));
      at = row;
    }
    w.writeMemory(m.sample);
  }
  if (at === 0) w.write(b);
  else if (at < b.length) w.write(sliceBatch(b, w.schema, at, b.length));
}

async function writeCounts(stream: RoutingStream, path: string, inputs?: readonly string[]): Promise<number> {
  const info = stream.countInfo;
  if (!info) throw new Error(`${stream.label}: a count stream without its axis and bins`);
  const w = CountTraceWriter.create(path, {
    schema: stream.schema,
    meta: stream.meta,
    axis: info.axis,
    bins: info.bins,
    topKKnown: info.topKKnown,
    expertsKnown: info.expertsKnown,
    placement: info.placement ?? null,
    atomic: true,
    inputs,
  });
  try {
    for await (const item of stream.items()) {
      if (item.kind === 'counts') w.write(item.batch);
      else if (item.kind === 'tokens') throw new Error(`${stream.label}: token batches in a count stream`);
    }
    w.close();
    return w.rowsWritten;
  } catch (e) {
    w.abort();
    throw e;
  }
}
