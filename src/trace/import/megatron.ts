/**
 * `import megatron`: Megatron-core router traces (megatron/core/transformer/moe/router_trace.py writes
 * router_trace_rank{N}.jsonl, one record per router call: {step, stage, block, layer, rank, num_tokens, topk,
 * top_indices}). How records become tokens is documented in docs/trace-format.md#importing-other-dumps.
 *
 * Two passes: the first validates every record and learns the layers, K and the largest expert id; the second
 * merges the ranks' files step by step, holding one step of one rank in memory at a time.
 *
 * Router logits (`--moe-routing-trace-capture-logits`): each record then names its slice of the rank's sidecar
 * logits_rank{rank}.bin (beside the JSONL) with logit_offset, logit_bytes and logit_shape [num_tokens, experts] —
 * bfloat16, little-endian, C order (router_trace.py writes them with tensor.view(int16).numpy().tobytes()). They are
 * stored (as float16) unless --no-logits; a record without them (its gating call failed) gets NaN logits.
 */
import type { RoutingBatch, RoutingSchema, Scoring } from '../../core/batch.js';
import { f32ToF16 } from '../../core/f16.js';
import { UserError } from '../../core/errors.js';
import { quoteValue } from '../../core/sanitize.js';
import { allocBatch } from '../../core/batch.js';
import { closeSync, fstatSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { preadFully } from '../ipc.js';
import { openInput, parseLine, readLines } from './lines.js';
import { Duplicates, contentHash } from './duplicates.js';
import { TokenItems, importStream, type ImportEvent, type ImportedStream } from './import-stream.js';

export interface RouterRecord {
  step: number;
  layer: number;
  rank: number;
  numTokens: number;
  topk: number;
  rows: number[][];
  line: number;
  /** Where the record's pre-top-k logits are in the rank's sidecar, when captured. */
  logit: { offset: number; bytes: number; experts: number } | null;
}

export interface MegatronOptions {
  /** Experts per layer; default: the logits' width, else largest id seen + 1. */
  experts?: number;
  scoring: Scoring;
  /** Store the sidecar logits when the records name them (default true). */
  logits?: boolean;
}

/** The logits sidecar of a rank's JSONL: logits_rank{rank}.bin in the same directory. */
export function logitsSidecar(file: string, rank: number): string {
  return join(dirname(file), `logits_rank${rank}.bin`);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/**
 * One line of a router trace, validated: the record, or null for a record of another block or stage (counted in
 * `skipped`) and for a blank line.
 */
export function parseRecord(file: string, no: number, text: string, skipped: Map<string, number>): RouterRecord | null {
  if (text.trim() === '') return null;
  const fail: (why: string) => never = (why) => {
    throw new UserError(`${file}:${no}: ${why}`);
  };
  const r = parseLine(file, { text, no }) as Record<string, unknown>;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) fail('expected a JSON object (a router trace record)');
  for (const k of ['step', 'layer', 'rank', 'num_tokens', 'topk'] as const)
    if (!isInt(r[k]) || (r[k] as number) < 0)
      fail(`"${k}" must be a non-negative integer, got ${JSON.stringify(r[k])}`);
  if ((r.rank as number) > 0xffff) fail(`"rank" must be at most 65535, got ${r.rank as number}`);
  if ((r.step as number) >= 0xffffffff) fail(`"step" must be below 2^32 - 1, got ${r.step as number}`);
  const block = r.block ?? 'decoder';
  const stage = r.stage ?? 'pre_dispatch';
  if (block !== 'decoder' || stage !== 'pre_dispatch') {
    const key = block !== 'decoder' ? `block "${String(block)}"` : `stage "${String(stage)}"`;
    skipped.set(key, (skipped.get(key) ?? 0) + 1);
    return null;
  }
  const n = r.num_tokens as number;
  const k = r.topk as number;
  const rows = r.top_indices;
  if (!Array.isArray(rows) || rows.length !== n)
    fail(`"top_indices" must have num_tokens = ${n} rows, got ${Array.isArray(rows) ? rows.length : typeof rows}`);
  for (let i = 0; i < n; i++) {
    const row = rows[i] as unknown;
    if (!Array.isArray(row) || row.length !== k) fail(`top_indices row ${i} must have topk = ${k} ids`);
    for (const id of row)
      if (!isInt(id) || id < 0 || id > 65535)
        fail(`top_indices row ${i} has ${quoteValue(id, 40)}, expected an expert id`);
    // A top-k selection never repeats an expert (import jsonl refuses the same).
    if (new Set(row).size !== k) fail(`top_indices row ${i} repeats an expert id: ${quoteValue(row, 80)}`);
  }
  let logit: RouterRecord['logit'] = null;
  if (r.logit_offset !== undefined) {
    const shape = r.logit_shape;
    if (!isInt(r.logit_offset) || r.logit_offset < 0 || !isInt(r.logit_bytes) || r.logit_bytes < 0)
      fail(`"logit_offset" and "logit_bytes" must be non-negative integers`);
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => isInt(d) && d >= 0) || shape[0] !== n)
      fail(`"logit_shape" must be [num_tokens = ${n}, experts], got ${JSON.stringify(shape)}`);
    const E = (shape as number[])[1]!;
    if (E < 1 || E > 65536) fail(`"logit_shape" has ${E} experts`);
    if ((r.logit_bytes as number) !== n * E * 2)
      fail(`"logit_bytes" ${r.logit_bytes as number} is not ${n} × ${E} bfloat16 values (${n * E * 2} bytes)`);
    logit = { offset: r.logit_offset as number, bytes: r.logit_bytes as number, experts: E };
  }
  return {
    step: r.step as number,
    layer: r.layer as number,
    rank: r.rank as number,
    numTokens: n,
    topk: k,
    rows: rows as number[][],
    line: no,
    logit,
  };
}

/** Decoder-block, pre-dispatch records of a file, validated; other records are counted in `skipped`. */
function* records(file: string, skipped: Map<string, number>): Generator<RouterRecord> {
  let lastStep = -Infinity;
  for (const line of readLines(file)) {
    const r = parseRecord(file, line.no, line.text, skipped);
    if (r === null) continue;
    if (r.step < lastStep)
      throw new UserError(
        `${file}:${line.no}: step ${r.step} comes after step ${lastStep}; records must be in step order`,
      );
    lastStep = r.step;
    yield r;
  }
}

/** Consecutive records of one step. */
function* stepGroups(file: string): Generator<RouterRecord[]> {
  let group: RouterRecord[] = [];
  for (const r of records(file, new Map())) {
    if (group.length && r.step !== group[0]!.step) {
      yield group;
      group = [];
    }
    group.push(r);
  }
  if (group.length) yield group;
}

interface Scan {
  layers: number[];
  topk: number;
  maxId: number;
  maxAt: string;
  rankOf: Map<string, number>;
  skipped: Map<string, number>;
  /** Width of the logits the records name (null when none do), and how many records name them. */
  logitExperts: number | null;
  logitRecords: number;
  records: number;
}

function scan(files: string[]): Scan {
  const layers = new Set<number>();
  const skipped = new Map<string, number>();
  const rankOf = new Map<string, number>();
  let topk = -1;
  let maxId = -1;
  let maxAt = '';
  let logitExperts: number | null = null;
  let logitRecords = 0;
  let count = 0;
  for (const file of files) {
    let sidecarSize = -1;
    for (const r of records(file, skipped)) {
      const at = `${file}:${r.line}`;
      count++;
      if (r.logit) {
        if (logitExperts === null) logitExperts = r.logit.experts;
        else if (r.logit.experts !== logitExperts)
          throw new UserError(`${at}: logits of ${r.logit.experts} experts, earlier records have ${logitExperts}`);
        if (sidecarSize < 0) sidecarSize = fileSize(logitsSidecar(file, r.rank));
        if (r.logit.offset + r.logit.bytes > sidecarSize)
          throw new UserError(
            `${at}: logits at bytes ${r.logit.offset}…${r.logit.offset + r.logit.bytes} are beyond the ${sidecarSize} bytes of ${logitsSidecar(file, r.rank)}`,
          );
        logitRecords++;
      }
      if (topk === -1) topk = r.topk;
      else if (r.topk !== topk)
        throw new UserError(`${at}: topk ${r.topk} differs from the ${topk} of earlier records`);
      const rank = rankOf.get(file);
      if (rank === undefined) rankOf.set(file, r.rank);
      else if (rank !== r.rank)
        throw new UserError(`${at}: rank ${r.rank} in a file of rank ${rank}; give one file per rank`);
      layers.add(r.layer);
      for (const row of r.rows)
        for (const id of row)
          if (id > maxId) {
            maxId = id;
            maxAt = at;
          }
    }
  }
  if (topk === -1) throw new UserError(`${files.join(', ')}: no decoder router records found`);
  const ranks = [...rankOf.values()];
  if (new Set(ranks).size !== ranks.length)
    throw new UserError(`two of the files hold the same rank; give each rank's file once`);
  return {
    layers: [...layers].sort((a, b) => a - b),
    topk,
    maxId,
    maxAt,
    rankOf,
    skipped,
    logitExperts,
    logitRecords,
    records: count,
  };
}

function fileSize(path: string): number {
  const fd = openInput(path);
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

export function megatronStream(files: string[], opts: MegatronOptions): ImportedStream {
  const notes: string[] = [];
  const dups = megatronDuplicates();
  return importStream(files.join(', '), megatronEvents(files, opts, notes, dups), notes, dups);
}

function* megatronEvents(
  files: string[],
  opts: MegatronOptions,
  notes: string[],
  dups: Duplicates,
): Generator<ImportEvent, void, undefined> {
  const s = scan(files);
  const withLogits = opts.logits !== false && s.logitExperts !== null;
  let E = opts.experts ?? s.logitExperts ?? undefined;
  if (s.logitExperts !== null && E !== s.logitExperts)
    throw new UserError(`--experts ${E} differs from the ${s.logitExperts} experts of the records' logits`);
  if (E === undefined) E = s.maxId + 1;
  else if (s.maxId >= E)
    throw new UserError(
      `${s.maxAt}: expert id ${s.maxId} ≥ ${opts.experts !== undefined ? '--experts' : "the logits' width"} ${E}`,
    );
  if (s.topk > E) throw new UserError(`topk ${s.topk} exceeds the ${E} experts`);
  const schema: RoutingSchema = {
    layers: s.layers,
    experts: E,
    topK: s.topk,
    scoring: opts.scoring,
    hasLogits: withLogits,
  };
  const columns = ['step', 'rank'] as const;
  yield {
    kind: 'open',
    schema,
    meta: { model: null, tokenizer: null, devices: [], source: 'import:megatron' },
    columns,
  };
  if (opts.experts === undefined && s.logitExperts === null)
    notes.push(`experts per layer inferred as ${E} (largest id seen + 1); give --experts to set it`);
  if (withLogits && s.logitRecords < s.records)
    notes.push(
      `${s.records - s.logitRecords} of ${s.records} records have no logits in the sidecar: their tokens' logits are NaN`,
    );
  if (!withLogits && s.logitExperts !== null) notes.push('the records name sidecar logits; --no-logits left them out');
  for (const [what, n] of s.skipped)
    notes.push(`skipped ${n} records of ${what} (only decoder pre-dispatch routers are imported)`);
  notes.push('Megatron traces record expert ids only: every weight is 1/K');
  yield* mergeRanks(files, s, schema, new TokenItems(schema, columns), dups);
  const note = dups.note();
  if (note) notes.push(note);
}

/** bfloat16 bits → float16 bits (through float32: a bfloat16 is the top half of a float32). */
const BF16 = new Uint32Array(1);
const BF16_F = new Float32Array(BF16.buffer);
function bf16ToF16(bits: number): number {
  BF16[0] = bits << 16;
  return f32ToF16(BF16_F[0]!);
}

function* mergeRanks(
  files: string[],
  s: Scan,
  schema: RoutingSchema,
  tokens: TokenItems,
  dups: Duplicates,
): Generator<ImportEvent, void, undefined> {
  const byRank = [...files].sort((a, b) => s.rankOf.get(a)! - s.rankOf.get(b)!).filter((f) => s.rankOf.has(f));
  const sidecars = new Map<string, number>();
  try {
    if (schema.hasLogits)
      for (const f of byRank) {
        try {
          sidecars.set(f, openInput(logitsSidecar(f, s.rankOf.get(f)!)));
        } catch {
          // a rank whose records name no logits has no sidecar; its tokens get NaN logits
        }
      }
    yield* mergeRanksWith(byRank, s, schema, tokens, sidecars, dups);
  } finally {
    for (const fd of sidecars.values()) closeSync(fd);
  }
}

function* mergeRanksWith(
  byRank: string[],
  _s: Scan,
  schema: RoutingSchema,
  tokens: TokenItems,
  sidecars: Map<string, number>,
  dups: Duplicates,
): Generator<ImportEvent, void, undefined> {
  const batches: RoutingBatch[] = []; // one rank's batches of one step (emitGroup allocates each)
  const iters = byRank.map((f) => ({ file: f, it: stepGroups(f), cur: null as RouterRecord[] | null }));
  const scratch = { buf: new Uint8Array(0) };
  for (const x of iters) x.cur = x.it.next().value ?? null;
  for (;;) {
    const live = iters.filter((x) => x.cur !== null);
    if (live.length === 0) break;
    const step = Math.min(...live.map((x) => x.cur![0]!.step));
    let pos = 0;
    for (const x of live) {
      if (x.cur![0]!.step !== step) continue;
      pos = emitGroup(x.file, x.cur!, step, pos, schema, (b) => batches.push(b), sidecars, scratch, dups);
      for (const b of batches) yield* tokens.batch(b);
      batches.length = 0;
      x.cur = x.it.next().value ?? null;
    }
  }
}

/** Whether two records hold the same expert ids for the same tokens. */
function sameRows(a: RouterRecord, b: RouterRecord): boolean {
  if (a.numTokens !== b.numTokens || a.topk !== b.topk) return false;
  for (let i = 0; i < a.numTokens; i++) {
    const x = a.rows[i]!;
    const y = b.rows[i]!;
    for (let k = 0; k < a.topk; k++) if (x[k] !== y[k]) return false;
  }
  return true;
}

/**
 * One layer's records of one (step, rank), without those that repeat an earlier one of them: the same layer of the
 * same step and rank routing the same tokens to the same experts is those tokens again — activation recomputation
 * runs the router once more in the backward pass (router_trace.py's forward hook fires on it; with
 * --recompute-method block only the first layers are recomputed), or a record was written twice. Two microbatches
 * of one step routed identically on a layer would be taken for one; at hundreds of tokens a microbatch, they are
 * not. Bounded: one step of one rank is in memory here anyway.
 */
function withoutRepeats(records: RouterRecord[], repeats: RouterRecord[]): RouterRecord[] {
  if (records.length < 2) return records;
  const byHash = new Map<number, RouterRecord[]>();
  const kept: RouterRecord[] = [];
  for (const r of records) {
    const h = contentHash(r.numTokens, r.topk, r.rows.flat());
    const same = byHash.get(h);
    if (same?.some((e) => sameRows(e, r))) {
      repeats.push(r);
      continue;
    }
    if (same) same.push(r);
    else byHash.set(h, [r]);
    kept.push(r);
  }
  return kept;
}

/** The duplicate router records of a Megatron import (src/trace/import/duplicates.ts). */
export function megatronDuplicates(): Duplicates {
  return new Duplicates(
    ['duplicate router record', 'duplicate router records'],
    'the same step, rank and layer as an earlier record, the same experts for every token: activation recomputation re-runs the router, or a record was written twice',
  );
}

/**
 * The tokens of one rank's records of one step, as batches (one per router call): token i of call j is row i of
 * the j-th record of every layer. Returns the next position within the step.
 */
export function emitGroup(
  file: string,
  group: RouterRecord[],
  step: number,
  posStart: number,
  schema: RoutingSchema,
  write: (b: RoutingBatch) => void,
  sidecars: Map<string, number>,
  scratch: { buf: Uint8Array },
  dups: Duplicates | null = null,
): number {
  const L = schema.layers.length;
  const K = schema.topK;
  const E = schema.experts;
  const layerIndex = new Map(schema.layers.map((id, i) => [id, i]));
  const w = f32ToF16(1 / K);
  let pos = posStart;
  const at = `${file}:${group[0]!.line}`;
  const calls: RouterRecord[][] = schema.layers.map(() => []);
  for (const r of group) {
    const l = layerIndex.get(r.layer);
    if (l === undefined)
      throw new UserError(
        `${file}:${r.line}: layer ${r.layer} was not in the trace's first step (layers ${schema.layers.join(',')})`,
      );
    calls[l]!.push(r);
  }
  if (dups) {
    const repeats: RouterRecord[] = [];
    for (let l = 0; l < L; l++) calls[l] = withoutRepeats(calls[l]!, repeats);
    repeats.sort((a, b) => a.line - b.line);
    for (const r of repeats) dups.skip(`${file}:${r.line}`, r.numTokens / L);
  }
  const m = calls[0]!.length;
  const missing = schema.layers.filter((_, l) => calls[l]!.length === 0);
  if (missing.length)
    throw new UserError(
      `${at}: step ${step} of rank ${group[0]!.rank} has no records for layers ${missing.join(',')} that other ranks/steps have ` +
        `(pipeline-parallel traces, whose ranks hold different layers, are not supported; import one stage at a time)`,
    );
  const uneven = calls.findIndex((c) => c.length !== m);
  if (uneven >= 0)
    throw new UserError(
      `${at}: step ${step}: layer ${schema.layers[uneven]} has ${calls[uneven]!.length} router calls but layer ${schema.layers[0]} has ${m}`,
    );
  for (let j = 0; j < m; j++) {
    const n = calls[0]![j]!.numTokens;
    for (let l = 1; l < L; l++)
      if (calls[l]![j]!.numTokens !== n)
        throw new UserError(
          `${file}:${calls[l]![j]!.line}: num_tokens ${calls[l]![j]!.numTokens} differs from layer ${schema.layers[0]}'s ${n} in the same call`,
        );
    const b = allocBatch(schema, n, ['step', 'rank']);
    b.tag = new Array<string | null>(n).fill(`rank ${group[0]!.rank}`);
    b.seq.fill(step);
    b.step!.fill(step);
    b.rank!.fill(group[0]!.rank);
    b.tokenId.fill(-1);
    b.weights.fill(w);
    for (let i = 0; i < n; i++) {
      b.pos[i] = pos++;
      for (let l = 0; l < L; l++) {
        const row = calls[l]![j]!.rows[i]!;
        for (let k = 0; k < K; k++) {
          if (row[k]! >= E) throw new UserError(`${file}:${calls[l]![j]!.line}: expert id ${row[k]} ≥ ${E} experts`);
          b.experts[(i * L + l) * K + k] = row[k]!;
        }
      }
    }
    if (b.logits) {
      b.logits.fill(0x7e00); // NaN where a record has no logits
      const fd = sidecars.get(file);
      for (let l = 0; l < L; l++) {
        const rec = calls[l]![j]!;
        if (!rec.logit || fd === undefined) continue;
        if (rec.logit.experts !== E)
          throw new UserError(`${file}:${rec.line}: logits of ${rec.logit.experts} experts, the trace has ${E}`);
        if (scratch.buf.length < rec.logit.bytes) scratch.buf = new Uint8Array(rec.logit.bytes);
        const got = preadFully(fd, scratch.buf.subarray(0, rec.logit.bytes), rec.logit.offset);
        if (got < rec.logit.bytes)
          throw new UserError(`${file}:${rec.line}: the logits sidecar ended while reading this record's logits`);
        const dv = new DataView(scratch.buf.buffer, 0, rec.logit.bytes);
        for (let i = 0; i < n; i++)
          for (let e = 0; e < E; e++) b.logits[(i * L + l) * E + e] = bf16ToF16(dv.getUint16((i * E + e) * 2, true));
      }
    }
    write(b);
  }
  return pos;
}
