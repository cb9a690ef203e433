/**
 * `import megatron`: Megatron-core router traces (megatron/core/transformer/moe/router_trace.py writes
 * router_trace_rank{N}.jsonl, one record per router call: {step, stage, block, layer, rank, num_tokens, topk,
 * top_indices}). How records become tokens is documented in docs/trace-format.md#importing-other-dumps.
 *
 * Two passes: the first validates every record and learns the layers, K and the largest expert id; the second
 * merges the ranks' files step by step, holding one step of one rank in memory at a time.
 */
import type { RoutingSchema, Scoring } from '../../core/batch.js';
import { f32ToF16 } from '../../core/f16.js';
import { UserError } from '../../core/errors.js';
import { allocBatch } from '../../core/batch.js';
import { parseLine, readLines } from './lines.js';
import { TraceSink, type ImportResult } from './sink.js';

interface RouterRecord {
  step: number;
  layer: number;
  rank: number;
  numTokens: number;
  topk: number;
  rows: number[][];
  line: number;
}

export interface MegatronOptions {
  /** Experts per layer; default: largest id seen + 1. */
  experts?: number;
  scoring: Scoring;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Decoder-block, pre-dispatch records of a file, validated; other records are counted in `skipped`. */
function* records(file: string, skipped: Map<string, number>): Generator<RouterRecord> {
  let lastStep = -Infinity;
  for (const line of readLines(file)) {
    if (line.text.trim() === '') continue;
    const fail: (why: string) => never = (why) => {
      throw new UserError(`${file}:${line.no}: ${why}`);
    };
    const r = parseLine(file, line) as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) fail('expected a JSON object (a router trace record)');
    for (const k of ['step', 'layer', 'rank', 'num_tokens', 'topk'] as const)
      if (!isInt(r[k]) || (r[k] as number) < 0) fail(`"${k}" must be a non-negative integer, got ${JSON.stringify(r[k])}`);
    if ((r.rank as number) > 0xffff) fail(`"rank" must be at most 65535, got ${r.rank as number}`);
    if ((r.step as number) >= 0xffffffff) fail(`"step" must be below 2^32 - 1, got ${r.step as number}`);
    const block = r.block ?? 'decoder';
    const stage = r.stage ?? 'pre_dispatch';
    if (block !== 'decoder' || stage !== 'pre_dispatch') {
      const key = block !== 'decoder' ? `block "${String(block)}"` : `stage "${String(stage)}"`;
      skipped.set(key, (skipped.get(key) ?? 0) + 1);
      continue;
    }
    const n = r.num_tokens as number;
    const k = r.topk as number;
    const rows = r.top_indices;
    if (!Array.isArray(rows) || rows.length !== n)
      fail(`"top_indices" must have num_tokens = ${n} rows, got ${Array.isArray(rows) ? rows.length : typeof rows}`);
    for (let i = 0; i < n; i++) {
      const row = rows[i] as unknown;
      if (!Array.isArray(row) || row.length !== k) fail(`top_indices row ${i} must have topk = ${k} ids`);
      for (const id of row) if (!isInt(id) || id < 0 || id > 65535) fail(`top_indices row ${i} has ${JSON.stringify(id)}, expected an expert id`);
    }
    const step = r.step as number;
    if (step < lastStep) fail(`step ${step} comes after step ${lastStep}; records must be in step order`);
    lastStep = step;
    yield { step, layer: r.layer as number, rank: r.rank as number, numTokens: n, topk: k, rows: rows as number[][], line: line.no };
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
}

function scan(files: string[]): Scan {
  const layers = new Set<number>();
  const skipped = new Map<string, number>();
  const rankOf = new Map<string, number>();
  let topk = -1;
  let maxId = -1;
  let maxAt = '';
  for (const file of files) {
    for (const r of records(file, skipped)) {
      const at = `${file}:${r.line}`;
      if (topk === -1) topk = r.topk;
      else if (r.topk !== topk) throw new UserError(`${at}: topk ${r.topk} differs from the ${topk} of earlier records`);
      const rank = rankOf.get(file);
      if (rank === undefined) rankOf.set(file, r.rank);
      else if (rank !== r.rank) throw new UserError(`${at}: rank ${r.rank} in a file of rank ${rank}; give one file per rank`);
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
  if (new Set(ranks).size !== ranks.length) throw new UserError(`two of the files hold the same rank; give each rank's file once`);
  return { layers: [...layers].sort((a, b) => a - b), topk, maxId, maxAt, rankOf, skipped };
}

export function importMegatron(files: string[], output: string, opts: MegatronOptions): ImportResult {
  const s = scan(files);
  let E = opts.experts;
  if (E === undefined) E = s.maxId + 1;
  else if (s.maxId >= E) throw new UserError(`${s.maxAt}: expert id ${s.maxId} ≥ --experts ${E}`);
  if (s.topk > E) throw new UserError(`topk ${s.topk} exceeds the ${E} experts`);
  const schema: RoutingSchema = { layers: s.layers, experts: E, topK: s.topk, scoring: opts.scoring, hasLogits: false };
  const sink = new TraceSink(output);
  try {
    sink.open(schema, { model: null, tokenizer: null, devices: [], source: 'import:megatron' }, ['step', 'rank']);
    if (opts.experts === undefined) sink.notes.push(`experts per layer inferred as ${E} (largest id seen + 1); give --experts to set it`);
    for (const [what, n] of s.skipped) sink.notes.push(`skipped ${n} records of ${what} (only decoder pre-dispatch routers are imported)`);
    sink.notes.push('Megatron traces record expert ids only: every weight is 1/K');
    mergeRanks(files, s, schema, sink);
    return sink.finish();
  } catch (e) {
    sink.abort();
    throw e;
  }
}

function mergeRanks(files: string[], s: Scan, schema: RoutingSchema, sink: TraceSink): void {
  const byRank = [...files].sort((a, b) => s.rankOf.get(a)! - s.rankOf.get(b)!).filter((f) => s.rankOf.has(f));
  const iters = byRank.map((f) => ({ file: f, it: stepGroups(f), cur: null as RouterRecord[] | null }));
  for (const x of iters) x.cur = x.it.next().value ?? null;
  const L = schema.layers.length;
  const K = schema.topK;
  const layerIndex = new Map(schema.layers.map((id, i) => [id, i]));
  const w = f32ToF16(1 / K);
  for (;;) {
    const live = iters.filter((x) => x.cur !== null);
    if (live.length === 0) break;
    const step = Math.min(...live.map((x) => x.cur![0]!.step));
    let pos = 0;
    for (const x of live) {
      if (x.cur![0]!.step !== step) continue;
      const group = x.cur!;
      const at = `${x.file}:${group[0]!.line}`;
      const calls: RouterRecord[][] = schema.layers.map(() => []);
      for (const r of group) calls[layerIndex.get(r.layer)!]!.push(r);
      const m = calls[0]!.length;
      const missing = schema.layers.filter((_, l) => calls[l]!.length === 0);
      if (missing.length)
        throw new UserError(
          `${at}: step ${step} of rank ${group[0]!.rank} has no records for layers ${missing.join(',')} that other ranks/steps have ` +
            `(pipeline-parallel traces, whose ranks hold different layers, are not supported; import one stage at a time)`,
        );
      const uneven = calls.findIndex((c) => c.length !== m);
      if (uneven >= 0)
        throw new UserError(`${at}: step ${step}: layer ${schema.layers[uneven]} has ${calls[uneven]!.length} router calls but layer ${schema.layers[0]} has ${m}`);
      for (let j = 0; j < m; j++) {
        const n = calls[0]![j]!.numTokens;
        for (let l = 1; l < L; l++)
          if (calls[l]![j]!.numTokens !== n)
            throw new UserError(
              `${x.file}:${calls[l]![j]!.line}: num_tokens ${calls[l]![j]!.numTokens} differs from layer ${schema.layers[0]}'s ${n} in the same call`,
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
            for (let k = 0; k < K; k++) b.experts[(i * L + l) * K + k] = row[k]!;
          }
        }
        sink.write(b);
      }
      x.cur = x.it.next().value ?? null;
    }
  }
}
