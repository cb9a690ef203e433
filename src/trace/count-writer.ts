/**
 * CountTraceWriter: records CountBatches (load counts per step, layer and bin) into a count trace — the same
 * Arrow IPC stream container as token traces, with header `kind: "counts"` and columns step, t_ns, counts
 * (docs/trace-format.md § Count traces).
 *
 * Same crash safety as TraceWriter: pending rows go to the file as one record batch in one writev when
 * `batchRows` are pending and at least every second, so a killed recorder (a `watch --record` stopped with
 * kill -9) loses at most the last second of rows. `atomic: true` (importers) writes a temporary file and
 * renames it into place on close.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { Message } from 'apache-arrow/ipc/metadata/message';
import type { RoutingSchema } from '../core/batch.js';
import { checkCountBatch, type CountAxis, type CountBatch } from '../core/count-batch.js';
import type { StreamMeta } from '../core/stream.js';
import { UserError, describeError } from '../core/errors.js';
import { moescopeVersion } from '../core/version.js';
import { OutputFile, resolveOutput } from '../core/output.js';
import {
  TRACE_FORMAT_VERSION,
  arrowCountSchemaFor,
  routersFor,
  type CountTraceInfo,
  type TraceHeader,
} from './arrow-schema.js';
import { MessageBody } from './encode.js';
import { EOS_BYTES, frameMessage, writevAll } from './ipc.js';

export interface CountTraceWriterOptions {
  /** layers: the MoE layer ids; experts: E (for axis device without a known E: the number of devices). */
  schema: RoutingSchema;
  meta: StreamMeta;
  axis: CountAxis;
  /** Bins per layer: E for axis expert, devices for axis device. */
  bins: number;
  /** Whether schema.topK is the producer's real K (default true). */
  topKKnown?: boolean;
  /** Whether schema.experts is the model's real E (default true). */
  expertsKnown?: boolean;
  placement?: CountTraceInfo['placement'];
  /** Rows per record batch (default: ~4 MiB of counts, 1…65536). */
  batchRows?: number;
  /** Longest time rows wait before being flushed, ms (default and maximum 1000). */
  flushIntervalMs?: number;
  /** Write a temporary file and rename it into place on close (converters). */
  atomic?: boolean;
  /** The command's input files: the trace is never written over one of them (src/core/output.ts). */
  inputs?: readonly string[];
  createdAt?: Date;
}

export class CountTraceWriter {
  readonly path: string;
  readonly header: TraceHeader;
  readonly batchRows: number;
  private readonly layers: number;
  private readonly width: number;
  private readonly atomic: boolean;
  /** The temporary file of an atomic writer (renamed into place by close()). */
  private readonly out: OutputFile | null;
  private fd: number | null;
  private step: Float64Array;
  private tNs: BigInt64Array;
  private counts: Float64Array;
  private n = 0;
  private rows = 0;
  private bytes = 0;
  private lastFlush = Date.now();
  private readonly intervalMs: number;
  private readonly timer: NodeJS.Timeout;
  private uninstall: (() => void) | null = null;

  static create(path: string, opts: CountTraceWriterOptions): CountTraceWriter {
    return new CountTraceWriter(path, opts);
  }

  private constructor(path: string, opts: CountTraceWriterOptions) {
    this.path = path;
    const schema = { ...opts.schema, layers: [...opts.schema.layers] };
    this.header = {
      format: TRACE_FORMAT_VERSION,
      moescope: moescopeVersion(),
      createdAt: (opts.createdAt ?? new Date()).toISOString(),
      schema,
      meta: { ...opts.meta, routers: routersFor(schema, opts.meta) },
      kind: 'counts',
      counts: {
        axis: opts.axis,
        bins: opts.bins,
        topKKnown: opts.topKKnown ?? true,
        expertsKnown: opts.expertsKnown ?? true,
        ...(opts.placement ? { placement: opts.placement } : {}),
      },
    };
    const arrowSchema = arrowCountSchemaFor(this.header); // validates
    this.layers = schema.layers.length;
    this.width = this.layers * opts.bins;
    this.batchRows = opts.batchRows ?? Math.max(1, Math.min(65536, Math.floor((4 << 20) / (this.width * 8 + 16))));
    if (!Number.isInteger(this.batchRows) || this.batchRows < 1) throw new RangeError('batchRows must be ≥ 1');
    this.step = new Float64Array(this.batchRows);
    this.tNs = new BigInt64Array(this.batchRows);
    this.counts = new Float64Array(this.batchRows * this.width);
    this.intervalMs = Math.min(1000, Math.max(1, opts.flushIntervalMs ?? 1000));
    this.atomic = opts.atomic ?? false;
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
    try {
      this.writeParts([frameMessage(Message.from(arrowSchema))]);
    } catch (e) {
      this.discard(this.fd);
      this.fd = null;
      throw e;
    }
    this.timer = setInterval(() => {
      if (Date.now() - this.lastFlush >= this.intervalMs - 5) this.flush();
    }, this.intervalMs);
    this.timer.unref();
  }

  get rowsWritten(): number {
    return this.rows + this.n;
  }
  get bytesWritten(): number {
    return this.bytes;
  }
  get closed(): boolean {
    return this.fd === null;
  }

  /** Appends rows (copied before this returns). Axis and bins must be the trace's. */
  write(b: CountBatch): void {
    if (this.fd === null) throw new Error(`CountTraceWriter for ${this.path} is closed`);
    const info = this.header.counts!;
    if (b.axis !== info.axis || b.bins !== info.bins)
      throw new RangeError(`CountBatch is ${b.axis} × ${b.bins}, the trace holds ${info.axis} × ${info.bins}`);
    checkCountBatch(b, this.layers);
    const W = this.width;
    for (let r = 0; r < b.length; r++) {
      const i = this.n++;
      this.step[i] = b.step[r]!;
      this.tNs[i] = b.tNs[r]!;
      this.counts.set(b.counts.subarray(r * W, (r + 1) * W), i * W);
      if (this.n === this.batchRows) this.flush();
    }
    if (Date.now() - this.lastFlush >= this.intervalMs) this.flush();
  }

  /** Writes the pending rows as one record batch now. */
  flush(): void {
    this.lastFlush = Date.now();
    if (this.fd === null || this.n === 0) return;
    const n = this.n;
    const steps = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const s = this.step[i]!;
      if (!Number.isSafeInteger(s)) throw new RangeError(`CountBatch step ${s} is not an integer`);
      steps[i] = BigInt(s);
    }
    this.writeParts(encodeCounts(n, steps, this.tNs.subarray(0, n), this.counts.subarray(0, n * this.width)));
    this.rows += n;
    this.n = 0;
  }

  close(): void {
    if (this.fd === null) return;
    this.flush();
    this.writeParts([EOS_BYTES]);
    clearInterval(this.timer);
    const fd = this.fd;
    this.fd = null;
    this.uninstall?.();
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

  /** Stops without finishing; an atomic writer leaves nothing at `path`. */
  abort(): void {
    if (this.fd === null) return;
    clearInterval(this.timer);
    const fd = this.fd;
    this.fd = null;
    this.uninstall?.();
    this.discard(fd);
  }

  /** Finish the file on SIGINT / SIGTERM / SIGHUP or exit (an atomic writer aborts instead); see TraceWriter. */
  closeOnExit(opts: { onSignal?: (signal: NodeJS.Signals) => void } = {}): () => void {
    const finish = () => (this.atomic ? this.abort() : this.close());
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
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

  private discard(fd: number): void {
    if (this.out) {
      this.out.abort(); // closes fd and removes the temporary file
      return;
    }
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
  }

  private writeParts(parts: Uint8Array[]): void {
    try {
      this.bytes += writevAll(this.fd!, parts);
    } catch (e) {
      throw new UserError(`cannot write trace ${this.path}: ${describeError(e)}`);
    }
  }
}

/** One record-batch message of a count trace: step int64, t_ns timestamp[ns], counts fixed_size_list<double>. */
function encodeCounts(n: number, step: BigInt64Array, tNs: BigInt64Array, counts: Float64Array): Uint8Array[] {
  const body = new MessageBody();
  body.node(n);
  body.buffer(null);
  body.buffer(step);
  body.node(n);
  body.buffer(null);
  body.buffer(tNs);
  body.node(n);
  body.buffer(null);
  body.node(counts.length);
  body.buffer(null);
  body.buffer(counts);
  return body.message(n);
}
