/**
 * `export` of a count trace (docs/trace-format.md § Count traces): JSONL — a header line with the trace header,
 * then one line per step with its counts per layer — and Parquet — columns step (INT64), t_ns (TIMESTAMP nanos)
 * and counts (LIST of DOUBLE, L·bins per row, layer-major as in the trace), the trace header as key-value metadata
 * `moescope`. One row group per trace batch.
 */
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { moescopeVersion } from '../../core/version.js';
import { COUNT_COL, META_KEY } from '../arrow-schema.js';
import type { TraceReader } from '../reader.js';
import type { AtomicFile, TextSink } from './sink.js';

export function writeCountsJsonl(trace: TraceReader, out: TextSink): number {
  const s = trace.schema;
  const info = trace.countInfo!;
  const L = s.layers.length;
  out.line(JSON.stringify({ moescope: 1, kind: 'counts', layers: L, layerIds: s.layers, axis: info.axis, bins: info.bins, header: trace.header }));
  let rows = 0;
  for (const b of trace.countBatches()) {
    for (let r = 0; r < b.length; r++) {
      const counts: number[][] = [];
      for (let l = 0; l < L; l++) counts.push(Array.from(b.counts.subarray((r * L + l) * b.bins, (r * L + l + 1) * b.bins)));
      out.line(JSON.stringify({ step: b.step[r], tNs: b.tNs[r]!.toString(), counts }));
      rows++;
    }
  }
  return rows;
}

export function writeCountsParquet(trace: TraceReader, out: AtomicFile): number {
  const w = new ByteWriter();
  const pq = new ParquetWriter({
    writer: w,
    schema: [
      { name: 'schema', num_children: 3 },
      { name: COUNT_COL.step, repetition_type: 'REQUIRED', type: 'INT64' },
      { name: COUNT_COL.tNs, repetition_type: 'REQUIRED', type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'NANOS' } },
      { name: COUNT_COL.counts, repetition_type: 'REQUIRED', num_children: 1, converted_type: 'LIST', logical_type: { type: 'LIST' } },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', repetition_type: 'REQUIRED', type: 'DOUBLE' },
    ],
    kvMetadata: [{ key: META_KEY, value: trace.arrowSchema.metadata.get(META_KEY) ?? JSON.stringify(trace.header) }],
    createdBy: `moescope version ${moescopeVersion()}`,
  });
  const W = trace.schema.layers.length * trace.countInfo!.bins;
  let rows = 0;
  for (const b of trace.countBatches()) {
    const counts = Array.from({ length: b.length }, (_, r) => Array.from(b.counts.subarray(r * W, (r + 1) * W)));
    const step = BigInt64Array.from(b.step, (x) => BigInt(x));
    void pq.write({ columnData: [{ name: COUNT_COL.step, data: step }, { name: COUNT_COL.tNs, data: b.tNs }, { name: COUNT_COL.counts, data: counts }], rowGroupSize: b.length });
    rows += b.length;
  }
  void pq.finish();
  out.write(new Uint8Array(w.getBuffer()));
  return rows;
}
