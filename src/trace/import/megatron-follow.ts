/**
 * `import megatron --follow`: tail the per-rank router traces while training writes them, and record each step
 * into a growing trace as soon as every rank has moved past it (so `replay --follow` shows the run live).
 *
 * router_trace.py appends a step's records when the step ends (advance_step in training, a repeated layer in
 * inference), so a step is complete on a rank once a record of a later step appears there; a step is recorded when
 * it is complete on every rank given. Lines are read as they are appended (a line without its newline yet waits).
 * Stopping (Ctrl-C, SIGTERM) records what was read — the last steps as far as they got — and closes the trace.
 * The schema comes from the first complete step of the first rank: E must be given (--experts), as later steps may
 * use experts the first did not.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { RoutingSchema, Scoring } from '../../core/batch.js';
import { UserError } from '../../core/errors.js';
import { TraceWriter } from '../writer.js';
import { openInput } from './lines.js';
import { emitGroup, logitsSidecar, parseRecord, type RouterRecord } from './megatron.js';

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

export async function followMegatron(files: string[], output: string, o: MegatronFollowOptions): Promise<MegatronFollowResult> {
  const pollMs = o.pollMs ?? 250;
  const skipped = new Map<string, number>();
  const ranks: RankState[] = files.map((f) => ({ tail: new Tail(f, openInput(f)), rank: null, steps: new Map(), lastStep: -1 }));
  let writer: TraceWriter | null = null;
  let schema: RoutingSchema | null = null;
  const sidecars = new Map<string, number>();
  const scratch = { buf: new Uint8Array(0) };
  let tokens = 0;
  let stepsWritten = 0;
  let nextStep = -1; // steps below this are written

  const take = (st: RankState, line: { text: string; no: number }) => {
    const r = parseRecord(st.tail.file, line.no, line.text, skipped);
    if (r === null) return;
    if (st.rank === null) {
      if (ranks.some((x) => x !== st && x.rank === r.rank)) throw new UserError(`two of the files hold rank ${r.rank}; give each rank's file once`);
      st.rank = r.rank;
    } else if (r.rank !== st.rank) throw new UserError(`${st.tail.file}:${line.no}: rank ${r.rank} in a file of rank ${st.rank}; give one file per rank`);
    if (r.step < st.lastStep) throw new UserError(`${st.tail.file}:${line.no}: step ${r.step} comes after step ${st.lastStep}; records must be in step order`);
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
    writer = TraceWriter.create(output, { schema, meta: { model: null, routers: [], tokenizer: null, devices: [], source: 'import:megatron' }, columns: ['step', 'rank'] });
    if (hasLogits)
      for (const st of ranks)
        try {
          sidecars.set(st.tail.file, openSync(logitsSidecar(st.tail.file, st.rank!), 'r'));
        } catch {
          // no sidecar for this rank: its tokens get NaN logits
        }
  };

  /** Writes every step below `upTo` that all ranks hold (all of them when upTo is Infinity). */
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
        pos = emitGroup(st.tail.file, group, step, pos, schema!, (b) => writer!.write(b), sidecars, scratch);
      }
      tokens += pos;
      stepsWritten++;
      nextStep = step + 1;
      o.onStep?.(step, pos);
    }
  };

  try {
    for (;;) {
      for (const st of ranks) for (const line of st.tail.lines()) take(st, line);
      // A step is complete on a rank once a later one appears there; on all ranks, once every rank is past it.
      if (ranks.every((st) => st.rank !== null)) flush(Math.min(...ranks.map((st) => st.lastStep)));
      if (o.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        o.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
    for (const st of ranks) {
      for (const line of st.tail.lines()) take(st, line);
      const last = st.tail.finish();
      if (last) take(st, last);
    }
    flush(Infinity);
  } catch (e) {
    (writer as TraceWriter | null)?.close();
    throw e;
  } finally {
    for (const st of ranks) st.tail.close();
    for (const fd of sidecars.values()) closeSync(fd);
  }
  (writer as TraceWriter | null)?.close();
  const notes: string[] = [];
  for (const [what, n] of skipped) notes.push(`skipped ${n} records of ${what} (only decoder pre-dispatch routers are imported)`);
  if (nextStep < 0) notes.push('no complete decoder step was read: nothing written');
  return { tokens, steps: stepsWritten, schema, notes };
}
