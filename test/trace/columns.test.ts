/**
 * The optional columns step / rank / dropped (docs/trace-format.md § Columns): written and read back across
 * batches, nulls where a producer gave none, traces without them unchanged, and the exporters carry them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { NO_STEP } from '../../src/core/batch.js';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { exportTrace } from '../../src/trace/export/index.js';
import { importTrace } from '../../src/trace/import/index.js';
import { META, SCHEMA, makeBatch, plain, tempDir, withColumns } from './helpers.js';

test('step, rank and dropped round-trip across batches; nulls read back as NO_STEP and 0', (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('cols.arrows');
  const w = TraceWriter.create(path, {
    schema: SCHEMA,
    meta: { ...META, world: 2 },
    batchTokens: 16,
    columns: ['rank', 'step', 'dropped'],
  });
  assert.deepEqual(w.columns, ['step', 'rank', 'dropped']);
  const a = withColumns(makeBatch(SCHEMA, 30, 0), 0, 1);
  const b = makeBatch(SCHEMA, 20, 30); // no optional columns: step null, dropped null …
  b.rank = new Uint16Array(20).fill(7); // … but a trace with `rank` needs it
  w.write(a);
  w.write(b);
  assert.throws(() => w.write(makeBatch(SCHEMA, 3, 50)), /no rank/);
  w.close();
  const t = openTrace(path);
  assert.deepEqual(t.columns, ['step', 'rank', 'dropped']);
  assert.equal(t.meta.world, 2);
  assert.equal(t.tokenCount, 50);
  const all = t.readRange(0, 50); // spans 4 record batches
  assert.deepEqual([...all.step!.subarray(0, 30)], [...a.step!]);
  assert.equal(all.step![3], NO_STEP);
  assert.ok([...all.step!.subarray(30)].every((s) => s === NO_STEP));
  assert.deepEqual([...all.rank!], [...a.rank!, ...b.rank]);
  assert.deepEqual([...all.dropped!], [...a.dropped!, ...new Array(20).fill(0)]);
  assert.deepEqual(plain(t.readRange(2, 20)), plain(withColumns(makeBatch(SCHEMA, 18, 2), 2, 1)));
  let rows = 0;
  for (const c of t.batches(0, { reuse: true })) {
    assert.equal(c.step!.length, c.length);
    rows += c.length;
  }
  assert.equal(rows, 50);
  t.close();
});

test('a trace without the optional columns reads as before: no step, rank or dropped arrays', (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('plain.arrows');
  const w = TraceWriter.create(path, { schema: SCHEMA, meta: META, batchTokens: 16 });
  w.write(withColumns(makeBatch(SCHEMA, 20, 0), 0, 3)); // columns the trace does not hold are not written
  w.close();
  const t = openTrace(path);
  assert.deepEqual(t.columns, []);
  const r = t.readRange(0, 20);
  assert.equal(r.step, undefined);
  assert.equal(r.rank, undefined);
  assert.equal(r.dropped, undefined);
  assert.deepEqual(plain(r), plain(makeBatch(SCHEMA, 20, 0)));
  t.close();
});

test('export --jsonl and --parquet carry step, rank and dropped; import jsonl gives them back', async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('src.arrows');
  const w = TraceWriter.create(src, {
    schema: SCHEMA,
    meta: META,
    batchTokens: 16,
    columns: ['step', 'rank', 'dropped'],
  });
  const b = withColumns(makeBatch(SCHEMA, 40, 0, { tags: true }), 0, 5);
  w.write(b);
  w.close();
  const jsonl = tmp.path('x.jsonl');
  const parquet = tmp.path('x.parquet');
  await exportTrace(src, { jsonl, parquet });
  const lines = readFileSync(jsonl, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines[0]!.columns, ['step', 'rank', 'dropped']);
  assert.equal(lines[1 + 3]!.step, null);
  assert.equal(lines[1 + 8]!.step, 1);
  assert.equal(lines[1 + 9]!.dropped, 2);
  assert.equal(lines[1 + 8]!.dropped, undefined);
  assert.equal(lines[1]!.rank, 5);
  const back = tmp.path('back.arrows');
  await importTrace('jsonl', [jsonl], back);
  const t0 = openTrace(src);
  const t1 = openTrace(back);
  assert.deepEqual(t1.columns, ['step', 'rank', 'dropped']);
  assert.deepEqual(plain(t1.readRange(0, 40)), plain(t0.readRange(0, 40)));
  t0.close();
  t1.close();
  const buf = readFileSync(parquet);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const rows = (await parquetReadObjects({ file, metadata: parquetMetadata(file) })) as Record<string, unknown>[];
  assert.equal(rows.length, 40);
  assert.deepEqual(
    rows.map((r) => [r.step, r.rank, r.dropped]),
    [...b.step!].map((s, i) => [s === NO_STEP ? null : s, 5, b.dropped![i] === 0 ? null : b.dropped![i]]),
  );
});

test('import jsonl: a token with a column the trace does not hold is an error naming the line', async (ctx) => {
  const tmp = tempDir(ctx);
  const f = tmp.path('bad.jsonl');
  const head = JSON.stringify({ moescope: 1, layers: 1, experts: 4, topK: 1, scoring: 'softmax' });
  const tok = (o: object) => JSON.stringify({ experts: [[1]], ...o });
  writeFileSync(f, [head, tok({ rank: 0 }), tok({ rank: 1, step: 4 })].join('\n'));
  await assert.rejects(
    () => importTrace('jsonl', [f], tmp.path('o.arrows')),
    /bad\.jsonl:3: "step" given, but the first token had none/,
  );
  writeFileSync(f, [head, tok({ rank: 0 }), tok({})].join('\n'));
  await assert.rejects(
    () => importTrace('jsonl', [f], tmp.path('o.arrows')),
    /bad\.jsonl:3: "rank" must be an integer 0…65535 on every token/,
  );
});
