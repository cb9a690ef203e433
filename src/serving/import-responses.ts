/**
 * `import routed-experts`: saved SGLang / vLLM responses that carry per-request routing (src/serving/responses.ts):
 * one JSON response, a JSON list of them (SGLang batch /generate), or JSONL with one response per line. Each
 * routed request becomes one sequence of the trace (seq = its order in the file).
 */
import { fstatSync, closeSync, readFileSync } from 'node:fs';
import type { Scoring } from '../core/batch.js';
import { resolveOutput } from '../core/output.js';
import { UserError, describeError } from '../core/errors.js';
import { openInput, parseLine, readLines } from '../trace/import/lines.js';
import {
  TokenItems,
  importStream,
  writeImport,
  type ImportEvent,
  type ImportResult,
  type ImportedStream,
} from '../trace/import/import-stream.js';
import { parseResponse, type ServedRequest } from './responses.js';
import { Duplicates, conflict } from '../trace/import/duplicates.js';
import { quoteValue } from '../core/sanitize.js';
import { requestTokens, servedMeta, servedSchema } from './tokens.js';

export interface RoutedExpertsOptions {
  layers?: number;
  topK?: number;
  experts?: number;
  scoring: Scoring;
}

/** Whole-document JSON up to this size; larger files must be JSONL (read line by line). */
const MAX_JSON_BYTES = 512 << 20;

function* responses(file: string): Generator<{ value: unknown; at: string }> {
  const fd = openInput(file);
  let size: number;
  try {
    size = fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
  if (size <= MAX_JSON_BYTES) {
    const text = readFileSync(file, 'utf8');
    let doc: unknown;
    let whole = true;
    try {
      doc = JSON.parse(text);
    } catch {
      whole = false; // JSONL, or broken: the line reader names the line
    }
    if (whole) {
      if (Array.isArray(doc)) {
        for (let i = 0; i < doc.length; i++) yield { value: doc[i], at: `${file} [${i}]` };
      } else yield { value: doc, at: file };
      return;
    }
  }
  for (const line of readLines(file)) {
    if (line.text.trim() === '') continue;
    yield { value: parseLine(file, line), at: `${file}:${line.no}` };
  }
}

/** The saved responses' routing as a stream (parsed up front: the schema needs every request's shape). */
export function routedExpertsStream(files: string[], o: RoutedExpertsOptions): ImportedStream {
  if (files.length === 0) throw new UserError('no input files');
  const notes: string[] = [];
  const dups = new Duplicates(
    ['duplicate response', 'duplicate responses'],
    'the same request id as an earlier response, with the same routing and tokens',
  );
  return importStream(files.join(', '), routedExpertsEvents(files, o, notes, dups), notes, dups);
}

/** Whether two responses hold the same request: the same routing, the same tokens at the same positions. */
function sameRequest(a: ServedRequest, b: ServedRequest): boolean {
  const same = (x: ArrayLike<number> | null, y: ArrayLike<number> | null) =>
    x === y ||
    (x !== null && y !== null && x.length === y.length && Array.prototype.every.call(x, (v, i) => v === y[i]));
  return (
    a.start === b.start &&
    a.routing.layers === b.routing.layers &&
    a.routing.topK === b.routing.topK &&
    same(a.routing.ids, b.routing.ids) &&
    same(a.ids, b.ids)
  );
}

/** Imports saved responses into the trace `output`, written only if the whole import succeeds. */
export async function importRoutedExperts(
  files: string[],
  output: string,
  o: RoutedExpertsOptions,
): Promise<ImportResult> {
  if (files.length === 0) throw new UserError('no input files');
  resolveOutput(output, files, '--output'); // never an input (same inode through any path), never a folder
  return writeImport(routedExpertsStream(files, o), output, files);
}

function* routedExpertsEvents(
  files: string[],
  o: RoutedExpertsOptions,
  notes: string[],
  dups: Duplicates,
): Generator<ImportEvent, void, undefined> {
  const reqs: ServedRequest[] = [];
  // A request's identity is its id (the responses are held whole anyway: the schema needs every one's shape);
  // responses without one are each their own request.
  const byId = new Map<string, ServedRequest>();
  for (const file of files)
    for (const r of responses(file)) {
      let parsed: ServedRequest[];
      try {
        parsed = parseResponse(r.value, { layers: o.layers, topK: o.topK }, r.at);
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(`${r.at}: ${describeError(e)}`);
      }
      for (const q of parsed) {
        const first = q.id === null ? undefined : byId.get(q.id);
        if (first === undefined) {
          if (q.id !== null) byId.set(q.id, q);
          reqs.push(q);
          continue;
        }
        if (!sameRequest(first, q))
          throw conflict(r.at, `request ${quoteValue(q.id, 60)}`, 'responses of two runs? import them separately');
        dups.skip(`${r.at} (request ${quoteValue(q.id, 60)})`, q.routing.rows);
      }
    }
  if (reqs.length === 0) throw new UserError(`${files.join(', ')}: no responses found`);
  const apis = new Set(reqs.map((r) => r.api));
  const s = servedSchema(reqs, { experts: o.experts, scoring: o.scoring });
  yield { kind: 'open', schema: s.schema, meta: servedMeta([...apis].join('+'), null, 'import:routed-experts') };
  notes.push(...s.notes);
  const missing = reqs.filter((r) => r.ids === null).length;
  if (missing)
    notes.push(
      `${missing} of ${reqs.length} requests carry no token ids (ask with return_logprob / return_token_ids for the Tokens pane)`,
    );
  const dn = dups.note();
  if (dn) notes.push(dn);
  const tokens = new TokenItems(s.schema);
  for (const [seq, r] of reqs.entries())
    for (const t of requestTokens(r, seq, s, 0n)) {
      const done = tokens.push(t);
      if (done) yield done;
    }
  const rest = tokens.finish();
  if (rest) yield rest;
}
