/**
 * RoutingStream: the one shape every source of routing produces (engine run, trace reader, importers, listener,
 * watcher, server client) and every consumer takes (store feeds, gate, report, exporters, dashboard).
 *
 * A stream says what it is up front (label, schema, meta, kind, tokens when known), yields its data once through
 * `items()` — token batches, load-count batches, or device-memory samples — and says how it ended through
 * `end()`: complete, cut short (a truncated file), or failed. Consumers never need to know which source it is.
 * Sources that can be re-read from any token (a trace file) also expose `seek`, which replay uses.
 */
import { sliceBatch, type OptionalColumn, type RoutingBatch, type RoutingSchema } from './batch.js';
import type { MemorySample } from './memory.js';
import type { StreamMeta } from './stream.js';

/**
 * Load counts, one row per step (forward pass, training step, scrape interval): what serving engines and
 * training frameworks expose when per-token routing is not available.
 */
export interface CountBatch {
  /** Rows (steps). */
  length: number;
  /** Step id of each row (forward_pass_id, training step, scrape number). */
  step: Float64Array;
  /** Time of each row, ns since the Unix epoch. */
  tNs: BigInt64Array;
  /** What a bin is: a logical expert, or a GPU/rank (no expert ids). */
  axis: 'expert' | 'device';
  /** E when axis = expert; the number of devices when axis = device. */
  bins: number;
  /** length·L·bins assignments routed; index (r·L + l)·bins + b. */
  counts: Float64Array;
}

/** What a count stream's bins are, and what its producer knew (a count trace stores it in its header). */
export interface CountInfo {
  /** What a bin is: a logical expert, or a device (GPU / EP rank) without expert ids. */
  axis: CountBatch['axis'];
  /** Bins per layer: E for axis expert, the number of devices for axis device. */
  bins: number;
  /** Whether schema.topK is the producer's K (false: unknown, schema.topK is 1 and tokens are not derivable). */
  topKKnown: boolean;
  /** Whether schema.experts is the model's E (false for device counts of an unknown model: then it equals bins). */
  expertsKnown: boolean;
  /**
   * The placement the counts were measured under, when the producer had one (SGLang's physical → logical map):
   * devices, and per layer (one entry per MoE layer, or one shared by all) physical slot → logical expert; slot s of
   * S lies on device ⌊s·D/S⌋. Redundant experts are the logical ids that appear more than once.
   */
  placement?: { devices: number; phy2log: number[][] } | null;
}

/** A memory sample and the index of the token whose row carries it (samples taken before that token). */
export interface TimedMemorySample {
  token: number;
  sample: MemorySample;
}

/** Tokens of a token stream, with where they start and the memory samples recorded on their rows. */
export interface TokensItem {
  kind: 'tokens';
  batch: RoutingBatch;
  /** Stream-wide index of the batch's first token. */
  firstToken: number;
  /** Memory samples recorded on these rows (token indices are stream-wide); empty when none. */
  memory: TimedMemorySample[];
  /**
   * What the producer computed from this batch where its data was, up to the batch's end (the engine worker's
   * logits metrics: src/stats/live-logits.ts); consumers that asked the producer for it read it, others ignore it.
   * The producer may leave it out of some batches (live-logits.ts makes its snapshot at most every few ms) and
   * then sends a DerivedItem after its last batch.
   */
  derived?: unknown;
}

/**
 * What the producer computed up to the end of the tokens before it, sent on its own after the last batch (when
 * it held that back from the batch itself): the final live logits metrics. Consumers apply it as a batch's
 * `derived`; others ignore it.
 */
export interface DerivedItem {
  kind: 'derived';
  derived: unknown;
}

export interface CountsItem {
  kind: 'counts';
  batch: CountBatch;
}

/** A device-memory sample taken between batches (live producers; recorded traces carry them on TokensItem). */
export interface MemoryItem {
  kind: 'memory';
  sample: MemorySample;
}

export type StreamItem = TokensItem | CountsItem | MemoryItem | DerivedItem;

/** An incomplete message at the end of a file. */
export interface Truncation {
  /** Byte offset where the incomplete message starts. */
  atByte: number;
  /** Bytes of it present in the file. */
  bytesPresent: number;
  /** Bytes missing to complete it; null when even its header is cut. */
  bytesMissing: number | null;
  /** Rows of the incomplete batch (lost); null when its header is cut. */
  rowsLost: number | null;
}

/** How a stream ended. */
export interface StreamEnd {
  /** The producer finished cleanly (a trace's end-of-stream marker, a generation that ran to the end). */
  complete: boolean;
  /** The data was cut inside a message (a killed recorder, a partial copy); the complete part was yielded. */
  truncated: Truncation | null;
  /** Why the producer failed, when it did. */
  error: string | null;
}

/** Random access into a token stream (a trace file): chunks from any token; replay and seeking use it. */
export interface TokenSeek {
  /** Tokens readable now. */
  readonly tokenCount: number;
  chunks(fromToken?: number): Iterable<TokensItem>;
  /** Every memory sample of the stream, when the source can list them without reading every batch (a trace). */
  memorySamples?(): TimedMemorySample[];
}

export interface RoutingStream {
  /** How results name the source: a trace path, "MODEL over PROMPTS", "run · MODEL". */
  readonly label: string;
  readonly schema: RoutingSchema;
  readonly meta: StreamMeta;
  /** What `items()` carries besides memory samples: token batches, or count batches. */
  readonly kind: 'tokens' | 'counts';
  /** Total rows when known in advance (a trace already written): tokens, or steps of a count stream; else null. */
  readonly tokens: number | null;
  /** The optional per-token columns (step, rank, dropped) its token batches carry; absent when none. */
  readonly columns?: readonly OptionalColumn[];
  /** A count stream's bins and what its producer knew; absent for token streams and producers that do not say. */
  readonly countInfo?: CountInfo;
  /** The header its source recorded, as JSON (a trace file's schema metadata): exporters carry it over as is. */
  readonly recordedHeader?: string;
  /** Caveats shown with results (e.g. a trace without end-of-stream marker). */
  readonly notes: string[];
  /** The data, in stream order. Call it once. */
  items(): AsyncIterable<StreamItem>;
  /** Resolves once `items()` has ended (or at once for streams whose end is known up front). */
  end(): Promise<StreamEnd>;
  /** Random access, when the source is a file that can be re-read; null otherwise. */
  readonly seek: TokenSeek | null;
  /** Stops the producer and releases files; safe to call twice. */
  close(): void;
}

/** The token batches of a stream, skipping memory samples; a count stream is refused. */
export async function* tokenBatches(stream: RoutingStream): AsyncGenerator<RoutingBatch> {
  if (stream.kind !== 'tokens') throw new Error(`${stream.label} carries load counts, not per-token routing`);
  for await (const item of stream.items()) if (item.kind === 'tokens') yield item.batch;
}

/** A stream over token batches already in memory (tests, models run to completion); seekable. */
export function memoryStream(
  label: string,
  schema: RoutingSchema,
  batches: readonly RoutingBatch[],
  meta?: StreamMeta,
): RoutingStream {
  const items: TokensItem[] = [];
  let n = 0;
  for (const batch of batches) {
    items.push({ kind: 'tokens', batch, firstToken: n, memory: [] });
    n += batch.length;
  }
  const total = n;
  return {
    label,
    schema,
    meta: meta ?? { model: null, routers: [], tokenizer: null, devices: [], source: 'memory' },
    kind: 'tokens',
    tokens: total,
    notes: [],
    async *items() {
      yield* items;
    },
    end: async () => ({ complete: true, truncated: null, error: null }),
    seek: {
      tokenCount: total,
      *chunks(fromToken = 0) {
        for (const it of items) {
          const end = it.firstToken + it.batch.length;
          if (end <= fromToken) continue;
          if (it.firstToken >= fromToken) yield it;
          else {
            const from = fromToken - it.firstToken;
            const memory = it.memory.filter((m) => m.token >= fromToken);
            yield {
              kind: 'tokens',
              batch: sliceBatch(it.batch, schema, from, it.batch.length),
              firstToken: fromToken,
              memory,
            };
          }
        }
      },
    },
    close() {},
  };
}

/**
 * A stream whose every item passes through `tap` first (recording alongside a view: the run command writes each
 * item to a trace while the TUI consumes the same stream). The tap must not keep reused buffers.
 */
export function tapStream(stream: RoutingStream, tap: (item: StreamItem) => void): RoutingStream {
  return {
    get label() {
      return stream.label;
    },
    schema: stream.schema,
    meta: stream.meta,
    kind: stream.kind,
    get tokens() {
      return stream.tokens;
    },
    get notes() {
      return stream.notes;
    },
    async *items() {
      for await (const item of stream.items()) {
        tap(item);
        yield item;
      }
    },
    end: () => stream.end(),
    seek: stream.seek,
    close: () => stream.close(),
  };
}
