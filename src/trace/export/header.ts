/** The trace header an export carries (Parquet key-value metadata `moescope`, the count JSONL header line). */
import type { RoutingStream } from '../../core/routing-stream.js';

/** The header the source recorded, as stored; for a stream that recorded none, what the stream says of itself. */
export function exportHeader(stream: RoutingStream): string {
  if (stream.recordedHeader !== undefined) return stream.recordedHeader;
  return JSON.stringify({
    schema: stream.schema,
    meta: stream.meta,
    ...(stream.kind === 'counts' ? { kind: 'counts', counts: stream.countInfo } : {}),
  });
}
