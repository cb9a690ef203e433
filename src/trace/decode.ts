/**
 * One record-batch body → RoutingBatch. Fixed-width columns become typed-array views on the body bytes
 * (copied only when a foreign writer left a buffer misaligned); strings are decoded in one pass when ASCII.
 */
import type { RecordBatch } from 'apache-arrow/ipc/metadata/message';
import { NO_STEP, type RoutingBatch, type RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import type { CountAxis, CountBatch } from '../core/count-batch.js';
import { COL, COUNT_COL } from './arrow-schema.js';
import type { ColumnSlot } from './layout.js';

type TypedCtor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

export interface DecodeContext {
  schema: RoutingSchema;
  slots: Map<string, ColumnSlot>;
  /** Names the trace in errors. */
  file: string;
}

/**
 * Reads the buffers of one record batch. `body` holds bytes [base, base + body.byteLength) of the batch body
 * (base > 0 when only the tail of a body was read, e.g. just the `mem` column).
 */
export class BodyView {
  constructor(
    readonly body: Uint8Array,
    readonly rb: RecordBatch,
    private readonly where: string,
    private readonly base = 0,
  ) {}

  corrupt(why: string): never {
    throw new UserError(`${this.where}: corrupt trace: ${why}`);
  }

  region(i: number): { offset: number; length: number } {
    const r = this.rb.buffers[i];
    if (!r) this.corrupt(`buffer ${i} missing`);
    if (r.length === 0) return { offset: 0, length: 0 };
    const offset = r.offset - this.base;
    if (offset < 0 || offset + r.length > this.body.byteLength) this.corrupt(`buffer ${i} lies outside the batch body`);
    return { offset, length: r.length };
  }

  typed<T>(i: number, Ctor: TypedCtor<T>, count: number, what: string): T {
    const r = this.region(i);
    const bytes = count * Ctor.BYTES_PER_ELEMENT;
    if (r.length < bytes) this.corrupt(`column ${what} holds ${r.length} bytes, expected ${bytes}`);
    const at = this.body.byteOffset + r.offset;
    if (at % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(this.body.buffer, at, count);
    const copy = this.body.slice(r.offset, r.offset + bytes); // misaligned (foreign writer): copy once
    return new Ctor(copy.buffer, 0, count);
  }

  nodeOf(slot: ColumnSlot, depth = 0): { length: number; nullCount: number } {
    const node = this.rb.nodes[slot.node + depth];
    if (!node) this.corrupt(`field node ${slot.node + depth} missing`);
    return node;
  }

  /** Validity bits of a column as a function, or null when it has no nulls. */
  validity(slot: ColumnSlot): ((i: number) => boolean) | null {
    const node = this.nodeOf(slot);
    if (node.nullCount === 0) return null;
    const r = this.region(slot.buffer);
    const n = node.length;
    if (r.length < (n + 7) >> 3) this.corrupt('validity bitmap too short');
    const bits = this.body.subarray(r.offset, r.offset + r.length);
    return (i) => (bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** A Utf8 column's values; null when every value is null. */
  strings(slot: ColumnSlot, n: number, what: string): (string | null)[] | null {
    const node = this.nodeOf(slot);
    if (node.length !== n) this.corrupt(`column ${what} has ${node.length} rows, expected ${n}`);
    if (node.nullCount === n && n > 0) return null;
    const valid = this.validity(slot);
    const offsets = this.typed(slot.buffer + 1, Int32Array, n + 1, what);
    const data = this.region(slot.buffer + 2);
    const o0 = offsets[0]!;
    const o1 = offsets[n]!;
    if (o0 < 0 || o1 < o0 || o1 > data.length) this.corrupt(`column ${what} has offsets outside its data`);
    const bytes = Buffer.from(this.body.buffer, this.body.byteOffset + data.offset, data.length);
    const out = new Array<string | null>(n);
    const all = bytes.toString('utf8', o0, o1);
    // Same length in UTF-16 units as in bytes ⇔ no multi-byte sequences: byte offsets are string offsets.
    const flat = all.length === o1 - o0;
    for (let i = 0; i < n; i++) {
      if (valid && !valid(i)) {
        out[i] = null;
        continue;
      }
      const a = offsets[i]!;
      const b = offsets[i + 1]!;
      if (b < a) this.corrupt(`column ${what} has decreasing offsets`);
      out[i] = flat ? all.substring(a - o0, b - o0) : bytes.toString('utf8', a, b);
    }
    return out;
  }

  /** The uint16/float16 child of a FixedSizeList column, as raw bits. */
  list16(slot: ColumnSlot, n: number, size: number, what: string): Uint16Array {
    const parent = this.nodeOf(slot);
    const child = this.nodeOf(slot, 1);
    if (parent.length !== n || child.length !== n * size) this.corrupt(`column ${what} has the wrong number of values`);
    if (parent.nullCount !== 0 || child.nullCount !== 0) this.corrupt(`column ${what} has nulls`);
    return this.typed(slot.buffer + 2, Uint16Array, n * size, what);
  }

  /** A nullable uint32 column, with `nullValue` in its null cells (copied only when it has nulls). */
  nullableU32(slot: ColumnSlot, n: number, nullValue: number, what: string): Uint32Array {
    const node = this.nodeOf(slot);
    if (node.length !== n) this.corrupt(`column ${what} has ${node.length} rows, expected ${n}`);
    if (node.nullCount === n) return new Uint32Array(n).fill(nullValue); // data buffer may be omitted then
    const data = this.typed(slot.buffer + 1, Uint32Array, n, what);
    const valid = this.validity(slot);
    if (!valid) return data;
    const out = data.slice();
    for (let i = 0; i < n; i++) if (!valid(i)) out[i] = nullValue;
    return out;
  }

  /** The child values of a FixedSizeList column of any fixed-width type (count traces: float64). */
  listOf<T>(slot: ColumnSlot, Ctor: TypedCtor<T>, n: number, size: number, what: string): T {
    const parent = this.nodeOf(slot);
    const child = this.nodeOf(slot, 1);
    if (parent.length !== n || child.length !== n * size) this.corrupt(`column ${what} has the wrong number of values`);
    if (parent.nullCount !== 0 || child.nullCount !== 0) this.corrupt(`column ${what} has nulls`);
    return this.typed(slot.buffer + 2, Ctor, n * size, what);
  }

  fixed<T>(slot: ColumnSlot, Ctor: TypedCtor<T>, n: number, what: string): T {
    const node = this.nodeOf(slot);
    if (node.length !== n) this.corrupt(`column ${what} has ${node.length} rows, expected ${n}`);
    if (node.nullCount !== 0) this.corrupt(`column ${what} has nulls`);
    return this.typed(slot.buffer + 1, Ctor, n, what);
  }

  bits(slot: ColumnSlot, n: number, what: string): Uint8Array {
    const node = this.nodeOf(slot);
    if (node.length !== n || node.nullCount !== 0) this.corrupt(`column ${what} has the wrong length or nulls`);
    const r = this.region(slot.buffer + 1);
    if (r.length < (n + 7) >> 3) this.corrupt(`column ${what} bitmap too short`);
    const src = this.body.subarray(r.offset, r.offset + r.length);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (src[i >> 3]! >> (i & 7)) & 1;
    return out;
  }
}

function nonNull(v: (string | null)[] | null, n: number): string[] {
  if (v === null) return new Array<string>(n).fill('');
  return v.includes(null) ? v.map((t) => t ?? '') : (v as string[]);
}

function slot(ctx: DecodeContext, name: string): ColumnSlot {
  const s = ctx.slots.get(name);
  if (!s) throw new UserError(`${ctx.file}: not a moescope trace (no "${name}" column)`);
  return s;
}

/** The CountBatch of a count trace's body (step int64 → Float64Array; counts copied, checked finite ≥ 0). */
export function decodeCountBatch(view: BodyView, ctx: DecodeContext, axis: CountAxis, bins: number): CountBatch {
  const n = view.rb.length;
  const w = ctx.schema.layers.length * bins;
  const steps = view.fixed(slot(ctx, COUNT_COL.step), BigInt64Array, n, COUNT_COL.step);
  const step = new Float64Array(n);
  for (let i = 0; i < n; i++) step[i] = Number(steps[i]!);
  const counts = view.listOf(slot(ctx, COUNT_COL.counts), Float64Array, n, w, COUNT_COL.counts);
  for (let i = 0; i < counts.length; i++) {
    const v = counts[i]!;
    if (!(v >= 0) || v === Infinity)
      view.corrupt(`count ${v} in row ${Math.floor(i / w)} (counts must be finite numbers ≥ 0)`);
  }
  return {
    length: n,
    step,
    tNs: view.fixed(slot(ctx, COUNT_COL.tNs), BigInt64Array, n, COUNT_COL.tNs),
    axis,
    bins,
    counts,
  };
}

/** The RoutingBatch of a body; `mem` cells too when asked. */
export function decodeBatch(
  view: BodyView,
  ctx: DecodeContext,
  withMem: boolean,
): { batch: RoutingBatch; mem: (string | null)[] | null } {
  const s = ctx.schema;
  const n = view.rb.length;
  const L = s.layers.length;
  const lk = L * s.topK;
  const tagSlot = ctx.slots.get(COL.tag);
  const memSlot = ctx.slots.get(COL.mem);
  const batch: RoutingBatch = {
    length: n,
    seq: view.fixed(slot(ctx, COL.seq), Uint32Array, n, COL.seq),
    pos: view.fixed(slot(ctx, COL.pos), Uint32Array, n, COL.pos),
    tokenId: view.fixed(slot(ctx, COL.tokenId), Int32Array, n, COL.tokenId),
    token: nonNull(view.strings(slot(ctx, COL.token), n, COL.token), n),
    isPrompt: view.bits(slot(ctx, COL.isPrompt), n, COL.isPrompt),
    tNs: view.fixed(slot(ctx, COL.tNs), BigInt64Array, n, COL.tNs),
    experts: view.list16(slot(ctx, COL.experts), n, lk, COL.experts),
    weights: view.list16(slot(ctx, COL.weights), n, lk, COL.weights),
    logits: s.hasLogits ? view.list16(slot(ctx, COL.logits), n, L * s.experts, COL.logits) : null,
    tag: tagSlot ? view.strings(tagSlot, n, COL.tag) : null,
  };
  const stepSlot = ctx.slots.get(COL.step);
  if (stepSlot) batch.step = view.nullableU32(stepSlot, n, NO_STEP, COL.step);
  const rankSlot = ctx.slots.get(COL.rank);
  if (rankSlot) batch.rank = view.fixed(rankSlot, Uint16Array, n, COL.rank);
  const droppedSlot = ctx.slots.get(COL.dropped);
  if (droppedSlot) batch.dropped = view.nullableU32(droppedSlot, n, 0, COL.dropped);
  const mem = withMem && memSlot ? view.strings(memSlot, n, COL.mem) : null;
  return { batch, mem };
}
