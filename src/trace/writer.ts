/**
 * TraceWriter: records RoutingBatches into an Arrow IPC stream file.
 *
 * Crash safety: every record batch goes to the file in a single writev, when the pending batch is full and at
 * least every `flushIntervalMs` (≤ 1 s, by timer and on each write), so a `kill -9` loses only the rows not yet
 * flushed; the reader reports a file without end-of-stream marker as interrupted and reads every batch in it.
 * `close()` flushes and writes the end-of-stream marker; `closeOnExit()` does it on SIGINT/SIGTERM/SIGHUP.
 */
import { closeSync, fsyncSync, openSync, writev, writevSync } from 'node:fs';
import { Message } from 'apache-arrow/ipc/metadata/message';
import type { OptionalColumn, RoutingBatch, RoutingSchema } from '../core/batch.js';
import { OPTIONAL_COLUMNS, sliceBatch } from '../core/batch.js';
import type { MemorySample } from '../core/memory.js';
import type { StreamMeta } from '../core/stream.js';
import { UserError, describeError } from '../core/errors.js';
import { OutputFile, resolveOutput } from '../core/output.js';
import { moescopeVersion } from '../core/version.js';
import { ColumnsBuffer } from './columns.js';
import { checkBatch, encodeBatch } from './encode.js';
import { TRACE_FORMAT_VERSION, arrowSchemaFor, routersFor, type TraceHeader } from './arrow-schema.js';
import { EOS_BYTES, frameMessage } from './ipc.js';
import { memoryToJson } from './memory-json.js';

export interface TraceWriterOptions {
  schema: RoutingSchema;
  meta: StreamMeta;
  /** Tokens per record batch (default: as many as fit in ~4 MiB, at least 16, at most 65536). */
  batchTokens?: number;
  /** Longest time rows wait before being flushed, in ms (default and maximum 1000). */
  flushIntervalMs?: number;
  /**
   * Write to a temporary file next to `path` and rename it into place on close(); abort() (or a crash) leaves
   * nothing at `path`. For converters (import, synth); a live recording writes `path` directly so it can be followed.
   */
  atomic?: boolean;
  /** Creation time recorded in the header (default: now). */
  createdAt?: Date;
  /**
   * Optional columns to write (docs/trace-format.md): `step`, `rank`, `dropped`. A batch without `step` or
   * `dropped` writes nulls there; a trace with `rank` needs it on every batch. Columns a batch has but the
   * trace does not are not written.
   */
  columns?: readonly OptionalColumn[];
  /** Files the command reads: the trace is never written over one of them (src/core/output.ts). */
  inputs?: readonly string[];
  /**
   * Write record batches from libuv's thread pool instead of the calling thread (a live recorder whose thread
   * also parses sockets or draws: `moescope listen`). Messages still reach the file whole and in order (one
   * positional writev each, one at a time); up to BACKLOG_BYTES may wait, beyond that write() writes them
   * synchronously; close() writes whatever has not been confirmed synchronously, so it finishes the file
   * as a synchronous writer does. Not with `atomic`.
   */
  background?: boolean;
  /**
   * Background writer: called with true when the queue grows past BACKLOG_HIGH_BYTES (the disk is slower than
   * the stream: the caller should stop reading its sources) and with false once it is below BACKLOG_LOW_BYTES.
   */
  onBacklog?: (over: boolean) => void;
}

const TARGET_BATCH_BYTES = 4 * 1024 * 1024;
const IOV_MAX = 1024;
/**
 * A batch of at least this many rows (or batchTokens, when smaller) arriving with nothing pending is written as
 * its own record batch, straight from its arrays: batches that big are already a good record-batch size, and
 * copying them into the pending batch first cost a copy of every token (the listener's batches are 1,024 rows).
 */
const DIRECT_MIN_ROWS = 256;
/** Background writer: onBacklog(true) above HIGH, onBacklog(false) below LOW, synchronous writes above BACKLOG_BYTES. */
const BACKLOG_HIGH_BYTES = 32 << 20;
const BACKLOG_LOW_BYTES = 8 << 20;
const BACKLOG_BYTES = 256 << 20;

/** A message queued for a background write: its parts and where it goes in the file. */
interface QueuedWrite {
  parts: Uint8Array[];
  position: number;
  length: number;
}

/** Default tokens per batch for a schema: ~4 MiB of routing payload per batch. */
export function defaultBatchTokens(s: RoutingSchema): number {
  const L = s.layers.length;
  const perToken = 32 + L * s.topK * 4 + (s.hasLogits ? L * s.experts * 2 : 0);
  return Math.max(16, Math.min(65536, Math.floor(TARGET_BATCH_BYTES / perToken)));
}

export class TraceWriter {
  /** Where the finished trace will be. */
  readonly path: string;
  readonly schema: RoutingSchema;
  readonly header: TraceHeader;
  readonly batchTokens: number;
  /** The optional columns this trace holds. */
  readonly columns: readonly OptionalColumn[];
  private readonly atomic: boolean;
  /** The temporary file of an atomic writer (renamed into place by close()). */
  private readonly out: OutputFile | null;
  private fd: number | null;
  private pending: ColumnsBuffer;
  private pendingMemory: MemorySample[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly intervalMs: number;
  private lastFlush = Date.now();
  private tokens = 0;
  private batches = 0;
  private bytes = 0;
  private uninstall: (() => void) | null = null;
  /** File offset of the next message (background writes are positional). */
  private position = 0;
  private readonly background: boolean;
  /** Background messages not yet confirmed written, in file order; the first may be in flight. */
  private queue: QueuedWrite[] = [];
  private queuedBytes = 0;
  private inFlight: QueuedWrite | null = null;
  /** A background write failed: thrown (as a UserError) by the next write, flush or close. */
  private failure: unknown = null;
  /** close() ran while a background write was in flight: its callback closes the descriptor. */
  private closeWhenIdle: number | null = null;
  private readonly onBacklog: ((over: boolean) => void) | null;
  private over = false;

  /** Creates (truncates) the file and writes the schema message. */
  static create(path: string, opts: TraceWriterOptions): TraceWriter {
    return new TraceWriter(path, opts);
  }

  private constructor(path: string, opts: TraceWriterOptions) {
    this.path = path;
    this.schema = { ...opts.schema, layers: [...opts.schema.layers] };
    this.header = {
      format: TRACE_FORMAT_VERSION,
      moescope: moescopeVersion(),
      createdAt: (opts.createdAt ?? new Date()).toISOString(),
      schema: this.schema,
      meta: { ...opts.meta, routers: routersFor(this.schema, opts.meta) },
    };
    this.columns = OPTIONAL_COLUMNS.filter((c) => opts.columns?.includes(c));
    const arrowSchema = arrowSchemaFor(this.header, this.columns); // validates the schema
    this.batchTokens = opts.batchTokens ?? defaultBatchTokens(this.schema);
    if (!Number.isInteger(this.batchTokens) || this.batchTokens < 1) throw new RangeError('batchTokens must be ≥ 1');
    this.intervalMs = Math.min(1000, Math.max(1, opts.flushIntervalMs ?? 1000));
    this.atomic = opts.atomic ?? false;
    this.background = (opts.background ?? false) && !this.atomic;
    this.onBacklog = opts.onBacklog ?? null;
    if (this.atomic) {
      this.out = OutputFile.create(path, { inputs: opts.inputs, what: 'trace' });
      this.fd = this.out.fd;
    } else {
      // A recording others may follow is written in place, after the same checks (never over an input).
      this.out = null;
      resolveOutput(path, opts.inputs, 'trace');
      try {
        this.fd = openSync(path, 'w');
      } catch (e) {
        throw new UserError(`cannot create trace ${path}: ${describeError(e)}`);
      }
    }
    this.pending = new ColumnsBuffer(this.schema, this.batchTokens, this.columns);
    try {
      this.writeSync([frameMessage(Message.from(arrowSchema))]);
    } catch (e) {
      this.discard(this.fd); // e.g. disk full: no caller holds this writer yet to abort it
      this.fd = null;
      throw e;
    }
    this.timer = setInterval(() => this.flushIfIdle(), this.intervalMs);
    this.timer.unref();
  }

  get tokensWritten(): number {
    return this.tokens + this.pending.length;
  }
  get batchesWritten(): number {
    return this.batches;
  }
  /** Bytes of the file so far (a background writer's queued messages included). */
  get bytesWritten(): number {
    return this.bytes;
  }
  /** Bytes a background writer has queued and not yet seen written. */
  get backlogBytes(): number {
    return this.queuedBytes;
  }
  get closed(): boolean {
    return this.fd === null;
  }

  /**
   * Appends a batch. Its rows are copied or written before this returns, so the caller may reuse its arrays —
   * except with `background`, where a batch written directly is read by the thread pool later: the caller must
   * not change its arrays (the listener's batches are views of buffers nothing else writes).
   * Batches of at least `batchTokens` rows arriving with nothing pending are written without copying.
   */
  write(batch: RoutingBatch, opts: { checked?: boolean } = {}): void {
    this.ensureOpen();
    // `checked`: the caller already ran checkBatch on this batch against this schema (the listener does, per batch).
    if (!opts.checked) checkBatch(batch, this.schema, this.columns);
    const n = batch.length;
    const C = this.batchTokens;
    const direct = Math.min(C, DIRECT_MIN_ROWS);
    let i = 0;
    while (i < n) {
      if (this.pending.length === 0 && n - i >= direct) {
        const end = Math.min(n, i + C);
        const part = i === 0 && end === n ? batch : sliceBatch(batch, this.schema, i, end);
        this.writeBatch(part, this.takeMemory(part.length));
        i = end;
        continue;
      }
      const take = Math.min(this.pending.room, n - i);
      const row = this.pending.length;
      this.pending.append(batch, i, i + take);
      if (this.pendingMemory.length) this.pending.setMem(row, this.drainMemory());
      i += take;
      if (this.pending.room === 0) this.flush();
    }
    if (Date.now() - this.lastFlush >= this.intervalMs) this.flush();
  }

  /** Records a device-memory sample; it is stored with the next token written (docs/trace-format.md). */
  writeMemory(sample: MemorySample): void {
    this.ensureOpen();
    this.pendingMemory.push(sample);
  }

  /** Writes the pending rows as one record batch now. */
  flush(): void {
    this.lastFlush = Date.now();
    if (this.fd === null || this.pending.length === 0) return;
    const { batch, mem } = this.pending.view();
    this.writeBatch(batch, mem);
    // A background write still reads the pending arrays: the next rows go to fresh ones.
    if (this.background) this.pending = new ColumnsBuffer(this.schema, this.batchTokens, this.columns);
    else this.pending.reset();
  }

  /** Flushes, writes the end-of-stream marker and closes (renaming into place when atomic). Idempotent. */
  close(): void {
    if (this.fd === null) return;
    this.flush();
    this.pendingMemory = []; // samples after the last token have no row to ride on (docs/trace-format.md)
    this.drainSync();
    this.writeSync([EOS_BYTES]);
    clearInterval(this.timer);
    const fd = this.fd;
    this.fd = null;
    this.uninstall?.();
    if (this.inFlight) {
      // The thread pool still writes (bytes drainSync already wrote, at the same place): close after it.
      this.closeWhenIdle = fd;
      return;
    }
    if (this.out) {
      try {
        fsyncSync(fd);
      } catch (e) {
        this.out.abort();
        throw new UserError(`cannot finish trace ${this.path}: ${describeError(e)}`);
      }
      this.out.commit(); // renames into place; on failure removes the temporary file and throws a UserError
      return;
    }
    try {
      closeSync(fd);
    } catch (e) {
      throw new UserError(`cannot finish trace ${this.path}: ${describeError(e)}`);
    }
  }

  /** Best-effort close of `fd` and, for an atomic writer, removal of its temporary file. */
  private discard(fd: number): void {
    if (this.out) {
      this.out.abort(); // closes fd and removes the temporary file
      return;
    }
    try {
      closeSync(fd);
    } catch {
      /* already closed, or being discarded anyway */
    }
  }

  /**
   * Stops without finishing: pending rows are dropped. An atomic writer removes its temporary file, so nothing
   * is left at `path`; a direct writer leaves the batches already written (read back as an interrupted trace).
   */
  abort(): void {
    if (this.fd === null) return;
    clearInterval(this.timer);
    const fd = this.fd;
    this.fd = null;
    this.uninstall?.();
    this.queue = [];
    this.queuedBytes = 0;
    if (this.inFlight) {
      this.closeWhenIdle = fd;
      return;
    }
    this.discard(fd);
  }

  /**
   * Opt-in: finish the file cleanly when the process gets SIGINT, SIGTERM or SIGHUP, or exits without close()
   * (an atomic writer aborts instead: a conversion cut short must not land at `path` looking complete).
   * After that, `onSignal(signal)` is called (the CLI decides how to exit); without it, and with no other
   * listener for that signal, the signal is re-raised so the process ends as it would have. Returns an
   * uninstaller (also run by close/abort). Handlers run only when the event loop turns: a recorder that
   * awaits between batches is interruptible, a synchronous conversion loop is not.
   */
  closeOnExit(opts: { onSignal?: (signal: NodeJS.Signals) => void; signals?: NodeJS.Signals[] } = {}): () => void {
    const signals = opts.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const finish = () => (this.atomic ? this.abort() : this.close());
    const onExit = () => finish();
    const handlers = signals.map((sig) => {
      const h = () => {
        uninstall();
        finish();
        if (opts.onSignal) opts.onSignal(sig);
        else if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      };
      process.on(sig, h);
      return [sig, h] as const;
    });
    process.on('exit', onExit);
    const uninstall = () => {
      for (const [sig, h] of handlers) process.off(sig, h);
      process.off('exit', onExit);
      if (this.uninstall === uninstall) this.uninstall = null;
    };
    this.uninstall?.();
    this.uninstall = uninstall;
    return uninstall;
  }

  private flushIfIdle(): void {
    if (Date.now() - this.lastFlush >= this.intervalMs - 5) this.flush();
  }

  private ensureOpen(): void {
    if (this.fd === null) throw new Error(`TraceWriter for ${this.path} is closed`);
    if (this.failure !== null) throw new UserError(`cannot write trace ${this.path}: ${describeError(this.failure)}`);
  }

  private drainMemory(): string {
    const json = memoryToJson(this.pendingMemory);
    this.pendingMemory = [];
    return json;
  }

  private takeMemory(n: number): (string | null)[] | null {
    if (this.pendingMemory.length === 0) return null;
    const mem = new Array<string | null>(n).fill(null);
    mem[0] = this.drainMemory();
    return mem;
  }

  private writeBatch(batch: RoutingBatch, mem: (string | null)[] | null): void {
    const enc = encodeBatch(batch, this.schema, mem, this.columns);
    this.writeParts(enc.parts);
    this.tokens += batch.length;
    this.batches++;
  }

  /** One message: written now, or (background) queued for the thread pool behind the messages before it. */
  private writeParts(parts: Uint8Array[]): void {
    if (!this.background) {
      this.writeSync(parts);
      return;
    }
    let length = 0;
    for (const p of parts) length += p.byteLength;
    this.queue.push({ parts, position: this.position, length });
    this.position += length;
    this.bytes += length;
    this.queuedBytes += length;
    // The disk is slower than the stream: the caller is asked to stop reading (onBacklog); if it cannot (or goes
    // on), past BACKLOG_BYTES this thread waits for the disk itself, so memory stays bounded either way.
    if (this.queuedBytes > BACKLOG_BYTES) this.drainSync();
    else this.pump();
    this.backlogChanged();
  }

  /** Starts the next background write when none is in flight. */
  private pump(): void {
    if (this.inFlight || this.queue.length === 0 || this.fd === null) return;
    const w = (this.inFlight = this.queue[0]!);
    const parts = w.parts.filter((p) => p.byteLength > 0).slice(0, IOV_MAX);
    writev(this.fd, parts, w.position, (err, n) => {
      this.inFlight = null;
      if (this.closeWhenIdle !== null) {
        const fd = this.closeWhenIdle;
        this.closeWhenIdle = null;
        this.discardFd(fd);
        return;
      }
      if (this.queue[0] !== w) return this.pump(); // drainSync wrote it meanwhile
      if (err) {
        this.failure = err;
        return;
      }
      // A short write (or more than IOV_MAX parts): the rest goes next, at its place.
      const rest = skipBytes(w.parts, n);
      if (rest.length) {
        w.parts = rest;
        w.position += n;
        w.length -= n;
      } else this.queue.shift();
      this.queuedBytes -= n;
      this.pump();
      this.backlogChanged();
    });
  }

  private backlogChanged(): void {
    if (!this.onBacklog) return;
    if (!this.over && this.queuedBytes > BACKLOG_HIGH_BYTES) this.onBacklog((this.over = true));
    else if (this.over && this.queuedBytes < BACKLOG_LOW_BYTES) this.onBacklog((this.over = false));
  }

  /**
   * Writes every queued background message synchronously, in order, at its place — the one in flight too (the
   * thread pool writes the same bytes there): after it the file holds everything written so far.
   */
  private drainSync(): void {
    if (this.failure !== null) throw new UserError(`cannot write trace ${this.path}: ${describeError(this.failure)}`);
    const queue = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const w of queue) this.writeSync(w.parts, w.position);
    this.backlogChanged();
  }

  private discardFd(fd: number): void {
    try {
      closeSync(fd);
    } catch {
      /* closing after the last background write: nothing more to report */
    }
  }

  /**
   * One message → one writev (looping only on a short write), so a killed process never leaves half a batch
   * unless the kernel itself wrote short. `position`: a background writer's place for it (else the file's end).
   */
  private writeSync(parts: Uint8Array[], position: number | null = null): void {
    const fd = this.fd!;
    try {
      let queue = parts.filter((p) => p.byteLength > 0);
      // Positional always: a background writer's file offset never moves (its writes are all positional).
      let at = position ?? this.position;
      while (queue.length) {
        const chunk = queue.slice(0, IOV_MAX);
        const n = writevSync(fd, chunk, at);
        at += n;
        if (position === null) {
          this.bytes += n;
          this.position += n;
        }
        queue = [...skipBytes(chunk, n), ...queue.slice(chunk.length)];
      }
    } catch (e) {
      throw new UserError(`cannot write trace ${this.path}: ${describeError(e)}`);
    }
  }
}

/** `parts` after their first `n` bytes. */
function skipBytes(parts: Uint8Array[], n: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const p of parts) {
    if (n >= p.byteLength) n -= p.byteLength;
    else {
      rest.push(n > 0 ? p.subarray(n) : p);
      n = 0;
    }
  }
  return rest;
}
