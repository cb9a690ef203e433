/**
 * `moescope import sglang FILE…`: SGLang's expert-distribution recorder dumps (`torch.save` files, read without
 * Python by ./torch/), structures as SGLang's python/sglang/srt/eplb/expert_distribution.py writes them and its
 * eplb_simulator/reader.py reads them (docs/serving.md):
 *  - `stat` / `stat_approx` (rank 0): `logical_count` [buffer steps, layers, logical experts], already summed over
 *    ranks → a count trace, one row per filled buffer step (unfilled rows of the circular buffer are all zero and
 *    are left out);
 *  - `per_pass` (every rank): records of `global_physical_count` [layers, physical experts] per forward pass and rank
 *    → a count trace, one row per forward pass: each pass's counts summed over ranks, then physical → logical
 *    through `last_physical_to_logical_map` (exactly reader.py's order), with that map and the GPU count in the
 *    header as the placement (redundant experts = logical ids with several slots);
 *  - `per_token` (every rank): `topk_ids_of_layer` [layers, tokens, 8] physical ids (−1 past the model's top-k) →
 *    a token trace: ids mapped to logical experts, tokens ordered by forward pass, then rank.
 * Layers whose counts are zero throughout (a model's dense layers: SGLang counts every layer) are left out.
 */
import { basename } from 'node:path';
import type { RoutingSchema, Scoring } from '../../core/batch.js';
import type { CountBatch } from '../../core/count-batch.js';
import { UserError } from '../../core/errors.js';
import { Duplicates, conflict } from './duplicates.js';
import { TokenItems, importStream, type ImportEvent, type ImportedStream } from './import-stream.js';
import { TorchFile, type TensorData } from './torch/load.js';
import { PyTuple, dictGet, type PyValue, type TensorRef } from './torch/unpickle.js';

export interface SglangOptions {
  /** Expert-parallel GPUs (default: the ranks found in per_pass / per_token dumps; none for stat dumps). */
  gpus?: number;
  /** The model's top-k (stat / per_pass dumps do not record it; per_token: checked against the dump). */
  topK?: number;
  scoring: Scoring;
}

type Mode = 'stat' | 'per_pass' | 'per_token';

interface Loaded {
  file: string;
  torch: TorchFile;
  mode: Mode;
}

/** SGLang's ForwardMode values (model_executor/forward_batch_info.py): EXTEND = 1, DECODE = 2, MIXED = 3, IDLE = 4. */
const FORWARD_MODES: Record<number, string> = { 1: 'extend', 2: 'decode', 3: 'mixed', 4: 'idle' };

function isTensor(v: PyValue | undefined): v is TensorRef {
  return typeof v === 'object' && v !== null && (v as TensorRef).kind === 'tensor';
}

function modeOf(t: TorchFile, file: string): Mode {
  const root = t.root;
  if (!(root instanceof Map))
    throw new UserError(`${file}: not an SGLang expert-distribution dump (the file holds no dict)`);
  if (isTensor(dictGet(root, 'logical_count'))) return 'stat';
  const records = dictGet(root, 'records');
  if (Array.isArray(records) && isTensor(dictGet(root, 'last_physical_to_logical_map'))) {
    const first = records.find((r) => r instanceof Map);
    return first && isTensor(dictGet(first, 'topk_ids_of_layer')) ? 'per_token' : 'per_pass';
  }
  throw new UserError(
    `${file}: not an SGLang expert-distribution dump (no logical_count, nor records with last_physical_to_logical_map)`,
  );
}

/** Dump time from SGLang's file name `expert_distribution_recorder_{time.time()}[_{rank}].pt`, for ordering. */
function dumpTime(file: string): number {
  const m = /expert_distribution_recorder_(\d+(?:\.\d+)?)/.exec(basename(file));
  return m ? Number(m[1]) : NaN;
}

function int(v: PyValue | undefined, what: string, file: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new UserError(`${file}: ${what} is not an integer`);
  return v;
}

function tensorOf(t: TorchFile, v: PyValue | undefined, what: string, rank: number, file: string): TensorData {
  if (!isTensor(v)) throw new UserError(`${file}: ${what} is not a tensor`);
  const d = t.tensor(v, what);
  if (d.shape.length !== rank)
    throw new UserError(`${file}: ${what} has shape [${d.shape.join(', ')}], expected ${rank} dimensions`);
  return d;
}

function checkCounts(d: TensorData, what: string, file: string): void {
  const v = d.values;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!(x >= 0) || !Number.isFinite(x))
      throw new UserError(`${file}: ${what} holds ${x}; counts must be finite numbers ≥ 0`);
  }
}

export function sglangStream(files: string[], opts: SglangOptions): ImportedStream {
  const notes: string[] = [];
  const dups = new Duplicates(
    ['duplicate forward-pass record', 'duplicate forward-pass records'],
    'the same forward_pass_id and rank as an earlier record, with the same content: the same dump given twice',
  );
  return importStream(files.join(', '), sglangEvents(files, opts, notes, dups), notes, dups);
}

/**
 * A record whose (forward pass, rank) was seen before: true to skip it (the same content again), a refusal when
 * its content differs (dumps of two runs, whose forward_pass_ids both start at 0). `content` reads a record's
 * tensors and lists; only records that collide are read twice. Bounded by the dumps, which are in memory anyway.
 */
function repeated(
  seen: Map<string, { file: string; record: Map<PyValue, PyValue> }>,
  fp: number,
  rank: number,
  file: string,
  record: Map<PyValue, PyValue>,
  content: (file: string, record: Map<PyValue, PyValue>) => ArrayLike<number>[],
  dups: Duplicates,
  tokens: number,
): boolean {
  const key = `${fp}/${rank}`;
  const first = seen.get(key);
  if (!first) {
    seen.set(key, { file, record });
    return false;
  }
  const a = content(first.file, first.record);
  const b = content(file, record);
  const same = a.length === b.length && a.every((x, i) => x.length === b[i]!.length && sameValues(x, b[i]!));
  if (!same)
    throw conflict(
      file,
      `forward pass ${fp} of rank ${rank} (also in ${first.file})`,
      'dumps of two server runs? import them separately',
    );
  dups.skip(`${file} (forward pass ${fp}, rank ${rank})`, tokens);
  return true;
}

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

function* sglangEvents(
  files: string[],
  opts: SglangOptions,
  notes: string[],
  dups: Duplicates,
): Generator<ImportEvent, void, undefined> {
  if (opts.gpus !== undefined && (!Number.isInteger(opts.gpus) || opts.gpus < 1))
    throw new UserError('--gpus must be an integer ≥ 1');
  const loaded: Loaded[] = [];
  try {
    for (const file of files) {
      const torch = new TorchFile(file);
      loaded.push({ file, torch, mode: 'stat' });
      loaded[loaded.length - 1]!.mode = modeOf(torch, file);
    }
    const modes = [...new Set(loaded.map((l) => l.mode))];
    if (modes.length > 1)
      throw new UserError(`the files mix recorder modes (${modes.join(', ')}): import one mode at a time`);
    // Dumps in time order (SGLang names them by time.time()); the order given when names carry no time.
    loaded.sort((a, b) => {
      const ta = dumpTime(a.file);
      const tb = dumpTime(b.file);
      return Number.isNaN(ta) || Number.isNaN(tb) ? 0 : ta - tb;
    });
    switch (modes[0]!) {
      case 'stat':
        return yield* importStat(loaded, opts, notes);
      case 'per_pass':
        return yield* importPerPass(loaded, opts, notes, dups);
      default:
        return yield* importPerToken(loaded, opts, notes, dups);
    }
  } finally {
    for (const l of loaded) l.torch.close();
  }
}

/** Model layers whose counts are zero throughout (dense layers), given Σ counts per layer. */
function routedLayers(perLayer: Float64Array): number[] {
  const keep: number[] = [];
  perLayer.forEach((s, l) => {
    if (s > 0) keep.push(l);
  });
  return keep;
}

function denseNote(all: number, kept: number[]): string | null {
  if (kept.length === all) return null;
  const gone = Array.from({ length: all }, (_, l) => l).filter((l) => !kept.includes(l));
  return `${gone.length === 1 ? 'layer' : 'layers'} ${gone.join(', ')} routed no tokens (dense layers) and ${gone.length === 1 ? 'is' : 'are'} left out`;
}

function schemaFor(layers: number[], experts: number, opts: SglangOptions): RoutingSchema {
  if (opts.topK !== undefined && (opts.topK < 1 || opts.topK > experts))
    throw new UserError(`--top-k must be 1…${experts}, got ${opts.topK}`);
  return { layers, experts, topK: opts.topK ?? 1, scoring: opts.scoring, hasLogits: false };
}

const META = (source: string, devices: number | null) => ({
  model: null,
  routers: [],
  tokenizer: null,
  devices: devices === null ? [] : Array.from({ length: devices }, (_, r) => `rank ${r}`),
  source,
});

/** The count stream of rows (each L_all × E, model layers) keeping only the schema's layers: one batch. */
function* countEvents(
  schema: RoutingSchema,
  rows: { step: number; counts: Float64Array }[],
  opts: SglangOptions,
  source: string,
  placement: { devices: number; phy2log: number[][] } | null,
): Generator<ImportEvent, void, undefined> {
  const L = schema.layers.length;
  const E = schema.experts;
  yield {
    kind: 'open',
    schema,
    meta: META(source, placement ? placement.devices : null),
    countInfo: {
      axis: 'expert',
      bins: E,
      topKKnown: opts.topK !== undefined,
      expertsKnown: true,
      ...(placement ? { placement } : {}),
    },
  };
  const batch: CountBatch = {
    length: rows.length,
    step: new Float64Array(rows.length),
    tNs: new BigInt64Array(rows.length),
    axis: 'expert',
    bins: E,
    counts: new Float64Array(rows.length * L * E),
  };
  rows.forEach((r, i) => {
    batch.step[i] = r.step;
    schema.layers.forEach((layer, l) =>
      batch.counts.set(r.counts.subarray(layer * E, (layer + 1) * E), (i * L + l) * E),
    );
  });
  yield { kind: 'counts', batch };
}

function* importStat(loaded: Loaded[], opts: SglangOptions, notes: string[]): Generator<ImportEvent, void, undefined> {
  let shape: number[] | null = null;
  const rows: { step: number; counts: Float64Array }[] = [];
  let empty = 0;
  for (const { file, torch } of loaded) {
    const root = torch.root as Map<PyValue, PyValue>;
    const d = tensorOf(torch, dictGet(root, 'logical_count'), 'logical_count', 3, file);
    checkCounts(d, 'logical_count', file);
    const [S, L, E] = d.shape as [number, number, number];
    if (shape && (shape[1] !== L || shape[2] !== E))
      throw new UserError(
        `${file}: logical_count is [·, ${L}, ${E}], the first dump was [·, ${shape[1]}, ${shape[2]}]: different models`,
      );
    shape = d.shape;
    const rate = dictGet(root, 'average_utilization_rate_over_window');
    if (typeof rate === 'number')
      notes.push(`${basename(file)}: SGLang's average utilization rate over its window: ${rate.toFixed(3)}`);
    for (let s = 0; s < S; s++) {
      const counts = d.values.slice(s * L * E, (s + 1) * L * E);
      if (counts.every((x) => x === 0)) {
        empty++;
        continue;
      }
      rows.push({ step: rows.length, counts });
    }
  }
  const [, L, E] = shape as [number, number, number];
  if (rows.length === 0)
    throw new UserError(
      `${loaded.map((l) => l.file).join(', ')}: every logical_count step is zero: nothing was recorded`,
    );
  if (empty) notes.push(`${empty} all-zero buffer steps left out (the circular buffer was not full)`);
  notes.push(
    'stat dumps do not record which buffer row was written last: steps are in buffer order, which is not time order once the buffer has wrapped',
  );
  const perLayer = new Float64Array(L);
  for (const r of rows) for (let l = 0; l < L; l++) for (let e = 0; e < E; e++) perLayer[l]! += r.counts[l * E + e]!;
  const keep = routedLayers(perLayer);
  const dn = denseNote(L, keep);
  if (dn) notes.push(dn);
  if (opts.topK === undefined)
    notes.push('top-k is not in stat dumps: counts are assignments; give --top-k K to count tokens');
  const schema = schemaFor(keep, E, opts);
  const placement = opts.gpus !== undefined ? contiguous(E, opts.gpus) : null;
  yield* countEvents(schema, rows, opts, 'import:sglang:stat', placement);
}

function contiguous(experts: number, gpus: number): { devices: number; phy2log: number[][] } {
  if (gpus > experts) throw new UserError(`--gpus ${gpus} is more than the ${experts} experts`);
  return { devices: gpus, phy2log: [Array.from({ length: experts }, (_, e) => e)] };
}

interface DetailDump {
  file: string;
  map: TensorData;
  records: Map<PyValue, PyValue>[];
}

function detailDumps(
  loaded: Loaded[],
  notes: string[],
): { dumps: DetailDump[]; map: TensorData; L: number; P: number; E: number } {
  const dumps: DetailDump[] = [];
  let skipped = 0;
  for (const { file, torch } of loaded) {
    const root = torch.root as Map<PyValue, PyValue>;
    const map = tensorOf(torch, dictGet(root, 'last_physical_to_logical_map'), 'last_physical_to_logical_map', 2, file);
    const records: Map<PyValue, PyValue>[] = [];
    for (const r of dictGet(root, 'records') as PyValue[]) {
      if (!(r instanceof Map)) throw new UserError(`${file}: a record is not a dict`);
      const key = dictGet(r, 'gatherer_key');
      if (key !== undefined && key !== 'primary') {
        skipped++;
        continue;
      }
      records.push(r);
    }
    dumps.push({ file, map, records });
  }
  if (skipped) notes.push(`${skipped} records of gatherers other than "primary" skipped`);
  // SGLang's reader keeps the map of the file it loaded last; say so when the files disagree.
  const map = dumps[dumps.length - 1]!.map;
  const [L, P] = map.shape as [number, number];
  for (const d of dumps) {
    if (d.map.shape[0] !== L || d.map.shape[1] !== P)
      throw new UserError(
        `${d.file}: last_physical_to_logical_map is [${d.map.shape.join(', ')}], another dump's is [${L}, ${P}]: different deployments`,
      );
    if (d.map.values.some((v, i) => v !== map.values[i])) {
      notes.push(
        "the dumps hold different physical → logical maps (EPLB re-placed experts while recording): the last one is used, as SGLang's reader does",
      );
      break;
    }
  }
  // Every logical expert has at least one physical slot, so logical ids lie below P (which bounds E, and L·E).
  let E = 0;
  for (const v of map.values) {
    if (!Number.isInteger(v) || v < 0 || v >= P)
      throw new UserError(
        `${dumps[dumps.length - 1]!.file}: last_physical_to_logical_map holds ${v}, not a logical expert id (0…${P - 1})`,
      );
    E = Math.max(E, v + 1);
  }
  return { dumps, map, L, P, E };
}

/** Counts [L, P] of physical slots → [L, E] of logical experts, added into `out` (SGLang's scatter-add). */
function addLogical(
  physical: Float64Array,
  map: Float64Array,
  L: number,
  P: number,
  E: number,
  out: Float64Array,
): void {
  for (let l = 0; l < L; l++) for (let s = 0; s < P; s++) out[l * E + map[l * P + s]!]! += physical[l * P + s]!;
}

function devicesFor(P: number, ranks: number, opts: SglangOptions, notes: string[]): number | null {
  const D = opts.gpus ?? ranks;
  if (P % D !== 0) {
    notes.push(`${P} physical experts do not divide over ${D} GPUs: no placement recorded (give --gpus)`);
    return null;
  }
  return D;
}

function* importPerPass(
  loaded: Loaded[],
  opts: SglangOptions,
  notes: string[],
  dups: Duplicates,
): Generator<ImportEvent, void, undefined> {
  const { dumps, map, L, P, E } = detailDumps(loaded, notes);
  const byPass = new Map<number, { ranks: Set<number>; physical: Float64Array }>();
  const ranks = new Set<number>();
  const seen = new Map<string, { file: string; record: Map<PyValue, PyValue> }>();
  dups.sayTokens = false; // count records: assignments, not tokens
  const torchOf = (file: string) => loaded.find((l) => l.file === file)!.torch;
  const countsOf = (file: string, r: Map<PyValue, PyValue>) => {
    const fp = int(dictGet(r, 'forward_pass_id'), 'forward_pass_id', file);
    return tensorOf(
      torchOf(file),
      dictGet(r, 'global_physical_count'),
      `global_physical_count of forward pass ${fp}`,
      2,
      file,
    );
  };
  for (const d of dumps) {
    for (const r of d.records) {
      const fp = int(dictGet(r, 'forward_pass_id'), 'forward_pass_id', d.file);
      const rank = int(dictGet(r, 'rank'), 'rank', d.file);
      if (repeated(seen, fp, rank, d.file, r, (f, x) => [countsOf(f, x).values], dups, 0)) continue;
      const gpc = countsOf(d.file, r);
      if (gpc.shape[0] !== L || gpc.shape[1] !== P)
        throw new UserError(
          `${d.file}: global_physical_count of forward pass ${fp} is [${gpc.shape.join(', ')}], the map is [${L}, ${P}]`,
        );
      checkCounts(gpc, `global_physical_count of forward pass ${fp}`, d.file);
      let entry = byPass.get(fp);
      if (!entry) byPass.set(fp, (entry = { ranks: new Set(), physical: new Float64Array(L * P) }));
      entry.ranks.add(rank);
      ranks.add(rank);
      for (let i = 0; i < L * P; i++) entry.physical[i]! += gpc.values[i]!;
    }
  }
  if (byPass.size === 0) throw new UserError(`${dumps.map((d) => d.file).join(', ')}: no forward-pass records`);
  const dupNote = dups.note();
  if (dupNote) notes.push(dupNote);
  const partial = [...byPass].filter(([, v]) => v.ranks.size < ranks.size).length;
  if (partial) notes.push(`${partial} forward passes lack some ranks' records (their counts cover the ranks present)`);
  const rows = [...byPass.keys()]
    .sort((a, b) => a - b)
    .map((fp) => {
      const counts = new Float64Array(L * E);
      addLogical(byPass.get(fp)!.physical, map.values, L, P, E, counts);
      return { step: fp, counts };
    });
  const perLayer = new Float64Array(L);
  for (const r of rows) for (let i = 0; i < L * E; i++) perLayer[Math.floor(i / E)]! += r.counts[i]!;
  const keep = routedLayers(perLayer);
  const dn = denseNote(L, keep);
  if (dn) notes.push(dn);
  if (keep.length === 0)
    throw new UserError(`${dumps.map((d) => d.file).join(', ')}: every count is zero: nothing was recorded`);
  if (opts.topK === undefined)
    notes.push('top-k is not in per_pass dumps: counts are assignments; give --top-k K to count tokens');
  const schema = schemaFor(keep, E, opts);
  const D = devicesFor(P, ranks.size, opts, notes);
  const placement =
    D === null ? null : { devices: D, phy2log: keep.map((l) => Array.from(map.values.subarray(l * P, (l + 1) * P))) };
  if (placement && P > E)
    notes.push(`${P - E} redundant expert slots per layer (${P} physical for ${E} logical) on ${D} GPUs`);
  yield* countEvents(schema, rows, opts, 'import:sglang:per_pass', placement);
}

interface TokenRecord {
  fp: number;
  rank: number;
  file: string;
  record: Map<PyValue, PyValue>;
}

function intList(v: PyValue | undefined, what: string, file: string): number[] {
  if (!Array.isArray(v)) throw new UserError(`${file}: ${what} is not a list`);
  return v.map((x) => int(x, what, file));
}

function* importPerToken(
  loaded: Loaded[],
  opts: SglangOptions,
  notes: string[],
  dups: Duplicates,
): Generator<ImportEvent, void, undefined> {
  const { dumps, map, L, P, E } = detailDumps(loaded, notes);
  const recs: TokenRecord[] = [];
  const seen = new Map<string, { file: string; record: Map<PyValue, PyValue> }>();
  const torchOf = (file: string) => loaded.find((l) => l.file === file)!.torch;
  // A record's content: its top-k ids, input ids and positions (a tensor and two lists).
  const content = (file: string, r: Map<PyValue, PyValue>): ArrayLike<number>[] => [
    tensorOf(torchOf(file), dictGet(r, 'topk_ids_of_layer'), 'topk_ids_of_layer', 3, file).values,
    intList(dictGet(r, 'input_ids'), 'input_ids', file),
    intList(dictGet(r, 'positions'), 'positions', file),
  ];
  for (const d of dumps)
    for (const r of d.records) {
      const fp = int(dictGet(r, 'forward_pass_id'), 'forward_pass_id', d.file);
      const rank = int(dictGet(r, 'rank'), 'rank', d.file);
      const ids = dictGet(r, 'input_ids');
      if (repeated(seen, fp, rank, d.file, r, content, dups, Array.isArray(ids) ? ids.length : 0)) continue;
      recs.push({ fp, rank, file: d.file, record: r });
    }
  recs.sort((a, b) => a.fp - b.fp || a.rank - b.rank);
  if (recs.length === 0) throw new UserError(`${dumps.map((d) => d.file).join(', ')}: no forward-pass records`);
  const dupNote = dups.note();
  if (dupNote) notes.push(dupNote);

  // First pass: which layers route, and the top-k (valid slots per token), from the ids alone. Each record's ids
  // are read again in the second pass rather than kept: memory holds one record's tensor, not the dump's.
  const routed = new Uint8Array(L);
  let K = 0;
  const idsOf = (r: TokenRecord): TensorData =>
    tensorOf(
      torchOf(r.file),
      dictGet(r.record, 'topk_ids_of_layer'),
      `topk_ids_of_layer of forward pass ${r.fp}`,
      3,
      r.file,
    );
  for (const r of recs) {
    const t = idsOf(r);
    if (t.shape[0] !== L)
      throw new UserError(
        `${r.file}: topk_ids_of_layer of forward pass ${r.fp} has ${t.shape[0]} layers, the map ${L}`,
      );
    const [, T, S] = t.shape as [number, number, number];
    for (let l = 0; l < L; l++)
      for (let x = 0; x < T; x++) {
        let valid = 0;
        for (let s = 0; s < S; s++) {
          const v = t.values[(l * T + x) * S + s]!;
          if (v === -1) continue;
          if (!Number.isInteger(v) || v < 0 || v >= P)
            throw new UserError(
              `${r.file}: topk_ids_of_layer of forward pass ${r.fp} holds ${v}, not a physical expert id (0…${P - 1})`,
            );
          valid++;
        }
        if (valid > 0) routed[l] = 1;
        K = Math.max(K, valid);
      }
  }
  const keep = Array.from({ length: L }, (_, l) => l).filter((l) => routed[l]);
  if (keep.length === 0)
    throw new UserError(`${dumps.map((d) => d.file).join(', ')}: every top-k id is -1: nothing was recorded`);
  const dn = denseNote(L, keep);
  if (dn) notes.push(dn);
  if (opts.topK !== undefined && opts.topK !== K)
    throw new UserError(`--top-k ${opts.topK}, but the dumps select ${K} experts per token`);
  const schema: RoutingSchema = { layers: keep, experts: E, topK: K, scoring: opts.scoring, hasLogits: false };
  const D = devicesFor(P, new Set(recs.map((r) => r.rank)).size, opts, notes);
  if (D !== null && P > E)
    notes.push(`${P - E} redundant expert slots per layer: ids are mapped to their logical experts`);
  notes.push(
    'SGLang records expert ids only: every weight is 1/K; requests are split by extend_seq_lens within a forward pass (seq), position from positions',
  );

  let padded = 0;
  let tokens = 0;
  yield { kind: 'open', schema, meta: META('import:sglang:per_token', D) };
  const items = new TokenItems(schema);
  const experts = new Array<number>(keep.length * K);
  const weights = new Array<number>(keep.length * K).fill(1 / K);
  let seq = 0;
  for (const r of recs) {
    const t = idsOf(r);
    const [, T, S] = t.shape as [number, number, number];
    const inputIds = intList(dictGet(r.record, 'input_ids'), 'input_ids', r.file);
    const positions = intList(dictGet(r.record, 'positions'), 'positions', r.file);
    if (inputIds.length !== T || positions.length !== T)
      throw new UserError(
        `${r.file}: forward pass ${r.fp} of rank ${r.rank} has ${T} tokens of top-k ids but ${inputIds.length} input_ids, ${positions.length} positions`,
      );
    const mode = int(dictGet(r.record, 'forward_mode'), 'forward_mode', r.file);
    const lensRaw = dictGet(r.record, 'extend_seq_lens');
    const lens =
      lensRaw === null || lensRaw === undefined
        ? null
        : intList(lensRaw instanceof PyTuple ? lensRaw.items : lensRaw, 'extend_seq_lens', r.file);
    if (lens && lens.reduce((a, b) => a + b, 0) !== T)
      throw new UserError(
        `${r.file}: forward pass ${r.fp}: extend_seq_lens sum to ${lens.reduce((a, b) => a + b, 0)}, not its ${T} tokens`,
      );
    // Request boundaries: extend_seq_lens in an extend pass; one token per request otherwise.
    const starts = new Set<number>();
    if (lens) lens.reduce((at, n) => (starts.add(at), at + n), 0);
    const tag = FORWARD_MODES[mode] ?? `forward mode ${mode}`;
    for (let x = 0; x < T; x++) {
      if (x > 0 && (!lens || starts.has(x))) seq++;
      let valid = 0;
      let all = 0;
      keep.forEach((l, li) => {
        let k = 0;
        for (let s = 0; s < S; s++) {
          const v = t.values[(l * T + x) * S + s]!;
          if (v === -1) continue;
          all++;
          if (k < K) experts[li * K + k] = map.values[l * P + v]!;
          k++;
        }
        if (k === K) valid++;
        else if (k !== 0)
          throw new UserError(
            `${r.file}: forward pass ${r.fp}, token ${x}, layer ${l} has ${k} of the ${K} top-k ids (the rest -1): moescope traces hold K experts per layer`,
          );
      });
      if (all === 0) {
        padded++;
        continue;
      }
      if (valid !== keep.length)
        throw new UserError(
          `${r.file}: forward pass ${r.fp}, token ${x} is routed in some MoE layers and -1 in others`,
        );
      const done = items.push({
        seq,
        pos: positions[x]!,
        tokenId: inputIds[x]!,
        token: '',
        isPrompt: mode === 1,
        tNs: 0n,
        experts,
        weights,
        tag,
      });
      if (done) yield done;
      tokens++;
    }
    seq++;
  }
  if (padded) notes.push(`${padded} padding tokens (every top-k id -1) skipped`);
  if (tokens === 0) throw new UserError(`${dumps.map((d) => d.file).join(', ')}: no routed tokens`);
  const rest = items.finish();
  if (rest) yield rest;
}
