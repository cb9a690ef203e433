/**
 * Count traces (docs/trace-format.md § Count traces): written by CountTraceWriter, read back by the reader, by
 * pyarrow through the docs' one-liners, and measured by `moescope stats` / `plan` with the same numbers that the
 * token trace they were counted from gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, truncateSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { CountTraceWriter } from '../../src/trace/count-writer.js';
import type { CountBatch } from '../../src/core/count-batch.js';
import type { RoutingBatch, RoutingSchema } from '../../src/core/batch.js';
import { META, SCHEMA, makeBatch, tempDir } from './helpers.js';
import { HAVE_PYARROW, python, runDocOneLiners } from './python.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

/** Independent counting (a plain loop over the expert ids, not moescope's countAssignments): one row per batch. */
function countsOf(batches: RoutingBatch[], schema: RoutingSchema): CountBatch {
  const L = schema.layers.length;
  const E = schema.experts;
  const K = schema.topK;
  const n = batches.length;
  const counts = new Float64Array(n * L * E);
  batches.forEach((b, r) => {
    for (let t = 0; t < b.length; t++)
      for (let l = 0; l < L; l++)
        for (let k = 0; k < K; k++) counts[(r * L + l) * E + b.experts[(t * L + l) * K + k]!]!++;
  });
  return {
    length: n,
    step: Float64Array.from(batches.map((_, i) => 100 + i)),
    tNs: BigInt64Array.from(batches.map((_, i) => 1_700_000_000_000_000_000n + BigInt(i))),
    axis: 'expert',
    bins: E,
    counts,
  };
}

function writeBoth(tmp: { path: (n: string) => string }) {
  const batches = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => makeBatch(SCHEMA, 10 + 3 * i, i * 50));
  const tokens = tmp.path('tokens.arrows');
  const w = TraceWriter.create(tokens, { schema: SCHEMA, meta: META });
  for (const b of batches) w.write(b);
  w.close();
  const cb = countsOf(batches, SCHEMA);
  const counts = tmp.path('counts.arrows');
  const cw = CountTraceWriter.create(counts, {
    schema: SCHEMA,
    meta: { ...META, source: 'test:counts' },
    axis: 'expert',
    bins: SCHEMA.experts,
    batchRows: 3,
  });
  cw.write(cb);
  cw.close();
  return { batches, cb, tokens, counts };
}

test('a count trace reads back row for row, and token-only readers refuse it in one line', (ctx) => {
  const tmp = tempDir(ctx);
  const { cb, counts } = writeBoth(tmp);
  const t = openTrace(counts);
  try {
    assert.equal(t.kind, 'counts');
    assert.deepEqual(t.countInfo, { axis: 'expert', bins: 8, topKKnown: true, expertsKnown: true });
    assert.equal(t.rowCount, 8);
    assert.equal(t.batchCount, 3);
    assert.equal(t.complete, true);
    const rows = [...t.countBatches()];
    assert.deepEqual(
      rows.flatMap((b) => [...b.step]),
      [...cb.step],
    );
    assert.deepEqual(
      rows.flatMap((b) => [...b.tNs]),
      [...cb.tNs],
    );
    assert.deepEqual(
      rows.flatMap((b) => [...b.counts]),
      [...cb.counts],
    );
    assert.throws(() => [...t.batches()], /count trace \(load counts per step, no per-token routing\)/);
  } finally {
    t.close();
  }
});

test('the writer refuses counts a metric cannot use', (ctx) => {
  const tmp = tempDir(ctx);
  const cw = CountTraceWriter.create(tmp.path('x.arrows'), {
    schema: SCHEMA,
    meta: META,
    axis: 'expert',
    bins: 8,
    atomic: true,
  });
  const bad: CountBatch = {
    length: 1,
    step: new Float64Array([0]),
    tNs: new BigInt64Array(1),
    axis: 'expert',
    bins: 8,
    counts: new Float64Array(24).fill(NaN),
  };
  assert.throws(() => cw.write(bad), /counts must be finite/);
  assert.throws(
    () => cw.write({ ...bad, bins: 4, counts: new Float64Array(12) }),
    /expert × 4, the trace holds expert × 8/,
  );
  cw.abort();
});

test('stats on a count trace gives the load metrics of the token trace it was counted from', (ctx) => {
  const tmp = tempDir(ctx);
  const { tokens, counts } = writeBoth(tmp);
  const a = cli('stats', tokens, '--json', '--devices', '4');
  const b = cli('stats', counts, '--json', '--devices', '4');
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const ja = JSON.parse(a.stdout);
  const jb = JSON.parse(b.stdout);
  assert.equal(jb.kind, 'counts');
  assert.equal(jb.steps, 8);
  assert.equal(jb.tokens, ja.tokens);
  for (const [l, m] of (
    jb.layers as {
      load: number[];
      cv: number;
      maxVio: number;
      entropy: number;
      deadExperts: number;
      topNShare: number;
      coverage90: number;
    }[]
  ).entries()) {
    const r = ja.layers[l];
    assert.deepEqual(m.load, r.load);
    for (const k of ['cv', 'maxVio', 'entropy', 'deadExperts', 'topNShare', 'coverage90'] as const)
      assert.equal(m[k], r[k], k);
  }
  for (const k of ['cv', 'maxVio', 'maxVioWorst', 'entropy', 'deadExperts'])
    assert.equal(jb.global[k], ja.global[k], k);
  assert.equal(jb.devices.sglang, ja.global.balancedness.sglang);
  assert.equal(jb.devices.vllm, ja.global.balancedness.vllm);
  assert.ok(jb.needsTokens.some((m: string) => /^z-loss/.test(m)));
  assert.ok(jb.needsTokens.some((m: string) => /co-activation/.test(m)));
  const text = cli('stats', counts);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /count trace \(test:counts\): 8 steps/);
  assert.match(text.stdout, /Not in this trace \(it holds load counts per step, no per-token routing\)/);
  assert.match(text.stdout, /Drift: JS divergence/);
});

test('plan on a count trace places the same load as on the token trace', (ctx) => {
  const tmp = tempDir(ctx);
  const { tokens, counts } = writeBoth(tmp);
  const a = cli('plan', tokens, '--replicas', '12', '--gpus', '4', '--json');
  const b = cli('plan', counts, '--replicas', '12', '--gpus', '4', '--json');
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const ja = JSON.parse(a.stdout);
  const jb = JSON.parse(b.stdout);
  for (const k of ['before', 'after', 'phy2log', 'logcnt', 'advice']) assert.deepEqual(jb[k], ja[k], k);
  assert.equal(typeof jb.advice.turnOn, 'boolean');
});

test('a count trace cut inside a batch: stats uses its complete rows, then exits 2 with one line', (ctx) => {
  const tmp = tempDir(ctx);
  const { counts } = writeBoth(tmp);
  truncateSync(counts, statSync(counts).size - 20);
  const r = cli('stats', counts, '--json');
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^moescope: .* is truncated/);
  const j = JSON.parse(r.stdout);
  assert.equal(j.steps, 6);
  assert.equal(j.truncated, true);
});

test('per-device counts give balancedness straight from the counts', (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('gpu.arrows');
  const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };
  const cw = CountTraceWriter.create(path, {
    schema,
    meta: META,
    axis: 'device',
    bins: 4,
    topKKnown: false,
    expertsKnown: false,
  });
  // Two steps; layer 0 even, layer 1 with one GPU at twice the others.
  cw.write({
    length: 2,
    step: new Float64Array([1, 2]),
    tNs: new BigInt64Array(2),
    axis: 'device',
    bins: 4,
    counts: Float64Array.from([5, 5, 5, 5, 2, 1, 1, 1, 5, 5, 5, 5, 2, 1, 1, 1]),
  });
  cw.close();
  const r = cli('stats', path, '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.layers, null);
  assert.equal(j.tokens, null);
  // By hand: layer 0 mean 10 / max 10; layer 1 mean 5/4·2 = 2.5 / max 4.
  const eps = 1e-5;
  assert.ok(Math.abs(j.devices.sglang - ((10 + eps) / (10 + eps) + (2.5 + eps) / (4 + eps)) / 2) < 1e-12);
  assert.ok(Math.abs(j.devices.vllm - (10 + 2.5) / (10 + 4)) < 1e-12);
  assert.deepEqual(j.devices.totals, [14, 12, 12, 12]);
  const plan = cli('plan', path, '--replicas', '4', '--gpus', '2');
  assert.equal(plan.status, 2);
  assert.match(plan.stderr, /^moescope: .*without expert ids/);
});

test('the count-trace one-liners in docs/trace-format.md work, and pyarrow reads every column as written', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, (ctx) => {
  const tmp = tempDir(ctx);
  const { cb, counts } = writeBoth(tmp);
  const ran = runDocOneLiners('count-one-liners', 'counts.arrows', counts);
  assert.ok(ran.length >= 2);
  assert.match(ran[0]!.stdout, /^counts expert 8 \['step', 't_ns', 'counts'\]/);
  const summed = JSON.parse(ran[1]!.stdout) as number[][];
  const L = SCHEMA.layers.length;
  const E = SCHEMA.experts;
  for (let l = 0; l < L; l++)
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let r = 0; r < cb.length; r++) s += cb.counts[(r * L + l) * E + e]!;
      assert.equal(summed[l]![e], s);
    }
  const r = python(
    `import pyarrow as pa; t = pa.ipc.open_stream(${JSON.stringify(counts)}).read_all(); print(t.column('step').to_pylist(), t.schema.field('t_ns').type, t.schema.field('counts').type)`,
  );
  assert.ok(r.ok, r.err);
  assert.equal(
    r.out.trim(),
    `[100, 101, 102, 103, 104, 105, 106, 107] timestamp[ns] fixed_size_list<item: double not null>[24]`,
  );
  assert.ok(readFileSync(counts).length > 0);
});

test('check, diff, report and export read a count trace; per-token rules say the trace has none', (ctx) => {
  const tmp = tempDir(ctx);
  const { tokens, counts } = writeBoth(tmp);
  // check: the same per-layer numbers and verdicts as on the token trace it was counted from.
  const ct = cli('check', tokens, '--max-maxvio', '0.05', '--format', 'json');
  const cc = cli('check', counts, '--max-maxvio', '0.05', '--format', 'json');
  assert.ok(ct.status === 0 || ct.status === 1, ct.stderr);
  assert.equal(cc.status, ct.status, cc.stderr);
  const jt = JSON.parse(ct.stdout);
  const jc = JSON.parse(cc.stdout);
  assert.deepEqual(jc.rows, jt.rows);
  assert.deepEqual(jc.verdicts, jt.verdicts);
  const z = cli('check', counts, '--max-z-loss', '1');
  assert.equal(z.status, 2);
  assert.match(
    z.stderr,
    /^moescope: --max-z-loss needs per-token router logits, and .* is a count trace \(load counts per step, no per-token data\)\n$/,
  );
  // diff: zero drift between a token trace and its own counts; agreement skipped with a note.
  const d = cli('diff', tokens, counts, '--max-drift', '0', '--format', 'json');
  assert.equal(d.status, 0, d.stdout + d.stderr);
  const jd = JSON.parse(d.stdout);
  for (const row of jd.rows) assert.equal(row.js, 0);
  assert.ok(jd.notes.some((n: string) => /a count trace holds load counts per step/.test(n)));
  const da = cli('diff', tokens, counts, '--min-agreement', '0.5');
  assert.equal(da.status, 2);
  assert.match(da.stderr, /needs per-token routing in both traces; a count trace has none/);
  // report: the load heatmap of the counts, and a plain word instead of collapse warnings.
  const html = tmp.path('r.html');
  const r = cli('report', counts, '-o', html);
  assert.equal(r.status, 0, r.stderr);
  const page = readFileSync(html, 'utf8');
  assert.match(page, /a count trace: load counts per step, no per-token data/);
  assert.match(page, /collapse detection over token windows did not run/);
  // export: JSONL rows equal the counts; Parquet read back by pyarrow when present.
  const jsonl = tmp.path('c.jsonl');
  const e = cli('export', counts, '--jsonl', jsonl);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /8 steps \(jsonl\)/);
  const lines = readFileSync(jsonl, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines[0].kind, 'counts');
  assert.equal(lines.length, 9);
  assert.deepEqual(lines[1].counts.flat(), [...writeBoth(tempDir(ctx)).cb.counts.subarray(0, 24)]);
});

test('export --parquet of a count trace reads back in pyarrow', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, (ctx) => {
  const tmp = tempDir(ctx);
  const { cb, counts } = writeBoth(tmp);
  const pq = tmp.path('c.parquet');
  const e = cli('export', counts, '--parquet', pq);
  assert.equal(e.status, 0, e.stderr);
  const r = python(
    `import pyarrow.parquet as pq, json; t = pq.read_table(${JSON.stringify(pq)}); print(json.dumps([t.column('step').to_pylist(), [x for row in t.column('counts').to_pylist() for x in row], str(t.schema.field('t_ns').type)]))`,
  );
  assert.ok(r.ok, r.err);
  const [steps, flat, tType] = JSON.parse(r.out);
  assert.deepEqual(steps, [...cb.step]);
  assert.deepEqual(flat, [...cb.counts]);
  assert.equal(tType, 'timestamp[ns]');
});
