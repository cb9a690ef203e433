import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sliceBatch } from '../../src/core/batch.js';
import { TraceNotReadyError, TraceWriter, openTrace, waitForTrace, type TraceChunk } from '../../src/trace/index.js';
import { META, SCHEMA, makeBatch, plain, tempDir } from './helpers.js';

test('follow tails a growing trace and ends at the end-of-stream marker', async (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('live.arrows');
  const w = TraceWriter.create(path, { schema: SCHEMA, meta: META, batchTokens: 16, flushIntervalMs: 50 });
  w.write(makeBatch(SCHEMA, 20, 0));
  w.flush();
  const t = openTrace(path);
  let written = 20;
  const producer = setInterval(() => {
    if (written >= 200) {
      clearInterval(producer);
      w.writeMemory({ tNs: 1n, gpus: null, hostRssBytes: 1, ortBytes: null }); // dropped: no token follows
      w.close();
      return;
    }
    if (written === 100) w.writeMemory({ tNs: 9n, gpus: null, hostRssBytes: 9, ortBytes: null });
    w.write(makeBatch(SCHEMA, 10, written));
    written += 10;
  }, 15);
  const got: TraceChunk[] = [];
  for await (const c of t.follow({ fromToken: 5, pollMs: 20 })) got.push(c);
  assert.equal(t.complete, true);
  assert.equal(t.tokenCount, 200);
  assert.equal(got[0]!.firstToken, 5);
  const rows = got.reduce((n, c) => n + c.batch.length, 0);
  assert.equal(rows, 195);
  const expected = makeBatch(SCHEMA, 200, 0);
  let at = 5;
  for (const c of got) {
    assert.equal(c.firstToken, at);
    assert.deepEqual(plain(c.batch), plain(sliceBatch(expected, SCHEMA, at, at + c.batch.length)));
    at += c.batch.length;
  }
  assert.deepEqual(
    got.flatMap((c) => c.memory).map((m) => m.token),
    [100],
  );
  t.close();
});

test('follow stops when its signal aborts, on a trace that never ends', async (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('stuck.arrows');
  const w = TraceWriter.create(path, { schema: SCHEMA, meta: META, batchTokens: 8 });
  w.write(makeBatch(SCHEMA, 8, 0));
  const t = openTrace(path);
  const ac = new AbortController();
  const seen: number[] = [];
  const started = Date.now();
  setTimeout(() => ac.abort(), 150);
  for await (const c of t.follow({ pollMs: 10, signal: ac.signal })) seen.push(c.batch.length);
  assert.deepEqual(seen, [8]);
  assert.ok(Date.now() - started < 2000);
  assert.equal(t.complete, false);
  w.abort();
  t.close();
});

test('waitForTrace opens a trace once its recorder has created it', async (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('later.arrows');
  setTimeout(() => {
    const w = TraceWriter.create(path, { schema: SCHEMA, meta: META });
    w.write(makeBatch(SCHEMA, 3, 0));
    w.close();
  }, 120);
  const t = await waitForTrace(path, { pollMs: 20, timeoutMs: 5000 });
  assert.equal(t.schema.experts, SCHEMA.experts);
  t.close();
  await assert.rejects(waitForTrace(tmp.path('never.arrows'), { pollMs: 10, timeoutMs: 50 }), TraceNotReadyError);
});
