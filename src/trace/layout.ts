/**
 * Where each top-level column's field nodes and buffers sit in a record batch: Arrow lists them depth-first,
 * field by field (https://arrow.apache.org/docs/format/Columnar.html#buffer-listing-for-each-layout).
 */
import type { Schema } from 'apache-arrow/schema';
import { DataType } from 'apache-arrow/type';
import { UserError } from '../core/errors.js';

export interface ColumnSlot {
  /** Index of the column's first field node. */
  node: number;
  /** Index of the column's first buffer (its validity bitmap). */
  buffer: number;
}

function count(t: DataType, file: string): { nodes: number; buffers: number } {
  if (DataType.isNull(t)) return { nodes: 1, buffers: 0 };
  if (DataType.isDictionary(t)) throw new UserError(`${file}: dictionary-encoded columns are not supported in traces`);
  if (
    DataType.isInt(t) ||
    DataType.isFloat(t) ||
    DataType.isBool(t) ||
    DataType.isDecimal(t) ||
    DataType.isDate(t) ||
    DataType.isTime(t) ||
    DataType.isTimestamp(t) ||
    DataType.isInterval(t) ||
    DataType.isDuration(t) ||
    DataType.isFixedSizeBinary(t)
  )
    return { nodes: 1, buffers: 2 };
  if (DataType.isUtf8(t) || DataType.isBinary(t) || DataType.isLargeUtf8(t) || DataType.isLargeBinary(t))
    return { nodes: 1, buffers: 3 };
  let own: number;
  if (DataType.isList(t) || DataType.isMap(t)) own = 2;
  else if (DataType.isFixedSizeList(t) || DataType.isStruct(t)) own = 1;
  else throw new UserError(`${file}: unsupported column type ${String(t)} in trace`);
  const acc = { nodes: 1, buffers: own };
  for (const c of t.children) {
    const k = count(c.type, file);
    acc.nodes += k.nodes;
    acc.buffers += k.buffers;
  }
  return acc;
}

/** Slot of every top-level column, by name. */
export function columnSlots(schema: Schema, file: string): Map<string, ColumnSlot> {
  const out = new Map<string, ColumnSlot>();
  let node = 0;
  let buffer = 0;
  for (const f of schema.fields) {
    out.set(f.name, { node, buffer });
    const k = count(f.type, file);
    node += k.nodes;
    buffer += k.buffers;
  }
  return out;
}
