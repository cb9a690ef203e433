/**
 * Series traces: a time series of scalar EPLB numbers, one row per step — what servers print when they print
 * neither tokens nor counts (SGLang's "[Expert Balancedness]" lines, vLLM's "EPLB step:" lines). A count trace
 * cannot hold a balancedness alone (it needs per-GPU loads), so these get a third kind in the same Arrow IPC stream
 * container: header `kind: "series"`, columns `step` int64, `t_ns` timestamp[ns], and one nullable float64 column
 * per quantity the producer printed (docs/trace-format.md#series-traces).
 *
 * Series are small (one row per logged pass), so they are written and read whole.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { writeOutputFile } from '../core/output.js';
import {
  Field,
  Float64,
  Int64,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampNanosecond,
  makeData,
  tableFromIPC,
  tableToIPC,
} from 'apache-arrow';
import { MessageHeader } from 'apache-arrow/enum';
import type { Schema as ArrowSchema } from 'apache-arrow/schema';
import { UserError, describeError } from '../core/errors.js';
import type { StreamMeta } from '../core/stream.js';
import { moescopeVersion } from '../core/version.js';
import { META_KEY, TRACE_FORMAT_VERSION } from './arrow-schema.js';
import { scanMessageAt } from './ipc.js';

/** The quantities a series may hold, in column order. */
export const SERIES_COLUMNS = {
  balancedness: "the step's balancedness (SGLang: current_pass_balancedness; vLLM: balancedness)",
  balancedness_last_10: "SGLang's last_10_average_balancedness",
  balancedness_last_100: "SGLang's last_100_average_balancedness",
  balancedness_last_1000: "SGLang's last_1000_average_balancedness",
  assignments:
    "SGLang's gpu_physical_count_sum: assignments (token × expert choices) over all layers and GPUs in the pass",
  avg_tokens: "vLLM's avg_tokens: mean tokens per EP rank",
  max_tokens: "vLLM's max_tokens: tokens on the busiest EP rank",
} as const;
export type SeriesColumn = keyof typeof SERIES_COLUMNS;

export interface SeriesHeader {
  format: number;
  moescope: string;
  createdAt: string;
  kind: 'series';
  series: {
    /** Whose log: the balancedness convention of the `balancedness` column (docs/placement.md). */
    producer: 'sglang' | 'vllm';
    columns: SeriesColumn[];
  };
  meta: StreamMeta;
}

export interface Series {
  header: SeriesHeader;
  length: number;
  step: Float64Array;
  /** ns since the epoch; 0 when the line had no full timestamp. */
  tNs: BigInt64Array;
  /** By column; NaN where a row has no value. */
  values: Partial<Record<SeriesColumn, Float64Array>>;
}

/** Writes a series trace atomically (a temporary file renamed into place). */
export function writeSeriesTrace(
  path: string,
  s: Omit<Series, 'header'> & { producer: 'sglang' | 'vllm'; meta: StreamMeta; inputs?: readonly string[] },
): void {
  const columns = (Object.keys(SERIES_COLUMNS) as SeriesColumn[]).filter((c) => s.values[c] !== undefined);
  const header: SeriesHeader = {
    format: TRACE_FORMAT_VERSION,
    moescope: moescopeVersion(),
    createdAt: new Date().toISOString(),
    kind: 'series',
    series: { producer: s.producer, columns },
    meta: s.meta,
  };
  const n = s.length;
  const fields = [
    new Field('step', new Int64(), false),
    new Field('t_ns', new TimestampNanosecond(), false),
    ...columns.map((c) => new Field(c, new Float64(), true)),
  ];
  const schema = new Schema(fields, new Map([[META_KEY, JSON.stringify(header)]]));
  const children = [
    makeData({ type: new Int64(), length: n, data: BigInt64Array.from(s.step, (x) => BigInt(x)) }),
    makeData({ type: new TimestampNanosecond(), length: n, data: s.tNs }),
    ...columns.map((c) => {
      const v = s.values[c]!;
      const valid = new Uint8Array(Math.ceil(n / 8));
      let nulls = 0;
      for (let i = 0; i < n; i++) {
        if (Number.isNaN(v[i]!)) nulls++;
        else valid[i >> 3]! |= 1 << (i & 7);
      }
      return makeData({ type: new Float64(), length: n, nullCount: nulls, nullBitmap: valid, data: v });
    }),
  ];
  const table = new Table(schema, [
    new RecordBatch(schema, makeData({ type: new Struct(fields), length: n, children })),
  ]);
  writeOutputFile(path, tableToIPC(table, 'stream'), { inputs: s.inputs ?? [], what: 'output' });
}

/** The header kind of a trace file ('tokens' when it names none), or null when it is not a moescope trace. */
export function traceKind(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null; // the reader that opens it next names the problem
  }
  try {
    // The schema message through the trace reader's own checks (ipc.ts): apache-arrow alone trusts every length a
    // corrupt header declares (a 4-million-field schema took seconds and hundreds of MB before any error).
    const first = scanMessageAt(fd, 0, fstatSync(fd).size, path);
    if (first?.kind !== 'message' || first.message.headerType !== MessageHeader.Schema) return null;
    const raw = (first.header as ArrowSchema).metadata.get(META_KEY);
    if (raw === undefined) return null;
    const kind = (JSON.parse(raw) as { kind?: unknown }).kind;
    return typeof kind === 'string' ? kind : 'tokens';
  } catch {
    return null; // the reader that opens it next names the problem in one line
  } finally {
    closeSync(fd);
  }
}

/** Every message header of an IPC file checked as the trace reader checks them, before apache-arrow reads it. */
function checkMessages(path: string): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    for (let at = 0; at < size; ) {
      const m = scanMessageAt(fd, at, size, path);
      if (m === null || m.kind === 'eos') return;
      if (m.kind === 'partial') throw new UserError(`${path}: the series trace is cut at byte ${at}`);
      at = m.end;
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads a whole series trace; anything else, or a broken one, is a UserError naming the file. */
export function readSeriesTrace(path: string): Series {
  let table: Table;
  try {
    checkMessages(path);
    table = tableFromIPC(readFileSync(path));
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? `${path}: no such file` : `${path}: not a readable series trace (${describeError(e)})`,
    );
  }
  const raw = table.schema.metadata.get(META_KEY);
  let header: SeriesHeader;
  try {
    header = JSON.parse(raw ?? 'null') as SeriesHeader;
  } catch {
    throw new UserError(`${path}: the "${META_KEY}" metadata is not JSON`);
  }
  if (header?.kind !== 'series' || !Array.isArray(header.series?.columns))
    throw new UserError(`${path}: not a series trace`);
  if (header.format > TRACE_FORMAT_VERSION)
    throw new UserError(
      `${path}: series format ${header.format} is newer than this moescope reads (${TRACE_FORMAT_VERSION})`,
    );
  const n = table.numRows;
  const stepCol = table.getChild('step');
  const tCol = table.getChild('t_ns');
  if (!stepCol || !tCol) throw new UserError(`${path}: a series trace needs step and t_ns columns`);
  const step = Float64Array.from(stepCol.toArray() as BigInt64Array, Number);
  const tNs = BigInt64Array.from(tCol.toArray() as BigInt64Array);
  const values: Series['values'] = {};
  for (const c of header.series.columns) {
    if (!Object.hasOwn(SERIES_COLUMNS, c)) throw new UserError(`${path}: unknown series column ${JSON.stringify(c)}`);
    const col = table.getChild(c);
    if (!col) throw new UserError(`${path}: the header names column ${c}, the data has none`);
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const x = col.get(i) as number | null;
      v[i] = x === null ? NaN : x;
    }
    values[c as SeriesColumn] = v;
  }
  return { header, length: n, step, tNs, values };
}
