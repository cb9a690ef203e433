/**
 * `export --parquet`: the file read back with a pure-JS Parquet reader (hyparquet) and, where python3 + pyarrow are
 * installed, with pyarrow (plus polars / DuckDB for the docs' one-liners), against the trace it came from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { parquetMetadata, parquetReadObjects, type FileMetaData } from 'hyparquet';
import type { RoutingSchema } from '../../src/core/batch.js';
import { F16_TO_F32 } from '../../src/core/f16.js';
import { TraceWriter, openTrace, traceStream } from '../../src/trace/index.js';
import { exportTrace } from '../../src/trace/export/index.js';
import { writeParquet } from '../../src/trace/export/parquet.js';
import { AtomicFile } from '../../src/trace/export/sink.js';
import { memoryToJson } from '../../src/trace/memory-json.js';
import { moescope } from './cli.js';
import { META, SCHEMA, makeBatch, plain, tempDir } from './helpers.js';
import { HAVE_PYARROW, python, runDocOneLiners } from './python.js';

const LOGITS: RoutingSchema = { ...SCHEMA, hasLogits: true };
const NAN16 = 0x7e00;
const GPU = { index: 0, name: 'g', usedBytes: 1, totalBytes: 2, utilization: 50 };

/** 100 tokens in record batches of 32; memory samples on tokens 0 (one) and 40 (two); token 5's logits NaN. */
function record(path: string, schema: RoutingSchema, opts: { memory?: boolean; tags?: boolean } = {}): void {
  const w = TraceWriter.create(path, { schema, meta: { ...META, tokenizer: 'tok.json' }, batchTokens: 32 });
  const a = makeBatch(schema, 40, 0, { tags: opts.tags ?? true });
  if (a.logits) a.logits.fill(NAN16, 5 * 24, 6 * 24);
  if (opts.memory) w.writeMemory({ tNs: 3n, gpus: null, hostRssBytes: 9, ortBytes: null });
  w.write(a);
  if (opts.memory) {
    w.writeMemory({ tNs: 1_700_000_000_123_456_789n, gpus: [GPU], hostRssBytes: 10, ortBytes: 4 });
    w.writeMemory({ tNs: 1_700_000_000_223_456_789n, gpus: [GPU], hostRssBytes: 11, ortBytes: 5 });
  }
  w.write(makeBatch(schema, 60, 40, { tags: opts.tags ?? true }));
  w.close();
}

/** The Parquet file through hyparquet: metadata and row objects (timestamps kept as bigint nanoseconds). */
async function readJs(path: string): Promise<{ meta: FileMetaData; rows: Record<string, unknown>[] }> {
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const meta = parquetMetadata(file);
  const rows = (await parquetReadObjects({
    file,
    metadata: meta,
    parsers: { timestampFromNanoseconds: (n: bigint) => n },
  })) as Record<string, unknown>[];
  return { meta, rows };
}

/** Asserts every row of the export equals the trace's token, column by column. */
function assertRowsEqualTrace(rows: Record<string, unknown>[], tracePath: string): void {
  const t = openTrace(tracePath);
  const s = t.schema;
  const b = plain(t.readRange(0, t.tokenCount));
  const mem = t.memorySamples();
  t.close();
  const lk = s.layers.length * s.topK;
  const le = s.layers.length * s.experts;
  const f32 = (bits: number[]) => bits.map((h) => F16_TO_F32[h]!);
  assert.equal(rows.length, b.length);
  for (let i = 0; i < b.length; i++) {
    const r = rows[i]!;
    const where = `row ${i}`;
    assert.equal(r.seq, b.seq[i], where);
    assert.equal(r.pos, b.pos[i], where);
    assert.equal(r.token_id, b.tokenId[i], where);
    assert.equal(r.token, b.token[i], where);
    assert.equal(r.is_prompt, b.isPrompt[i] === 1, where);
    assert.equal(r.t_ns, b.tNs[i], where);
    assert.deepEqual(r.experts, b.experts.slice(i * lk, (i + 1) * lk), where);
    assert.deepEqual(r.weights, f32(b.weights.slice(i * lk, (i + 1) * lk)), where);
    if (b.logits)
      assert.deepEqual(r.logits, f32(b.logits.slice(i * le, (i + 1) * le)), where); // NaN equals NaN here
    else assert.equal('logits' in r, false);
    assert.equal(r.tag, b.tag ? b.tag[i] : null, where);
    const here = mem.filter((m) => m.token === i).map((m) => m.sample);
    if (mem.length > 0) assert.equal(r.mem, here.length ? memoryToJson(here) : null, where);
    else assert.equal('mem' in r, false);
  }
}

test('export --parquet: every column of every token reads back equal (hyparquet), with the header as metadata', async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('run.arrows');
  record(src, LOGITS, { memory: true });
  const out = tmp.path('run.parquet');
  const r = await exportTrace(src, { parquet: out });
  assert.deepEqual(r.results, [{ format: 'parquet', path: out, tokens: 100 }]);
  const { meta, rows } = await readJs(out);
  assert.deepEqual(Object.keys(rows[0]!), [
    'seq',
    'pos',
    'token_id',
    'token',
    'is_prompt',
    't_ns',
    'experts',
    'weights',
    'logits',
    'tag',
    'mem',
  ]);
  assertRowsEqualTrace(rows, src);
  assert.equal(rows[5]!.logits && (rows[5]!.logits as number[]).every(Number.isNaN), true);
  assert.match(String(rows[40]!.mem), /"hostRssBytes":10.*"hostRssBytes":11/);
  // One row group per trace batch; the trace header, byte for byte.
  assert.deepEqual(
    meta.row_groups.map((g) => Number(g.num_rows)),
    [32, 32, 32, 4],
  );
  const t = openTrace(src);
  assert.equal(
    meta.key_value_metadata?.find((kv) => kv.key === 'moescope')?.value,
    t.arrowSchema.metadata.get('moescope'),
  );
  t.close();
  assert.match(meta.created_by ?? '', /^moescope version \d+\.\d+\.\d+/);
  assert.deepEqual(readdirSync(tmp.dir).sort(), ['run.arrows', 'run.parquet']); // no temp file left
});

test('row groups split a batch when it holds more list values than the bound; no logits/mem columns when absent', async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('plain.arrows');
  record(src, SCHEMA, { tags: false });
  const out = tmp.path('plain.parquet');
  const trace = openTrace(src);
  const file = new AtomicFile(out);
  // 12 list values per row (experts + weights, L·K = 6 each): 60 values → 5 rows per group.
  assert.equal(await writeParquet(traceStream(trace, { reuse: true }), file, { groupValues: 60 }), 100);
  file.close();
  trace.close();
  const { meta, rows } = await readJs(out);
  assert.deepEqual(
    meta.row_groups.map((g) => Number(g.num_rows)),
    [...[5, 5, 5, 5, 5, 5, 2], ...[5, 5, 5, 5, 5, 5, 2], ...[5, 5, 5, 5, 5, 5, 2], 4],
  );
  assert.deepEqual(Object.keys(rows[0]!), [
    'seq',
    'pos',
    'token_id',
    'token',
    'is_prompt',
    't_ns',
    'experts',
    'weights',
    'tag',
  ]);
  assertRowsEqualTrace(rows, src);
});

test('an empty trace exports a valid Parquet file with the schema and no rows', async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('empty.arrows');
  TraceWriter.create(src, { schema: LOGITS, meta: META }).close();
  const out = tmp.path('empty.parquet');
  assert.equal((await exportTrace(src, { parquet: out })).results[0]!.tokens, 0);
  const { meta, rows } = await readJs(out);
  assert.equal(rows.length, 0);
  assert.equal(Number(meta.num_rows), 0);
  assert.deepEqual(
    meta.schema
      .slice(1)
      .filter((e) => e.name !== 'list' && e.name !== 'element')
      .map((e) => e.name),
    ['seq', 'pos', 'token_id', 'token', 'is_prompt', 't_ns', 'experts', 'weights', 'logits', 'tag'],
  );
});

test('moescope export --parquet: bad input exits 2 with one line and leaves no file behind', (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('run.arrows');
  record(src, SCHEMA, { memory: true });
  const ok = moescope('export', src, '--parquet', tmp.path('a.parquet'), '--jsonl', tmp.path('a.jsonl'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /wrote .*a\.parquet: 100 tokens \(parquet\)/);

  const fail = (args: string[], message: RegExp) => {
    const r = moescope('export', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  };
  fail([tmp.path('missing.arrows'), '--parquet', tmp.path('m.parquet')], /^moescope: .*missing\.arrows: no such trace/);
  fail([src, '--parquet', tmp.path('no-such-dir/x.parquet')], /^moescope: cannot write .*no-such-dir\/x\.parquet/);
  fail([src, '--parquet', src], /refusing to overwrite/);
  fail([src, '--parquet', tmp.path('same'), '--jsonl', tmp.path('same')], /--jsonl and --parquet both write/);
  writeFileSync(tmp.path('junk.arrows'), 'not a trace at all');
  fail(
    [tmp.path('junk.arrows'), '--parquet', tmp.path('j.parquet')],
    /^moescope: .*junk\.arrows: not an Arrow IPC stream trace/,
  );

  // A corrupt memory cell (found after the output was opened): the error is reported, the old output is kept.
  const bad = tmp.path('bad.arrows');
  const bytes = readFileSync(src);
  const at = bytes.indexOf('"hostRssBytes":10');
  assert.ok(at > 0);
  bytes.write('#', at - 1, 'latin1'); // breaks the JSON, same length
  writeFileSync(bad, bytes);
  writeFileSync(tmp.path('keep.parquet'), 'previous export');
  fail(
    [bad, '--parquet', tmp.path('keep.parquet')],
    /^moescope: .*bad\.arrows \(batch 1\): mem cell is not valid JSON/,
  );
  assert.equal(readFileSync(tmp.path('keep.parquet'), 'utf8'), 'previous export');
  assert.deepEqual(
    readdirSync(tmp.dir).filter((f) => f.endsWith('.partial')),
    [],
  );
  assert.equal(existsSync(tmp.path('j.parquet')), false);
});

test('pyarrow reads the export with the documented types and the trace values', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('run.arrows');
  record(src, LOGITS, { memory: true });
  const out = tmp.path('run.parquet');
  await exportTrace(src, { parquet: out });
  const r = python(`
import json, pyarrow.parquet as pq
t = pq.read_table('${out}')
def flat(name): return [x.as_py() for x in t.column(name).combine_chunks().flatten()]
print(json.dumps({
  'types': {f.name: str(f.type) for f in t.schema},
  'nullable': [f.name for f in t.schema if f.nullable],
  'meta': t.schema.metadata[b'moescope'].decode(),
  'experts': flat('experts'),
  'weights': flat('weights'),
  'logits_nan': [x != x for x in flat('logits')],
  'token_id': t.column('token_id').to_pylist(),
  'token': t.column('token').to_pylist(),
  't_ns': [str(x) for x in t.column('t_ns').cast('int64').to_pylist()],
  'tag': t.column('tag').to_pylist(),
  'row_groups': pq.ParquetFile('${out}').metadata.num_row_groups,
}))`);
  assert.ok(r.ok, r.err);
  const got = JSON.parse(r.out) as Record<string, unknown>;
  assert.deepEqual(got.types, {
    seq: 'uint32',
    pos: 'uint32',
    token_id: 'int32',
    token: 'string',
    is_prompt: 'bool',
    t_ns: 'timestamp[ns]',
    experts: 'list<element: uint16 not null>',
    weights: 'list<element: float not null>',
    logits: 'list<element: float not null>',
    tag: 'string',
    mem: 'string',
  });
  assert.deepEqual(got.nullable, ['tag', 'mem']);
  const t = openTrace(src);
  const b = t.readRange(0, 100);
  assert.equal(got.meta, t.arrowSchema.metadata.get('moescope'));
  t.close();
  assert.deepEqual(got.experts, [...b.experts]);
  assert.deepEqual(
    got.weights,
    [...b.weights].map((h) => F16_TO_F32[h]),
  );
  assert.deepEqual(
    got.logits_nan,
    [...b.logits!].map((h) => Number.isNaN(F16_TO_F32[h])),
  );
  assert.deepEqual(got.token_id, [...b.tokenId]);
  assert.deepEqual(got.token, b.token);
  assert.deepEqual(got.t_ns, [...b.tNs].map(String));
  assert.deepEqual(got.tag, b.tag);
  assert.equal(got.row_groups, 4);
});

test('the Parquet one-liners in docs/trace-format.md work on an export', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('run.arrows');
  record(src, LOGITS);
  const out = tmp.path('run.parquet');
  await exportTrace(src, { parquet: out });
  const ran = runDocOneLiners('parquet one-liners', 'run.parquet', out);
  for (const { line, stdout } of ran) {
    if (line.includes('t.num_rows'))
      assert.match(
        stdout,
        /^100 \['seq', 'pos', 'token_id', 'token', 'is_prompt', 't_ns', 'experts', 'weights', 'logits', 'tag'\]/,
      );
    else if (line.includes('duckdb')) assert.match(stdout, /expert[\s\S]*\b\d+\b/);
    else if (line.includes("['schema']")) assert.match(stdout, /'layers': \[1, 3, 5\], 'experts': 8, 'topK': 2/);
    else assert.ok(stdout.trim().length > 0);
  }
  assert.ok(ran.length >= 2);
});
