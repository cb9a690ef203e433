/**
 * Incremental Arrow IPC stream parser for one producer connection: bytes go in as the socket delivers them, a
 * trace header and RoutingBatches come out as soon as each message is complete. The framing is the one the trace
 * files use (src/trace/ipc.ts): continuation marker, metadata length, flatbuffer Message, body; the flatbuffers
 * are apache-arrow's, the columns are decoded by src/trace/decode.ts (typed-array views on the body, no copies).
 *
 * Memory is bounded: a message's metadata may be at most MAX_META_BYTES and its body at most maxBodyBytes;
 * anything larger, a malformed header, a second schema, dictionaries or compression is a ProtocolError (the
 * connection is dropped, the other producers go on). Each complete message is copied once into its own buffer
 * (8-aligned, so the columns map onto typed arrays) and handed out; nothing else is retained.
 */
import { Message, type RecordBatch } from 'apache-arrow/ipc/metadata/message';
import type { Schema } from 'apache-arrow/schema';
import type { OptionalColumn, RoutingBatch } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { BodyView, decodeBatch, type DecodeContext } from '../trace/decode.js';
import { checkBatch } from '../trace/encode.js';
import { optionalColumnsOf, parseTraceSchema, type TraceHeader } from '../trace/arrow-schema.js';
import { columnSlots } from '../trace/layout.js';
import { memoryFromJson } from '../trace/memory-json.js';
import type { MemorySample } from '../core/memory.js';

/** The producer broke the protocol; the message is one line naming what was wrong. */
export class ProtocolError extends Error {}

const CONTINUATION = 0xffffffff;
const MAX_META_BYTES = 1 << 20;
export const DEFAULT_MAX_BODY_BYTES = 256 << 20;

export type StreamEvent =
  | { kind: 'schema'; header: TraceHeader; columns: OptionalColumn[]; arrowSchema: Schema }
  /** `memory`: the samples riding on the batch's rows (`row` within the batch), in row order. */
  | { kind: 'batch'; batch: RoutingBatch; memory: { row: number; sample: MemorySample }[]; bytes: number }
  | { kind: 'eos' };

export class IpcStreamParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ctx: DecodeContext | null = null;
  private ended = false;
  /** Rows decoded so far. */
  rows = 0;
  /** Size of the message being assembled, once its prefix (and metadata length) is known. */
  private need: { prefix: number; meta: number; body: number | null } | null = null;
  messages = 0;
  bytes = 0;

  constructor(
    /** Names the producer in errors, e.g. "rank 3 (host:pid)". */
    private readonly who: string,
    private readonly maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  ) {}

  /** The stream's trace header, once its schema message arrived. */
  header: TraceHeader | null = null;

  /** Whether the end-of-stream marker was read. */
  get complete(): boolean {
    return this.ended;
  }

  /** Bytes received that are not yet a complete message (lost if the connection ends now). */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Feeds bytes; returns the messages they completed. Throws ProtocolError on a broken stream. */
  push(data: Buffer): StreamEvent[] {
    if (data.length === 0) return [];
    if (this.ended) throw new ProtocolError(`${this.who}: data after the end-of-stream marker`);
    this.chunks.push(data);
    this.buffered += data.length;
    this.bytes += data.length;
    const out: StreamEvent[] = [];
    for (;;) {
      const ev = this.next();
      if (ev === null) break;
      out.push(ev);
      if (ev.kind === 'eos') {
        if (this.buffered > 0) throw new ProtocolError(`${this.who}: data after the end-of-stream marker`);
        break;
      }
    }
    return out;
  }

  /** The first `n` buffered bytes as one contiguous buffer (without consuming them). */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    // Join only the leading chunks that hold those n bytes (never the whole backlog: n is a header's size).
    let k = 0;
    let have = 0;
    while (have < n) have += this.chunks[k++]!.length;
    const joined = Buffer.concat(this.chunks.slice(0, k), have);
    this.chunks.splice(0, k, joined);
    return joined;
  }

  /** Consumes `n` bytes into a fresh 8-aligned buffer. */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafeSlow(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }

  private skip(n: number): void {
    this.take(n);
  }

  private next(): StreamEvent | null {
    if (!this.need) {
      if (this.buffered < 4) return null;
      const head = this.peek(Math.min(8, this.buffered));
      let prefix: number;
      let metaLen: number;
      if (head.readUInt32LE(0) === CONTINUATION) {
        if (this.buffered < 8) return null;
        prefix = 8;
        metaLen = head.readInt32LE(4);
      } else {
        prefix = 4; // pre-0.15 framing, as pyarrow may still write with legacy options
        metaLen = head.readInt32LE(0);
      }
      if (metaLen === 0) {
        this.skip(prefix);
        this.ended = true;
        return { kind: 'eos' };
      }
      if (metaLen < 0 || metaLen > MAX_META_BYTES)
        throw new ProtocolError(`${this.who}: not an Arrow IPC stream (message header of ${metaLen} bytes)`);
      this.need = { prefix, meta: metaLen, body: null };
    }
    const need = this.need;
    if (need.body === null) {
      if (this.buffered < need.prefix + need.meta) return null;
      const head = this.peek(need.prefix + need.meta);
      let message: Message;
      try {
        message = Message.decode(head.subarray(need.prefix, need.prefix + need.meta));
      } catch {
        throw new ProtocolError(`${this.who}: not an Arrow IPC stream (unreadable message header)`);
      }
      const body = message.bodyLength;
      if (!Number.isSafeInteger(body) || body < 0 || body > this.maxBodyBytes)
        throw new ProtocolError(
          `${this.who}: a message body of ${body} bytes exceeds the limit of ${this.maxBodyBytes}`,
        );
      need.body = body;
    }
    const total = need.prefix + need.meta + need.body;
    if (this.buffered < total) return null;
    this.need = null;
    const buf = this.take(total);
    this.messages++;
    // The metadata length is a multiple of 8 in conforming streams; a body off 8-alignment is copied by BodyView.
    const message = Message.decode(buf.subarray(need.prefix, need.prefix + need.meta));
    const body = buf.subarray(need.prefix + need.meta);
    return this.handle(message, body, total);
  }

  private handle(message: Message, body: Buffer, bytes: number): StreamEvent {
    const fail = (why: string): never => {
      throw new ProtocolError(`${this.who}: ${why}`);
    };
    if (message.isSchema()) {
      if (this.ctx) fail('a second schema message in one connection (reconnect to start a new stream)');
      const arrowSchema = message.header() as Schema;
      let header: TraceHeader;
      try {
        header = parseTraceSchema(arrowSchema, this.who);
        this.ctx = { schema: header.schema, slots: columnSlots(arrowSchema, this.who), file: this.who };
      } catch (e) {
        if (e instanceof UserError) throw new ProtocolError(e.message);
        throw e;
      }
      this.header = header;
      return { kind: 'schema', header, columns: optionalColumnsOf(arrowSchema), arrowSchema };
    }
    if (!this.ctx) fail('the stream does not start with a schema message');
    if (message.isDictionaryBatch()) fail('dictionary-encoded columns are not supported');
    if (!message.isRecordBatch()) fail(`unexpected Arrow message type ${message.headerType}`);
    const rb = message.header() as RecordBatch;
    if (rb.compression) fail('compressed record batches are not supported');
    try {
      const view = new BodyView(body, rb, `${this.who} (message ${this.messages})`);
      const { batch, mem } = decodeBatch(view, this.ctx!, true);
      checkBatch(batch, this.ctx!.schema); // sizes and expert ids < E: a producer's garbage never reaches the trace
      this.rows += batch.length;
      const memory: { row: number; sample: MemorySample }[] = [];
      if (mem)
        mem.forEach((cell, row) => {
          if (cell !== null) for (const sample of memoryFromJson(cell, this.who)) memory.push({ row, sample });
        });
      return { kind: 'batch', batch, memory, bytes };
    } catch (e) {
      // Whatever the producer's bytes made the decoder throw is the producer's fault, not ours.
      throw new ProtocolError(e instanceof Error ? e.message : String(e));
    }
  }
}
