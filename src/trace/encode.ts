/**
 * RoutingBatch → one Arrow IPC record-batch message, as a list of byte ranges to hand to writev. The typed
 * arrays of the batch are referenced, not copied; only strings, the is_prompt bitmap and validity bitmaps are built.
 */
import { BufferRegion, FieldNode, Message, RecordBatch } from 'apache-arrow/ipc/metadata/message';
import {
  expertsAt,
  NO_EXPERT,
  NO_STEP,
  type OptionalColumn,
  type RoutingBatch,
  type RoutingSchema,
  topKAt,
} from '../core/batch.js';
import { frameMessage } from './ipc.js';

const ZERO_PAD = new Uint8Array(8);
const EMPTY = new Uint8Array(0);

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * The body of one record-batch message, built column by column: field nodes, buffer regions and the byte ranges
 * they point at, each buffer padded to 8 bytes as the IPC format requires. Token and count traces both use it.
 */
export class MessageBody {
  readonly nodes: FieldNode[] = [];
  readonly regions: BufferRegion[] = [];
  readonly parts: Uint8Array[] = [];
  /** Body bytes so far. */
  length = 0;

  /** A field node: `length` values, `nulls` of them null. */
  node(length: number, nulls = 0): void {
    this.nodes.push(new FieldNode(length, nulls));
  }

  /** The next buffer of the current field (empty: an absent validity bitmap). Referenced, not copied. */
  buffer(data: ArrayBufferView | null): void {
    const bytes = data ? bytesOf(data) : EMPTY;
    this.regions.push(new BufferRegion(this.length, bytes.byteLength));
    if (bytes.byteLength === 0) return;
    this.parts.push(bytes);
    this.length += bytes.byteLength;
    const pad = (8 - (this.length & 7)) & 7;
    if (pad) {
      this.parts.push(ZERO_PAD.subarray(0, pad));
      this.length += pad;
    }
  }

  /** The framed message of `rows` rows: its header, then the body's parts (for one writev). */
  message(rows: number): Uint8Array[] {
    const header = frameMessage(Message.from(new RecordBatch(rows, this.nodes, this.regions, null), this.length));
    return [header, ...this.parts];
  }
}

/** UTF-8 offsets + data (+ validity when some are null) of a string column. */
function encodeStrings(values: readonly (string | null)[] | null, n: number) {
  const offsets = new Int32Array(n + 1);
  let nulls = 0;
  let total = 0;
  if (values) {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v == null) nulls++;
      else total += Buffer.byteLength(v, 'utf8');
    }
  } else nulls = n;
  const data = Buffer.allocUnsafe(total);
  let validity: Uint8Array = EMPTY;
  if (nulls > 0) validity = new Uint8Array((n + 7) >> 3);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const v = values ? values[i] : null;
    if (v != null) {
      at += data.write(v, at, 'utf8');
      if (nulls > 0) validity[i >> 3]! |= 1 << (i & 7);
    }
    offsets[i + 1] = at;
  }
  return { nulls, validity, offsets: bytesOf(offsets), data: new Uint8Array(data.buffer, data.byteOffset, at) };
}

function packBits(v: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (v[i]) out[i >> 3]! |= 1 << (i & 7);
  return out;
}

export interface EncodedBatch {
  /** Framed header then body buffers and padding, in file order. */
  parts: Uint8Array[];
  byteLength: number;
}

/**
 * Checks that a batch's columns have the sizes its schema implies and its expert ids are in range; `columns`:
 * the optional columns the trace holds (a trace with `rank` needs it on every batch: a rank cannot be guessed).
 */
export function checkBatch(b: RoutingBatch, s: RoutingSchema, columns: readonly OptionalColumn[] = []): void {
  const n = b.length;
  const lk = s.layers.length * s.topK;
  const le = s.layers.length * s.experts;
  const bad = (what: string, got: number, want: number) => {
    throw new RangeError(`RoutingBatch.${what} has ${got} elements, expected ${want} (${n} tokens)`);
  };
  if (b.seq.length !== n) bad('seq', b.seq.length, n);
  if (b.pos.length !== n) bad('pos', b.pos.length, n);
  if (b.tokenId.length !== n) bad('tokenId', b.tokenId.length, n);
  if (b.token.length !== n) bad('token', b.token.length, n);
  if (b.isPrompt.length !== n) bad('isPrompt', b.isPrompt.length, n);
  if (b.tNs.length !== n) bad('tNs', b.tNs.length, n);
  if (b.experts.length !== n * lk) bad('experts', b.experts.length, n * lk);
  if (b.weights.length !== n * lk) bad('weights', b.weights.length, n * lk);
  if (s.hasLogits && b.logits && b.logits.length !== n * le) bad('logits', b.logits.length, n * le);
  if (b.tag && b.tag.length !== n) bad('tag', b.tag.length, n);
  if (b.step && b.step.length !== n) bad('step', b.step.length, n);
  if (b.rank && b.rank.length !== n) bad('rank', b.rank.length, n);
  if (b.dropped && b.dropped.length !== n) bad('dropped', b.dropped.length, n);
  if (columns.includes('rank') && !b.rank)
    throw new RangeError('RoutingBatch has no rank, but the trace has a rank column');
  const ex = b.experts;
  const E = s.experts;
  if (s.layerExperts) return checkMixedIds(ex, n, s);
  if ((E & (E - 1)) === 0) {
    // E a power of two (256, 64, …): every id < E ⇔ their OR < E — branch-free, this runs on every live batch.
    let or = 0;
    if ((ex.byteOffset & 3) === 0) {
      // Two ids per 32-bit word (body columns are 8-aligned): half the loop.
      const words = new Uint32Array(ex.buffer, ex.byteOffset, ex.length >> 1);
      for (let i = 0; i < words.length; i++) or |= words[i]!;
      or = (or | (or >>> 16)) & 0xffff;
      if (ex.length & 1) or |= ex[ex.length - 1]!;
    } else for (let i = 0; i < ex.length; i++) or |= ex[i]!;
    if (or < E) return;
  }
  let max = 0;
  for (let i = 0; i < ex.length; i++) if (ex[i]! > max) max = ex[i]!;
  if (ex.length > 0 && max >= E) throw new RangeError(`RoutingBatch has expert id ${max} ≥ ${E} experts`);
}

/** Mixed layer shapes: a layer's own K slots hold ids below its own E, the slots past them NO_EXPERT. */
function checkMixedIds(ex: Uint16Array, n: number, s: RoutingSchema): void {
  const L = s.layers.length;
  const K = s.topK;
  for (let l = 0; l < L; l++) {
    const e = expertsAt(s, l);
    const k = topKAt(s, l);
    for (let t = 0; t < n; t++) {
      const o = (t * L + l) * K;
      for (let j = 0; j < K; j++) {
        const x = ex[o + j]!;
        if (j < k ? x >= e : x !== NO_EXPERT)
          throw new RangeError(
            j < k
              ? `RoutingBatch has expert id ${x} ≥ ${e} experts of layer ${s.layers[l]}`
              : `RoutingBatch has expert id ${x} in slot ${j} past layer ${s.layers[l]}'s top-${k} (NO_EXPERT expected)`,
          );
      }
    }
  }
}

/** A nullable uint32 column: validity bit set where `valid(value)`. Data under null cells is written as is. */
function nullableU32(values: Uint32Array | null | undefined, n: number, valid: (v: number) => boolean, fill: number) {
  const data = values ?? new Uint32Array(n).fill(fill);
  let nulls = 0;
  for (let i = 0; i < n; i++) if (!valid(data[i]!)) nulls++;
  let validity: Uint8Array = EMPTY;
  if (nulls > 0) {
    validity = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) if (valid(data[i]!)) validity[i >> 3]! |= 1 << (i & 7);
  }
  return { nulls, validity, data: bytesOf(data) };
}

/**
 * The message for one batch. `mem` gives the per-row `mem` cells (null: none). Column order is arrow-schema.ts's;
 * logits are NaN-filled when the schema has them and the batch has none.
 */
export function encodeBatch(
  b: RoutingBatch,
  s: RoutingSchema,
  mem: readonly (string | null)[] | null,
  columns: readonly OptionalColumn[] = [],
): EncodedBatch {
  const n = b.length;
  const body = new MessageBody();
  const fixed = (data: ArrayBufferView) => {
    body.node(n);
    body.buffer(null);
    body.buffer(data);
  };
  const strings = (values: readonly (string | null)[] | null) => {
    const e = encodeStrings(values, n);
    body.node(n, e.nulls);
    body.buffer(e.validity);
    body.buffer(e.offsets);
    body.buffer(e.data);
  };
  const list = (child: Uint16Array) => {
    body.node(n);
    body.buffer(null);
    body.node(child.length);
    body.buffer(null);
    body.buffer(child);
  };
  fixed(b.seq);
  fixed(b.pos);
  fixed(b.tokenId);
  strings(b.token);
  body.node(n);
  body.buffer(null);
  body.buffer(packBits(b.isPrompt, n));
  fixed(b.tNs);
  list(b.experts);
  list(b.weights);
  if (s.hasLogits) list(b.logits ?? new Uint16Array(n * s.layers.length * s.experts).fill(0x7e00));
  strings(b.tag);
  strings(mem);
  const nullable = (e: ReturnType<typeof nullableU32>) => {
    body.node(n, e.nulls);
    body.buffer(e.validity);
    body.buffer(e.data);
  };
  // Optional columns, in OPTIONAL_COLUMNS order (arrow-schema.ts): step (null = NO_STEP), rank, dropped (null = 0).
  if (columns.includes('step')) nullable(nullableU32(b.step, n, (v) => v !== NO_STEP, NO_STEP));
  if (columns.includes('rank')) fixed(b.rank!);
  if (columns.includes('dropped')) nullable(nullableU32(b.dropped, n, (v) => v !== 0, 0));
  const parts = body.message(n);
  return { parts, byteLength: parts[0]!.byteLength + body.length };
}
