/**
 * Pairing the identical tokens of two traces while both stream past, for router agreement (`moescope diff`):
 * per sequence id, tokens in position order, paired while positions and token ids agree; the first difference
 * ends the pairing for that sequence (everything after it sees a different prefix).
 *
 * Only tokens seen in one trace and not yet in the other are held (their routing copied into a row pool), so
 * reading both traces in step keeps memory to the distance between them, not to their length. A sequence whose
 * positions go backwards in a trace cannot be paired in one pass: its pairing ends there, and the caller says so.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocBatch, type RoutingBatch, type RoutingSchema } from '../core/batch.js';
import { preadFully } from '../trace/ipc.js';

/** Rows per page of a pool: pages are allocated as pending tokens need them and reused once paired. */
const PAGE = 1024;

/** Where a pool's pages go past its memory budget (one temp file per pool, removed by close()). */
interface Spill {
  dir: string;
  fd: number;
}

/**
 * Routing rows (experts and weights of every kept layer) of tokens waiting for their partner. Up to `budget` bytes
 * of pages stay in memory; past it the page used longest ago is written to a temp file and read back a row at a
 * time when its tokens pair (tokens of a sequence the other trace does not hold — or holds much later — are the
 * ones that wait, and they are rarely touched again). The file grows to at most `diskCap` bytes; then put()
 * refuses (the caller stops holding tokens).
 */
class RowPool {
  private readonly width: number;
  /** Per page: its experts and weights, or null while it is in the spill file. */
  private readonly experts: (Uint16Array | null)[] = [];
  private readonly weights: (Uint16Array | null)[] = [];
  private readonly used: number[] = [];
  private readonly free: number[] = [];
  private size = 0;
  private resident = 0;
  private residentPeakPages = 0;
  private clock = 0;
  private spill: Spill | null = null;
  private spilledPages = 0;
  private readonly row: Uint8Array;

  constructor(
    width: number,
    private readonly budget: number,
    private readonly diskCap: number,
  ) {
    this.width = width;
    this.row = new Uint8Array(width * 2);
  }

  private get pageBytes(): number {
    return PAGE * this.width * 4;
  }

  /** Whether put() has room: a free slot, or a page to add (in memory or, past the budget, in the file). */
  get hasRoom(): boolean {
    if (this.free.length > 0 || this.size % PAGE !== 0) return true;
    return (
      (this.resident + 1) * this.pageBytes <= this.budget || (this.spilledPages + 1) * this.pageBytes <= this.diskCap
    );
  }

  /** Copies row `t` of `b` into a free slot (hasRoom must hold). */
  put(b: RoutingBatch, t: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.size++;
      if (slot % PAGE === 0) this.addPage();
    }
    const w = this.width;
    const page = Math.floor(slot / PAGE);
    const at = (slot % PAGE) * w;
    const ex = this.experts[page];
    if (ex) {
      ex.set(b.experts.subarray(t * w, (t + 1) * w), at);
      this.weights[page]!.set(b.weights.subarray(t * w, (t + 1) * w), at);
      this.used[page] = ++this.clock;
    } else {
      const e = b.experts.subarray(t * w, (t + 1) * w);
      const x = b.weights.subarray(t * w, (t + 1) * w);
      this.write(new Uint8Array(e.buffer, e.byteOffset, w * 2), this.offset(page, 0, at));
      this.write(new Uint8Array(x.buffer, x.byteOffset, w * 2), this.offset(page, 1, at));
    }
    return slot;
  }

  /** Copies a slot into row `i` of `out` and frees it. */
  take(slot: number, out: RoutingBatch, i: number): void {
    const w = this.width;
    const page = Math.floor(slot / PAGE);
    const at = (slot % PAGE) * w;
    const ex = this.experts[page];
    if (ex) {
      out.experts.set(ex.subarray(at, at + w), i * w);
      out.weights.set(this.weights[page]!.subarray(at, at + w), i * w);
      this.used[page] = ++this.clock;
    } else {
      const row = new Uint16Array(this.row.buffer, 0, w);
      this.read(this.offset(page, 0, at));
      out.experts.set(row, i * w);
      this.read(this.offset(page, 1, at));
      out.weights.set(row, i * w);
    }
    this.free.push(slot);
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  /** Rows allocated (the high-water mark of pending tokens). */
  get capacity(): number {
    return this.size;
  }

  /** Most rows held in memory at once. */
  get residentPeak(): number {
    return this.residentPeakPages * PAGE;
  }

  /** Rows written to the spill file. */
  get spilled(): number {
    return this.spilledPages * PAGE;
  }

  close(): void {
    if (!this.spill) return;
    closeSync(this.spill.fd);
    rmSync(this.spill.dir, { recursive: true, force: true });
    this.spill = null;
  }

  /** Byte offset in the spill file of row `at` (in values) of `page`'s experts (0) or weights (1). */
  private offset(page: number, part: 0 | 1, at: number): number {
    return page * this.pageBytes + part * PAGE * this.width * 2 + at * 2;
  }

  private addPage(): void {
    if ((this.resident + 1) * this.pageBytes > this.budget && this.resident > 0) this.evict();
    this.experts.push(new Uint16Array(PAGE * this.width));
    this.weights.push(new Uint16Array(PAGE * this.width));
    this.used.push(++this.clock);
    this.resident++;
    this.residentPeakPages = Math.max(this.residentPeakPages, this.resident);
  }

  /** Writes the page used longest ago to the spill file and lets its memory go. */
  private evict(): void {
    let victim = -1;
    for (let p = 0; p < this.experts.length; p++)
      if (this.experts[p] && (victim < 0 || this.used[p]! < this.used[victim]!)) victim = p;
    const ex = this.experts[victim]!;
    const wt = this.weights[victim]!;
    this.write(new Uint8Array(ex.buffer), this.offset(victim, 0, 0));
    this.write(new Uint8Array(wt.buffer), this.offset(victim, 1, 0));
    this.experts[victim] = null;
    this.weights[victim] = null;
    this.resident--;
    this.spilledPages++;
  }

  private write(bytes: Uint8Array, position: number): void {
    if (!this.spill) {
      const dir = mkdtempSync(join(tmpdir(), 'moescope-diff-'));
      this.spill = { dir, fd: openSync(join(dir, 'held.bin'), 'w+') };
    }
    for (let done = 0; done < bytes.length; )
      done += writeSync(this.spill.fd, bytes, done, bytes.length - done, position + done);
  }

  /** Reads one row's experts or weights (width values) into this.row. */
  private read(position: number): void {
    const n = preadFully(this.spill!.fd, this.row, position);
    if (n < this.row.length) throw new Error(`diff: the spill file ended at ${position + n}`);
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
  /** Most of them held in memory at once, per side (the rest were in the spill file). */
  residentPeak: [number, number];
  /** Rows (token slots) written to the spill file, per side. */
  spilled: [number, number];
  /** Sequences whose pairing ended because a token could not wait (the spill file was full), per side. */
  dropped: [number, number];
}

export interface AlignerOptions {
  /** Pairs per onPairs chunk (default 4096). */
  chunk?: number;
  /** Memory for the rows of waiting tokens, both sides together (default 64 MiB); past it they spill to a file. */
  holdBytes?: number;
  /** Largest spill file per side (default 8 GiB). */
  spillBytes?: number;
}

/** Default memory for waiting tokens; MOESCOPE_DIFF_HOLD_MIB sets another (docs/ci.md). */
export function defaultHoldBytes(): number {
  const mib = Number(process.env.MOESCOPE_DIFF_HOLD_MIB);
  return (Number.isFinite(mib) && mib > 0 ? mib : 64) * 2 ** 20;
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
  private readonly dropped: [number, number] = [0, 0];

  constructor(
    schemas: [RoutingSchema, RoutingSchema],
    onPairs: (a: RoutingBatch, b: RoutingBatch) => void,
    o: AlignerOptions = {},
  ) {
    const chunk = o.chunk ?? 4096;
    this.chunk = chunk;
    this.onPairs = onPairs;
    const hold = (o.holdBytes ?? defaultHoldBytes()) / 2;
    const disk = o.spillBytes ?? 8 * 2 ** 30;
    this.pools = [0, 1].map((s) => new RowPool(schemas[s]!.layers.length * schemas[s]!.topK, hold, disk)) as [
      RowPool,
      RowPool,
    ];
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
      if (!this.pools[side].hasRoom) {
        // The spill file is full: this token cannot wait, so its sequence pairs no further (said in a note).
        this.dropped[side]++;
        this.end(st);
        continue;
      }
      st.side = side;
      st.pos.push(pos);
      st.tokenId.push(b.tokenId[t]!);
      st.slot.push(this.pools[side].put(b, t));
    }
  }

  /** Flushes the last pairs; call once after both traces ended (then close()). */
  finish(): AlignSummary {
    this.flush();
    const [a, b] = this.pools;
    return {
      pairs: this.pairs,
      unordered: [...this.unordered],
      heldPeak: [a.capacity, b.capacity],
      residentPeak: [Math.min(a.residentPeak, a.capacity), Math.min(b.residentPeak, b.capacity)],
      spilled: [a.spilled, b.spilled],
      dropped: [...this.dropped],
    };
  }

  /** Removes the spill files. */
  close(): void {
    for (const p of this.pools) p.close();
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
