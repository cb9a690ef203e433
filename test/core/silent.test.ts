/**
 * Silent wrong results become loud: ±Inf router logits fail a z-loss gate instead of dropping out of it; export
 * --jsonl round-trips ±Inf and NaN; importers refuse what they would otherwise misread (misspelt keys, repeated
 * expert ids, empty arrays); Parquet holds the full uint32 range of seq / pos; a trace that ended without being
 * closed says so in stats, plan and report; NaN / −Inf logits and NaN weights are counted next to the metrics they
 * leave out, and fail a z-loss gate; a trace holding a batch twice is refused by every command that reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { F16_TO_F32 } from '../../src/core/f16.js';
import type { RoutingSchema } from '../../src/core/batch.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { openTrace } from '../../src/trace/index.js';
import { makeBatch, META, npy, tempDir } from '../trace/helpers.js';
import { moescope } from '../trace/cli.js';

const LOGITS: RoutingSchema = { layers: [0, 1], experts: 8, topK: 2, scoring: 'softmax', hasLogits: true };
const PINF = 0x7c00;
const NINF = 0xfc00;
const NAN = 0x7e00;

function traceWithInf(path: string, close = true): void {
  const w = TraceWriter.create(path, { schema: LOGITS, meta: META });
  const b = makeBatch(LOGITS, 200, 0);
  for (let t = 0; t < 200; t += 10) b.logits![(t * 2 + 1) * 8 + 3] = PINF; // layer 1 overflows on every 10th token
  b.logits![5] = NINF;
  b.weights[7] = NAN;
  w.write(b);
  if (close) w.close();
  else w.flush();
}

test('check --max-z-loss fails on a trace whose logits overflowed to +Inf (and names them)', (t) => {
  const { path } = tempDir(t);
  const tr = path('inf.arrows');
  traceWithInf(tr);
  const r = moescope('check', tr, '--max-z-loss', '10');
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /non-finite logits/);
  const j = moescope('check', tr, '--max-z-loss', '10', '--format', 'json');
  assert.equal(j.code, 1);
  assert.equal(JSON.parse(j.stdout).passed, false);
});

/** NaN among finite logits on every 10th token of layer 1, −Inf on token 0 of layer 0, NaN weights on every 20th token
 * of layer 0, and token 5 recorded without logits (all NaN: not captured, not counted). */
function traceWithNaN(path: string): void {
  const w = TraceWriter.create(path, { schema: LOGITS, meta: META });
  const b = makeBatch(LOGITS, 200, 0);
  for (let t = 0; t < 200; t += 10) b.logits![(t * 2 + 1) * 8 + 3] = NAN;
  b.logits![(0 * 2 + 0) * 8 + 5] = NINF;
  for (let t = 0; t < 200; t += 20) b.weights[(t * 2 + 0) * 2 + 1] = NAN;
  b.logits!.fill(NAN, (5 * 2 + 0) * 8, (5 * 2 + 2) * 8);
  w.write(b);
  w.close();
}

test('stats counts NaN / ±Inf logits and weights next to the metrics they leave out (text and JSON)', (t) => {
  const { path } = tempDir(t);
  const tr = path('nan.arrows');
  traceWithNaN(tr);
  const j = moescope('stats', tr, '--json');
  assert.equal(j.code, 0, j.stderr);
  const s = JSON.parse(j.stdout) as {
    layers: { nonFiniteLogitRows: number; nonFiniteWeightRows: number; zLoss: number }[];
    global: { nonFiniteLogitRows: number };
    nonFinite: { logitRows: number; weightRows: number };
  };
  assert.deepEqual(
    s.layers.map((l) => l.nonFiniteLogitRows),
    [1, 20],
  );
  assert.deepEqual(
    s.layers.map((l) => l.nonFiniteWeightRows),
    [10, 0],
  );
  assert.deepEqual(s.nonFinite, { logitRows: 21, weightRows: 10 });
  assert.equal(s.global.nonFiniteLogitRows, 21);
  assert.ok(Number.isFinite(s.layers[1]!.zLoss)); // over the rows left
  const text = moescope('stats', tr);
  assert.equal(text.code, 0);
  const zRow = text.stdout.split('\n').find((l) => /^\s+1\s/.test(l))!;
  assert.match(zRow, /†/, "layer 1's logit columns carry the mark");
  assert.match(text.stdout, /† 21 token rows with NaN\/±Inf router logits left out: layer 0 1, layer 1 20/);
  assert.match(text.stdout, /‡ 10 token rows with NaN\/±Inf routing weights .*: layer 0 10/);
  assert.match(text.stdout, /Router z-loss.*† 21 token rows/);
  assert.match(text.stdout, /same first choice .*‡ 10 token rows with NaN\/±Inf weights/);
});

test('check --max-z-loss fails (does not pass on the rest) where NaN or −Inf logits were left out', (t) => {
  const { path } = tempDir(t);
  const tr = path('nan.arrows');
  traceWithNaN(tr);
  const r = moescope('check', tr, '--max-z-loss', '1000');
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL layer 0: router z-loss \(ST-MoE\) is undefined \(1 token rows have NaN\/−Inf logits\)/);
  assert.match(r.stdout, /FAIL layer 1: .*\(20 token rows have NaN\/−Inf logits\)/);
  assert.match(r.stdout, /non-finite logits +21 token-layer rows/);
  // Gates that do not read logits still pass.
  assert.equal(moescope('check', tr, '--max-cv', '10').code, 0);
});

test('export --jsonl → import jsonl keeps ±Inf and NaN bit for bit', (t) => {
  const { path } = tempDir(t);
  const tr = path('inf.arrows');
  traceWithInf(tr);
  assert.equal(moescope('export', tr, '--jsonl', path('x.jsonl')).code, 0);
  const back = moescope('import', 'jsonl', path('x.jsonl'), '-o', path('back.arrows'));
  assert.equal(back.code, 0, back.stderr);
  const a = openTrace(tr).readRange(0, 200);
  const b = openTrace(path('back.arrows')).readRange(0, 200);
  const same = (x: Uint16Array, y: Uint16Array) =>
    x.every(
      (h, i) =>
        Object.is(F16_TO_F32[h], F16_TO_F32[y[i]!]) || (Number.isNaN(F16_TO_F32[h]) && Number.isNaN(F16_TO_F32[y[i]!])),
    );
  assert.ok(same(a.logits!, b.logits!), 'logits');
  assert.ok(same(a.weights, b.weights), 'weights');
  assert.equal(F16_TO_F32[b.logits![(0 * 2 + 1) * 8 + 3]!], Infinity);
  assert.equal(F16_TO_F32[b.logits![5]!], -Infinity);
  assert.ok(Number.isNaN(F16_TO_F32[b.weights[7]!]));
});

test('importers refuse what they would misread: misspelt keys, repeated ids, no tokens', (t) => {
  const { path } = tempDir(t);
  const cases: [string, string, string | Buffer, string[], RegExp][] = [
    [
      'jsonl',
      'key.jsonl',
      '{"moescope":1,"layers":1,"experts":4,"topK":2,"scoring":"softmax"}\n{"experts":[[0,1]],"weightsx":[[0.9,0.1]]}\n',
      [],
      /unknown key "weightsx" on a token line \(did you mean "weights"\?\)/,
    ],
    [
      'jsonl',
      'rep.jsonl',
      '{"moescope":1,"layers":1,"experts":4,"topK":2,"scoring":"softmax"}\n{"experts":[[3,3]]}\n',
      [],
      /repeats an id/,
    ],
    [
      'megatron',
      'rep-m.jsonl',
      '{"step":0,"stage":"pre_dispatch","block":"decoder","layer":2,"rank":0,"num_tokens":1,"topk":2,"top_indices":[[3,3]]}\n',
      [],
      /repeats an expert id/,
    ],
    ['jsonl', 'empty.jsonl', '{"moescope":1,"layers":1,"experts":4,"topK":2,"scoring":"softmax"}\n', [], /no tokens/],
    ['npy', 'empty.npy', npy('<f4', [0, 2, 8], new Float32Array(0)), ['--top-k', '2'], /holds no tokens/],
  ];
  for (const [fmt, name, content, extra, re] of cases) {
    writeFileSync(path(name), content);
    const r = moescope('import', fmt, path(name), ...extra, '-o', path(`${name}.arrows`));
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, re, name);
  }
});

test('Parquet export holds seq and pos up to 2^32 − 1 (uint32, as pyarrow reads them)', (t) => {
  const { path } = tempDir(t);
  const schema: RoutingSchema = { ...LOGITS, hasLogits: false };
  const w = TraceWriter.create(path('big.arrows'), { schema, meta: META });
  const b = makeBatch(schema, 4, 0);
  b.seq.fill(4_000_000_000);
  b.pos.fill(4_294_967_295);
  w.write(b);
  w.close();
  const r = moescope('export', path('big.arrows'), '--parquet', path('big.parquet'));
  assert.equal(r.code, 0, r.stderr);
  const py = spawnSync(
    'python3',
    [
      '-c',
      `import pyarrow.parquet as pq; t = pq.read_table(${JSON.stringify(path('big.parquet'))}); print(t.schema.field('seq').type, t.column('seq')[0].as_py(), t.column('pos')[0].as_py())`,
    ],
    { encoding: 'utf8' },
  );
  if (py.status !== 0 && /No module named/.test(py.stderr)) return t.skip('pyarrow not installed');
  assert.equal(py.stdout.trim(), 'uint32 4000000000 4294967295');
});

test('a trace that ended without being closed says so in stats, plan and report', (t) => {
  const { path } = tempDir(t);
  const tr = path('open.arrows');
  traceWithInf(tr, false); // flushed, never closed: no end-of-stream marker
  for (const argv of [
    ['stats', tr],
    ['plan', tr, '--replicas', '10', '--gpus', '2'],
    ['report', tr, '-o', path('r.html')],
  ]) {
    const r = moescope(...argv);
    assert.equal(r.code, 0, `${argv[0]}: ${r.stderr}`);
    assert.match(r.stderr, /^moescope: note: .*(ended without being closed|no end-of-stream marker)/m, argv[0]);
  }
  const j = JSON.parse(moescope('stats', tr, '--json').stdout);
  assert.equal(j.closed, false);
  assert.ok(readFileSync(path('r.html')).length > 0);
});

test('a trace holding the same batch twice is refused (one line, exit 2) instead of counting its tokens twice', (t) => {
  const { path } = tempDir(t);
  const schema: RoutingSchema = { layers: [0, 1], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false };
  const twice = path('twice.arrows');
  const w = TraceWriter.create(twice, { schema, meta: META, batchTokens: 100 });
  const a = makeBatch(schema, 100, 0);
  w.write(a);
  w.write(makeBatch(schema, 100, 100));
  w.write(a); // the first batch again: the same tokens, the same capture times
  w.close();
  for (const argv of [
    ['stats', twice],
    ['stats', twice, '--json'],
    ['check', twice, '--max-cv', '10'],
    ['diff', twice, twice],
    ['replay', twice, '--no-ui'],
    ['export', twice, '--jsonl', path('o.jsonl')],
  ]) {
    const r = moescope(...argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stdout.slice(0, 300)}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(
      lines[0]!,
      /^moescope: .*twice\.arrows: batch 2 repeats batch 0 \(the same 100 tokens/,
      argv.join(' '),
    );
  }
  // The same tokens in a batch of their own with other capture times (a second run over the same prompt) are data.
  const rerun = path('rerun.arrows');
  const w2 = TraceWriter.create(rerun, { schema, meta: META, batchTokens: 100 });
  w2.write(a);
  const again = makeBatch(schema, 100, 0);
  for (let i = 0; i < again.length; i++) again.tNs[i] = again.tNs[i]! + 10_000_000_000n;
  w2.write(again);
  w2.close();
  const ok = moescope('stats', rerun, '--json');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { tokens: number }).tokens, 200);
});
