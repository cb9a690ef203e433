/**
 * `export --parquet`: the trace as Parquet (docs/trace-format.md § Exporting), for pandas, polars, DuckDB and
 * pyarrow: one row per token, the trace's columns under the same names, the trace header JSON as the key-value
 * metadata `moescope`. Float16 is widened to float32 (exactly): pyarrow reads Parquet's FLOAT16 as `halffloat`,
 * which its compute functions reject, and older readers do not know it. The per-token matrices become
 * variable-size lists (Parquet has no fixed-size list), flat and layer-major as in the trace.
 *
 * Streaming: one row group per trace batch (split when it holds more than GROUP_VALUES list elements), each
 * encoded and written out before the next batch is read, through a buffer flushed every FLUSH_BYTES. The flat
 * columns go through hyparquet-writer (which also writes the footer); the list columns through list-chunks.ts,
 * from the typed arrays (4-8 bytes per list element of scratch), so memory is bounded by a row group, not by the trace.
 */
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { ListChunkWriter } from './list-chunks.js';
import { NO_STEP, type OptionalColumn, type RoutingBatch, type RoutingSchema } from '../../core/batch.js';
import { F16_TO_F32 } from '../../core/f16.js';
import { moescopeVersion } from '../../core/version.js';
import { COL, META_KEY } from '../arrow-schema.js';
import { memoryToJson } from '../memory-json.js';
import type { RoutingStream, TokensItem } from '../../core/routing-stream.js';
import { exportHeader } from './header.js';
import type { AtomicFile } from './sink.js';

type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];
type ColumnSource = Parameters<ParquetWriter['write']>[0]['columnData'][number];

/** List elements (experts + weights + logits) per row group: bounds the encoder's memory. */
export const GROUP_VALUES = 1 << 20;
const FLUSH_BYTES = 1 << 20;

/** hyparquet-writer's output buffer, drained into the file as it fills and after every row group. */
class FileByteWriter extends ByteWriter {
  constructor(private readonly out: AtomicFile) {
    super(FLUSH_BYTES + (64 << 10));
  }

  // The writer only ever appends (it never seeks back to patch), so anything before `index` can go to disk.
  override ensure(size: number): void {
    if (this.index >= FLUSH_BYTES) this.flush();
    super.ensure(size);
  }

  flush(): void {
    if (this.index === 0) return;
    this.out.write(new Uint8Array(this.buffer, 0, this.index));
    this.index = 0;
  }

  override finish(): void {
    this.flush();
  }

  /** Bytes written to the file as they are (the list column chunks), after what is buffered. */
  writeThrough(bytes: Uint8Array): void {
    this.flush();
    this.out.write(bytes);
    this.offset += bytes.length;
  }
}

// Unsigned ints by their legacy converted type alone, which every reader maps to uint16/uint32: hyparquet-writer
// 0.17 serialises the INTEGER logical type's bitWidth as a Thrift i32 where the spec says i8, and pyarrow then
// rejects the whole footer ("Couldn't deserialize thrift").
const unsigned = (bitWidth: 16 | 32): Partial<SchemaElement> => ({
  type: 'INT32',
  converted_type: bitWidth === 16 ? 'UINT_16' : 'UINT_32',
});
const STRING: Partial<SchemaElement> = { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };

/** A standard three-level Parquet LIST of required elements. */
function list(name: string, element: Partial<SchemaElement>): SchemaElement[] {
  return [
    { name, repetition_type: 'REQUIRED', num_children: 1, converted_type: 'LIST', logical_type: { type: 'LIST' } },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', repetition_type: 'REQUIRED', ...element },
  ];
}

/** The Parquet schema of a trace; `mem` only when the trace holds memory samples; then its optional columns. */
export function parquetSchema(
  s: RoutingSchema,
  withMem: boolean,
  optional: readonly OptionalColumn[] = [],
): SchemaElement[] {
  const req = (name: string, e: Partial<SchemaElement>): SchemaElement => ({ name, repetition_type: 'REQUIRED', ...e });
  const columns: SchemaElement[][] = [
    [req(COL.seq, unsigned(32))],
    [req(COL.pos, unsigned(32))],
    [req(COL.tokenId, { type: 'INT32' })],
    [req(COL.token, STRING)],
    [req(COL.isPrompt, { type: 'BOOLEAN' })],
    // Same as the trace's timestamp[ns] without zone (and as pyarrow writes it): UTC values, not adjusted.
    [req(COL.tNs, { type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'NANOS' } })],
    list(COL.experts, unsigned(16)),
    list(COL.weights, { type: 'FLOAT' }),
  ];
  if (s.hasLogits) columns.push(list(COL.logits, { type: 'FLOAT' }));
  columns.push([{ name: COL.tag, repetition_type: 'OPTIONAL', ...STRING }]);
  if (withMem) columns.push([{ name: COL.mem, repetition_type: 'OPTIONAL', ...STRING }]);
  if (optional.includes('step')) columns.push([{ name: COL.step, repetition_type: 'OPTIONAL', ...unsigned(32) }]);
  if (optional.includes('rank')) columns.push([req(COL.rank, unsigned(16))]);
  if (optional.includes('dropped')) columns.push([{ name: COL.dropped, repetition_type: 'OPTIONAL', ...unsigned(32) }]);
  return [{ name: 'schema', num_children: columns.length }, ...columns.flat()];
}

/** The `mem` cell of each row of a chunk: the JSON array of the samples riding on it, as in the trace. */
export function memCells(c: Pick<TokensItem, 'batch' | 'firstToken' | 'memory'>): (string | null)[] {
  const cells = new Array<string | null>(c.batch.length).fill(null);
  for (let i = 0; i < c.memory.length; ) {
    const token = c.memory[i]!.token;
    let j = i;
    while (j < c.memory.length && c.memory[j]!.token === token) j++;
    cells[token - c.firstToken] = memoryToJson(c.memory.slice(i, j).map((m) => m.sample));
    i = j;
  }
  return cells;
}

/** A nullable uint32 column's cells [a, e): null where the value is `nullValue`. */
function nullable(v: Uint32Array, a: number, e: number, nullValue: number): (number | null)[] {
  const out = new Array<number | null>(e - a);
  for (let i = a; i < e; i++) out[i - a] = v[i] === nullValue ? null : v[i]!;
  return out;
}

/**
 * A uint32 column for Parquet's UINT_32 (physical INT32 holding the same bits). As plain numbers: hyparquet-writer
 * maps those ≥ 2^31 onto the INT32 bits, but passes a Uint32Array through unchanged and then rejects those values.
 */
function uint32Values(v: Uint32Array, a: number, e: number): number[] {
  return Array.from(v.subarray(a, e));
}

/** Columns before the lists in the schema: seq, pos, token_id, token, is_prompt, t_ns. */
const FLAT_BEFORE_LISTS = 6;

/** The flat columns of rows [a, e), for hyparquet-writer (the list columns are list-chunks.ts'). */
function flatColumns(
  b: RoutingBatch,
  mem: (string | null)[] | null,
  a: number,
  e: number,
  optional: readonly OptionalColumn[],
): ColumnSource[] {
  const cols: ColumnSource[] = [
    { name: COL.seq, data: uint32Values(b.seq, a, e) },
    { name: COL.pos, data: uint32Values(b.pos, a, e) },
    { name: COL.tokenId, data: b.tokenId.subarray(a, e) },
    { name: COL.token, data: b.token.slice(a, e) },
    { name: COL.isPrompt, data: Array.from(b.isPrompt.subarray(a, e), (x) => x === 1) },
    { name: COL.tNs, data: b.tNs.subarray(a, e) },
  ];
  cols.push({ name: COL.tag, data: b.tag ? b.tag.slice(a, e) : new Array(e - a).fill(null) });
  if (mem) cols.push({ name: COL.mem, data: mem.slice(a, e) });
  if (optional.includes('step')) cols.push({ name: COL.step, data: nullable(b.step!, a, e, NO_STEP) });
  if (optional.includes('rank')) cols.push({ name: COL.rank, data: Int32Array.from(b.rank!.subarray(a, e)) });
  if (optional.includes('dropped')) cols.push({ name: COL.dropped, data: nullable(b.dropped!, a, e, 0) });
  return cols;
}

/**
 * One Parquet file of a trace's rows, written row group by row group: `writeParquet` (a whole stream) and the
 * partitioned export (src/trace/export/dataset.ts: a trace's rows spread over a folder) both use it.
 */
export class ParquetTraceWriter {
  private readonly pq: ParquetWriter;
  private readonly lists: ListChunkWriter;
  private readonly groupRows: number;
  rows = 0;

  constructor(
    private readonly s: RoutingSchema,
    out: AtomicFile,
    private readonly opts: {
      headerJson: string;
      withMem: boolean;
      columns: readonly OptionalColumn[];
      groupValues?: number;
      /** More key-value metadata (the partition a file of a dataset holds). */
      extraMetadata?: { key: string; value: string }[];
    },
  ) {
    const writer = new FileByteWriter(out);
    this.pq = new ParquetWriter({
      writer,
      schema: parquetSchema(s, opts.withMem, opts.columns),
      kvMetadata: [{ key: META_KEY, value: opts.headerJson }, ...(opts.extraMetadata ?? [])],
      createdBy: `moescope version ${moescopeVersion()}`,
    });
    this.lists = new ListChunkWriter(writer);
    const perRow = s.layers.length * s.topK * 2 + (s.hasLogits ? s.layers.length * s.experts : 0);
    this.groupRows = Math.max(1, Math.floor((opts.groupValues ?? GROUP_VALUES) / perRow));
  }

  /** Rows [a, e) of an item's batch (its `mem` cells when the file has that column), in row groups of at most groupValues. */
  write(
    c: Pick<TokensItem, 'batch' | 'firstToken' | 'memory'>,
    a = 0,
    e = c.batch.length,
    mem: (string | null)[] | null = this.opts.withMem ? memCells(c) : null,
  ): void {
    const { s, lists } = this;
    const b = c.batch;
    const L = s.layers.length;
    const lk = L * s.topK;
    for (let i = a; i < e; i += this.groupRows) {
      const j = Math.min(e, i + this.groupRows);
      // The flat columns through hyparquet-writer, which opens the row group; the list columns after them, straight
      // from the typed arrays, their chunks put in schema order (a row group's chunks may lie in any file order).
      // Synchronous: FileByteWriter.flush returns nothing, so the writer never defers a row group.
      void this.pq.write({ columnData: flatColumns(b, mem, i, j, this.opts.columns), rowGroupSize: j - i });
      const listChunks = [
        lists.ids(COL.experts, b.experts, i * lk, j - i, lk),
        lists.floats(COL.weights, b.weights, i * lk, j - i, lk, F16_TO_F32),
      ];
      if (s.hasLogits)
        listChunks.push(lists.floats(COL.logits, b.logits!, i * L * s.experts, j - i, L * s.experts, F16_TO_F32));
      const group = this.pq.row_groups[this.pq.row_groups.length - 1]!;
      group.columns.splice(FLAT_BEFORE_LISTS, 0, ...listChunks);
      for (const ch of listChunks) {
        group.total_byte_size += ch.meta_data!.total_uncompressed_size;
        group.total_compressed_size = (group.total_compressed_size ?? 0n) + ch.meta_data!.total_compressed_size;
      }
      this.rows += j - i;
    }
  }

  finish(): void {
    void this.pq.finish();
  }
}

/**
 * Writes a token stream as Parquet into `out`; returns the number of rows.
 * `groupValues`: list elements per row group at most (default GROUP_VALUES; a row group holds at least one row).
 * The `mem` column is there when the stream holds memory samples; a stream that cannot list them up front (not a
 * trace) gets the column, null where a row carries none.
 */
export async function writeParquet(
  stream: RoutingStream,
  out: AtomicFile,
  { groupValues = GROUP_VALUES } = {},
): Promise<number> {
  const listed = stream.seek?.memorySamples?.();
  const withMem = listed === undefined || listed.length > 0;
  const w = new ParquetTraceWriter(stream.schema, out, {
    headerJson: exportHeader(stream),
    withMem,
    columns: stream.columns ?? [],
    groupValues,
  });
  for await (const c of stream.items()) if (c.kind === 'tokens') w.write(c);
  w.finish();
  return w.rows;
}
