/**
 * Pairing the identical tokens of two traces while both stream past, for router agreement (`moescope diff`):
 * per sequence id, tokens in position order, paired while positions and token ids agree; the first difference
 * ends the pairing for that sequence (everything after it sees a different prefix).
 *
 * Only tokens seen in one trace and not yet in the other are held (their routing copied into a row pool), so
 * reading both traces in step keeps memory to the distance between them, not to their length. A sequence whose
 * positions go backwards in a trace cannot be paired in one pass: its pairing ends there, and the caller says so.
 */
import { allocBatch, type RoutingBatch, type RoutingSchema } from '../core/batch.js';

/** Rows per page of a pool: pages are allocated as pending tokens need them and reused once paired. */
const PAGE = 1024;

/** Routing rows (experts and weights of every kept layer) of tokens waiting for their partner. */
class RowPool {
  private readonly width: number;
  private readonly experts: Uint16Array[] = [];
  private readonly weights: Uint16Array[] = [];
  private readonly free: number[] = [];
  private size = 0;

  constructor(width: number) {
    this.width = width;
  }

  /** Copies row `t` of `b` into a free slot. */
  put(b: RoutingBatch, t: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.size++;
      if (slot % PAGE === 0) {
        this.experts.push(new Uint16Array(PAGE * this.width));
        this.weights.push(new Uint16Array(PAGE * this.width));
      }
    }
    const w = this.width;
    const page = Math.floor(slot / PAGE);
    const at = (slot % PAGE) * w;
    this.experts[page]!.set(b.experts.subarray(t * w, (t + 1) * w), at);
    this.weights[page]!.set(b.weights.subarray(t * w, (t + 1) * w), at);
    return slot;
  }

  /** Copies a slot into row `i` of `out` and frees it. */
  take(slot: number, out: RoutingBatch, i: number): void {
    const w = this.width;
    const page = Math.floor(slot / PAGE);
    const at = (slot % PAGE) * w;
    out.experts.set(this.experts[page]!.subarray(at, at + w), i * w);
    out.weights.set(this.weights[page]!.subarray(at, at + w), i * w);
    this.free.push(slot);
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  /** Rows allocated (the high-water mark of pending tokens). */
  get capacity(): number {
    return this.size;
  }
}

/** One sequence: the tokens of one side waiting for the other (never both: a pair leaves at once). */
interface SeqState {
  /** Which side the waiting tokens are from. */
  side: 0 | 1;
  pos: number[];
  tokenId: number[];
  slot: number[];
  head: number;
  /** Last position seen on each side (order check). */
  lastPos: [number, number];
  /** The sequence went back in position on that side. */
  unordered: [boolean, boolean];
  broken: boolean;
}

export interface AlignSummary {
  /** Pairs of identical tokens found. */
  pairs: number;
  /** Sequences whose positions went backwards in a trace, per side (their pairing ended there). */
  unordered: [number, number];
  /** Most tokens held at once waiting for a partner, per side. */
  heldPeak: [number, number];
}

/**
 * Feed each trace's token batches (narrowed to the compared layers) with `add(side, batch)` in any interleaving;
 * pairs come out through `onPairs(a, b)` in chunks: row i of `a` and row i of `b` hold the same token. The chunk
 * batches are reused after the callback returns.
 */
export class TokenAligner {
  private readonly seqs = new Map<number, SeqState>();
  private readonly pools: [RowPool, RowPool];
  private readonly out: [RoutingBatch, RoutingBatch];
  private readonly chunk: number;
  private readonly onPairs: (a: RoutingBatch, b: RoutingBatch) => void;
  private n = 0;
  private pairs = 0;
  private readonly unordered: [number, number] = [0, 0];

  constructor(
    schemas: [RoutingSchema, RoutingSchema],
    onPairs: (a: RoutingBatch, b: RoutingBatch) => void,
    chunk = 4096,
  ) {
    this.chunk = chunk;
    this.onPairs = onPairs;
    this.pools = [0, 1].map((s) => new RowPool(schemas[s]!.layers.length * schemas[s]!.topK)) as [RowPool, RowPool];
    this.out = [0, 1].map((s) => allocBatch({ ...schemas[s]!, hasLogits: false }, chunk)) as [
      RoutingBatch,
      RoutingBatch,
    ];
  }

  add(side: 0 | 1, b: RoutingBatch): void {
    const other = side === 0 ? 1 : 0;
    for (let t = 0; t < b.length; t++) {
      const seq = b.seq[t]!;
      const pos = b.pos[t]!;
      let st = this.seqs.get(seq);
      if (!st) {
        st = {
          side,
          pos: [],
          tokenId: [],
          slot: [],
          head: 0,
          lastPos: [-1, -1],
          unordered: [false, false],
          broken: false,
        };
        this.seqs.set(seq, st);
      }
      // Order is checked on ended sequences too: a trace out of position order is named even where it cost no pair.
      if (pos < st.lastPos[side]) {
        if (!st.unordered[side]) this.unordered[side]++;
        st.unordered[side] = true;
        this.end(st);
      }
      st.lastPos[side] = Math.max(st.lastPos[side], pos);
      if (st.broken) continue;
      if (st.head < st.pos.length && st.side === other) {
        const h = st.head++;
        if (st.pos[h] !== pos || st.tokenId[h] !== b.tokenId[t]) {
          this.end(st);
          continue;
        }
        this.pair(side, b, t, st.slot[h]!, b.tokenId[t]!);
        if (st.head === st.pos.length) this.clear(st);
        else if (st.head >= 1024 && st.head * 2 >= st.pos.length) this.compact(st);
        continue;
      }
      st.side = side;
      st.pos.push(pos);
      st.tokenId.push(b.tokenId[t]!);
      st.slot.push(this.pools[side].put(b, t));
    }
  }

  /** Flushes the last pairs; call once after both traces ended. */
  finish(): AlignSummary {
    this.flush();
    return {
      pairs: this.pairs,
      unordered: [...this.unordered],
      heldPeak: [this.pools[0].capacity, this.pools[1].capacity],
    };
  }

  /** Pairs the waiting token `slot` of the other side with row `t` of `b` (from `side`). */
  private pair(side: 0 | 1, b: RoutingBatch, t: number, slot: number, tokenId: number): void {
    const other = side === 0 ? 1 : 0;
    const i = this.n++;
    const mine = this.out[side];
    const width = b.experts.length / b.length;
    mine.experts.set(b.experts.subarray(t * width, (t + 1) * width), i * width);
    mine.weights.set(b.weights.subarray(t * width, (t + 1) * width), i * width);
    mine.tokenId[i] = tokenId;
    this.pools[other].take(slot, this.out[other], i);
    this.out[other].tokenId[i] = tokenId;
    this.pairs++;
    if (this.n === this.chunk) this.flush();
  }

  private flush(): void {
    if (this.n === 0) return;
    const n = this.n;
    this.n = 0;
    const [a, b] = this.out;
    this.onPairs(n === this.chunk ? a : { ...a, length: n }, n === this.chunk ? b : { ...b, length: n });
  }

  /** The first difference (or a position going backwards): nothing more of this sequence pairs. */
  private end(st: SeqState): void {
    st.broken = true;
    this.clear(st);
  }

  private clear(st: SeqState): void {
    for (let h = st.head; h < st.slot.length; h++) this.pools[st.side].release(st.slot[h]!);
    st.pos = [];
    st.tokenId = [];
    st.slot = [];
    st.head = 0;
  }

  private compact(st: SeqState): void {
    st.pos = st.pos.slice(st.head);
    st.tokenId = st.tokenId.slice(st.head);
    st.slot = st.slot.slice(st.head);
    st.head = 0;
  }
}
