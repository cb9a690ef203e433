/**
 * Arrow IPC stream framing, done here rather than through apache-arrow's RecordBatchWriter/Reader so that
 * (a) each record batch reaches the file in one write (crash safety), (b) the reader can index a multi-GB
 * trace by reading message headers only, and (c) batch bodies map onto typed arrays without copies.
 * Flatbuffer (de)serialisation of the headers is apache-arrow's.
 *
 * A message is: 0xFFFFFFFF, int32 metadata length M (M includes padding to 8 bytes), M bytes of flatbuffer
 * Message, then the body (bodyLength bytes, buffers 8-byte aligned). End of stream: 0xFFFFFFFF 0x00000000.
 * https://arrow.apache.org/docs/format/Columnar.html#encapsulated-message-format
 */
import { readSync, writevSync } from 'node:fs';
import { Message, type RecordBatch } from 'apache-arrow/ipc/metadata/message';
import { MessageHeader } from 'apache-arrow/enum';
import type { Schema } from 'apache-arrow/schema';
import { ByteBuffer } from 'flatbuffers';
import { Message as FbMessage } from 'apache-arrow/fb/message';
import { Schema as FbSchema } from 'apache-arrow/fb/schema';
import type { Field as FbField } from 'apache-arrow/fb/field';
import { RecordBatch as FbRecordBatch } from 'apache-arrow/fb/record-batch';
import { DictionaryBatch as FbDictionaryBatch } from 'apache-arrow/fb/dictionary-batch';
import { UserError } from '../core/errors.js';

const CONTINUATION = 0xffffffff;

/** The 8-byte end-of-stream marker. */
export const EOS_BYTES = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** Continuation marker, length and flatbuffer of a message, padded so that the body starts 8-aligned. */
export function frameMessage(message: Message): Uint8Array {
  const fb = Message.encode(message);
  const metaLen = (fb.byteLength + 7) & ~7;
  const out = new Uint8Array(8 + metaLen);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, CONTINUATION, true);
  dv.setInt32(4, metaLen, true);
  out.set(fb, 8);
  return out;
}

export type ScannedMessage =
  | { kind: 'eos'; start: number; end: number }
  /** The file ends inside this message. `total` is the message's full size when its header was readable. */
  | { kind: 'partial'; start: number; present: number; total: number | null; rows: number | null }
  | {
      kind: 'message';
      start: number;
      message: Message;
      /** The decoded header (validated: see decodeMessage). */
      header: Schema | RecordBatch | null;
      /** Where the flatbuffer starts (after the framing). */
      metaOffset: number;
      bodyOffset: number;
      bodyLength: number;
      end: number;
    };

/** Reads exactly `length` bytes at `position` (short only at end of file). */
export function preadFully(fd: number, target: Uint8Array, position: number): number {
  let done = 0;
  while (done < target.byteLength) {
    const n = readSync(fd, target, done, target.byteLength - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

const prefix = new Uint8Array(8);
const prefixView = new DataView(prefix.buffer);

/**
 * The message starting at byte `start`, judged against a file of `fileSize` bytes. Bodies are not read.
 * `file` names the trace in errors.
 */
export function scanMessageAt(fd: number, start: number, fileSize: number, file: string): ScannedMessage | null {
  if (start >= fileSize) return null;
  const avail = fileSize - start;
  if (avail < 4) return { kind: 'partial', start, present: avail, total: null, rows: null };
  preadFully(fd, prefix.subarray(0, Math.min(8, avail)), start);
  let metaLen: number;
  let headerLen: number;
  if (prefixView.getUint32(0, true) === CONTINUATION) {
    if (avail < 8) return { kind: 'partial', start, present: avail, total: null, rows: null };
    metaLen = prefixView.getInt32(4, true);
    headerLen = 8;
  } else {
    metaLen = prefixView.getInt32(0, true); // pre-0.15 stream framing: no continuation marker
    headerLen = 4;
  }
  if (metaLen === 0) return { kind: 'eos', start, end: start + headerLen };
  if (metaLen < 0 || metaLen > 64 * 1024 * 1024)
    throw new UserError(`${file}: corrupt trace: bad message header at byte ${start} (metadata length ${metaLen})`);
  if (avail < headerLen + metaLen) return { kind: 'partial', start, present: avail, total: null, rows: null };
  const meta = new Uint8Array(metaLen);
  preadFully(fd, meta, start + headerLen);
  const { message, header } = decodeMessage(meta, file, start);
  const bodyOffset = start + headerLen + metaLen;
  const bodyLength = message.bodyLength;
  const end = bodyOffset + bodyLength;
  if (end > fileSize) {
    const rows = message.headerType === MessageHeader.RecordBatch ? (header as RecordBatch).length : null;
    return { kind: 'partial', start, present: avail, total: end - start, rows };
  }
  return { kind: 'message', start, message, header, metaOffset: start + headerLen, bodyOffset, bodyLength, end };
}

/**
 * A message's flatbuffer, decoded and checked before anything uses it: apache-arrow turns int64 fields into
 * numbers lazily and throws a TypeError on values past 2^53, and trusts lengths and offsets. Every size the
 * header declares must be a non-negative safe integer, every buffer must lie inside the body, no field node may
 * have more nulls than rows. `at` is the message's byte offset (for the message).
 */
export function decodeMessage(
  meta: Uint8Array,
  file: string,
  at: number,
): { message: Message; header: Schema | RecordBatch | null } {
  const corrupt = (why: string): never => {
    throw new UserError(`${file}: corrupt trace: ${why} in the message at byte ${at}`);
  };
  const tooMany = vectorLengthProblem(meta);
  if (tooMany) corrupt(tooMany);
  let message: Message;
  let header: Schema | RecordBatch | null;
  try {
    message = Message.decode(meta);
    header = message.headerType === MessageHeader.NONE ? null : (message.header() as Schema | RecordBatch);
  } catch {
    return corrupt('unreadable header');
  }
  const body = message.bodyLength;
  if (!Number.isSafeInteger(body) || body < 0) corrupt(`bad body length ${body}`);
  if (message.headerType === MessageHeader.RecordBatch) {
    const rb = header as RecordBatch;
    if (!Number.isSafeInteger(rb.length) || rb.length < 0) corrupt(`bad row count ${rb.length}`);
    for (const [i, b] of rb.buffers.entries())
      if (
        !(
          Number.isSafeInteger(b.offset) &&
          Number.isSafeInteger(b.length) &&
          b.offset >= 0 &&
          b.length >= 0 &&
          b.offset + b.length <= body
        )
      )
        corrupt(`buffer ${i} lies outside the body`);
    for (const [i, n] of rb.nodes.entries())
      if (
        !(
          Number.isSafeInteger(n.length) &&
          Number.isSafeInteger(n.nullCount) &&
          n.length >= 0 &&
          n.nullCount >= 0 &&
          n.nullCount <= n.length
        )
      )
        corrupt(`bad field node ${i}`);
  }
  return { message, header };
}

/**
 * apache-arrow loops over every flatbuffer vector a header declares (fields, children, field nodes, buffers …):
 * a corrupt length of 2^31 runs it out of memory before any check of ours. A vector of n entries takes at least
 * 4·n bytes of the M-byte flatbuffer (16·n for nodes and buffers), and all the fields of a schema together at
 * least 4 bytes each: anything more is corrupt. Returns the problem, or null.
 */
function vectorLengthProblem(meta: Uint8Array): string | null {
  const M = meta.byteLength;
  let budget = Math.floor(M / 4); // fields (with children) a schema of M bytes can hold
  const check = (what: string, n: number, bytesEach = 4): string | null =>
    !Number.isInteger(n) || n < 0 || n * bytesEach > M
      ? `${what} count ${n} does not fit in its ${M}-byte header`
      : null;
  try {
    const msg = FbMessage.getRootAsMessage(new ByteBuffer(meta));
    const top = check('metadata', msg.customMetadataLength());
    if (top) return top;
    const batch = (rb: FbRecordBatch | null): string | null =>
      rb === null
        ? null
        : (check('field node', rb.nodesLength(), 16) ??
          check('buffer', rb.buffersLength(), 16) ??
          check('variadic buffer', rb.variadicBufferCountsLength(), 8));
    const field = (f: FbField | null, depth: number): string | null => {
      if (f === null) return null;
      if (--budget < 0 || depth > 64) return 'schema fields do not fit in its header';
      const own = check('child field', f.childrenLength()) ?? check('field metadata', f.customMetadataLength());
      if (own) return own;
      for (let i = 0; i < f.childrenLength(); i++) {
        const p = field(f.children(i), depth + 1);
        if (p) return p;
      }
      return null;
    };
    switch (msg.headerType()) {
      case MessageHeader.Schema: {
        const sc = msg.header(new FbSchema()) as FbSchema | null;
        if (sc === null) return null;
        const own =
          check('field', sc.fieldsLength()) ??
          check('schema metadata', sc.customMetadataLength()) ??
          check('feature', sc.featuresLength(), 8);
        if (own) return own;
        for (let i = 0; i < sc.fieldsLength(); i++) {
          const p = field(sc.fields(i), 0);
          if (p) return p;
        }
        return null;
      }
      case MessageHeader.RecordBatch:
        return batch(msg.header(new FbRecordBatch()) as FbRecordBatch | null);
      case MessageHeader.DictionaryBatch:
        return batch((msg.header(new FbDictionaryBatch()) as FbDictionaryBatch | null)?.data() ?? null);
      default:
        return null;
    }
  } catch {
    return 'unreadable header';
  }
}

/**
 * Writes `parts` to `fd` with writev, in chunks of at most 1024 buffers, looping only on a short write (so one
 * message normally reaches the file in one system call). Returns the bytes written.
 */
export function writevAll(fd: number, parts: readonly Uint8Array[]): number {
  let written = 0;
  let queue = parts.filter((p) => p.byteLength > 0);
  while (queue.length) {
    const chunk = queue.slice(0, 1024);
    let n = writevSync(fd, chunk);
    written += n;
    const rest: Uint8Array[] = [];
    for (const p of chunk) {
      if (n >= p.byteLength) n -= p.byteLength;
      else {
        rest.push(p.subarray(n));
        n = 0;
      }
    }
    queue = [...rest, ...queue.slice(chunk.length)];
  }
  return written;
}
