import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { parquetMetadata } from 'hyparquet';
import type { RoutingSchema } from '../../src/core/batch.js';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { exportTrace } from '../../src/trace/export/index.js';
import { importStream, importTrace } from '../../src/trace/import/index.js';
import { writeJsonl } from '../../src/trace/export/jsonl.js';
import { TextSink } from '../../src/trace/export/sink.js';
import { moescope } from './cli.js';
import { META, SCHEMA, makeBatch, plain, tempDir } from './helpers.js';

const LOGITS: RoutingSchema = { ...SCHEMA, hasLogits: true };

test('export --jsonl then import jsonl gives back the same trace, bit for bit', async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('src.arrows');
  const meta = { ...META, tokenizer: 'tok.json', devices: ['cpu', 'cuda:0 test'] };
  const w = TraceWriter.create(src, { schema: LOGITS, meta, batchTokens: 32 });
  const b = makeBatch(LOGITS, 100, 0, { tags: true });
  b.logits!.fill(0x7e00, 5 * 24, 6 * 24); // token 5: logits not captured (NaN)
  w.writeMemory({
    tNs: 3n,
    gpus: [{ index: 0, name: 'g', usedBytes: 1, totalBytes: 2, utilization: 50 }],
    hostRssBytes: 9,
    ortBytes: 4,
  });
  w.write(b);
  w.close();
  const jsonl = tmp.path('x.jsonl');
  const r = await exportTrace(src, { jsonl });
  assert.deepEqual(r.results, [{ format: 'jsonl', path: jsonl, tokens: 100 }]);
  assert.deepEqual(r.notes, []);
  const back = tmp.path('back.arrows');
  await importTrace('jsonl', [jsonl], back);
  const a = openTrace(src);
  const c = openTrace(back);
  assert.deepEqual(c.schema, a.schema);
  assert.equal(c.meta.model, a.meta.model);
  assert.equal(c.meta.tokenizer, 'tok.json');
  assert.deepEqual(c.meta.devices, meta.devices);
  assert.deepEqual(plain(c.readRange(0, 100)), plain(a.readRange(0, 100)));
  assert.deepEqual(c.memorySamples(), a.memorySamples());
  // A second export of the re-imported trace is byte-identical.
  const again = tmp.path('again.jsonl');
  await exportTrace(back, { jsonl: again });
  assert.equal(readFileSync(again, 'utf8'), readFileSync(jsonl, 'utf8'));
  // The importer's stream feeds the exporter directly, no trace file between: the same text again.
  const stream = importStream('jsonl', [jsonl]);
  assert.deepEqual(stream.schema, a.schema); // known before any data is read
  const direct = tmp.path('direct.jsonl');
  const sink = new TextSink(direct);
  assert.equal(await writeJsonl(stream, sink), 100);
  sink.close();
  assert.equal(readFileSync(direct, 'utf8'), readFileSync(jsonl, 'utf8'));
  assert.deepEqual(await stream.end(), { complete: true, truncated: null, error: null });
  a.close();
  c.close();
});

test('export of a cut trace exports the complete tokens, says so in one line and exits 2, in both formats', (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('src.arrows');
  const w = TraceWriter.create(src, { schema: SCHEMA, meta: META, batchTokens: 40 });
  w.write(makeBatch(SCHEMA, 120, 0));
  w.close();
  const cut = tmp.path('cut.arrows');
  copyFileSync(src, cut);
  truncateSync(cut, statSync(src).size - 100);
  const r = moescope('export', cut, '--jsonl', tmp.path('cut.jsonl'), '--parquet', tmp.path('cut.parquet'));
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(
    r.stderr,
    /cut\.arrows is truncated at byte \d+ \(40 tokens lost\); the output covers its 80 complete tokens/,
  );
  assert.equal(readFileSync(tmp.path('cut.jsonl'), 'utf8').trim().split('\n').length, 81);
  const pq = readFileSync(tmp.path('cut.parquet'));
  assert.equal(Number(parquetMetadata(pq.buffer.slice(pq.byteOffset, pq.byteOffset + pq.byteLength)).num_rows), 80);
  const none = moescope('export', src);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^moescope: say what to write/);
});
