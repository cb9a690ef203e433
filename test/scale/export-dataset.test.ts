/**
 * `export --parquet DIR --partition-by rank|step:N`: every rank of a run → a Hive-style folder engines split; read
 * back by moescope's engines (the same counts as the traces it came from), by hyparquet (footer metadata, row-group
 * sizes) and, where python3 has pyarrow, by pyarrow; an existing dataset is never overwritten.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parquetMetadata } from 'hyparquet';
import { synthesize } from '../../src/trace/synth.js';
import { GROUP_VALUES } from '../../src/trace/export/parquet.js';
import { countDataset, datasetFiles, openDataset } from '../../src/scale/index.js';
import { moescope } from '../trace/cli.js';
import { HAVE_PYARROW, python } from '../trace/python.js';

const L = 4;
const E = 32;
const K = 4;

function ranks(
  t: { after: (fn: () => void) => void },
  n: number,
  opts: { rank?: boolean; step?: boolean } = {},
): { dir: string; traces: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-export-ds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const traces: string[] = [];
  for (let r = 0; r < n; r++) {
    const p = join(dir, `rank-${r}.arrows`);
    synthesize(p, {
      layers: L,
      experts: E,
      topK: K,
      tokens: 3_000,
      skew: { kind: 'zipf', s: 1 },
      collapse: null,
      logits: false,
      seed: r,
      rank: opts.rank === false ? null : r,
      stepTokens: opts.step === false ? null : 250,
    });
    traces.push(p);
  }
  return { dir, traces };
}

const counts = async (arg: string) =>
  Array.from((await countDataset(openDataset(arg), { engine: 'stream' })).toBatch().counts);

test('partitioned by rank and by step range: the same counts as the traces, a header and partition in every footer', async (t) => {
  const { dir, traces } = ranks(t, 3);
  const want = await counts(join(dir, '*.arrows'));
  const byRank = join(dir, 'by-rank');
  const r = moescope('export', ...traces, '--parquet', byRank, '--partition-by', 'rank');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    datasetFiles(byRank).map((f) => relative(byRank, f)),
    ['rank=0/rank-0.parquet', 'rank=1/rank-1.parquet', 'rank=2/rank-2.parquet'],
  );
  const byStep = join(dir, 'by-step');
  const s = moescope('export', ...traces, '--parquet', byStep, '--partition-by', 'step:5');
  assert.equal(s.code, 0, s.stderr);
  // 3,000 tokens / 250 per step = steps 0…11 → ranges 0-4, 5-9, 10-14, each with one file per rank.
  assert.deepEqual(readdirSync(byStep).sort(), ['step=0-4', 'step=10-14', 'step=5-9']);
  assert.equal(datasetFiles(byStep).length, 9);
  for (const folder of [byRank, byStep]) {
    assert.deepEqual(await counts(folder), want);
    const duck = Array.from((await countDataset(openDataset(folder), { engine: 'duckdb' })).toBatch().counts);
    assert.deepEqual(duck, want);
  }
  const buf = readFileSync(join(byStep, 'step=5-9', 'rank-1.parquet'));
  const meta = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const kv = new Map((meta.key_value_metadata ?? []).map((x) => [x.key, x.value]));
  assert.deepEqual(JSON.parse(kv.get('moescope')!).schema, {
    layers: [0, 1, 2, 3],
    experts: E,
    topK: K,
    scoring: 'softmax',
    hasLogits: false,
  });
  assert.deepEqual(JSON.parse(kv.get('moescope.partition')!), { by: 'step', steps: 5, value: '5-9' });
  assert.equal(Number(meta.num_rows), 1_250);
  for (const g of meta.row_groups) assert.ok(Number(g.num_rows) * L * K * 2 <= GROUP_VALUES);
  // Exported once more into the same folder: refused, the dataset untouched.
  const again = moescope('export', ...traces, '--parquet', byRank, '--partition-by', 'rank');
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already holds files/);
  assert.deepEqual(await counts(byRank), want);
});

test('pyarrow reads a partitioned dataset as one table', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, (t) => {
  const { dir, traces } = ranks(t, 2);
  const out = join(dir, 'ds');
  assert.equal(moescope('export', ...traces, '--parquet', out, '--partition-by', 'rank').code, 0);
  const r = python(
    `import pyarrow.dataset as ds; t = ds.dataset('${out}', format='parquet').to_table(columns=['rank', 'step', 'experts']); print(t.num_rows, sorted(set(t.column('rank').to_pylist())))`,
  );
  assert.ok(r.ok, r.err);
  assert.equal(r.out.trim(), '6000 [0, 1]');
});

test('a key the traces do not hold, a count of the wrong kind, --jsonl with --partition-by: one line, exit 2, nothing written', (t) => {
  const { dir, traces } = ranks(t, 2, { rank: false });
  const out = join(dir, 'ds');
  const r = moescope('export', ...traces, '--parquet', out, '--partition-by', 'rank');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /rank-0\.arrows has no rank column/);
  assert.deepEqual(readdirSync(out), []);
  assert.match(moescope('export', ...traces, '--parquet', out, '--partition-by', 'step:0').stderr, /step:N/);
  assert.match(
    moescope('export', ...traces, '--parquet', out, '--partition-by', 'step:2', '--jsonl', join(dir, 'x.jsonl')).stderr,
    /Parquet only/,
  );
  assert.match(moescope('export', ...traces, '--parquet', join(dir, 'one.parquet')).stderr, /give one trace/);
  mkdirSync(join(dir, 'f'));
  writeFileSync(join(dir, 'f', 'x'), 'x');
  assert.match(
    moescope('export', ...traces, '--parquet', join(dir, 'f'), '--partition-by', 'step:2').stderr,
    /already holds files/,
  );
});
