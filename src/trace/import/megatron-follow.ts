/**
 * `import megatron --follow`: tail the per-rank router traces while training writes them, and record each step
 * into a growing trace as soon as every rank has moved past it (so `replay --follow` shows the run live).
 *
 * router_trace.py appends a step's records when the step ends (advance_step in training, a repeated layer in
 * inference), so a step is complete on a rank once a record of a later step appears there; a step is recorded when
 * it is complete on every rank given. Lines are read as they are appended (a line without its newline yet waits).
 * Stopping (Ctrl-C, SIGTERM) records what was read — the last steps as far as they got — and closes the trace.
 * The schema comes from the first complete step of the first rank: E must be given (--experts), as later steps may
 * use experts the first did not. The follower is a RoutingStream (megatronFollowStream); followMegatron writes it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { RoutingBatch, RoutingSchema, Scoring } from '../../core/batch.js';
import { UserError, describeError } from '../../core/errors.js';
import type { RoutingStream, StreamEnd } from '../../core/routing-stream.js';
import { writeStreamTrace } from '../write-stream.js';
import { openInput } from './lines.js';
import { emitGroup, logitsSidecar, megatronDuplicates, parseRecord, type RouterRecord } from './megatron.js';

export interface MegatronFollowOptions {
  experts: number;
  scoring: Scoring;
  logits: boolean;
  pollMs?: number;
  /** Stops following (then the rest is recorded and the trace closed). */
  signal: AbortSignal;
  /** Each recorded step. */
  onStep?: (step: number, tokens: number) => void;
}

export interface MegatronFollowResult {
  tokens: number;
  steps: number;
  schema: RoutingSchema | null;
  notes: string[];
}

/** Appended lines of a file, from where the last call stopped; an unfinished last line waits for its newline. */
class Tail {
  private offset = 0;
  private rest = '';
  private readonly dec = new StringDecoder('utf8');
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  lineNo = 0;
  constructor(
    readonly file: string,
    private readonly fd: number,
  ) {}

  lines(): { text: string; no: number }[] {
    const out: { text: string; no: number }[] = [];
    const size = fstatSync(this.fd).size;
    if (size < this.offset) throw new UserError(`${this.file} got shorter while being followed (rewritten?)`);
    while (this.offset < size) {
      const n = readSync(this.fd, this.buf, 0, Math.min(this.buf.length, size - this.offset), this.offset);
      if (n === 0) break;
      this.offset += n;
      const parts = (this.rest + this.dec.write(this.buf.subarray(0, n))).split('\n');
      this.rest = parts.pop()!;
      for (const p of parts) out.push({ text: p.endsWith('\r') ? p.slice(0, -1) : p, no: ++this.lineNo });
    }
    return out;
  }

  /** The unfinished last line, when following stops. */
  finish(): { text: string; no: number } | null {
    const t = this.rest + this.dec.end();
    this.rest = '';
    return t.trim() ? { text: t, no: ++this.lineNo } : null;
  }

  close(): void {
    closeSync(this.fd);
  }
}

interface RankState {
  tail: Tail;
  rank: number | null;
  /** Records by step, in arrival order. */
  steps: Map<number, RouterRecord[]>;
  lastStep: number;
}

/**
 * The rank files as a RoutingStream that grows as training writes them. Resolves once the first step is recorded
 * (its records give the schema), or with a null stream when following stopped before any decoder step was read;
 * `notes` fills in as the stream ends. The stream ends when `o.signal` aborts, after recording what was read.
 */
export async function megatronFollowStream(
  files: string[],
  o: MegatronFollowOptions,
): Promise<{ stream: RoutingStream | null; notes: string[]; steps: () => number }> {
  const pollMs = o.pollMs ?? 250;
  const skipped = new Map<string, number>();
  const notes: string[] = [];
  const ranks: RankState[] = files.map((f) => ({
    tail: new Tail(f, openInput(f)),
    rank: null,
    steps: new Map(),
    lastStep: -1,
  }));
  let schema: RoutingSchema | null = null;
  const sidecars = new Map<string, number>();
  const scratch = { buf: new Uint8Array(0) };
  const dups = megatronDuplicates();
  let stepsRead = 0;
  let done = false; // every line read and flushed (following stopped)
  const ready: RoutingBatch[] = []; // batches of recorded steps not yet handed out

  const take = (st: RankState, line: { text: string; no: number }) => {
    const r = parseRecord(st.tail.file, line.no, line.text, skipped);
    if (r === null) return;
    if (st.rank === null) {
      if (ranks.some((x) => x !== st && x.rank === r.rank))
        throw new UserError(`two of the files hold rank ${r.rank}; give each rank's file once`);
      st.rank = r.rank;
    } else if (r.rank !== st.rank)
      throw new UserError(
        `${st.tail.file}:${line.no}: rank ${r.rank} in a file of rank ${st.rank}; give one file per rank`,
      );
    if (r.step < st.lastStep)
      throw new UserError(
        `${st.tail.file}:${line.no}: step ${r.step} comes after step ${st.lastStep}; records must be in step order`,
      );
    st.lastStep = r.step;
    let g = st.steps.get(r.step);
    if (!g) st.steps.set(r.step, (g = []));
    g.push(r);
  };

  const open = (first: RouterRecord[]) => {
    const layers = [...new Set(first.map((r) => r.layer))].sort((a, b) => a - b);
    const K = first[0]!.topk;
    if (K > o.experts) throw new UserError(`topk ${K} exceeds --experts ${o.experts}`);
    const hasLogits = o.logits && first.some((r) => r.logit !== null);
    schema = { layers, experts: o.experts, topK: K, scoring: o.scoring, hasLogits };
    if (hasLogits)
      for (const st of ranks)
        try {
          sidecars.set(st.tail.file, openSync(logitsSidecar(st.tail.file, st.rank!), 'r'));
        } catch {
          // no sidecar for this rank: its tokens get NaN logits
        }
  };

  /** Records every step below `upTo` that all ranks hold (all of them when upTo is Infinity). */
  const flush = (upTo: number) => {
    for (;;) {
      const pending = ranks.flatMap((st) => [...st.steps.keys()]).filter((s) => s < upTo);
      if (pending.length === 0) return;
      const step = Math.min(...pending);
      if (schema === null) {
        const firstRank = ranks.find((st) => st.steps.has(step))!;
        open(firstRank.steps.get(step)!);
      }
      let pos = 0;
      const sorted = [...ranks].filter((st) => st.steps.has(step)).sort((a, b) => a.rank! - b.rank!);
      for (const st of sorted) {
        const group = st.steps.get(step)!;
        st.steps.delete(step);
        pos = emitGroup(st.tail.file, group, step, pos, schema!, (b) => ready.push(b), sidecars, scratch, dups);
      }
      stepsRead++;
      o.onStep?.(step, pos);
    }
  };

  /** Reads what was appended; records the steps every rank is past; when stopped, everything read. */
  const poll = () => {
    for (const st of ranks) for (const line of st.tail.lines()) take(st, line);
    // A step is complete on a rank once a later one appears there; on all ranks, once every rank is past it.
    if (ranks.every((st) => st.rank !== null)) flush(Math.min(...ranks.map((st) => st.lastStep)));
    if (!o.signal.aborted) return;
    for (const st of ranks) {
      for (const line of st.tail.lines()) take(st, line); // appended since the read above
      const last = st.tail.finish();
      if (last) take(st, last);
    }
    flush(Infinity);
    done = true;
  };

  const wait = () =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, pollMs);
      o.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });

  let closed = false;
  const release = () => {
    if (closed) return;
    closed = true;
    for (const st of ranks) st.tail.close();
    for (const fd of sidecars.values()) closeSync(fd);
    for (const [what, n] of skipped)
      notes.push(`skipped ${n} records of ${what} (only decoder pre-dispatch routers are imported)`);
    const dn = dups.note();
    if (dn) notes.push(dn);
    if (stepsRead === 0) notes.push('no complete decoder step was read: nothing written');
  };

  try {
    for (poll(); schema === null && !done; poll()) await wait();
  } catch (e) {
    release();
    throw e;
  }
  const steps = () => stepsRead;
  if (schema === null) {
    release();
    return { stream: null, notes, steps };
  }
  let settle!: (e: StreamEnd) => void;
  const ended = new Promise<StreamEnd>((r) => (settle = r));
  const stream: RoutingStream = {
    label: files.join(', '),
    schema,
    meta: { model: null, routers: [], tokenizer: null, devices: [], source: 'import:megatron' },
    kind: 'tokens',
    tokens: null,
    columns: ['step', 'rank'],
    notes,
    seek: null,
    end: () => ended,
    close: release,
    async *items() {
      let next = 0;
      try {
        for (;;) {
          for (let b = ready.shift(); b; b = ready.shift()) {
            yield { kind: 'tokens', batch: b, firstToken: next, memory: [] };
            next += b.length;
          }
          if (done) break;
          await wait();
          poll();
        }
        settle({ complete: true, truncated: null, error: null });
      } catch (e) {
        settle({ complete: false, truncated: null, error: describeError(e) });
        throw e;
      } finally {
        release();
      }
    },
  };
  return { stream, notes, steps };
}

/** Follows the rank files into the trace `output`, written in place so that `replay --follow` can show it. */
export async function followMegatron(
  files: string[],
  output: string,
  o: MegatronFollowOptions,
): Promise<MegatronFollowResult> {
  const { stream, notes, steps } = await megatronFollowStream(files, o);
  if (stream === null) return { tokens: 0, steps: 0, schema: null, notes };
  const w = await writeStreamTrace(stream, output, { inputs: files, live: true });
  return { tokens: w.rows, steps: steps(), schema: stream.schema, notes };
}
