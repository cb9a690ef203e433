/**
 * Counting pushed down (docs/scale.md): one multi-file trace — three ranks, a step column, Arrow and their Parquet
 * exports — counted by the stream engine (Arrow and Parquet), by DuckDB (Parquet) and, where python3 has pyarrow,
 * by numpy from the Parquet files; every count record equal, and every count-defined metric equal (1e-9) to what
 * RoutingStats computes from the same tokens streamed one by one. Then the CLI: folders, globs, a corrupt or
 * foreign file (one line naming it, exit 2) and --skip-bad (computes from the rest, lists what it skipped).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize } from '../../src/trace/synth.js';
import { exportTrace } from '../../src/trace/export/index.js';
import { openTrace } from '../../src/trace/index.js';
import { RoutingStats } from '../../src/stats/routing-stats.js';
import { CountAnalysis } from '../../src/stats/count-analysis.js';
import { countDataset, openDataset, type CountTable } from '../../src/scale/index.js';
import { globRegExp } from '../../src/scale/inputs.js';
import { moescope } from '../trace/cli.js';
import { HAVE_PYARROW, python } from '../trace/python.js';

const L = 3;
const E = 16;
const K = 4;
const RANKS = 3;
const TOKENS = 2_500;
const STEP_TOKENS = 400;

/** Three ranks' traces (Arrow) and their Parquet exports, in arrow/ and parquet/ of a temporary folder. */
async function makeDataset(t: {
  after: (fn: () => void) => void;
}): Promise<{ dir: string; arrow: string; parquet: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-scale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const arrow = join(dir, 'arrow');
  const parquet = join(dir, 'parquet');
  mkdirSync(arrow);
  mkdirSync(parquet);
  for (let r = 0; r < RANKS; r++) {
    const a = join(arrow, `rank-${r}.arrows`);
    synthesize(a, {
      layers: L,
      experts: E,
      topK: K,
      tokens: TOKENS + r * 100,
      skew: { kind: 'zipf', s: 1.2 },
      collapse: null,
      logits: false,
      seed: r + 1,
      rank: r,
      stepTokens: STEP_TOKENS,
    });
    await exportTrace(a, { parquet: join(parquet, `rank-${r}.parquet`) });
  }
  return { dir, arrow, parquet };
}

const matrix = (t: CountTable) => {
  const b = t.toBatch();
  return { steps: Array.from(b.step), counts: Array.from(b.counts) };
};

test('stream (Arrow and Parquet) and DuckDB give the same count records, and the metrics a streamed trace gives', async (t) => {
  const { arrow, parquet } = await makeDataset(t);
  const fromArrow = await countDataset(openDataset(arrow), { engine: 'stream' });
  const fromParquet = await countDataset(openDataset(parquet), { engine: 'stream' });
  const duck = await countDataset(openDataset(parquet), { engine: 'duckdb', threads: 2 });
  const ref = matrix(fromArrow);
  // One row per step: the ranks' steps are summed (every rank writes steps 0…⌈tokens/400⌉−1).
  assert.deepEqual(ref.steps, [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(matrix(fromParquet), ref);
  assert.deepEqual(matrix(duck), ref);
  // Count queries over ranges of 2 steps (0–1, 2–3, 4–5, 6): the same rows.
  const spans = await countDataset(openDataset(parquet), { engine: 'duckdb', stepSpan: 2 });
  assert.deepEqual(matrix(spans), ref);
  // Step windows of 3 steps: the same counts, summed three rows at a time.
  const duck3 = matrix(await countDataset(openDataset(parquet), { engine: 'duckdb', window: 3 }));
  assert.deepEqual(duck3.steps, [0, 3, 6]);
  const W = L * E;
  for (let w = 0; w < 3; w++)
    for (let j = 0; j < W; j++) {
      let want = 0;
      for (let s = w * 3; s < Math.min(7, w * 3 + 3); s++) want += ref.counts[s * W + j]!;
      assert.equal(duck3.counts[w * W + j], want);
    }

  // The metrics: RoutingStats over every token of every file, streamed, against CountAnalysis over DuckDB's rows.
  const ds = openDataset(arrow);
  const tokens = new RoutingStats(ds.schema, { window: 0, collapse: false });
  for (const f of ds.files) {
    const tr = openTrace(f.path);
    for (const b of tr.batches()) tokens.add(b);
    tr.close();
  }
  const want = tokens.snapshot('run');
  const batch = duck.toBatch();
  const ca = new CountAnalysis(ds.schema, { axis: 'expert', bins: E, topKKnown: true }, { totalSteps: batch.length });
  ca.add(batch);
  const got = ca.result();
  assert.equal(got.tokens, RANKS * TOKENS + 300);
  for (let l = 0; l < L; l++) {
    const a = want.layers[l]!;
    const b = got.layers![l]!;
    for (const k of ['maxVio', 'cv', 'entropy', 'deadExperts', 'topNShare', 'coverage90', 'tokens'] as const)
      assert.ok(Math.abs((a[k] as number) - (b[k] as number)) <= 1e-9, `layer ${l} ${k}: ${a[k]} vs ${b[k]}`);
  }
  for (const k of ['maxVio', 'cv', 'entropy', 'deadExperts'] as const)
    assert.ok(Math.abs((want.global[k] as number) - (got.global![k] as number)) <= 1e-9, `global ${k}`);
});

test('numpy counts the Parquet dataset as the engines do', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, async (t) => {
  const { parquet } = await makeDataset(t);
  const duck = matrix(await countDataset(openDataset(parquet), { engine: 'duckdb' }));
  const code = `
import glob, json, numpy as np, pyarrow.parquet as pq
out = np.zeros((7, ${L}, ${E}))
for f in sorted(glob.glob('${parquet}/*.parquet')):
    t = pq.read_table(f, columns=['experts', 'step'])
    ids = t.column('experts').combine_chunks().values.to_numpy().reshape(-1, ${L}, ${K})
    step = t.column('step').to_numpy()
    for l in range(${L}):
        np.add.at(out[:, l, :], (np.repeat(step, ${K}), ids[:, l, :].reshape(-1)), 1)
print(json.dumps(out.reshape(-1).tolist()))`;
  const r = python(code);
  assert.ok(r.ok, r.err);
  assert.deepEqual(JSON.parse(r.out), duck.counts);
});

test('stats on a folder and on a glob; a corrupt or foreign file is named in one line, --skip-bad lists it', async (t) => {
  const { dir, arrow, parquet } = await makeDataset(t);
  const folder = moescope('stats', parquet, '--json');
  assert.equal(folder.code, 0, folder.stderr);
  const j = JSON.parse(folder.stdout);
  assert.equal(j.dataset.engine, 'duckdb'); // the default past one file
  assert.equal(j.tokens, RANKS * TOKENS + 300);
  assert.deepEqual(j.dataset.skipped, []);
  const glob = moescope('stats', join(parquet, 'rank-[01].parquet'), '--json', '--engine', 'stream');
  assert.equal(glob.code, 0, glob.stderr);
  assert.equal(JSON.parse(glob.stdout).tokens, 2 * TOKENS + 100);
  const streamed = JSON.parse(moescope('stats', arrow, '--json').stdout);
  assert.deepEqual(streamed.layers, j.layers);

  // A cut copy, a file that is not Parquet at all, and a Parquet file moescope did not write.
  const bad = join(dir, 'bad');
  mkdirSync(bad);
  for (let r = 0; r < RANKS; r++)
    writeFileSync(join(bad, `rank-${r}.parquet`), readFileSync(join(parquet, `rank-${r}.parquet`)));
  writeFileSync(join(bad, 'rank-1.parquet'), readFileSync(join(parquet, 'rank-1.parquet')).subarray(0, 3000));
  const refused = moescope('stats', bad);
  assert.equal(refused.code, 2);
  assert.equal(refused.stdout, '');
  assert.equal(refused.stderr.trim().split('\n').length, 1);
  assert.match(refused.stderr, /rank-1\.parquet.*(cut short|PAR1)/);
  writeFileSync(join(bad, 'notes.parquet'), 'not parquet\n');
  const skipped = moescope('stats', bad, '--skip-bad', '--json');
  assert.equal(skipped.code, 0, skipped.stderr);
  const s = JSON.parse(skipped.stdout);
  assert.deepEqual(
    s.dataset.skipped.map((x: { path: string }) => x.path),
    [join(bad, 'notes.parquet'), join(bad, 'rank-1.parquet')],
  );
  assert.equal(s.tokens, TOKENS + TOKENS + 200);
  const text = moescope('stats', bad, '--skip-bad');
  assert.match(text.stdout, /skipped .*notes\.parquet/);
  assert.match(text.stdout, /skipped .*rank-1\.parquet/);
  // A file of another model is refused the same way (a dataset has one routing schema).
  synthesize(join(bad, 'other.arrows'), {
    layers: 2,
    experts: E,
    topK: K,
    tokens: 10,
    skew: { kind: 'uniform' },
    collapse: null,
    logits: false,
    seed: 0,
  });
  const other = moescope('check', bad, '--skip-bad', '--max-maxvio', '100');
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stdout + other.stderr, /other\.arrows/);
});

test('check, diff, plan and report read a dataset', async (t) => {
  const { dir, arrow, parquet } = await makeDataset(t);
  const check = moescope('check', parquet, '--max-maxvio', '0.01', '--format', 'json');
  assert.equal(check.code, 1, check.stderr); // zipf-skewed: MaxVio is far above 0.01
  const diff = moescope('diff', arrow, parquet, '--max-drift', '1e-12', '--format', 'json');
  assert.equal(diff.code, 0, diff.stderr); // the same tokens: no drift
  const plan = moescope('plan', parquet, '--replicas', String(E), '--gpus', '4', '--json');
  assert.equal(plan.code, 0, plan.stderr);
  const report = moescope('report', parquet, '-o', join(dir, 'r.html'));
  assert.equal(report.code, 0, report.stderr);
  assert.match(readFileSync(join(dir, 'r.html'), 'utf8'), /<html/i);
  // DuckDB under a small memory limit on one thread counts the same; a limit it cannot parse is a usage error.
  const small = moescope('stats', parquet, '--engine', 'duckdb', '--memory-limit', '64MB', '--threads', '1', '--json');
  assert.equal(small.code, 0, small.stderr);
  assert.deepEqual(JSON.parse(small.stdout).layers, JSON.parse(moescope('stats', arrow, '--json').stdout).layers);
  assert.equal(moescope('stats', parquet, '--memory-limit', 'lots').code, 2);
  const flags = moescope('stats', join(arrow, 'rank-0.arrows'), '--engine', 'duckdb');
  assert.equal(flags.code, 2);
  assert.match(flags.stderr, /one Arrow trace/);
});

test('glob patterns', () => {
  assert.ok(globRegExp('*.parquet').test('a.parquet'));
  assert.ok(!globRegExp('*.parquet').test('x/a.parquet'));
  assert.ok(globRegExp('**/*.parquet').test('x/y/a.parquet'));
  assert.ok(globRegExp('**/*.parquet').test('a.parquet'));
  assert.ok(globRegExp('rank=?/part-[0-9].parquet').test('rank=3/part-7.parquet'));
  assert.ok(!globRegExp('rank=?/part-[0-9].parquet').test('rank=3/part-x.parquet'));
});

test('docs/scale.md shows the SQL moescope runs, verbatim', async () => {
  const q = await import('../../src/scale/sql.js');
  const { COUNTS_SQL, SHAPED_SLOTS_SQL, SLOTS_SQL, STEPS_SQL } = q;
  const { PACKAGE_ROOT } = await import('../../src/core/paths.js');
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'scale.md'), 'utf8');
  for (const [name, sql] of [
    ['slots', SLOTS_SQL],
    ['shaped-slots', SHAPED_SLOTS_SQL],
    ['steps', STEPS_SQL],
    ['counts', COUNTS_SQL],
    ['logit-tables', q.LOGIT_TABLES_SQL],
    ['router-rows-softmax', q.ROUTER_ROWS_SOFTMAX_SQL],
    ['router-rows-sigmoid', q.ROUTER_ROWS_SIGMOID_SQL],
    ['logit-layer', q.LOGIT_LAYER_SQL],
    ['logit-sequences', q.LOGIT_SEQUENCES_SQL],
    ['logit-experts', q.LOGIT_EXPERTS_SQL],
    ['logit-sequence-dot', q.LOGIT_SEQUENCE_DOT_SQL],
  ] as const) {
    const block = new RegExp(`<!-- sql:${name} -->\\n\`\`\`sql\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
    assert.ok(block, `docs/scale.md has the sql:${name} block`);
    assert.equal(block[1], sql);
  }
});

test('DuckDB counts into its dense group-by array (PERFECT_HASH_GROUP_BY), not a hash table', async (t) => {
  // The speed of the DuckDB engine rests on DuckDB knowing each group key's range (bench/RESULTS.md): the plan of
  // the count query over a real export must show the dense aggregate, at the engine's bit budget.
  const { parquet } = await makeDataset(t);
  const { COUNTS_SQL, SLOTS_SQL, renderSql } = await import('../../src/scale/sql.js');
  const { PERFECT_BITS, parquetSource, stepSpan } = await import('../../src/scale/duckdb-engine.js');
  const duck = await import('@duckdb/node-api');
  const db = await duck.DuckDBInstance.create(':memory:');
  const con = await db.connect();
  t.after(() => {
    con.closeSync();
    db.closeSync();
  });
  const files = [0, 1, 2].map((r) => join(parquet, `rank-${r}.parquet`));
  const p = { source: parquetSource(files), hasStep: true, topK: K, layers: L };
  await con.run(`SET perfect_ht_threshold = ${PERFECT_BITS}`);
  await con.run(renderSql(SLOTS_SQL, p));
  // DeepSeek-V3's 58 × 256 leave 30 steps per query under 20 bits; this small schema far more.
  assert.equal(stepSpan(58, 256), 30);
  const plan = await con.runAndReadAll(`EXPLAIN ${renderSql(COUNTS_SQL, { ...p, first: 0, last: 6 })}`);
  const text = plan.getRows().flat().join('\n');
  assert.match(text, /PERFECT_HASH_GROUP_BY/);
  assert.doesNotMatch(text, /UNNEST/);
});
