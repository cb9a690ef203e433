/**
 * `import jsonl`: moescope's JSONL interchange format (docs/trace-format.md#jsonl-interchange-format).
 * Several files concatenate when their headers describe the same routing schema.
 */
import {
  expertsAt,
  NO_EXPERT,
  OPTIONAL_COLUMNS,
  type OptionalColumn,
  type RoutingSchema,
  type TokenRouting,
  topKAt,
} from '../../core/batch.js';
import type { MemorySample } from '../../core/memory.js';
import { UserError } from '../../core/errors.js';
import { quoteValue } from '../../core/sanitize.js';
import { checkLayerShapes, checkShape, isScoring } from '../arrow-schema.js';
import { memoryFromJson } from '../memory-json.js';
import { selectTopK, selectTopKInto } from '../../core/topk.js';
import { parseLine, readLines, type Line } from './lines.js';
import { TokenItems, importStream, type ImportEvent, type ImportedStream } from './import-stream.js';
import { Duplicates, OpenSequences, conflict, contentHash } from './duplicates.js';

interface Header {
  schema: Omit<RoutingSchema, 'hasLogits'>;
  model: string | null;
  tokenizer: string | null;
  devices: string[];
  /** Optional columns the header names ("columns": ["step", "rank", "dropped"]). */
  columns: OptionalColumn[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function parseHeader(raw: unknown, fail: (why: string) => never): Header {
  if (!isObj(raw) || raw.moescope === undefined)
    fail('the first line must be the header {"moescope":1,"layers":L,"experts":E,"topK":K,"scoring":…}');
  if (raw.moescope !== 1)
    fail(`unsupported interchange version ${JSON.stringify(raw.moescope)} (this moescope reads 1)`);
  const L = raw.layers;
  const E = raw.experts;
  const K = raw.topK;
  if (!isInt(L) || L < 1) fail(`header "layers" must be a positive integer, got ${JSON.stringify(L)}`);
  if (!isInt(E) || E < 1 || E > 65536) fail(`header "experts" must be an integer 1…65536, got ${JSON.stringify(E)}`);
  if (!isInt(K) || K < 1 || K > E) fail(`header "topK" must be an integer 1…${E}, got ${JSON.stringify(K)}`);
  if (!isScoring(raw.scoring))
    fail(`header "scoring" must be "softmax" or "sigmoid", got ${JSON.stringify(raw.scoring)}`);
  checkShape(L, E, K, (why) => fail(`header: ${why}`)); // before allocating anything of size L
  let layers = Array.from({ length: L }, (_, i) => i);
  if (raw.layerIds !== undefined) {
    const ids = raw.layerIds;
    if (!Array.isArray(ids) || ids.length !== L || !ids.every((x) => isInt(x) && x >= 0))
      fail(`header "layerIds" must be ${L} non-negative integers`);
    layers = ids as number[];
  }
  const str = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : null);
  const devices = Array.isArray(raw.devices) ? raw.devices.filter((d): d is string => typeof d === 'string') : [];
  const cols = raw.columns ?? [];
  if (!Array.isArray(cols) || !cols.every((c) => (OPTIONAL_COLUMNS as readonly unknown[]).includes(c)))
    fail(
      `header "columns" must be a list of ${OPTIONAL_COLUMNS.map((c) => `"${c}"`).join(', ')}, got ${JSON.stringify(raw.columns)}`,
    );
  const schema: Header['schema'] = { layers, experts: E, topK: K, scoring: raw.scoring };
  // Layers that differ in E or K (as export --jsonl writes them): each layer's own, its arrays that long.
  if (raw.layerExperts !== undefined || raw.layerTopK !== undefined) {
    schema.layerExperts = raw.layerExperts as number[];
    schema.layerTopK = raw.layerTopK as number[];
    checkLayerShapes({ ...schema, hasLogits: false }, (why) => fail(`header: ${why}`));
  }
  return {
    schema,
    model: str('model'),
    tokenizer: str('tokenizer'),
    devices,
    columns: cols as OptionalColumn[],
  };
}

/** An L×n matrix of numbers, flattened layer-major; `check` vets each value. */
function matrix(
  v: unknown,
  L: number,
  n: (l: number) => number,
  what: string,
  fail: (why: string) => never,
  check: (x: unknown) => boolean,
  want: string,
): number[] {
  if (!Array.isArray(v) || v.length !== L)
    fail(`"${what}" must be ${L} arrays (one per layer), got ${Array.isArray(v) ? v.length : typeof v}`);
  const out: number[] = [];
  for (let l = 0; l < L; l++) {
    const row = v[l];
    if (!Array.isArray(row) || row.length !== n(l))
      fail(`${what} of layer ${l} has ${Array.isArray(row) ? row.length : 'no'} values, expected ${n(l)}`);
    for (const x of row) {
      if (!check(x)) fail(`${what} of layer ${l} has ${JSON.stringify(x)}, expected ${want}`);
      out.push(x as number);
    }
  }
  return out;
}

/** Keys a token line may have (docs/trace-format.md § JSONL interchange). */
const TOKEN_KEYS = new Set([
  'seq',
  'pos',
  'tokenId',
  'token',
  'isPrompt',
  'tNs',
  'experts',
  'weights',
  'logits',
  'tag',
  ...OPTIONAL_COLUMNS,
]);

/** Non-finite values as export --jsonl writes them (JSON has no Infinity / NaN), so the round trip holds. */
const NON_FINITE: Record<string, number> = { Infinity: Infinity, '-Infinity': -Infinity, NaN: NaN };
const nonFinite = (x: unknown): boolean => typeof x === 'string' && x in NON_FINITE;

function tokenFrom(
  o: Obj,
  h: Header,
  hasLogits: boolean,
  columns: readonly OptionalColumn[],
  nextPos: Map<number, number>,
  fail: (why: string) => never,
): TokenRouting {
  const { layers, experts: E, topK: K, scoring } = h.schema;
  const L = layers.length;
  const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  // A misspelt key ("weightsx") would silently mean its default (weights 1/K): every key must be known.
  for (const k of Object.keys(o))
    if (!TOKEN_KEYS.has(k)) {
      const near = [...TOKEN_KEYS].find(
        (t) => t.toLowerCase() === k.toLowerCase() || k.startsWith(t) || t.startsWith(k),
      );
      fail(`unknown key ${quoteValue(k, 40)} on a token line${near ? ` (did you mean "${near}"?)` : ''}`);
    }
  if (o.experts === undefined && o.logits === undefined) fail('a token needs "experts" (with "weights") or "logits"');
  if ((o.logits !== undefined) !== hasLogits)
    fail(
      hasLogits
        ? 'this token has no "logits" but earlier ones do (all or none)'
        : 'this token has "logits" but earlier ones do not (all or none)',
    );
  // Each layer's arrays hold its own E or K values (mixed shapes); the batch pads them to the largest: ids past a
  // layer's K are NO_EXPERT with weight 0, logits past its E are −Inf (src/core/batch.ts).
  const eAt = (l: number) => expertsAt(h.schema as RoutingSchema, l);
  const kAt = (l: number) => topKAt(h.schema as RoutingSchema, l);
  const mixed = h.schema.layerExperts !== undefined;
  const pad = (v: number[], len: (l: number) => number, stride: number, fill: number): number[] => {
    if (!mixed) return v;
    const out = new Array<number>(L * stride).fill(fill);
    let i = 0;
    for (let l = 0; l < L; l++) for (let j = 0; j < len(l); j++) out[l * stride + j] = v[i++]!;
    return out;
  };
  // null: not captured (exported NaN), as in the trace.
  const ownLogits =
    o.logits !== undefined
      ? matrix(
          o.logits,
          L,
          eAt,
          'logits',
          fail,
          (x) => x === null || finite(x) || nonFinite(x),
          'a number, "Infinity", "-Infinity", "NaN" or null',
        ).map((x) => (x === null ? NaN : typeof x === 'string' ? NON_FINITE[x]! : (x as number)))
      : null;
  const logits = ownLogits && pad(ownLogits, eAt, E, -Infinity);
  let experts: ArrayLike<number>;
  let weights: ArrayLike<number>;
  if (o.experts !== undefined) {
    const ids = matrix(
      o.experts,
      L,
      kAt,
      'experts',
      fail,
      (x) => isInt(x) && x >= 0 && x < E,
      `an expert id 0…${E - 1}`,
    );
    experts = pad(ids, kAt, K, NO_EXPERT);
    for (let l = 0; l < L; l++) {
      const own = (experts as number[]).slice(l * K, l * K + kAt(l));
      if (new Set(own).size !== own.length) fail(`experts of layer ${l} repeats an id: ${JSON.stringify(own)}`);
      const out = own.find((x) => x >= eAt(l));
      if (out !== undefined) fail(`experts of layer ${l} has ${out}, expected an expert id 0…${eAt(l) - 1}`);
    }
    weights =
      o.weights !== undefined
        ? pad(
            matrix(
              o.weights,
              L,
              kAt,
              'weights',
              fail,
              (x) => finite(x) || nonFinite(x),
              'a number, "Infinity", "-Infinity" or "NaN"',
            ).map((x) => (typeof x === 'string' ? NON_FINITE[x]! : (x as number))),
            kAt,
            K,
            0,
          )
        : pad(Array.from({ length: L }, (_, l) => new Array<number>(kAt(l)).fill(1 / kAt(l))).flat(), kAt, K, 0);
  } else {
    if (o.weights !== undefined) fail('"weights" given without "experts"');
    if (!mixed) {
      const sel = selectTopK(logits!, E, K, scoring);
      experts = sel.experts;
      weights = sel.weights;
    } else {
      // Each layer's top-k of its own logits.
      const ex = new Uint16Array(L * K).fill(NO_EXPERT);
      const w = new Float32Array(L * K);
      for (let l = 0; l < L; l++) selectTopKInto(logits!, l * E, eAt(l), kAt(l), scoring, ex, w, l * K);
      experts = ex;
      weights = w;
    }
  }
  const seq = o.seq ?? 0;
  if (!isInt(seq) || seq < 0 || seq > 0xffffffff)
    fail(`"seq" must be a non-negative integer, got ${JSON.stringify(seq)}`);
  let pos = o.pos;
  if (pos === undefined) pos = nextPos.get(seq) ?? 0;
  if (!isInt(pos) || pos < 0 || pos > 0xffffffff)
    fail(`"pos" must be a non-negative integer, got ${JSON.stringify(pos)}`);
  nextPos.set(seq, pos + 1);
  const tokenId = o.tokenId ?? -1;
  if (!isInt(tokenId) || tokenId < -2147483648 || tokenId > 2147483647)
    fail(`"tokenId" must be an int32, got ${JSON.stringify(tokenId)}`);
  const token = o.token ?? '';
  if (typeof token !== 'string') fail(`"token" must be a string`);
  const tag = o.tag ?? null;
  if (tag !== null && typeof tag !== 'string') fail(`"tag" must be a string or null`);
  if (o.isPrompt !== undefined && typeof o.isPrompt !== 'boolean') fail(`"isPrompt" must be true or false`);
  const t: TokenRouting = {
    seq,
    pos,
    tokenId,
    token,
    tag,
    isPrompt: o.isPrompt === true,
    tNs: parseTNs(o.tNs, fail),
    experts,
    weights,
    logits,
  };
  for (const c of OPTIONAL_COLUMNS)
    if (o[c] !== undefined && !columns.includes(c))
      fail(`"${c}" given, but the first token had none and the header's "columns" does not name it`);
  if (columns.includes('step')) {
    const step = o.step ?? null;
    if (step !== null && (!isInt(step) || step < 0 || step >= 0xffffffff))
      fail(`"step" must be an integer 0…4294967294 or null, got ${JSON.stringify(step)}`);
    t.step = step;
  }
  if (columns.includes('rank')) {
    if (!isInt(o.rank) || o.rank < 0 || o.rank > 0xffff)
      fail(`"rank" must be an integer 0…65535 on every token, got ${JSON.stringify(o.rank)}`);
    t.rank = o.rank;
  }
  if (columns.includes('dropped')) {
    const d = o.dropped ?? 0;
    if (!isInt(d) || d < 0 || d > 0xffffffff)
      fail(`"dropped" must be an integer 0…4294967295, got ${JSON.stringify(d)}`);
    t.dropped = d;
  }
  return t;
}

function parseTNs(v: unknown, fail: (why: string) => never): bigint {
  if (v === undefined) return 0n;
  if (isInt(v) && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) {
    const b = BigInt(v);
    if (b >= -(2n ** 63n) && b < 2n ** 63n) return b;
  }
  return fail(`"tNs" must be an integer (or a decimal string) of ns since the epoch, got ${JSON.stringify(v)}`);
}

function sameSchema(a: Header['schema'], b: Header['schema']): boolean {
  return (
    a.experts === b.experts &&
    a.topK === b.topK &&
    a.scoring === b.scoring &&
    a.layers.join() === b.layers.join() &&
    String(a.layerExperts) === String(b.layerExperts) &&
    String(a.layerTopK) === String(b.layerTopK)
  );
}

/** Several files concatenate when their headers describe the same routing schema. */
export function jsonlStream(files: string[]): ImportedStream {
  const notes: string[] = [];
  const dups = new Duplicates(
    ['duplicate token', 'duplicate tokens'],
    'the same seq, pos, rank and step as an earlier token, with the same routing',
  );
  return importStream(files.join(', '), jsonlEvents(files, notes, dups), notes, dups);
}

function* jsonlEvents(files: string[], notes: string[], dups: Duplicates): Generator<ImportEvent, void, undefined> {
  const open = new OpenSequences(); // identities of the sequences in flight (src/trace/import/duplicates.ts)
  let first: Header | null = null;
  let hasLogits: boolean | null = null;
  let columns: OptionalColumn[] = [];
  let tokens: TokenItems | null = null;
  const early: MemorySample[] = []; // samples before the first token (the stream opens at the first token)
  const nextPos = new Map<number, number>();
  for (const file of files) {
    let header: Header | null = null;
    for (const line of readLines(file)) {
      if (line.text.trim() === '') continue;
      const fail: (why: string) => never = (why) => {
        throw new UserError(`${file}:${line.no}: ${why}`);
      };
      const raw = parseLine(file, line);
      if (header === null) {
        header = parseHeader(raw, fail);
        if (first && !sameSchema(first.schema, header.schema))
          fail(`header describes a different routing schema than ${files[0]}'s; import them separately`);
        first ??= header;
        continue;
      }
      if (!isObj(raw)) fail('expected a JSON object');
      if (raw.memory !== undefined) {
        const sample = memorySample(raw.memory, file, line);
        if (tokens === null) early.push(sample);
        else {
          const done = tokens.sample(sample);
          if (done) yield done;
        }
        continue;
      }
      if (hasLogits === null) {
        hasLogits = raw.logits !== undefined;
        // Optional columns: those the header names, and those the first token carries.
        columns = OPTIONAL_COLUMNS.filter((c) => header!.columns.includes(c) || raw[c] !== undefined);
        const schema = { ...header.schema, hasLogits };
        yield {
          kind: 'open',
          schema,
          meta: { model: header.model, tokenizer: header.tokenizer, devices: header.devices, source: 'import:jsonl' },
          columns,
        };
        tokens = new TokenItems(schema, columns);
        for (const m of early) tokens.sample(m);
      }
      const t = tokenFrom(raw, header, hasLogits, columns, nextPos, fail);
      const seen = open.see(
        `${t.seq}/${t.rank ?? ''}/${t.step ?? ''}`,
        t.pos,
        contentHash(t.tokenId, t.experts, t.weights, t.logits ?? []),
      );
      if (seen === 'same') {
        dups.skip(`${file}:${line.no} (seq ${t.seq}, pos ${t.pos})`);
        continue;
      }
      if (seen === 'different')
        throw conflict(
          `${file}:${line.no}`,
          `seq ${t.seq}, pos ${t.pos}${t.rank !== undefined ? `, rank ${t.rank}` : ''}${t.step !== undefined ? `, step ${t.step}` : ''}`,
          'give each run its own "seq"',
        );
      const done = tokens!.push(t);
      if (done) yield done;
    }
    if (header === null) throw new UserError(`${file}: empty (no header line)`);
  }
  if (tokens === null) throw new UserError(`${files.join(', ')}: no tokens after the header`);
  const note = dups.note();
  if (note) notes.push(note);
  const rest = tokens.finish();
  if (rest) yield rest;
}

function memorySample(v: unknown, file: string, line: Line): MemorySample {
  try {
    const [s] = memoryFromJson(JSON.stringify(v), `${file}:${line.no}`);
    return s!;
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}
