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
import { Message } from 'apache-arrow/ipc/metadata/message';
import { MessageHeader } from 'apache-arrow/enum';
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
  let message: Message;
  try {
    message = Message.decode(meta);
  } catch (e) {
    throw new UserError(`${file}: corrupt trace: unreadable message header at byte ${start}`);
  }
  const bodyOffset = start + headerLen + metaLen;
  const bodyLength = message.bodyLength;
  const end = bodyOffset + bodyLength;
  if (end > fileSize) {
    const rows = message.headerType === MessageHeader.RecordBatch ? (message.header() as { length: number }).length : null;
    return { kind: 'partial', start, present: avail, total: end - start, rows };
  }
  return { kind: 'message', start, message, metaOffset: start + headerLen, bodyOffset, bodyLength, end };
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
