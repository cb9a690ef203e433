/**
 * What a Parquet file of a dataset holds, read from its footer alone (no row data): whether it is a moescope
 * export (`export --parquet`: the trace header JSON under the key-value metadata `moescope`), its routing schema,
 * rows, row groups and columns. The scale engines (src/scale) read the rows themselves; this only decides, per file,
 * whether they may, so a corrupt or foreign file is named in one line before any engine starts.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parquetMetadata } from 'hyparquet';
import { UserError, describeError } from '../core/errors.js';
import { META_KEY, TRACE_FORMAT_VERSION, validateSchema, type TraceHeader } from './arrow-schema.js';

export interface ParquetTraceInfo {
  path: string;
  header: TraceHeader;
  rows: number;
  rowGroups: number;
  /** Top-level column names. */
  columns: string[];
  bytes: number;
}

/** Footers larger than this are refused (a hostile length field must not allocate gigabytes). */
const MAX_FOOTER = 64 << 20;
const MAGIC = 0x31524150; // "PAR1" little-endian

/** True when the file starts with Parquet's magic bytes. */
export function looksLikeParquet(path: string): boolean {
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32LE(0) === MAGIC;
  } catch {
    return false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Reads and checks a Parquet file's footer; a UserError naming the file when it is not a moescope token export. */
export function readParquetTraceInfo(path: string): ParquetTraceInfo {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${describeError(e)}`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 12) throw new UserError(`${path}: not a Parquet file (${size} bytes)`);
    const tail = Buffer.alloc(8);
    readSync(fd, tail, 0, 8, size - 8);
    if (tail.readUInt32LE(4) !== MAGIC)
      throw new UserError(`${path}: not a readable Parquet file (no PAR1 footer: cut short or another format)`);
    const len = tail.readUInt32LE(0);
    if (len > size - 12 || len > MAX_FOOTER)
      throw new UserError(`${path}: corrupt Parquet footer (declares ${len} bytes in a ${size}-byte file)`);
    const buf = Buffer.alloc(len + 8);
    readSync(fd, buf, 0, len + 8, size - 8 - len);
    let meta: ReturnType<typeof parquetMetadata>;
    try {
      meta = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), { geoparquet: false });
    } catch (e) {
      throw new UserError(`${path}: corrupt Parquet footer (${describeError(e)})`);
    }
    const raw = meta.key_value_metadata?.find((kv) => kv.key === META_KEY)?.value;
    if (raw === undefined)
      throw new UserError(
        `${path}: Parquet without moescope's "${META_KEY}" metadata (not written by moescope export --parquet)`,
      );
    let h: TraceHeader;
    try {
      h = JSON.parse(raw) as TraceHeader;
    } catch {
      throw new UserError(`${path}: the "${META_KEY}" Parquet metadata is not valid JSON`);
    }
    if (typeof h !== 'object' || h === null || typeof h.format !== 'number' || !h.schema || !h.meta)
      throw new UserError(`${path}: the "${META_KEY}" Parquet metadata lacks format/schema/meta`);
    if (h.format > TRACE_FORMAT_VERSION)
      throw new UserError(
        `${path}: trace format ${h.format} is newer than this moescope understands (${TRACE_FORMAT_VERSION})`,
      );
    if (h.kind !== undefined && h.kind !== 'tokens')
      throw new UserError(`${path} holds ${String(h.kind)}, not per-token routing: a dataset is made of token traces`);
    try {
      validateSchema(h.schema);
    } catch (e) {
      throw new UserError(`${path}: ${describeError(e)}`);
    }
    // Top-level columns: children of the root in the flattened schema.
    const columns: string[] = [];
    const schema = meta.schema;
    for (let i = 1; i < schema.length; ) {
      columns.push(schema[i]!.name);
      i = skipSubtree(schema, i);
    }
    if (!columns.includes('experts')) throw new UserError(`${path}: not a moescope trace export (no "experts" column)`);
    // A footer whose row count is not the sum of its row groups' is corrupt (and would send a reader looking for rows that are not there).
    const rows = Number(meta.num_rows);
    const inGroups = meta.row_groups.reduce((a, g) => a + Number(g.num_rows), 0);
    if (!Number.isSafeInteger(rows) || rows < 0 || rows !== inGroups)
      throw new UserError(
        `${path}: corrupt Parquet footer (declares ${String(meta.num_rows)} rows, its row groups hold ${inGroups})`,
      );
    return { path, header: h, rows, rowGroups: meta.row_groups.length, columns, bytes: size };
  } finally {
    closeSync(fd);
  }
}

/** Index after the subtree rooted at schema[i] (Parquet flattens the schema tree depth-first with child counts). */
function skipSubtree(schema: readonly { num_children?: number }[], i: number): number {
  let pending = 1;
  while (pending > 0 && i < schema.length) {
    pending += (schema[i]!.num_children ?? 0) - 1;
    i++;
  }
  return i;
}
