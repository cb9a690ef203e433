/**
 * The trace format (docs/trace-format.md): an Arrow IPC stream, one row per token, with the stream's
 * RoutingSchema + StreamMeta as JSON under the schema metadata key "moescope".
 *
 * This module owns the column list and the metadata record; writer, reader and the exporters all use it.
 */
import { Field, Schema } from 'apache-arrow/schema';
import {
  Bool,
  DataType,
  FixedSizeList,
  Float16,
  Float64,
  Int32,
  Int64,
  TimestampNanosecond,
  Uint16,
  Uint32,
  Utf8,
} from 'apache-arrow/type';
import { Precision, TimeUnit } from 'apache-arrow/enum';
import {
  expertsAt,
  OPTIONAL_COLUMNS,
  type OptionalColumn,
  type RoutingSchema,
  type Scoring,
  topKAt,
} from '../core/batch.js';
import type { RouterSummary, StreamMeta } from '../core/stream.js';
import type { CountInfo } from '../core/routing-stream.js';
import { UserError } from '../core/errors.js';

/** Bumped when a reader of an older moescope could misread a newer trace. */
export const TRACE_FORMAT_VERSION = 1;
/** Schema metadata key holding the TraceHeader JSON. */
export const META_KEY = 'moescope';

/** Column names, in file order (`logits` only when the schema has logits). */
export const COL = {
  seq: 'seq',
  pos: 'pos',
  tokenId: 'token_id',
  token: 'token',
  isPrompt: 'is_prompt',
  tNs: 't_ns',
  experts: 'experts',
  weights: 'weights',
  logits: 'logits',
  tag: 'tag',
  mem: 'mem',
  step: 'step',
  rank: 'rank',
  dropped: 'dropped',
} as const;

/** Columns of a count trace (`kind: "counts"`), in file order. */
export const COUNT_COL = {
  step: 'step',
  tNs: 't_ns',
  counts: 'counts',
} as const;

/** What a count trace's header says about its rows (docs/trace-format.md § Count traces): the stream's CountInfo. */
export type CountTraceInfo = CountInfo;

/** Everything a trace says about itself, as stored (JSON) in the schema metadata. */
export interface TraceHeader {
  /** TRACE_FORMAT_VERSION of the writer. */
  format: number;
  /** moescope version that wrote the trace. */
  moescope: string;
  /** ISO-8601 creation time. */
  createdAt: string;
  schema: RoutingSchema;
  meta: StreamMeta;
  /** What one row is: a token (default, absent in token traces), or load counts of one step. */
  kind?: 'tokens' | 'counts';
  /** Count traces only. */
  counts?: CountTraceInfo;
}

/** The L·bins width of a count trace's `counts` column. */
export function countWidth(h: TraceHeader): number {
  return h.schema.layers.length * h.counts!.bins;
}

/** The Arrow schema of a count trace. */
export function arrowCountSchemaFor(header: TraceHeader): Schema {
  validateSchema(header.schema);
  validateCountInfo(header, 'count trace');
  const fields: Field[] = [
    new Field(COUNT_COL.step, new Int64(), false),
    new Field(COUNT_COL.tNs, new TimestampNanosecond(), false),
    fixedList(COUNT_COL.counts, countWidth(header), new Float64()),
  ];
  return new Schema(fields, new Map([[META_KEY, JSON.stringify(header)]]));
}

function validateCountInfo(h: TraceHeader, file: string): void {
  const c = h.counts;
  const bad = (why: string): never => {
    throw new UserError(`${file}: invalid count-trace header: ${why}`);
  };
  if (typeof c !== 'object' || c === null) bad('no "counts" record');
  if (c!.axis !== 'expert' && c!.axis !== 'device') bad(`counts.axis must be expert or device, got ${String(c!.axis)}`);
  if (!Number.isInteger(c!.bins) || c!.bins < 1 || c!.bins > 1 << 20)
    bad(`counts.bins must be 1…${1 << 20}, got ${c!.bins}`);
  if (h.schema.layerExperts) bad('a count trace holds layers of one shape (no layerExperts / layerTopK)');
  if (c!.axis === 'expert' && c!.bins !== h.schema.experts)
    bad(`counts.bins (${c!.bins}) must equal the schema's ${h.schema.experts} experts`);
  if (typeof c!.topKKnown !== 'boolean' || typeof c!.expertsKnown !== 'boolean')
    bad('counts.topKKnown / expertsKnown must be booleans');
  const p = c!.placement;
  if (p !== undefined && p !== null) {
    if (!Number.isInteger(p.devices) || p.devices < 1) bad('counts.placement.devices must be an integer ≥ 1');
    if (!Array.isArray(p.phy2log) || (p.phy2log.length !== 1 && p.phy2log.length !== h.schema.layers.length))
      bad('counts.placement.phy2log must hold one map, or one per MoE layer');
    const S = p.phy2log[0]!.length;
    for (const m of p.phy2log) {
      if (!Array.isArray(m) || m.length !== S || S < p.devices)
        bad('counts.placement.phy2log maps must all have the same number (≥ devices) of slots');
      for (const e of m)
        if (!Number.isInteger(e) || e < 0 || e >= h.schema.experts)
          bad(`counts.placement.phy2log holds ${String(e)}, not an expert id`);
    }
  }
}

/** Routers of the meta, or one summary per schema layer when the producer gave none. */
export function routersFor(schema: RoutingSchema, meta: StreamMeta): RouterSummary[] {
  if (meta.routers.length === 0) {
    return schema.layers.map((layer, l) => ({
      layer,
      experts: expertsAt(schema, l),
      topK: topKAt(schema, l),
      scoring: schema.scoring,
      kind: meta.source.startsWith('import') ? 'imported' : meta.source === 'synth' ? 'synthetic' : 'unknown',
    }));
  }
  if (meta.routers.length !== schema.layers.length || meta.routers.some((r, i) => r.layer !== schema.layers[i]))
    throw new Error(
      `StreamMeta.routers (layers ${meta.routers.map((r) => r.layer).join(',')}) do not match the schema's layers ` +
        `(${schema.layers.join(',')})`,
    );
  return meta.routers;
}

export function validateSchema(s: RoutingSchema): void {
  const bad = (why: string): never => {
    throw new UserError(`invalid routing schema: ${why}`);
  };
  if (!Array.isArray(s.layers) || s.layers.length === 0) bad('no MoE layers');
  if (s.layers.some((l) => !Number.isInteger(l) || l < 0 || l > 0x7fffffff))
    bad(`layer ids must be non-negative integers`);
  if (!Number.isInteger(s.experts) || s.experts < 1 || s.experts > 65536)
    bad(`experts must be 1…65536, got ${s.experts}`);
  if (!Number.isInteger(s.topK) || s.topK < 1 || s.topK > s.experts) bad(`topK must be 1…${s.experts}, got ${s.topK}`);
  if (s.scoring !== 'softmax' && s.scoring !== 'sigmoid')
    bad(`scoring must be softmax or sigmoid, got ${String(s.scoring)}`);
  checkShape(s.layers.length, s.experts, s.topK, bad);
  checkLayerShapes(s, bad);
}

/**
 * Per-layer E and K of a mixed-shape schema (src/core/batch.ts): both or neither; one per layer; each layer's K ≤
 * its E ≤ 65535 (id 65535 is the NO_EXPERT padding); `experts` / `topK` the largest of them. `bad` throws.
 */
export function checkLayerShapes(s: RoutingSchema, bad: (why: string) => never): void {
  const { layerExperts: le, layerTopK: lk } = s;
  if (le === undefined && lk === undefined) return;
  if (!Array.isArray(le) || !Array.isArray(lk)) bad('layerExperts and layerTopK come together');
  const L = s.layers.length;
  if (le!.length !== L || lk!.length !== L)
    bad(`layerExperts / layerTopK need one value per MoE layer (${L}), got ${le!.length} / ${lk!.length}`);
  for (let l = 0; l < L; l++) {
    const E = le![l];
    const K = lk![l];
    if (!Number.isInteger(E) || E! < 1 || E! > 65535) bad(`layerExperts[${l}] must be 1…65535, got ${E}`);
    if (!Number.isInteger(K) || K! < 1 || K! > E!) bad(`layerTopK[${l}] must be 1…${E}, got ${K}`);
  }
  if (Math.max(...le!) !== s.experts) bad(`experts (${s.experts}) must be the largest of layerExperts`);
  if (Math.max(...lk!) !== s.topK) bad(`topK (${s.topK}) must be the largest of layerTopK`);
}

/**
 * The sizes a file may declare for a routing schema, checked before anything is allocated for them (trace headers,
 * JSONL headers, npy shapes, synth flags): layers ≤ MAX_LAYERS, experts ≤ 65536, and one token's row
 * (layers × experts) ≤ MAX_LAYER_EXPERTS. `bad` throws.
 */
export function checkShape(L: number, E: number, K: number, bad: (why: string) => never): void {
  if (!Number.isSafeInteger(L) || L < 1 || L > MAX_LAYERS) bad(`MoE layers must be 1…${MAX_LAYERS}, got ${L}`);
  if (!Number.isSafeInteger(E) || E < 1 || E > 65536) bad(`experts must be 1…65536, got ${E}`);
  if (!Number.isSafeInteger(K) || K < 1 || K > E) bad(`topK must be 1…${E}, got ${K}`);
  if (L * E > MAX_LAYER_EXPERTS)
    bad(`${L} layers × ${E} experts is more than ${MAX_LAYER_EXPERTS.toLocaleString('en-US')} values per token`);
}

/** Most MoE layers (routers) a trace may declare: far above any model (DeepSeek-V3: 58), far below a bad header. */
export const MAX_LAYERS = 4096;
/** Most layers × experts per token (a token's logits row): 16 Mi values, 32 MiB of float16 per token. */
export const MAX_LAYER_EXPERTS = 1 << 24;

function fixedList(name: string, size: number, child: DataType): Field {
  return new Field(name, new FixedSizeList(size, new Field('item', child, false)), false);
}

/**
 * The Arrow schema of a trace with this routing schema and header. The optional columns come last, after `mem`,
 * in OPTIONAL_COLUMNS order (readers find every column by name).
 */
export function arrowSchemaFor(header: TraceHeader, columns: readonly OptionalColumn[] = []): Schema {
  const s = header.schema;
  validateSchema(s);
  const L = s.layers.length;
  const fields: Field[] = [
    new Field(COL.seq, new Uint32(), false),
    new Field(COL.pos, new Uint32(), false),
    new Field(COL.tokenId, new Int32(), false),
    new Field(COL.token, new Utf8(), false),
    new Field(COL.isPrompt, new Bool(), false),
    new Field(COL.tNs, new TimestampNanosecond(), false),
    fixedList(COL.experts, L * s.topK, new Uint16()),
    fixedList(COL.weights, L * s.topK, new Float16()),
  ];
  if (s.hasLogits) fields.push(fixedList(COL.logits, L * s.experts, new Float16()));
  fields.push(new Field(COL.tag, new Utf8(), true), new Field(COL.mem, new Utf8(), true));
  if (columns.includes('step')) fields.push(new Field(COL.step, new Uint32(), true));
  if (columns.includes('rank')) fields.push(new Field(COL.rank, new Uint16(), false));
  if (columns.includes('dropped')) fields.push(new Field(COL.dropped, new Uint32(), true));
  return new Schema(fields, new Map([[META_KEY, JSON.stringify(header)]]));
}

/** What a column must be; the reader checks every trace against this before mapping buffers. */
function expectType(
  f: Field | undefined,
  name: string,
  ok: (t: DataType) => boolean,
  want: string,
  file: string,
): Field {
  if (!f) throw new UserError(`${file}: not a moescope trace (no "${name}" column)`);
  if (!ok(f.type)) throw new UserError(`${file}: column "${name}" is ${typeName(f.type)}, expected ${want}`);
  return f;
}

/** apache-arrow's own toString throws on a malformed type (a list without its child field). */
function typeName(t: DataType): string {
  try {
    return String(t);
  } catch {
    return 'a malformed type';
  }
}

const isInt = (bits: number, signed: boolean) => (t: DataType) =>
  DataType.isInt(t) && t.bitWidth === bits && t.isSigned === signed;
const isHalf = (t: DataType) => DataType.isFloat(t) && t.precision === Precision.HALF;
const isFixedOf = (size: number, child: (t: DataType) => boolean) => (t: DataType) =>
  // A corrupt schema can declare a list with no child field: that is a wrong type, not a crash.
  DataType.isFixedSizeList(t) && t.listSize === size && t.children[0] !== undefined && child(t.children[0].type);

/** Parses and checks the header of a trace's Arrow schema. `file` names the trace in errors. */
export function parseTraceSchema(arrow: Schema, file: string): TraceHeader {
  const raw = arrow.metadata.get(META_KEY);
  if (raw === undefined) throw new UserError(`${file}: not a moescope trace (no "${META_KEY}" schema metadata)`);
  let h: TraceHeader;
  try {
    h = JSON.parse(raw) as TraceHeader;
  } catch {
    throw new UserError(`${file}: the "${META_KEY}" schema metadata is not valid JSON`);
  }
  if (typeof h === 'object' && h !== null && (h as { kind?: unknown }).kind === 'series')
    throw new UserError(
      `${file} holds a balancedness series (moescope import log), not routing: read it with check --min-balancedness or report`,
    );
  if (typeof h !== 'object' || h === null || typeof h.format !== 'number' || !h.schema || !h.meta)
    throw new UserError(`${file}: the "${META_KEY}" schema metadata lacks format/schema/meta`);
  if (h.format > TRACE_FORMAT_VERSION)
    throw new UserError(
      `${file}: trace format ${h.format} is newer than this moescope understands (${TRACE_FORMAT_VERSION}); upgrade moescope`,
    );
  validateSchema(h.schema);
  const m = h.meta as Partial<TraceHeader['meta']>;
  if (!Array.isArray(m.routers) || !Array.isArray(m.devices) || typeof m.source !== 'string')
    throw new UserError(`${file}: the "${META_KEY}" schema metadata's meta lacks routers/devices/source`);
  if (m.routers.length !== h.schema.layers.length)
    throw new UserError(
      `${file}: the trace names ${m.routers.length} routers for ${h.schema.layers.length} MoE layers`,
    );
  if (h.kind !== undefined && h.kind !== 'tokens' && h.kind !== 'counts')
    throw new UserError(
      `${file}: unknown trace kind ${JSON.stringify(h.kind)} (this moescope reads "tokens", "counts" and "series")`,
    );
  if (h.kind === 'counts') return parseCountColumns(h, arrow, file);
  const s = h.schema;
  const L = s.layers.length;
  const by = new Map(arrow.fields.map((f) => [f.name, f]));
  expectType(by.get(COL.seq), COL.seq, isInt(32, false), 'uint32', file);
  expectType(by.get(COL.pos), COL.pos, isInt(32, false), 'uint32', file);
  expectType(by.get(COL.tokenId), COL.tokenId, isInt(32, true), 'int32', file);
  expectType(by.get(COL.token), COL.token, DataType.isUtf8, 'utf8', file);
  expectType(by.get(COL.isPrompt), COL.isPrompt, DataType.isBool, 'bool', file);
  expectType(
    by.get(COL.tNs),
    COL.tNs,
    (t) => (DataType.isTimestamp(t) && t.unit === TimeUnit.NANOSECOND) || isInt(64, true)(t),
    'timestamp[ns] or int64',
    file,
  );
  expectType(
    by.get(COL.experts),
    COL.experts,
    isFixedOf(L * s.topK, isInt(16, false)),
    `fixed_size_list<uint16>[${L * s.topK}]`,
    file,
  );
  expectType(
    by.get(COL.weights),
    COL.weights,
    isFixedOf(L * s.topK, isHalf),
    `fixed_size_list<halffloat>[${L * s.topK}]`,
    file,
  );
  const logits = by.get(COL.logits);
  if (s.hasLogits !== (logits !== undefined))
    throw new UserError(
      `${file}: header says hasLogits=${s.hasLogits} but the "logits" column is ${logits ? 'present' : 'absent'}`,
    );
  if (logits)
    expectType(
      logits,
      COL.logits,
      isFixedOf(L * s.experts, isHalf),
      `fixed_size_list<halffloat>[${L * s.experts}]`,
      file,
    );
  for (const name of [COL.tag, COL.mem]) {
    const f = by.get(name);
    if (f) expectType(f, name, DataType.isUtf8, 'utf8', file);
  }
  const f = by.get(COL.step);
  if (f) expectType(f, COL.step, isInt(32, false), 'uint32', file);
  const r = by.get(COL.rank);
  if (r) expectType(r, COL.rank, isInt(16, false), 'uint16', file);
  const d = by.get(COL.dropped);
  if (d) expectType(d, COL.dropped, isInt(32, false), 'uint32', file);
  return h;
}

/** The optional columns (step, rank, dropped) an Arrow trace schema holds. */
export function optionalColumnsOf(arrow: Schema): OptionalColumn[] {
  const names = new Set(arrow.fields.map((f) => f.name));
  return OPTIONAL_COLUMNS.filter((c) => names.has(COL[c]));
}

function parseCountColumns(h: TraceHeader, arrow: Schema, file: string): TraceHeader {
  validateCountInfo(h, file);
  const by = new Map(arrow.fields.map((f) => [f.name, f]));
  expectType(by.get(COUNT_COL.step), COUNT_COL.step, isInt(64, true), 'int64', file);
  expectType(
    by.get(COUNT_COL.tNs),
    COUNT_COL.tNs,
    (t) => (DataType.isTimestamp(t) && t.unit === TimeUnit.NANOSECOND) || isInt(64, true)(t),
    'timestamp[ns] or int64',
    file,
  );
  const w = countWidth(h);
  const isDouble = (t: DataType) => DataType.isFloat(t) && t.precision === Precision.DOUBLE;
  expectType(by.get(COUNT_COL.counts), COUNT_COL.counts, isFixedOf(w, isDouble), `fixed_size_list<double>[${w}]`, file);
  return h;
}

export function isScoring(v: unknown): v is Scoring {
  return v === 'softmax' || v === 'sigmoid';
}
