/**
 * `import routed-experts`: saved SGLang / vLLM responses that carry per-request routing (src/serving/responses.ts):
 * one JSON response, a JSON list of them (SGLang batch /generate), or JSONL with one response per line. Each
 * routed request becomes one sequence of the trace (seq = its order in the file).
 */
import { fstatSync, closeSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Scoring } from '../core/batch.js';
import { resolveOutput } from '../core/output.js';
import { UserError, describeError } from '../core/errors.js';
import { openInput, parseLine, readLines } from '../trace/import/lines.js';
import { TraceSink, type ImportResult } from '../trace/import/sink.js';
import { parseResponse, type ServedRequest } from './responses.js';
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

export function importRoutedExperts(files: string[], output: string, o: RoutedExpertsOptions): ImportResult {
  if (files.length === 0) throw new UserError('no input files');
  resolveOutput(output, files, '--output'); // never an input (same inode through any path), never a folder
  const reqs: ServedRequest[] = [];
  for (const file of files)
    for (const r of responses(file)) {
      try {
        reqs.push(...parseResponse(r.value, { layers: o.layers, topK: o.topK }, r.at));
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(`${r.at}: ${describeError(e)}`);
      }
    }
  if (reqs.length === 0) throw new UserError(`${files.join(', ')}: no responses found`);
  const apis = new Set(reqs.map((r) => r.api));
  const s = servedSchema(reqs, { experts: o.experts, scoring: o.scoring });
  const sink = new TraceSink(output);
  try {
    sink.open(s.schema, servedMeta([...apis].join('+'), null, 'import:routed-experts'));
    sink.notes.push(...s.notes);
    const missing = reqs.filter((r) => r.ids === null).length;
    if (missing) sink.notes.push(`${missing} of ${reqs.length} requests carry no token ids (ask with return_logprob / return_token_ids for the Tokens pane)`);
    reqs.forEach((r, seq) => {
      for (const t of requestTokens(r, seq, s, 0n)) sink.push(t);
    });
    return sink.finish();
  } catch (e) {
    sink.abort();
    throw e;
  }
}
