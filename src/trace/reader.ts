/**
 * TraceReader: reads a trace a batch at a time with bounded memory.
 *
 * Opening scans message headers only (no bodies) into an index of batch byte offsets and first-token numbers,
 * so seeking to any token costs one read. A file cut inside a message (a crash mid-write, a partial copy) is
 * reported in `truncated` and its complete batches are all readable; a file without end-of-stream marker is
 * `complete: false` (still being written, or its writer was killed). `follow()` tails a growing trace.
 */
import { closeSync, fstatSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { openSeekableInput } from '../core/input.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RecordBatch } from 'apache-arrow/ipc/metadata/message';
import type { Schema } from 'apache-arrow/schema';
import { sliceBatch, type OptionalColumn, type RoutingBatch, type RoutingSchema } from '../core/batch.js';
import type { StreamMeta } from '../core/stream.js';
import type { TimedMemorySample, Truncation } from '../core/routing-stream.js';
import { UserError, describeError } from '../core/errors.js';
import { ColumnsBuffer } from './columns.js';
import { BodyView, decodeBatch, decodeCountBatch, type DecodeContext } from './decode.js';
import { COL, optionalColumnsOf, parseTraceSchema, type CountTraceInfo, type TraceHeader } from './arrow-schema.js';
import type { CountBatch } from '../core/count-batch.js';
import { decodeMessage, preadFully, scanMessageAt } from './ipc.js';
import { columnSlots } from './layout.js';
import { memoryFromJson } from './memory-json.js';

export type { Truncation } from '../core/routing-stream.js';

/** One record batch, where it sits in the trace, and the memory samples its rows carry. */
export interface TraceChunk {
  /** Index of the record batch. */
  index: number;
  /** Trace-wide index of the batch's first row. */
  firstToken: number;
  batch: RoutingBatch;
  memory: TimedMemorySample[];
}

export interface FollowOptions {
  /** First token to yield (default 0: the whole trace, then what is appended). */
  fromToken?: number;
  /** How often to look for growth, ms (default 200). */
  pollMs?: number;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

export interface ReadOptions {
  /**
   * Read every batch into one reused buffer: each yielded batch is valid only until the next one is read.
   * For streaming aggregations (stats); much less memory traffic on multi-GB traces.
   */
  reuse?: boolean;
}

const ARROW_FILE_MAGIC = 'ARROW1';

/** The trace does not exist yet, or its writer has not written its schema yet (see waitForTrace). */
export class TraceNotReadyError extends UserError {}

export class TraceReader {
  readonly path: string;
  readonly arrowSchema: Schema;
  readonly header: TraceHeader;
  /** The optional columns (step, rank, dropped) the trace holds; its batches carry exactly these. */
  readonly columns: readonly OptionalColumn[];
  private fd: number | null;
  private readonly ctx: DecodeContext;
  // Index, one entry per record batch: where its flatbuffer header and body are, and its rows.
  private metaOffset: number[] = [];
  private bodyOffset: number[] = [];
  private bodyLength: number[] = [];
  private firstToken: number[] = [];
  private rows: number[] = [];
  private total = 0;
  private scanPos: number;
  private ended = false;
  private cut: Truncation | null = null;
  private size = 0;
  private memCache: TimedMemorySample[] = [];
  private scratch: Buffer | null = null;
  private memScanned = 0;
  /** Batch index by fingerprint of the batches read so far (see `checkRepeat`). */
  private fingerprints = new Map<string, number>();

  /** Use openTrace(). */
  constructor(path: string) {
    this.path = path;
    try {
      this.fd = openSeekableInput(path, 'trace'); // folders refused; a pipe is buffered to an unlinked file
    } catch (e) {
      if (e instanceof UserError && /: no such file$/.test(e.message))
        throw new TraceNotReadyError(`${path}: no such trace`);
      throw e;
    }
    try {
      const fd = this.fd;
      this.size = fstatSync(fd).size;
      const magic = Buffer.alloc(6);
      preadFully(fd, magic, 0);
      const start = magic.toString('latin1') === ARROW_FILE_MAGIC ? 8 : 0; // Arrow file format: stream after magic
      const first = this.looksLikeStream(start) ? scanMessageAt(fd, start, this.size, path) : null;
      if (this.size === 0)
        throw new TraceNotReadyError(`${path}: empty file (a trace being created has no schema yet)`);
      if (first === null || first.kind === 'eos') throw new UserError(`${path}: not an Arrow IPC stream trace`);
      if (first.kind === 'partial')
        throw new TraceNotReadyError(`${path}: trace cut short inside its schema (${this.size} bytes)`);
      if (!first.message.isSchema()) throw new UserError(`${path}: not an Arrow IPC stream trace (no schema first)`);
      this.arrowSchema = first.header as Schema;
      this.header = parseTraceSchema(this.arrowSchema, path);
      this.columns = this.header.kind === 'counts' ? [] : optionalColumnsOf(this.arrowSchema);
      this.ctx = { schema: this.header.schema, slots: columnSlots(this.arrowSchema, path), file: path };
      this.scanPos = first.end;
      this.refresh();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private looksLikeStream(start: number): boolean {
    if (this.size - start < 8) return this.size - start >= 4;
    const b = Buffer.alloc(8);
    preadFully(this.fd!, b, start);
    const a = b.readUInt32LE(0);
    if (a === 0xffffffff) return b.readInt32LE(4) >= 0 && b.readInt32LE(4) < 64 * 1024 * 1024;
    return a < 64 * 1024 * 1024; // legacy framing: a plausible metadata length
  }

  get schema(): RoutingSchema {
    return this.header.schema;
  }
  get meta(): StreamMeta {
    return this.header.meta;
  }
  /** moescope version that wrote the trace. */
  get version(): string {
    return this.header.moescope;
  }
  get createdAt(): Date {
    return new Date(this.header.createdAt);
  }
  /** What one row is: a token, or the load counts of one step (docs/trace-format.md § Count traces). */
  get kind(): 'tokens' | 'counts' {
    return this.header.kind ?? 'tokens';
  }
  /** A count trace's axis, bins and placement; null for a token trace. */
  get countInfo(): CountTraceInfo | null {
    return this.header.kind === 'counts' ? this.header.counts! : null;
  }
  /** Throws the one-line error every token-only reading of a count trace gives. */
  requireTokens(what = 'this command'): void {
    if (this.kind === 'counts')
      throw new UserError(
        `${this.path} is a count trace (load counts per step, no per-token routing): ${what} needs per-token data`,
      );
  }
  /** Rows in complete batches: tokens in a token trace, steps in a count trace. */
  get rowCount(): number {
    return this.total;
  }
  /** Tokens in complete batches (as of the last refresh); the rows (steps) of a count trace. */
  get tokenCount(): number {
    return this.total;
  }
  get batchCount(): number {
    return this.rows.length;
  }
  /** True when the end-of-stream marker was read: the writer finished cleanly. */
  get complete(): boolean {
    return this.ended;
  }
  /** The incomplete message at the end of the file, if any (as of the last refresh). */
  get truncated(): Truncation | null {
    return this.cut;
  }
  /** File size at the last refresh. */
  get fileBytes(): number {
    return this.size;
  }

  /** Indexes batches appended since the last look; returns how many. */
  refresh(): number {
    const fd = this.openFd();
    const before = this.rows.length;
    this.size = fstatSync(fd).size;
    if (this.size < this.scanPos) throw new UserError(`${this.path}: trace shrank while being read`);
    this.cut = null;
    while (!this.ended) {
      const m = scanMessageAt(fd, this.scanPos, this.size, this.path);
      if (m === null) break;
      if (m.kind === 'partial') {
        this.cut = {
          atByte: m.start,
          bytesPresent: m.present,
          bytesMissing: m.total === null ? null : m.total - m.present,
          rowsLost: m.rows,
        };
        break;
      }
      if (m.kind === 'eos') {
        this.ended = true;
        this.scanPos = m.end;
        break;
      }
      if (m.message.isRecordBatch()) {
        const rb = m.header as RecordBatch;
        // Every row holds at least its 4-byte seq: a header claiming more rows than that is corrupt (checked here,
        // before any count or allocation trusts it).
        if (rb.length * 4 > m.bodyLength)
          throw new UserError(
            `${this.path}: corrupt trace: a batch at byte ${m.start} claims ${rb.length} rows in ${m.bodyLength} bytes`,
          );
        if (rb.compression) throw new UserError(`${this.path}: compressed record batches are not supported in traces`);
        this.metaOffset.push(m.metaOffset);
        this.bodyOffset.push(m.bodyOffset);
        this.bodyLength.push(m.bodyLength);
        this.firstToken.push(this.total);
        this.rows.push(rb.length);
        this.total += rb.length;
      } else if (m.message.isDictionaryBatch()) {
        throw new UserError(`${this.path}: dictionary-encoded columns are not supported in traces`);
      } else {
        throw new UserError(`${this.path}: corrupt trace: a second schema at byte ${m.start}`);
      }
      this.scanPos = m.end;
    }
    return this.rows.length - before;
  }

  /** Index of the batch holding token `token` (batchCount when token === tokenCount). */
  batchIndexOf(token: number): number {
    if (!Number.isInteger(token) || token < 0 || token > this.total)
      throw new RangeError(`token ${token} is outside the trace (0…${this.total})`);
    if (token === this.total) return this.rows.length;
    let lo = 0;
    let hi = this.rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.firstToken[mid]! <= token) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Batch `index`, decoded, with its memory samples. With `reuse`, the batch's arrays are views on a buffer that
   * the next `reuse` read overwrites (no fresh memory per batch: faster streaming for aggregations that do not
   * keep batches); otherwise they are the batch's own.
   */
  readBatch(index: number, opts: ReadOptions = {}): TraceChunk {
    this.requireTokens('reading tokens');
    const { buf, rb, where } = this.readMessage(index, opts);
    const view = new BodyView(buf.subarray(this.bodyOffset[index]! - this.metaOffset[index]!), rb, where);
    const { batch, mem } = decodeBatch(view, this.ctx, true);
    this.checkRepeat(index, batch.length, [batch.seq, batch.pos, batch.tokenId, batch.tNs, batch.rank, batch.step]);
    const firstToken = this.firstToken[index]!;
    return { index, firstToken, batch, memory: mem ? samplesOf(mem, firstToken, where) : [] };
  }

  /** Record batch `index` of a count trace, decoded (its own memory). */
  readCountBatch(index: number): CountBatch {
    const info = this.countInfo;
    if (!info) throw new UserError(`${this.path} is a token trace, not a count trace`);
    const { buf, rb, where } = this.readMessage(index, {});
    const view = new BodyView(buf.subarray(this.bodyOffset[index]! - this.metaOffset[index]!), rb, where);
    const b = decodeCountBatch(view, this.ctx, info.axis, info.bins);
    this.checkRepeat(index, b.length, [b.step, b.tNs, b.counts]);
    return b;
  }

  /**
   * Refuses a batch that repeats an earlier one: the same rows (sequence, position, token id, capture time — and
   * rank and step where the trace has them; a count batch's steps, times and counts), which no recorder writes but
   * a doubled write or a careless concatenation does. Read on, it would count those tokens twice.
   */
  private checkRepeat(index: number, rows: number, columns: (ArrayBufferView | null | undefined)[]): void {
    if (rows === 0) return;
    const h = createHash('sha1');
    for (const c of columns) if (c) h.update(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
    const key = h.digest('base64');
    const first = this.fingerprints.get(key);
    if (first === undefined) this.fingerprints.set(key, index);
    else if (first !== index)
      throw new UserError(
        `${this.path}: batch ${index} repeats batch ${first} (the same ${rows} ${this.kind === 'counts' ? 'steps' : 'tokens'}, the same capture times): ` +
          'the trace holds them twice (a doubled write or concatenated copies); it would count them twice',
      );
  }

  /** Every complete record batch of a count trace, in order. */
  *countBatches(): Generator<CountBatch> {
    for (let i = 0; i < this.rows.length; i++) yield this.readCountBatch(i);
  }

  /** Header + body bytes of batch `index` and its decoded header. */
  private readMessage(index: number, opts: ReadOptions): { buf: Buffer; rb: RecordBatch; where: string } {
    if (!Number.isInteger(index) || index < 0 || index >= this.rows.length)
      throw new RangeError(`batch ${index} is outside the trace (0…${this.rows.length - 1})`);
    const fd = this.openFd();
    const metaStart = this.metaOffset[index]!;
    const bodyStart = this.bodyOffset[index]!;
    const end = bodyStart + this.bodyLength[index]!;
    // One read for header + body; the header's length is a multiple of 8, so the body view stays 8-aligned.
    const size = end - metaStart;
    let buf: Buffer;
    if (opts.reuse) {
      if (!this.scratch || this.scratch.byteLength < size)
        this.scratch = Buffer.allocUnsafeSlow(Math.max(size, 1 << 20));
      buf = this.scratch.subarray(0, size);
    } else buf = Buffer.allocUnsafeSlow(size);
    if (preadFully(fd, buf, metaStart) !== buf.byteLength)
      throw new UserError(`${this.path}: trace shrank while being read`);
    const rb = decodeMessage(buf.subarray(0, bodyStart - metaStart), this.path, metaStart).header as RecordBatch;
    if (rb.length !== this.rows[index]) throw new UserError(`${this.path}: trace changed while being read`);
    return { buf, rb, where: `${this.path} (batch ${index})` };
  }

  /** Decoded batches from the one holding `fromToken` (the first is sliced to start there), to the indexed end. */
  *chunks(fromToken = 0, opts: ReadOptions = {}): Generator<TraceChunk> {
    const count = this.rows.length;
    for (let i = this.batchIndexOf(fromToken); i < count; i++) {
      const c = this.readBatch(i, opts);
      yield fromToken > c.firstToken ? sliceChunk(c, this.schema, fromToken - c.firstToken) : c;
    }
  }

  /** Like chunks(), the batches alone: `for (const b of trace.batches()) …` */
  *batches(fromToken = 0, opts: ReadOptions = {}): Generator<RoutingBatch> {
    for (const c of this.chunks(fromToken, opts)) yield c.batch;
  }

  /** Tokens [start, end) as one batch (a view when they lie in one record batch, else a copy). */
  readRange(start: number, end: number): RoutingBatch {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= this.total))
      throw new RangeError(`range ${start}…${end} is outside the trace (0…${this.total})`);
    const n = end - start;
    let out: ColumnsBuffer | null = null; // only when the range spans batches
    for (const c of this.chunks(start)) {
      if (out === null && n <= c.batch.length)
        return n === c.batch.length ? c.batch : sliceBatch(c.batch, this.schema, 0, n);
      out ??= new ColumnsBuffer(this.schema, n, this.columns);
      out.append(c.batch, 0, Math.min(c.batch.length, n - out.length));
      if (out.length === n) break;
    }
    return (out ?? new ColumnsBuffer(this.schema, 0, this.columns)).view().batch;
  }

  /** Every memory sample in the indexed batches, reading only the `mem` column of each. */
  memorySamples(): TimedMemorySample[] {
    const fd = this.openFd();
    const memSlot = this.ctx.slots.get(COL.mem);
    if (!memSlot) return [];
    for (; this.memScanned < this.rows.length; this.memScanned++) {
      const i = this.memScanned;
      const metaStart = this.metaOffset[i]!;
      const meta = Buffer.allocUnsafeSlow(this.bodyOffset[i]! - metaStart);
      preadFully(fd, meta, metaStart);
      const rb = decodeMessage(meta, this.path, metaStart).header as RecordBatch;
      const node = rb.nodes[memSlot.node];
      if (!node || node.nullCount === node.length) continue;
      const regions = [0, 1, 2].map((k) => rb.buffers[memSlot.buffer + k]).filter((r) => r && r.length > 0);
      const lo = Math.min(...regions.map((r) => r!.offset));
      const hi = Math.max(...regions.map((r) => r!.offset + r!.length));
      const part = Buffer.allocUnsafeSlow(hi - lo);
      preadFully(fd, part, this.bodyOffset[i]! + lo);
      const where = `${this.path} (batch ${i})`;
      const cells = new BodyView(part, rb, where, lo).strings(memSlot, rb.length, COL.mem);
      if (cells) this.memCache.push(...samplesOf(cells, this.firstToken[i]!, where));
    }
    return this.memCache.slice();
  }

  /**
   * Tails the trace: yields every batch from `fromToken`, then batches as they are appended, polling the file
   * size; ends at the end-of-stream marker, when `signal` aborts, or when the consumer stops iterating.
   */
  async *follow(opts: FollowOptions = {}): AsyncGenerator<TraceChunk> {
    const pollMs = opts.pollMs ?? 200;
    let next = opts.fromToken ?? 0;
    for (;;) {
      if (opts.signal?.aborted) return;
      while (next < this.total) {
        const c = this.readBatch(this.batchIndexOf(next));
        const chunk = next > c.firstToken ? sliceChunk(c, this.schema, next - c.firstToken) : c;
        next = c.firstToken + c.batch.length;
        yield chunk;
        if (opts.signal?.aborted) return;
      }
      if (this.ended) return;
      try {
        await sleep(pollMs, undefined, { signal: opts.signal });
      } catch {
        return; // aborted
      }
      this.refresh();
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private openFd(): number {
    if (this.fd === null) throw new Error(`trace reader for ${this.path} is closed`);
    return this.fd;
  }
}

function samplesOf(cells: (string | null)[], firstToken: number, where: string): TimedMemorySample[] {
  const out: TimedMemorySample[] = [];
  cells.forEach((cell, row) => {
    if (cell === null) return;
    try {
      for (const sample of memoryFromJson(cell, where)) out.push({ token: firstToken + row, sample });
    } catch (e) {
      throw new UserError(describeError(e));
    }
  });
  return out;
}

function sliceChunk(c: TraceChunk, schema: RoutingSchema, from: number): TraceChunk {
  const firstToken = c.firstToken + from;
  return {
    index: c.index,
    firstToken,
    batch: sliceBatch(c.batch, schema, from, c.batch.length),
    memory: c.memory.filter((m) => m.token >= firstToken),
  };
}

/** Opens a trace and indexes its batches (headers only). Close it when done. */
export function openTrace(path: string): TraceReader {
  return new TraceReader(path);
}

/**
 * Opens a trace that may not exist yet (replay --follow started before the recorder): retries while the file is
 * missing, empty or still inside its schema; other errors are thrown at once. Rejects with the last
 * TraceNotReadyError after `timeoutMs`, and with an AbortError when `signal` aborts.
 */
export async function waitForTrace(
  path: string,
  opts: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {},
): Promise<TraceReader> {
  const deadline = Date.now() + (opts.timeoutMs ?? Infinity);
  for (;;) {
    try {
      return new TraceReader(path);
    } catch (e) {
      if (!(e instanceof TraceNotReadyError) || Date.now() >= deadline) throw e;
    }
    await sleep(opts.pollMs ?? 200, undefined, { signal: opts.signal });
  }
}
