/**
 * moescope traces: crash-safe recording and streaming reads of routing batches (format: docs/trace-format.md).
 *
 * Recording
 *   const w = TraceWriter.create('run.arrows', { schema, meta });   // schema: RoutingSchema, meta: StreamMeta
 *   w.closeOnExit();              // opt-in: SIGINT/SIGTERM/SIGHUP/exit finish the file cleanly
 *   w.write(batch);               // RoutingBatch; copied or written before it returns (arrays reusable)
 *   w.writeMemory(sample);        // MemorySample; stored with the next token written
 *   w.close();                    // flush + end-of-stream marker
 *   Batches reach the file when `batchTokens` rows are pending and at least once a second, each in one write:
 *   a killed recorder loses at most the last second. `atomic: true` (import, synth) writes a temp file and
 *   renames it on close, so a failed conversion leaves nothing behind; `abort()` discards.
 *
 * Reading
 *   const t = openTrace('run.arrows');          // indexes batch headers only; throws UserError on bad files
 *   const t = await waitForTrace(path, { timeoutMs, signal })  // same, waiting for a recorder to create it
 *   t.schema, t.meta, t.version, t.createdAt    // RoutingSchema, StreamMeta, writer's moescope version, Date
 *   t.tokenCount, t.batchCount                  // complete rows / record batches
 *   t.complete                                  // end-of-stream marker present (writer finished cleanly)
 *   t.truncated                                 // { atByte, bytesPresent, bytesMissing, rowsLost } or null
 *   for (const b of t.batches(fromToken?, { reuse? })) …  // RoutingBatch per record batch, one in memory at a time
 *   for (const c of t.chunks(fromToken?, { reuse? })) …   // { index, firstToken, batch, memory } (memory samples too)
 *   t.readBatch(i, { reuse? }), t.batchIndexOf(token)     // random access through the index
 *   t.readRange(start, end)                     // tokens [start, end) as one RoutingBatch
 *   t.memorySamples()                           // [{ token, sample }] from the `mem` column alone
 *   for await (const c of t.follow({ fromToken, pollMs, signal })) …   // tail a growing trace
 *   t.refresh()                                 // index what was appended since (follow() does this)
 *   t.close()
 *   traceStream(t, { follow?, reuse? })         // the trace as a RoutingStream (src/core/routing-stream.ts)
 * Batches are views on one read buffer per record batch: keep them as long as needed. With `{ reuse: true }` all
 * batches share one buffer and each is valid only until the next is read — 2-3× faster streaming for
 * aggregations that keep nothing (use it in stats loops).
 *
 * Also (lazy-loaded by the CLI from their own modules): the importers, each producing a RoutingStream
 * (import/index.ts importStream), writeStreamTrace (write-stream.ts) that writes any stream as a trace, the
 * exporters, each consuming one (export/), and the synthetic generator.
 * The routing selection from logits (selectTopK) lives in src/core/topk.ts, shared with stats.
 */
export { TraceWriter, defaultBatchTokens, type TraceWriterOptions } from './writer.js';
export {
  TraceReader,
  TraceNotReadyError,
  openTrace,
  waitForTrace,
  type TraceChunk,
  type Truncation,
  type FollowOptions,
  type ReadOptions,
} from './reader.js';
export type { TimedMemorySample } from './memory-json.js';
export { traceStream, type TraceStreamOptions } from './stream.js';
export { TRACE_FORMAT_VERSION, COL as TRACE_COLUMNS, type TraceHeader } from './arrow-schema.js';
