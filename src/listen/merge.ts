/**
 * Merging the routing of several ranks into one trace (docs/live.md § Merging ranks), for `moescope merge` and
 * the listener alike.
 *
 * Data- and expert-parallel ranks each route their own tokens through every MoE layer: their rows are kept as they
 * are, each tagged with its rank (`seq` stays the rank's own, so a sequence is (rank, seq)); the load of a step is
 * then the sum of every rank's counts for it. Pipeline stages (ranks holding different layer sets) are REFUSED
 * with one line: joining them would need every stage to identify the same token the same way (step, micro-batch,
 * position), which neither Megatron's nor the probe's records guarantee, and a wrong join is silent.
 *
 * The file merge streams: it holds one record batch per input, and writes rows in (step, time) order — a k-way
 * merge taking from each input the longest run of rows that comes before every other input's next row (the
 * writer copies runs with typed-array `set`s).
 */
import {
  NO_STEP,
  OPTIONAL_COLUMNS,
  expertsAt,
  mixedShapes,
  sliceBatch,
  topKAt,
  type OptionalColumn,
  type RoutingBatch,
  type RoutingSchema,
} from '../core/batch.js';
import { UserError } from '../core/errors.js';
import { resolveOutput } from '../core/output.js';
import { openTrace, type TraceReader } from '../trace/reader.js';
import { TraceWriter } from '../trace/writer.js';
import type { TimedMemorySample } from '../trace/memory-json.js';

const range = (ids: number[]) => {
  if (ids.length > 1 && ids.every((x, i) => i === 0 || x === ids[i - 1]! + 1))
    return `${ids[0]}…${ids[ids.length - 1]}`;
  return ids.length > 8 ? `${ids.slice(0, 8).join(',')},…` : ids.join(',');
};

/** How `b` differs from the reference `a`, in words, or null when they can be merged. */
export function schemaDisagreement(a: RoutingSchema, b: RoutingSchema): string | null {
  if (a.layers.join() !== b.layers.join())
    return (
      `it routes MoE layers ${range(b.layers)}, the others ${range(a.layers)} ` +
      `(pipeline stages are not merged: run one listener, or one merge, per stage)`
    );
  if (a.experts !== b.experts) return `${b.experts} experts per layer, the others ${a.experts}`;
  if (a.topK !== b.topK) return `top-${b.topK}, the others top-${a.topK}`;
  // Layers that differ in E or K: every layer's own shape must agree too (the same model on every rank).
  if (mixedShapes(a) || mixedShapes(b)) {
    const l = a.layers.findIndex((_, i) => expertsAt(a, i) !== expertsAt(b, i) || topKAt(a, i) !== topKAt(b, i));
    if (l >= 0)
      return `its layer ${b.layers[l]} routes over ${expertsAt(b, l)} experts top-${topKAt(b, l)}, the others' over ${expertsAt(a, l)} experts top-${topKAt(a, l)}`;
  }
  if (a.scoring !== b.scoring) return `${b.scoring} scoring, the others ${a.scoring}`;
  if (a.hasLogits !== b.hasLogits)
    return b.hasLogits ? 'it sends logits, the others do not' : 'it sends no logits, the others do';
  return null;
}

export interface MergeResult {
  tokens: number;
  perInput: { path: string; tokens: number; ranks: number[] }[];
  schema: RoutingSchema;
  notes: string[];
  /** Inputs cut short (their complete tokens were merged). */
  truncated: { path: string; cut: NonNullable<TraceReader['truncated']>; tokens: number }[];
}

/** One input being merged: its current batch and row, the rank of its rows, and its ordering key. */
class Cursor {
  private it: Iterator<{ batch: RoutingBatch; memory: TimedMemorySample[]; firstToken: number }>;
  batch: RoutingBatch | null = null;
  memory: TimedMemorySample[] = [];
  firstToken = 0;
  row = 0;
  /** Step carried over rows without one (NO_STEP sorts with the step before it). */
  private lastStep = 0;
  tokens = 0;

  constructor(
    readonly trace: TraceReader,
    readonly rank: number | null,
    private readonly byStep: boolean,
  ) {
    this.it = trace.chunks(0)[Symbol.iterator]();
    this.advance();
  }

  private advance(): void {
    for (;;) {
      const r = this.it.next();
      if (r.done) {
        this.batch = null;
        return;
      }
      if (r.value.batch.length === 0) continue;
      this.batch = r.value.batch;
      this.memory = r.value.memory;
      this.firstToken = r.value.firstToken;
      this.row = 0;
      return;
    }
  }

  /** Ordering key of row i of the current batch: [step, time]. */
  key(i: number): [number, bigint] {
    const b = this.batch!;
    let step = 0;
    if (this.byStep) {
      const s = b.step![i]!;
      step = s === NO_STEP ? this.lastStep : s;
    }
    return [step, b.tNs[i]!];
  }

  /** Rows [row, end) are consumed; moves on (to the next batch when done). */
  consume(end: number): void {
    if (this.byStep) {
      const b = this.batch!;
      for (let i = this.row; i < end; i++) if (b.step![i] !== NO_STEP) this.lastStep = b.step![i]!;
    }
    this.tokens += end - this.row;
    this.row = end;
    if (this.row >= this.batch!.length) this.advance();
  }
}

const before = (a: [number, bigint], b: [number, bigint]) => a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);

/**
 * `moescope merge INPUTS… -o OUTPUT`: one trace holding every rank's tokens. Inputs without a `rank` column are
 * ranks 0, 1, 2… in the order given; inputs with one keep theirs (two inputs holding the same rank are refused).
 */
export function mergeTraces(inputs: string[], output: string): MergeResult {
  if (inputs.length < 1) throw new UserError('merge needs at least one input trace');
  resolveOutput(output, inputs, 'merge output'); // never an input (src/core/output.ts), checked before reading
  const traces: TraceReader[] = [];
  try {
    for (const f of inputs) traces.push(openTrace(f));
    const ref = traces[0]!;
    traces.forEach((t, i) => {
      const d = schemaDisagreement(ref.schema, t.schema);
      if (d) throw new UserError(`${inputs[i]} cannot be merged with ${inputs[0]}: ${d}`);
    });
    const withRank = traces.map((t) => t.columns.includes('rank'));
    if (withRank.some((x) => x) && !withRank.every((x) => x))
      throw new UserError(
        `${inputs[withRank.indexOf(true)]} has a rank column but ${inputs[withRank.indexOf(false)]} does not; ` +
          'merge traces of one kind (all per-rank recordings with ranks, or all without: then they are ranks 0, 1, … in order)',
      );
    // Ranks each input holds (a scan of the rank column only when the inputs have one).
    const ranksOf: number[][] = traces.map((t, i) => {
      if (!withRank[i]) return [i];
      const seen = new Set<number>();
      for (const b of t.batches(0, { reuse: true })) for (let r = 0; r < b.length; r++) seen.add(b.rank![r]!);
      return [...seen].sort((a, b) => a - b);
    });
    const owner = new Map<number, number>();
    ranksOf.forEach((rs, i) => {
      for (const r of rs) {
        const j = owner.get(r);
        if (j !== undefined)
          throw new UserError(
            `${inputs[j]} and ${inputs[i]} both hold rank ${r}; merge combines the different ranks of one run`,
          );
        owner.set(r, i);
      }
    });
    if (withRank[0] === false && traces.length > 0xffff) throw new UserError('at most 65536 inputs');
    const byStep = traces.every((t) => t.columns.includes('step'));
    const anyStep = traces.some((t) => t.columns.includes('step'));
    const columns: OptionalColumn[] = OPTIONAL_COLUMNS.filter(
      (c) =>
        c === 'rank' ||
        (c === 'step' && anyStep) ||
        (c === 'dropped' && traces.some((t) => t.columns.includes('dropped'))),
    );
    const notes: string[] = [];
    if (anyStep && !byStep)
      notes.push('some inputs have no step column: their rows have a null step and the merge is ordered by time');
    const world = Math.max(owner.size, ...traces.map((t) => t.meta.world ?? 0), Math.max(...owner.keys()) + 1);
    const writer = TraceWriter.create(output, {
      schema: ref.schema,
      meta: { ...ref.meta, source: 'merge', world },
      columns,
      atomic: true,
      inputs,
    });
    try {
      const cursors = traces.map((t, i) => new Cursor(t, withRank[i] ? null : i, byStep));
      for (;;) {
        const live = cursors.filter((c) => c.batch !== null);
        if (live.length === 0) break;
        // The input whose next row comes first (ties: the input given first), and the earliest next row of the others.
        let best = live[0]!;
        let bestKey = best.key(best.row);
        for (const c of live.slice(1)) {
          const k = c.key(c.row);
          if (!before(bestKey, k)) {
            best = c;
            bestKey = k;
          }
        }
        let limit: [number, bigint] | null = null;
        for (const c of live) {
          if (c === best) continue;
          const k = c.key(c.row);
          if (limit === null || before(k, limit)) limit = k;
        }
        const b = best.batch!;
        const start = best.row;
        // Memory samples ride on the first row written after them, as in the source: a run starts at such a row.
        const memRows = new Set(best.memory.map((m) => m.token - best.firstToken));
        let end = start + 1;
        while (end < b.length && !memRows.has(end) && (limit === null || before(best.key(end), limit))) end++;
        for (const m of best.memory) if (m.token - best.firstToken === start) writer.writeMemory(m.sample);
        const run = sliceBatch(b, ref.schema, start, end);
        if (best.rank !== null) run.rank = new Uint16Array(end - start).fill(best.rank);
        writer.write(run);
        best.consume(end);
      }
      writer.close();
      return {
        tokens: writer.tokensWritten,
        perInput: cursors.map((c, i) => ({ path: inputs[i]!, tokens: c.tokens, ranks: ranksOf[i]! })),
        schema: ref.schema,
        notes,
        truncated: traces.flatMap((t, i) =>
          t.truncated ? [{ path: inputs[i]!, cut: t.truncated, tokens: t.tokenCount }] : [],
        ),
      };
    } catch (e) {
      writer.abort();
      throw e;
    }
  } finally {
    for (const t of traces) t.close();
  }
}
