/**
 * The one columnar batch type that travels engine → trace → stats → store → views.
 *
 * N tokens × L MoE layers × K selected experts, as typed arrays. Each column maps 1:1 onto a column of the
 * trace's Arrow record batches (docs/trace-format.md), so recording and replay copy no data.
 * Layout of the per-token matrices is token-major, then layer, then slot:  index = (t·L + l)·K + k.
 */
import { f32ToF16 } from './f16.js';

export type Scoring = 'softmax' | 'sigmoid';

/**
 * What every batch of one stream shares: the routed layers and their shape.
 *
 * Layers of one model may differ in E and K ("mixed shapes"): then `experts` and `topK` are the largest, and
 * `layerExperts` / `layerTopK` give each layer its own. The batch stays rectangular (L·K and L·E per token): a
 * layer's slots past its own K hold NO_EXPERT with weight 0, its logits past its own E hold −Inf. Nothing counts
 * those slots — every consumer either reads a layer's own E and K (expertsAt / topKAt) or works on uniform
 * sub-streams (src/core/shapes.ts).
 */
export interface RoutingSchema {
  /** The model's own layer index of each MoE layer, in capture order (dense layers are absent). L = layers.length. */
  layers: number[];
  /** Routed experts per MoE layer (E); with layerExperts, the largest. */
  experts: number;
  /** Experts selected per token per layer (K); with layerTopK, the largest. */
  topK: number;
  /** Each layer's own E, when layers differ (absent: every layer has `experts`). */
  layerExperts?: number[];
  /** Each layer's own K, when layers differ (absent: every layer has `topK`). */
  layerTopK?: number[];
  /** How the router turns logits into scores. */
  scoring: Scoring;
  /** Whether batches carry router logits (L·E per token). */
  hasLogits: boolean;
}

export interface RoutingBatch {
  /** Number of tokens (rows). */
  length: number;
  /** Sequence id (prompt number, request id). */
  seq: Uint32Array;
  /** Position of the token in its sequence. */
  pos: Uint32Array;
  tokenId: Int32Array;
  /** Decoded text of each token. */
  token: string[];
  /** 1 when the token belongs to the prompt, 0 when generated. */
  isPrompt: Uint8Array;
  /** Wall-clock capture time, ns since the Unix epoch. */
  tNs: BigInt64Array;
  /** Selected expert ids, the model's own selection: N·L·K. */
  experts: Uint16Array;
  /** Routing weights of those experts as float16 bits (decode with F16_TO_F32): N·L·K. */
  weights: Uint16Array;
  /** Router logits as float16 bits: N·L·E, or null when not captured. */
  logits: Uint16Array | null;
  /** Optional per-token label (domain of the prompt: "code", "prose" …). */
  tag: (string | null)[] | null;
  /**
   * Optional columns (docs/trace-format.md): absent (undefined or null) when the source has none.
   * `step`: training step the producer gave; NO_STEP on rows whose producer gave none (a null cell in the trace).
   */
  step?: Uint32Array | null;
  /** Rank of the producer process (multi-process runs). */
  rank?: Uint16Array | null;
  /** Whole steps the producer dropped just before this row (0: none; a null cell in the trace). */
  dropped?: Uint32Array | null;
}

/** Expert id of a slot past its layer's own K (mixed shapes); never a real expert: E ≤ 65535 there. */
export const NO_EXPERT = 0xffff;
/** float16 bits of a logit past its layer's own E (mixed shapes): −Inf, probability 0 under softmax and sigmoid. */
export const NO_LOGIT_F16 = 0xfc00;

/** E of the l-th MoE layer. */
export function expertsAt(s: RoutingSchema, l: number): number {
  return s.layerExperts ? s.layerExperts[l]! : s.experts;
}

/** K of the l-th MoE layer. */
export function topKAt(s: RoutingSchema, l: number): number {
  return s.layerTopK ? s.layerTopK[l]! : s.topK;
}

/** Whether the layers differ in E or K. */
export function mixedShapes(s: RoutingSchema): boolean {
  const L = s.layers.length;
  for (let l = 0; l < L; l++) if (expertsAt(s, l) !== s.experts || topKAt(s, l) !== s.topK) return true;
  return false;
}

/**
 * A schema for layers of the given shapes: uniform when they agree (no per-layer arrays), mixed otherwise.
 */
export function schemaOfShapes(
  layers: number[],
  shapes: readonly { experts: number; topK: number }[],
  scoring: Scoring,
  hasLogits: boolean,
): RoutingSchema {
  const experts = Math.max(...shapes.map((x) => x.experts));
  const topK = Math.max(...shapes.map((x) => x.topK));
  const s: RoutingSchema = { layers, experts, topK, scoring, hasLogits };
  if (shapes.some((x) => x.experts !== experts || x.topK !== topK)) {
    s.layerExperts = shapes.map((x) => x.experts);
    s.layerTopK = shapes.map((x) => x.topK);
  }
  return s;
}

/** "layer 0: 8 experts top-2, layer 1: 4 experts top-1" (each model layer id with its shape). */
export function describeLayerShapes(s: RoutingSchema): string {
  return s.layers.map((id, l) => `layer ${id}: ${expertsAt(s, l)} experts top-${topKAt(s, l)}`).join(', ');
}

/** The optional per-token columns a trace may hold (besides logits, tag and mem). */
export type OptionalColumn = 'step' | 'rank' | 'dropped';
export const OPTIONAL_COLUMNS: readonly OptionalColumn[] = ['step', 'rank', 'dropped'];
/** `step` of a row whose producer gave no step (stored as null). */
export const NO_STEP = 0xffffffff;

/**
 * A zeroed batch of n rows (empty token strings, no tags), to be filled column by column; with the optional
 * `columns` allocated too (step = NO_STEP, rank = 0, dropped = 0).
 */
export function allocBatch(schema: RoutingSchema, n: number, columns: readonly OptionalColumn[] = []): RoutingBatch {
  const lk = n * schema.layers.length * schema.topK;
  const b: RoutingBatch = {
    length: n,
    seq: new Uint32Array(n),
    pos: new Uint32Array(n),
    tokenId: new Int32Array(n),
    token: new Array<string>(n).fill(''),
    isPrompt: new Uint8Array(n),
    tNs: new BigInt64Array(n),
    experts: new Uint16Array(lk),
    weights: new Uint16Array(lk),
    logits: schema.hasLogits ? new Uint16Array(n * schema.layers.length * schema.experts) : null,
    tag: null,
  };
  if (columns.includes('step')) b.step = new Uint32Array(n).fill(NO_STEP);
  if (columns.includes('rank')) b.rank = new Uint16Array(n);
  if (columns.includes('dropped')) b.dropped = new Uint32Array(n);
  return b;
}

/** Which optional columns a batch carries. */
export function columnsOf(b: RoutingBatch): OptionalColumn[] {
  return OPTIONAL_COLUMNS.filter((c) => b[c] != null);
}

/** One token's routing, as the engine (or an importer) produces it. */
export interface TokenRouting {
  seq: number;
  pos: number;
  tokenId: number;
  token: string;
  isPrompt: boolean;
  tNs: bigint;
  /** L·K expert ids, layer-major. */
  experts: ArrayLike<number>;
  /** L·K weights as numbers (encoded to float16 here). */
  weights: ArrayLike<number>;
  /** L·E logits as numbers, when the schema has logits. */
  logits?: ArrayLike<number> | null;
  tag?: string | null;
  /** Optional columns; stored only when the builder was made with them. */
  step?: number | null;
  rank?: number;
  dropped?: number;
}

/** Accumulates tokens into preallocated columns; `finish()` hands out a batch and starts afresh. */
export class RoutingBatchBuilder {
  readonly schema: RoutingSchema;
  readonly capacity: number;
  private n = 0;
  private cols!: RoutingBatch;
  private readonly lk: number;
  private readonly le: number;
  private anyTag = false;
  readonly columns: readonly OptionalColumn[];

  constructor(schema: RoutingSchema, capacity: number, columns: readonly OptionalColumn[] = []) {
    this.schema = schema;
    this.capacity = capacity;
    this.columns = columns;
    this.lk = schema.layers.length * schema.topK;
    this.le = schema.layers.length * schema.experts;
    this.reset();
  }

  get length(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n >= this.capacity;
  }

  private reset(): void {
    this.n = 0;
    this.anyTag = false;
    this.cols = {
      ...allocBatch(this.schema, this.capacity, this.columns),
      tag: new Array<string | null>(this.capacity),
    };
  }

  push(r: TokenRouting): void {
    if (this.n >= this.capacity) throw new RangeError('RoutingBatchBuilder is full; call finish() first');
    const i = this.n++;
    const c = this.cols;
    c.seq[i] = r.seq;
    c.pos[i] = r.pos;
    c.tokenId[i] = r.tokenId;
    c.token[i] = r.token;
    c.isPrompt[i] = r.isPrompt ? 1 : 0;
    c.tNs[i] = r.tNs;
    const o = i * this.lk;
    for (let j = 0; j < this.lk; j++) {
      c.experts[o + j] = r.experts[j]!;
      c.weights[o + j] = f32ToF16(r.weights[j]!);
    }
    if (c.logits) {
      const lo = i * this.le;
      const src = r.logits;
      if (src) for (let j = 0; j < this.le; j++) c.logits[lo + j] = f32ToF16(src[j]!);
      else c.logits.fill(0x7e00, lo, lo + this.le); // NaN: logits missing for this token
    }
    c.tag![i] = r.tag ?? null;
    if (r.tag != null) this.anyTag = true;
    if (c.step) c.step[i] = r.step ?? NO_STEP;
    if (c.rank) c.rank[i] = r.rank ?? 0;
    if (c.dropped) c.dropped[i] = r.dropped ?? 0;
  }

  /** The tokens pushed so far as a batch (trimmed views), then an empty builder. */
  finish(): RoutingBatch {
    const n = this.n;
    const c = this.cols;
    const out: RoutingBatch = {
      length: n,
      seq: c.seq.subarray(0, n),
      pos: c.pos.subarray(0, n),
      tokenId: c.tokenId.subarray(0, n),
      token: c.token.slice(0, n),
      isPrompt: c.isPrompt.subarray(0, n),
      tNs: c.tNs.subarray(0, n),
      experts: c.experts.subarray(0, n * this.lk),
      weights: c.weights.subarray(0, n * this.lk),
      logits: c.logits ? c.logits.subarray(0, n * this.le) : null,
      tag: this.anyTag ? c.tag!.slice(0, n) : null,
    };
    if (c.step) out.step = c.step.subarray(0, n);
    if (c.rank) out.rank = c.rank.subarray(0, n);
    if (c.dropped) out.dropped = c.dropped.subarray(0, n);
    this.reset();
    return out;
  }
}

/** Rows [start, end) of a batch, sharing its buffers. */
export function sliceBatch(b: RoutingBatch, schema: RoutingSchema, start: number, end: number): RoutingBatch {
  const lk = schema.layers.length * schema.topK;
  const le = schema.layers.length * schema.experts;
  const out: RoutingBatch = {
    length: end - start,
    seq: b.seq.subarray(start, end),
    pos: b.pos.subarray(start, end),
    tokenId: b.tokenId.subarray(start, end),
    token: b.token.slice(start, end),
    isPrompt: b.isPrompt.subarray(start, end),
    tNs: b.tNs.subarray(start, end),
    experts: b.experts.subarray(start * lk, end * lk),
    weights: b.weights.subarray(start * lk, end * lk),
    logits: b.logits ? b.logits.subarray(start * le, end * le) : null,
    tag: b.tag ? b.tag.slice(start, end) : null,
  };
  if (b.step) out.step = b.step.subarray(start, end);
  if (b.rank) out.rank = b.rank.subarray(start, end);
  if (b.dropped) out.dropped = b.dropped.subarray(start, end);
  return out;
}

export function describeSchema(s: RoutingSchema): string {
  const shape = mixedShapes(s) ? `(${describeLayerShapes(s)}),` : `× ${s.experts} experts, top-${s.topK}`;
  return `${s.layers.length} MoE layers ${shape} ${s.scoring}${s.hasLogits ? ', with logits' : ''}`;
}
