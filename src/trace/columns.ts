/**
 * Preallocated RoutingBatch columns that rows of other batches are copied into (typed-array `set`, no
 * per-element loops): the writer's pending batch, readRange's concatenation, the importers' accumulation.
 */
import {
  NO_STEP,
  allocBatch,
  sliceBatch,
  type OptionalColumn,
  type RoutingBatch,
  type RoutingSchema,
} from '../core/batch.js';

export class ColumnsBuffer {
  readonly capacity: number;
  private n = 0;
  private readonly lk: number;
  private readonly le: number;
  private anyTag = false;
  private anyMem = false;
  readonly cols: RoutingBatch;
  /** Per-row `mem` cell (JSON), for the writer. */
  readonly mem: (string | null)[];

  constructor(
    private readonly schema: RoutingSchema,
    capacity: number,
    /** Optional columns to hold; rows appended from batches without one get NO_STEP / rank 0 / dropped 0. */
    readonly columns: readonly OptionalColumn[] = [],
  ) {
    this.capacity = capacity;
    this.lk = schema.layers.length * schema.topK;
    this.le = schema.layers.length * schema.experts;
    this.cols = {
      ...allocBatch(schema, capacity, columns),
      length: 0,
      tag: new Array<string | null>(capacity).fill(null),
    };
    this.mem = new Array<string | null>(capacity).fill(null);
  }

  get length(): number {
    return this.n;
  }

  get room(): number {
    return this.capacity - this.n;
  }

  /** Copies rows [from, to) of `b` to the end. */
  append(b: RoutingBatch, from = 0, to = b.length): void {
    const k = to - from;
    if (k > this.room) throw new RangeError(`ColumnsBuffer: ${k} rows do not fit in ${this.room}`);
    const i = this.n;
    const c = this.cols;
    c.seq.set(b.seq.subarray(from, to), i);
    c.pos.set(b.pos.subarray(from, to), i);
    c.tokenId.set(b.tokenId.subarray(from, to), i);
    c.isPrompt.set(b.isPrompt.subarray(from, to), i);
    c.tNs.set(b.tNs.subarray(from, to), i);
    c.experts.set(b.experts.subarray(from * this.lk, to * this.lk), i * this.lk);
    c.weights.set(b.weights.subarray(from * this.lk, to * this.lk), i * this.lk);
    if (c.logits) {
      if (b.logits) c.logits.set(b.logits.subarray(from * this.le, to * this.le), i * this.le);
      else c.logits.fill(0x7e00, i * this.le, (i + k) * this.le); // NaN: not captured for these rows
    }
    if (c.step) {
      if (b.step) c.step.set(b.step.subarray(from, to), i);
      else c.step.fill(NO_STEP, i, i + k);
    }
    if (c.rank) {
      if (b.rank) c.rank.set(b.rank.subarray(from, to), i);
      else c.rank.fill(0, i, i + k);
    }
    if (c.dropped) {
      if (b.dropped) c.dropped.set(b.dropped.subarray(from, to), i);
      else c.dropped.fill(0, i, i + k);
    }
    for (let r = 0; r < k; r++) {
      c.token[i + r] = b.token[from + r]!;
      const t = b.tag ? (b.tag[from + r] ?? null) : null;
      c.tag![i + r] = t;
      if (t !== null) this.anyTag = true;
    }
    this.n += k;
  }

  /** Attaches a `mem` cell to row `row` (appending to one already there). */
  setMem(row: number, json: string): void {
    const prev = this.mem[row];
    // Both are JSON arrays: splice them into one.
    this.mem[row] = prev ? `${prev.slice(0, -1)},${json.slice(1)}` : json;
    this.anyMem = true;
  }

  /** The rows so far, as views (valid until the next reset). `mem` is null when no row has one. */
  view(): { batch: RoutingBatch; mem: (string | null)[] | null } {
    const n = this.n;
    const batch = sliceBatch(this.cols, this.schema, 0, n);
    if (!this.anyTag) batch.tag = null;
    return { batch, mem: this.anyMem ? this.mem.slice(0, n) : null };
  }

  reset(): void {
    if (this.anyTag) this.cols.tag!.fill(null, 0, this.n);
    if (this.anyMem) this.mem.fill(null, 0, this.n);
    this.n = 0;
    this.anyTag = false;
    this.anyMem = false;
  }
}
