/**
 * Duplicates inside one import (src/trace/import/duplicates.ts, docs/trace-format.md#duplicates): every importer
 * skips a token it has already imported — the same identity with the same routing — counts it and names the first
 * in a note; the same identity with different routing is refused (one line, exit 2). The reference for each case
 * is the import of the same input written without its repeats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../src/core/paths.js';
import { openTrace } from '../../src/trace/index.js';
import { moescope } from './cli.js';
import { plain, tempDir } from './helpers.js';

/** Every row of a trace, as plain arrays (capture times aside: imports write 0 or the line's tNs). */
function rows(path: string) {
  const t = openTrace(path);
  try {
    return { tokens: t.tokenCount, ...plain(t.readRange(0, t.tokenCount)) };
  } finally {
    t.close();
  }
}

function importBoth(
  dir: (n: string) => string,
  fmt: string,
  withRepeats: string[],
  without: string[],
  extra: string[] = [],
) {
  const a = moescope('import', fmt, ...withRepeats, ...extra, '-o', dir('dup.arrows'));
  assert.equal(a.code, 0, a.stderr);
  const b = moescope('import', fmt, ...without, ...extra, '-o', dir('ref.arrows'));
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(rows(dir('dup.arrows')), rows(dir('ref.arrows')));
  return a;
}

const HEADER = '{"moescope":1,"layers":2,"experts":8,"topK":2,"scoring":"softmax","columns":["rank"]}';
const tok = (seq: number, pos: number, rank: number, e: [number, number], id = 5) =>
  JSON.stringify({
    seq,
    pos,
    rank,
    tokenId: id,
    experts: [e, [e[1], e[0]]],
    weights: [
      [0.75, 0.25],
      [0.5, 0.5],
    ],
  });

test('import jsonl: a token line written twice is imported once, counted in a note naming it', (t) => {
  const { path } = tempDir(t);
  const lines = [HEADER, tok(0, 0, 0, [1, 2]), tok(0, 1, 0, [3, 4]), tok(0, 0, 1, [1, 2]), tok(1, 0, 0, [5, 6])];
  writeFileSync(path('ref.jsonl'), `${lines.join('\n')}\n`);
  // line 3 again right away, and line 2 again after other sequences (a concatenated copy)
  writeFileSync(path('dup.jsonl'), `${[...lines.slice(0, 3), lines[2], ...lines.slice(3), lines[1]].join('\n')}\n`);
  const r = importBoth(path, 'jsonl', [path('dup.jsonl')], [path('ref.jsonl')]);
  assert.match(r.stderr, /skipped 2 duplicate tokens \(the same seq, pos, rank and step/);
  assert.match(r.stderr, /the first at .*dup\.jsonl:4 \(seq 0, pos 1\)/);
  assert.match(r.stdout, /wrote .*: 4 tokens/);
  // the same (seq, pos) on another rank is another token: kept (the reference holds it)
  assert.equal(rows(path('dup.arrows')).tokens, 4);
});

test('import jsonl: the same token with different routing is refused (one line, exit 2)', (t) => {
  const { path } = tempDir(t);
  writeFileSync(
    path('c.jsonl'),
    `${[HEADER, tok(0, 0, 0, [1, 2]), tok(0, 1, 0, [3, 4]), tok(0, 1, 0, [3, 5])].join('\n')}\n`,
  );
  const r = moescope('import', 'jsonl', path('c.jsonl'), '-o', path('c.arrows'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^moescope: .*c\.jsonl:4: seq 0, pos 1, rank 0 was imported before with different routing/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

const rec = (step: number, layer: number, rows: number[][]) =>
  JSON.stringify({
    step,
    stage: 'pre_dispatch',
    block: 'decoder',
    layer,
    rank: 0,
    num_tokens: rows.length,
    topk: 2,
    top_indices: rows,
  });

test('import megatron: recomputation (a layer routed again in backward) and a step written twice are imported once', (t) => {
  const { path } = tempDir(t);
  const mb0 = [
    [
      [0, 1],
      [2, 3],
      [4, 5],
    ],
    [
      [6, 7],
      [1, 0],
      [3, 2],
    ],
  ]; // microbatch 0: layers 1 and 2
  const mb1 = [
    [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    [
      [7, 0],
      [0, 1],
      [2, 3],
    ],
  ];
  const fwd = (s: number, mb: number[][][]) => [rec(s, 1, mb[0]!), rec(s, 2, mb[1]!)];
  // 1F1B with full recompute: forward mb0, forward mb1, then each microbatch's layers again, last layer first.
  const ref = [...fwd(0, mb0), ...fwd(0, mb1), ...fwd(1, mb1)];
  const dup = [
    ...fwd(0, mb0),
    ...fwd(0, mb1),
    rec(0, 2, mb0[1]!),
    rec(0, 1, mb0[0]!),
    rec(0, 1, mb1[0]!), // --recompute-method block: only layer 1 is recomputed for mb1
    ...fwd(1, mb1),
    ...fwd(1, mb1), // step 1's records written twice
  ];
  writeFileSync(path('ref.jsonl'), `${ref.join('\n')}\n`);
  writeFileSync(path('dup.jsonl'), `${dup.join('\n')}\n`);
  const r = importBoth(path, 'megatron', [path('dup.jsonl')], [path('ref.jsonl')], ['--experts', '8']);
  assert.match(r.stderr, /skipped 5 duplicate router records, \d+ tokens \(the same step, rank and layer/);
  assert.match(r.stderr, /the first at .*dup\.jsonl:5/);
  assert.match(r.stdout, /wrote .*: 9 tokens/);
});

const SGLANG = join(FIXTURES, 'sglang');
const dumps = (mode: string) =>
  readdirSync(join(SGLANG, mode))
    .filter((f) => f.endsWith('.pt'))
    .map((f) => join(SGLANG, mode, f));

test('import sglang: a dump given twice is imported once (per_token tokens, per_pass counts)', (t) => {
  const { path } = tempDir(t);
  const tok = importBoth(path, 'sglang', [...dumps('per_token'), ...dumps('per_token')], dumps('per_token'));
  assert.match(
    tok.stderr,
    /skipped \d+ duplicate forward-pass records, \d+ tokens \(the same forward_pass_id and rank/,
  );
  const pass = moescope('import', 'sglang', ...dumps('per_pass'), ...dumps('per_pass'), '-o', path('p2.arrows'));
  assert.equal(pass.code, 0, pass.stderr);
  assert.match(pass.stderr, /skipped \d+ duplicate forward-pass records \(/);
  assert.equal(moescope('import', 'sglang', ...dumps('per_pass'), '-o', path('p1.arrows')).code, 0);
  const counts = (p: string) => {
    const tr = openTrace(p);
    try {
      return [...tr.countBatches()].map((b) => [[...b.step], [...b.counts]]);
    } finally {
      tr.close();
    }
  };
  assert.deepEqual(counts(path('p2.arrows')), counts(path('p1.arrows')));
});

test('import routed-experts: a response saved twice (same request id) is imported once; other routing is refused', (t) => {
  const { path } = tempDir(t);
  const file = join(FIXTURES, 'serving', 'sglang-generate.json');
  const r = importBoth(path, 'routed-experts', [file, file], [file], ['--top-k', '2']);
  assert.match(r.stderr, /skipped 1 duplicate response, \d+ tokens \(the same request id/);
  const o = JSON.parse(readFileSync(file, 'utf8')) as { output_ids: number[] };
  o.output_ids = o.output_ids.map((x) => x + 1);
  writeFileSync(path('other.json'), JSON.stringify(o));
  const c = moescope('import', 'routed-experts', file, path('other.json'), '--top-k', '2', '-o', path('c.arrows'));
  assert.equal(c.code, 2);
  assert.match(c.stderr, /request "7d3c0a1e2f4b4c6e8a9b0c1d2e3f4a5b" was imported before with different routing/);
});
