/**
 * Where importers put tokens: an atomic TraceWriter (temp file renamed on success, removed on failure), opened
 * once the importer knows the schema, fed tokens one at a time (through core's RoutingBatchBuilder) or by batch.
 */
import {
  RoutingBatchBuilder,
  type OptionalColumn,
  type RoutingBatch,
  type RoutingSchema,
  type TokenRouting,
} from '../../core/batch.js';
import type { MemorySample } from '../../core/memory.js';
import type { StreamMeta } from '../../core/stream.js';
import { validateSchema } from '../arrow-schema.js';
import { TraceWriter } from '../writer.js';

export interface ImportResult {
  tokens: number;
  /** What was written: a token trace (default) or a count trace. */
  kind?: 'tokens' | 'counts';
  /** Rows (steps) of a count trace. */
  steps?: number;
  schema: RoutingSchema;
  /** Things the user should know (skipped records, inferred values). */
  notes: string[];
}

export class TraceSink {
  private writer: TraceWriter | null = null;
  private builder: RoutingBatchBuilder | null = null;
  private early: MemorySample[] = [];
  readonly notes: string[] = [];

  constructor(private readonly output: string) {}

  get opened(): boolean {
    return this.writer !== null;
  }

  get schema(): RoutingSchema {
    if (!this.writer) throw new Error('TraceSink not opened');
    return this.writer.schema;
  }

  open(
    schema: RoutingSchema,
    meta: Omit<StreamMeta, 'routers'> & { routers?: StreamMeta['routers'] },
    columns: readonly OptionalColumn[] = [],
  ): void {
    validateSchema(schema);
    this.writer = TraceWriter.create(this.output, { schema, meta: { routers: [], ...meta }, atomic: true, columns });
    this.builder = new RoutingBatchBuilder(schema, this.writer.batchTokens, this.writer.columns);
    for (const m of this.early) this.writer.writeMemory(m);
    this.early = [];
  }

  push(token: TokenRouting): void {
    this.builder!.push(token);
    if (this.builder!.full) this.writer!.write(this.builder!.finish());
  }

  write(batch: RoutingBatch): void {
    this.drain();
    this.writer!.write(batch);
  }

  /** A memory sample, stored with the next token pushed. */
  memory(sample: MemorySample): void {
    if (!this.writer) {
      this.early.push(sample);
      return;
    }
    this.drain(); // tokens already pushed come before the sample
    this.writer.writeMemory(sample);
  }

  finish(): ImportResult {
    this.drain();
    const w = this.writer!;
    w.close();
    return { tokens: w.tokensWritten, schema: w.schema, notes: this.notes };
  }

  abort(): void {
    this.writer?.abort();
  }

  private drain(): void {
    if (this.builder && this.builder.length > 0) this.writer!.write(this.builder.finish());
  }
}
