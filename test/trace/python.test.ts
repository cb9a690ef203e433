/**
 * Interop with the Python data stack: the docs' one-liners run on a recorded trace, pyarrow reads every
 * column as written, and `import npy` reads what np.save writes. Skipped where python3 + pyarrow are absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F16_TO_F32 } from '../../src/core/f16.js';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { selectTopK } from '../../src/core/topk.js';
import { importTrace } from '../../src/trace/import/index.js';
import { META, SCHEMA, makeBatch, plain, tempDir, withColumns } from './helpers.js';
import { HAVE_PYARROW, has, python, runDocOneLiners } from './python.js';

function recordSample(path: string) {
  const schema = { ...SCHEMA, hasLogits: true };
  const w = TraceWriter.create(path, { schema, meta: META, batchTokens: 16 });
  w.writeMemory({ tNs: 42n, gpus: null, hostRssBytes: 7, ortBytes: null });
  const b = makeBatch(schema, 40, 0, { tags: true });
  w.write(b);
  w.close();
  return b;
}

test('the one-liners in docs/trace-format.md work on a recorded trace', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('run.arrows');
  recordSample(path);
  const ran = runDocOneLiners('one-liners', 'run.arrows', path);
  for (const { line, stdout } of ran) {
    if (line.includes('t.num_rows'))
      assert.match(
        stdout,
        /^40 \['seq', 'pos', 'token_id', 'token', 'is_prompt', 't_ns', 'experts', 'weights', 'logits', 'tag', 'mem'\]/,
      );
    else assert.ok(stdout.trim().length > 0);
  }
  assert.ok(ran.length >= 1);
});

test('pyarrow reads every column as written', { skip: !HAVE_PYARROW && 'python3 with pyarrow not found' }, (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('run.arrows');
  const b = recordSample(path);
  const r = python(`
import json, pyarrow as pa
t = pa.ipc.open_stream('${path}').read_all()
row = 17
def col(name): return t.column(name).combine_chunks()
print(json.dumps({
  'meta': json.loads(t.schema.metadata[b'moescope']),
  'experts': col('experts')[row].values.to_pylist(),
  'weights': [float(x) for x in col('weights')[row].values.to_numpy()],
  'logits0': float(col('logits')[row].values.to_numpy()[0]),
  'token': col('token')[row].as_py(), 'tag': col('tag')[row].as_py(), 'seq': col('seq')[row].as_py(),
  'token_id': col('token_id')[row].as_py(), 'is_prompt': col('is_prompt')[row].as_py(),
  't_ns': str(col('t_ns').cast('int64')[row].as_py()), 'mem0': col('mem')[0].as_py(), 'mem1': col('mem')[1].as_py(),
}))`);
  assert.ok(r.ok, r.err);
  const got = JSON.parse(r.out) as Record<string, unknown>;
  const row = 17;
  const lk = 6;
  assert.deepEqual(got.experts, [...b.experts.subarray(row * lk, row * lk + lk)]);
  assert.deepEqual(
    got.weights,
    [...b.weights.subarray(row * lk, row * lk + lk)].map((h) => F16_TO_F32[h]),
  );
  assert.equal(got.logits0, F16_TO_F32[b.logits![row * 24]!]);
  assert.equal(got.token, b.token[row]);
  assert.equal(got.tag, b.tag![row]);
  assert.equal(got.seq, b.seq[row]);
  assert.equal(got.token_id, b.tokenId[row]);
  assert.equal(got.is_prompt, b.isPrompt[row] === 1);
  assert.equal(BigInt(got.t_ns as string), b.tNs[row]); // as a string: 1.7e18 does not fit a JSON number exactly
  assert.match(got.mem0 as string, /^\[\{"tNs":"42","gpus":null,"hostRssBytes":7,"ortBytes":null\}\]$/);
  assert.equal(got.mem1, null);
  const meta = got.meta as { format: number; schema: unknown; meta: { model: string } };
  assert.equal(meta.format, 1);
  assert.deepEqual(meta.schema, { ...SCHEMA, hasLogits: true });
  assert.equal(meta.meta.model, 'test-model');
});

test('import npy reads what np.save writes and picks what numpy top-k picks', {
  skip: !has('numpy') && 'python3 with numpy not found',
}, async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('logits.npy');
  const r = python(`
import json, numpy as np
x = np.random.default_rng(5).standard_normal((30, 3, 16)).astype(np.float32)
np.save('${src}', x)
print(json.dumps(np.argsort(-x, axis=-1, kind='stable')[..., :4].tolist()))`);
  assert.ok(r.ok, r.err);
  const expected = (JSON.parse(r.out) as number[][][]).flat(2);
  const out = tmp.path('npy.arrows');
  await importTrace('npy', [src], out, { topK: 4, scoring: 'softmax' });
  const t = openTrace(out);
  const b = t.readRange(0, 30);
  assert.deepEqual([...b.experts], expected);
  const logits = [...b.logits!].map((h) => F16_TO_F32[h]!);
  assert.equal(selectTopK(logits, 16, 4, 'softmax').experts.length, 30 * 3 * 4);
  t.close();
});

test('traces rewritten by pyarrow (other batch sizes, validity buffers, Arrow file format) read back the same', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('run.arrows');
  recordSample(path);
  const r = python(`
import pyarrow as pa
t = pa.ipc.open_stream('${path}').read_all()
with pa.OSFile('${tmp.path('py.arrows')}', 'wb') as f:
    w = pa.ipc.new_stream(f, t.schema); w.write_table(t, max_chunksize=7); w.close()
with pa.OSFile('${tmp.path('py.arrow')}', 'wb') as f:
    w = pa.ipc.new_file(f, t.schema); w.write_table(t, max_chunksize=13); w.close()`);
  assert.ok(r.ok, r.err);
  const ours = openTrace(path);
  for (const name of ['py.arrows', 'py.arrow']) {
    const theirs = openTrace(tmp.path(name));
    assert.ok(theirs.batchCount > 3);
    assert.deepEqual(plain(theirs.readRange(0, 40)), plain(ours.readRange(0, 40)), name);
    assert.deepEqual(theirs.memorySamples(), ours.memorySamples());
    theirs.close();
  }
  ours.close();
});

test('step, rank, dropped: pyarrow reads them (nulls included) and the docs one-liners run on them', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('ranks.arrows');
  const w = TraceWriter.create(path, {
    schema: SCHEMA,
    meta: META,
    batchTokens: 16,
    columns: ['step', 'rank', 'dropped'],
  });
  const a = withColumns(makeBatch(SCHEMA, 30, 0), 0, 0);
  const b = withColumns(makeBatch(SCHEMA, 30, 0), 0, 1, -1);
  w.write(a);
  w.write(b);
  w.close();
  const r = python(`
import json, pyarrow as pa
t = pa.ipc.open_stream('${path}').read_all()
print(json.dumps({'names': t.schema.names, 'types': [str(t.schema.field(c).type) for c in ('step', 'rank', 'dropped')],
  'step': t.column('step').to_pylist(), 'rank': t.column('rank').to_pylist(), 'dropped': t.column('dropped').to_pylist()}))`);
  assert.ok(r.ok, r.err);
  const got = JSON.parse(r.out) as {
    names: string[];
    types: string[];
    step: (number | null)[];
    rank: number[];
    dropped: (number | null)[];
  };
  assert.deepEqual(got.names.slice(-3), ['step', 'rank', 'dropped']);
  assert.deepEqual(got.types, ['uint32', 'uint16', 'uint32']);
  const nullIf = (v: Uint32Array, none: number) => [...v].map((x) => (x === none ? null : x));
  assert.deepEqual(got.step, [...nullIf(a.step!, 0xffffffff), ...nullIf(b.step!, 0xffffffff)]);
  assert.equal(got.step[3], null);
  assert.deepEqual(got.rank, [...a.rank!, ...b.rank!]);
  assert.deepEqual(got.dropped, [...nullIf(a.dropped!, 0), ...nullIf(b.dropped!, 0)]);
  const ran = runDocOneLiners('rank one-liners', 'ranks.arrows', path);
  const drops = (v: Uint32Array) => v.reduce((x, y) => x + y, 0);
  assert.match(
    ran[0]!.stdout,
    new RegExp(
      `rank: \\[\\[0,1\\]\\]\\s+seq_count: \\[\\[30,30\\]\\]\\s+dropped_sum: \\[\\[${drops(a.dropped!)},${drops(b.dropped!)}\\]\\]`,
    ),
  );
});

test('a trace written by pyarrow the way the Python probe writes it (nullable fields, step/rank/dropped) reads back exactly', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('probe.arrows');
  const header = {
    format: 1,
    moescope: 'probe-test',
    createdAt: '2026-01-01T00:00:00.000Z',
    schema: SCHEMA,
    meta: { ...META, source: 'probe', world: 2 },
  };
  const r = python(`
import json, pyarrow as pa, numpy as np
L, K, n = 3, 2, 10
hdr = json.loads(${JSON.stringify(JSON.stringify(header))})
hdr['meta']['routers'] = [{'layer': l, 'experts': 8, 'topK': 2, 'scoring': 'softmax', 'kind': 'test'} for l in hdr['schema']['layers']]
schema = pa.schema([('seq', pa.uint32()), ('pos', pa.uint32()), ('token_id', pa.int32()), ('token', pa.string()),
  ('is_prompt', pa.bool_()), ('t_ns', pa.timestamp('ns')), ('experts', pa.list_(pa.uint16(), L * K)),
  ('weights', pa.list_(pa.float16(), L * K)), ('tag', pa.string()), ('mem', pa.string()),
  ('step', pa.uint32()), ('rank', pa.uint16()), ('dropped', pa.uint32())], metadata={'moescope': json.dumps(hdr)})
def batch(first):
    i = np.arange(first, first + n)
    ex = ((i[:, None] * 3 + np.arange(L * K)) % 8).astype(np.uint16).reshape(-1)
    wt = (np.arange(n * L * K) / 64).astype(np.float16)
    return pa.record_batch([pa.array(i // 4, pa.uint32()), pa.array(i % 4, pa.uint32()), pa.array(i * 11, pa.int32()),
      pa.array(['t%d' % x for x in i]), pa.array(i % 2 == 0), pa.array(i * 1000, pa.timestamp('ns')),
      pa.FixedSizeListArray.from_arrays(pa.array(ex), L * K), pa.FixedSizeListArray.from_arrays(pa.array(wt, pa.float16()), L * K),
      pa.nulls(n, pa.string()), pa.nulls(n, pa.string()), pa.array(i // 5, pa.uint32()), pa.array([1] * n, pa.uint16()),
      pa.array([3 if x == first else None for x in i], pa.uint32())], schema=schema)
with pa.OSFile('${path}', 'wb') as f:
    w = pa.ipc.new_stream(f, schema); w.write_batch(batch(0)); w.write_batch(batch(10)); w.close()
t = pa.ipc.open_stream('${path}').read_all()
print(json.dumps({'experts': t.column('experts').combine_chunks().values.to_pylist(), 'step': t.column('step').to_pylist(), 'dropped': t.column('dropped').to_pylist()}))`);
  assert.ok(r.ok, r.err);
  const want = JSON.parse(r.out) as { experts: number[]; step: number[]; dropped: (number | null)[] };
  const t = openTrace(path);
  assert.deepEqual(t.columns, ['step', 'rank', 'dropped']);
  assert.equal(t.meta.world, 2);
  const got = t.readRange(0, 20);
  assert.deepEqual([...got.experts], want.experts);
  assert.deepEqual([...got.step!], want.step);
  assert.deepEqual([...got.rank!], new Array(20).fill(1));
  assert.deepEqual(
    [...got.dropped!],
    want.dropped.map((d) => d ?? 0),
  );
  assert.deepEqual(
    [...got.dropped!].filter((d) => d > 0),
    [3, 3],
  );
  t.close();
});
