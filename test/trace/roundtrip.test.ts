import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { sliceBatch, type RoutingSchema } from '../../src/core/batch.js';
import { UserError } from '../../src/core/errors.js';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { META, SCHEMA, makeBatch, plain, tempDir } from './helpers.js';

const LOGITS: RoutingSchema = { ...SCHEMA, hasLogits: true };

/** Writes `total` tokens in writes of varying sizes (1 token … several batches). */
function record(
  path: string,
  schema: RoutingSchema,
  total: number,
  batchTokens: number,
  opts: { tags?: boolean } = {},
) {
  const w = TraceWriter.create(path, { schema, meta: META, batchTokens });
  const sizes = [1, 3, batchTokens, 2 * batchTokens + 5, 7, batchTokens - 1];
  let at = 0;
  for (let i = 0; at < total; i++) {
    const n = Math.min(sizes[i % sizes.length]!, total - at);
    if (i % 4 === 0)
      w.writeMemory({
        tNs: BigInt(at) * 10n,
        gpus: [{ index: 0, name: 'gpu', usedBytes: at, totalBytes: 1e9, utilization: null }],
        hostRssBytes: 5,
        ortBytes: null,
      });
    w.write(makeBatch(schema, n, at, opts));
    at += n;
  }
  w.close();
  return w;
}

test('round trip: every column reads back bit for bit, in writes of any size', (ctx) => {
  const tmp = tempDir(ctx);
  for (const [schema, tags] of [
    [SCHEMA, false],
    [LOGITS, true],
  ] as const) {
    const path = tmp.path(`rt-${schema.hasLogits}.arrows`);
    const w = record(path, schema, 1000, 64, { tags });
    const t = openTrace(path);
    assert.equal(t.tokenCount, 1000);
    assert.equal(t.complete, true);
    assert.equal(t.truncated, null);
    assert.deepEqual(t.schema, schema);
    assert.equal(t.meta.model, 'test-model');
    assert.deepEqual(
      t.meta.routers.map((r) => r.layer),
      schema.layers,
    );
    assert.equal(t.version, w.header.moescope);
    assert.ok(Math.abs(t.createdAt.getTime() - Date.now()) < 60_000);
    const expected = makeBatch(schema, 1000, 0, { tags });
    let at = 0;
    for (const b of t.batches()) {
      assert.ok(b.length <= 64);
      assert.deepEqual(plain(b), plain(sliceBatch(expected, schema, at, at + b.length)));
      at += b.length;
    }
    assert.equal(at, 1000);
    t.close();
  }
});

test('seeking: readRange, batchIndexOf and batches(from) agree with what was written', (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('seek.arrows');
  record(path, LOGITS, 777, 50, { tags: true });
  const expected = makeBatch(LOGITS, 777, 0, { tags: true });
  const t = openTrace(path);
  for (const [s, e] of [
    [0, 777],
    [0, 0],
    [776, 777],
    [49, 51],
    [50, 100],
    [123, 456],
    [700, 777],
  ] as const) {
    assert.deepEqual(plain(t.readRange(s, e)), plain(sliceBatch(expected, LOGITS, s, e)), `range ${s}…${e}`);
  }
  const i = t.batchIndexOf(400);
  const c = t.readBatch(i);
  assert.ok(c.firstToken <= 400 && 400 < c.firstToken + c.batch.length);
  const first = t.batches(400).next().value!;
  assert.equal(first.tokenId[0], expected.tokenId[400]);
  assert.equal(t.batchIndexOf(777), t.batchCount);
  assert.throws(() => t.readRange(10, 778), RangeError);
  t.close();
});

test('memory samples ride on the next token and read back from the mem column alone', (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('mem.arrows');
  const w = TraceWriter.create(path, { schema: SCHEMA, meta: META, batchTokens: 10 });
  const s = (n: number) => ({
    tNs: BigInt(n) + 1_700_000_000_000_000_000n,
    gpus: null,
    hostRssBytes: n,
    ortBytes: n * 2,
  });
  w.writeMemory(s(1));
  w.writeMemory(s(2));
  w.write(makeBatch(SCHEMA, 25, 0));
  w.writeMemory(s(3));
  w.write(makeBatch(SCHEMA, 30, 25)); // direct write of a whole batch
  w.writeMemory(s(4)); // after the last token: nothing to ride on
  w.close();
  const t = openTrace(path);
  assert.deepEqual(t.memorySamples(), [
    { token: 0, sample: s(1) },
    { token: 0, sample: s(2) },
    { token: 25, sample: s(3) },
  ]);
  const chunks = [...t.chunks()];
  assert.deepEqual(
    chunks.flatMap((c) => c.memory).map((m) => m.token),
    [0, 0, 25],
  );
  t.close();
});

test('the timer flushes a partial batch within a second, readable while the writer is open', async (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('timer.arrows');
  const w = TraceWriter.create(path, { schema: SCHEMA, meta: META, batchTokens: 1000, flushIntervalMs: 200 });
  w.write(makeBatch(SCHEMA, 5, 0));
  const before = openTrace(path);
  assert.equal(before.tokenCount, 0);
  assert.equal(before.complete, false);
  await new Promise((r) => setTimeout(r, 450));
  before.refresh();
  assert.equal(before.tokenCount, 5);
  assert.equal(before.complete, false);
  w.close();
  before.refresh();
  assert.equal(before.complete, true);
  before.close();
});

test('atomic writers leave nothing behind on abort and rename into place on close', (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('atomic.arrows');
  const a = TraceWriter.create(path, { schema: SCHEMA, meta: META, atomic: true });
  a.write(makeBatch(SCHEMA, 10, 0));
  a.flush();
  assert.equal(existsSync(path), false);
  a.abort();
  assert.deepEqual(readdirSync(tmp.dir), []);
  const b = TraceWriter.create(path, { schema: SCHEMA, meta: META, atomic: true });
  b.write(makeBatch(SCHEMA, 10, 0));
  b.close();
  assert.deepEqual(readdirSync(tmp.dir), ['atomic.arrows']);
  assert.equal(openTrace(path).tokenCount, 10);
});

test('writer rejects batches that do not fit the schema', (ctx) => {
  const tmp = tempDir(ctx);
  const w = TraceWriter.create(tmp.path('bad.arrows'), { schema: SCHEMA, meta: META });
  const b = makeBatch(SCHEMA, 3, 0);
  assert.throws(() => w.write({ ...b, experts: b.experts.subarray(1) }), /experts has 17 elements, expected 18/);
  const big = makeBatch(SCHEMA, 3, 0);
  big.experts[4] = 8;
  assert.throws(() => w.write(big), /expert id 8 ≥ 8/);
  w.close();
  assert.throws(() => w.write(b), /closed/);
});

test('not-a-trace files are a UserError naming the file', (ctx) => {
  const tmp = tempDir(ctx);
  const cases: [string, string | Uint8Array, RegExp][] = [
    ['empty.arrows', '', /empty file/],
    ['json.arrows', '{"moescope":1,"layers":2}\n', /not an Arrow IPC stream/],
    ['short.arrows', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 1, 2]), /cut short inside its schema/],
  ];
  for (const [name, content, re] of cases) {
    writeFileSync(tmp.path(name), content);
    assert.throws(
      () => openTrace(tmp.path(name)),
      (e: unknown) => e instanceof UserError && re.test(e.message) && e.message.includes(name),
    );
  }
  assert.throws(() => openTrace(tmp.path('missing.arrows')), /no such trace/);
  assert.ok(statSync(tmp.dir).isDirectory());
});

test('a background writer (moescope listen) writes the same file as a synchronous one, whatever close() finds in flight', async (ctx) => {
  const tmp = tempDir(ctx);
  const write = (path: string, background: boolean) => {
    const w = TraceWriter.create(path, {
      schema: SCHEMA,
      meta: META,
      batchTokens: 64,
      background,
      createdAt: new Date(0),
      columns: ['rank'],
    });
    const sizes = [1, 3, 300, 64, 7, 1000, 2, 256];
    let at = 0;
    for (let i = 0; i < 40; i++) {
      const n = sizes[i % sizes.length]!;
      if (i % 5 === 0) w.writeMemory({ tNs: BigInt(at), gpus: [], hostRssBytes: at, ortBytes: null });
      // Fresh arrays each time: a background writer reads a batch written directly after write() returns.
      w.write({ ...makeBatch(SCHEMA, n, at), rank: new Uint16Array(n).fill(i % 3) });
      at += n;
    }
    return { w, tokens: at };
  };
  const { w: sync, tokens } = write(tmp.path('sync.arrows'), false);
  sync.close();
  // Closed at once: writes are still queued or in the thread pool; close() finishes them itself.
  const { w: bg } = write(tmp.path('bg.arrows'), true);
  assert.ok(bg.backlogBytes > 0, 'writes were queued for the thread pool');
  bg.close();
  assert.deepEqual(readFileSync(tmp.path('bg.arrows')), readFileSync(tmp.path('sync.arrows')));
  // Closed after the thread pool caught up.
  const { w: bg2 } = write(tmp.path('bg2.arrows'), true);
  for (let i = 0; i < 200 && bg2.backlogBytes > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(bg2.backlogBytes, 0);
  const growing = openTrace(tmp.path('bg2.arrows'));
  assert.ok(growing.tokenCount > tokens - 64, `the record batches written so far are readable (${growing.tokenCount})`);
  assert.equal(growing.complete, false);
  growing.close();
  bg2.close();
  await new Promise((r) => setTimeout(r, 50)); // a callback after close() must not touch the file again
  assert.deepEqual(readFileSync(tmp.path('bg2.arrows')), readFileSync(tmp.path('sync.arrows')));
  const t = openTrace(tmp.path('bg.arrows'));
  assert.equal(t.tokenCount, tokens);
  assert.equal(t.complete, true);
  t.close();
});
