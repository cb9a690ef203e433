/**
 * `export` of a count trace (docs/trace-format.md § Count traces): JSONL — a header line with the trace header,
 * then one line per step with its counts per layer — and Parquet — columns step (INT64), t_ns (TIMESTAMP nanos)
 * and counts (LIST of DOUBLE, L·bins per row, layer-major as in the trace), the trace header as key-value metadata
 * `moescope`. One row group per trace batch.
 */
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { moescopeVersion } from '../../core/version.js';
import { COUNT_COL, META_KEY } from '../arrow-schema.js';
import type { CountInfo, CountsItem, RoutingStream } from '../../core/routing-stream.js';
import { exportHeader } from './header.js';
import type { AtomicFile, TextSink } from './sink.js';

function countInfoOf(stream: RoutingStream): CountInfo {
  if (!stream.countInfo) throw new Error(`${stream.label}: a count stream without its axis and bins`);
  return stream.countInfo;
}

/** The count batches of a stream, in order. */
async function* countBatches(stream: RoutingStream): AsyncGenerator<CountsItem['batch']> {
  for await (const item of stream.items()) if (item.kind === 'counts') yield item.batch;
}

export async function writeCountsJsonl(stream: RoutingStream, out: TextSink): Promise<number> {
  const s = stream.schema;
  const info = countInfoOf(stream);
  const L = s.layers.length;
  const header = JSON.parse(exportHeader(stream)) as unknown;
  out.line(
    JSON.stringify({
      moescope: 1,
      kind: 'counts',
      layers: L,
      layerIds: s.layers,
      axis: info.axis,
      bins: info.bins,
      header,
    }),
  );
  let rows = 0;
  for await (const b of countBatches(stream)) {
    for (let r = 0; r < b.length; r++) {
      const counts: number[][] = [];
      for (let l = 0; l < L; l++)
        counts.push(Array.from(b.counts.subarray((r * L + l) * b.bins, (r * L + l + 1) * b.bins)));
      out.line(JSON.stringify({ step: b.step[r], tNs: b.tNs[r]!.toString(), counts }));
      rows++;
    }
  }
  return rows;
}

export async function writeCountsParquet(stream: RoutingStream, out: AtomicFile): Promise<number> {
  const w = new ByteWriter();
  const pq = new ParquetWriter({
    writer: w,
    schema: [
      { name: 'schema', num_children: 3 },
      { name: COUNT_COL.step, repetition_type: 'REQUIRED', type: 'INT64' },
      {
        name: COUNT_COL.tNs,
        repetition_type: 'REQUIRED',
        type: 'INT64',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'NANOS' },
      },
      {
        name: COUNT_COL.counts,
        repetition_type: 'REQUIRED',
        num_children: 1,
        converted_type: 'LIST',
        logical_type: { type: 'LIST' },
      },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', repetition_type: 'REQUIRED', type: 'DOUBLE' },
    ],
    kvMetadata: [{ key: META_KEY, value: exportHeader(stream) }],
    createdBy: `moescope version ${moescopeVersion()}`,
  });
  const W = stream.schema.layers.length * countInfoOf(stream).bins;
  let rows = 0;
  for await (const b of countBatches(stream)) {
    const counts = Array.from({ length: b.length }, (_, r) => Array.from(b.counts.subarray(r * W, (r + 1) * W)));
    const step = BigInt64Array.from(b.step, (x) => BigInt(x));
    void pq.write({
      columnData: [
        { name: COUNT_COL.step, data: step },
        { name: COUNT_COL.tNs, data: b.tNs },
        { name: COUNT_COL.counts, data: counts },
      ],
      rowGroupSize: b.length,
    });
    rows += b.length;
  }
  void pq.finish();
  out.write(new Uint8Array(w.getBuffer()));
  return rows;
}
