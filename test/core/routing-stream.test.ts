/**
 * RoutingStream (src/core/routing-stream.ts) from every producer: a recorded trace (whole, without end-of-stream
 * marker, cut short, followed while written), the engine running the bundled model, and batches in memory — each
 * yields the same tokens its source holds and says how it ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import type { RoutingSchema } from '../../src/core/batch.js';
import { BUNDLED_MODEL, BUNDLED_PROMPTS } from '../../src/core/paths.js';
import {
  memoryStream,
  tapStream,
  tokenBatches,
  type RoutingStream,
  type StreamItem,
} from '../../src/core/routing-stream.js';
import { generationStream } from '../../src/engine/generation-stream.js';
import { startGeneration } from '../../src/engine/generation-handle.js';
import { loadPrompts } from '../../src/engine/prompts.js';
import { openTrace, traceStream, TraceWriter } from '../../src/trace/index.js';
import { DEMO_TRACE, META, batches, tempDir } from '../store/helpers.js';

async function all(s: RoutingStream): Promise<StreamItem[]> {
  const out: StreamItem[] = [];
  for await (const it of s.items()) out.push(it);
  return out;
}

const tokenIds = (items: StreamItem[]) =>
  items.flatMap((it) => (it.kind === 'tokens' ? Array.from(it.batch.tokenId) : []));

test('a recorded trace streams every token once, in order, with its memory samples, and ends complete', async () => {
  const reader = openTrace(DEMO_TRACE);
  const expected = Array.from(reader.readRange(0, reader.tokenCount).tokenId);
  const memory = reader.memorySamples().length;
  const s = traceStream(reader);
  assert.equal(s.label, DEMO_TRACE);
  assert.equal(s.kind, 'tokens');
  assert.equal(s.tokens, expected.length);
  assert.deepEqual(s.notes, []);
  const items = await all(s);
  assert.deepEqual(tokenIds(items), expected);
  let next = 0;
  for (const it of items) {
    assert.equal(it.kind, 'tokens');
    if (it.kind !== 'tokens') continue;
    assert.equal(it.firstToken, next);
    next += it.batch.length;
  }
  assert.equal(
    items.reduce((n, it) => n + (it.kind === 'tokens' ? it.memory.length : 0), 0),
    memory,
  );
  assert.deepEqual(await s.end(), { complete: true, truncated: null, error: null });
  // Random access: from any token, the same tokens as the stream.
  const from = 37;
  const seeked = [...s.seek!.chunks(from)].flatMap((c) => Array.from(c.batch.tokenId));
  assert.deepEqual(seeked.slice(0, expected.length - from), expected.slice(from));
  s.close();
  s.close();
});

test('a trace without end-of-stream marker gets a note; a cut one reports the truncation', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const schema: RoutingSchema = { layers: [0], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };
    const p = join(dir, 'open.arrows');
    const w = TraceWriter.create(p, { schema, meta: META, batchTokens: 2 });
    for (const b of batches(
      schema,
      Array.from({ length: 6 }, (_, i) => ({ experts: [[i % 4]] })),
      2,
    ))
      w.write(b);
    w.flush();
    copyFileSync(p, join(dir, 'copy.arrows'));
    w.close();
    const open = traceStream(openTrace(join(dir, 'copy.arrows')));
    assert.match(open.notes.join(), /no end-of-stream marker.*6 complete tokens/);
    assert.equal((await open.end()).complete, false);
    open.close();
    const cut = join(dir, 'cut.arrows');
    copyFileSync(p, cut);
    truncateSync(cut, statSync(cut).size - 20);
    const s = traceStream(openTrace(cut));
    const items = await all(s);
    const end = await s.end();
    assert.equal(end.complete, false);
    assert.ok(end.truncated, 'truncation reported');
    assert.equal(tokenIds(items).length, 4);
    s.close();
  } finally {
    cleanup();
  }
});

test('a followed trace yields batches as they are written and ends at the end-of-stream marker', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const schema: RoutingSchema = { layers: [0], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };
    const p = join(dir, 'grow.arrows');
    const w = TraceWriter.create(p, { schema, meta: META, batchTokens: 2 });
    const bs = batches(
      schema,
      Array.from({ length: 6 }, (_, i) => ({ experts: [[i % 4]] })),
      2,
    );
    w.write(bs[0]!);
    w.flush();
    const s = traceStream(openTrace(p), { follow: true, pollMs: 10 });
    assert.equal(s.tokens, null);
    const seen: number[] = [];
    for await (const it of s.items()) {
      if (it.kind !== 'tokens') continue;
      seen.push(...it.batch.tokenId);
      if (seen.length === 2) {
        w.write(bs[1]!);
        w.write(bs[2]!);
        w.close();
      }
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(await s.end(), { complete: true, truncated: null, error: null });
    s.close();
  } finally {
    cleanup();
  }
});

test('a followed trace closed by its consumer stops waiting', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const schema: RoutingSchema = { layers: [0], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };
    const p = join(dir, 'idle.arrows');
    const w = TraceWriter.create(p, { schema, meta: META, batchTokens: 2 });
    w.write(batches(schema, [{ experts: [[1]] }, { experts: [[2]] }], 2)[0]!);
    w.flush();
    const s = traceStream(openTrace(p), { follow: true, pollMs: 10 });
    let n = 0;
    for await (const it of s.items()) {
      if (it.kind === 'tokens') n += it.batch.length;
      s.close(); // the writer never finishes: only close() ends the loop
    }
    assert.equal(n, 2);
    assert.equal((await s.end()).complete, false);
    w.close();
  } finally {
    cleanup();
  }
});

test('the engine streams the bundled model: the same tokens as its events, memory samples, a clean end', {
  timeout: 120_000,
}, async () => {
  const prompts = loadPrompts(BUNDLED_PROMPTS).slice(0, 2);
  const s = await generationStream(
    startGeneration({
      model: BUNDLED_MODEL,
      prompts,
      maxTokens: 3,
      nvidiaSmi: null,
      threads: 1,
      memoryIntervalMs: 1000,
    }),
    'tiny',
  );
  assert.equal(s.label, 'tiny');
  assert.deepEqual(s.schema, s.info.schema);
  assert.equal(s.tokens, null);
  assert.equal(s.seek, null);
  const items = await all(s);
  const toks = items.filter((it) => it.kind === 'tokens');
  assert.equal(toks.length, prompts.length * (1 + 3)); // a prompt batch, then one per generated token
  assert.ok(
    items.some((it) => it.kind === 'memory'),
    'at least the final memory sample',
  );
  let next = 0;
  for (const it of toks) {
    if (it.kind !== 'tokens') continue;
    assert.equal(it.firstToken, next);
    next += it.batch.length;
  }
  assert.deepEqual(await s.end(), { complete: true, truncated: null, error: null });
});

test('a model that cannot be opened rejects before any stream exists', async () => {
  await assert.rejects(
    generationStream(
      startGeneration({
        model: '/nonexistent/model.onnx',
        prompts: [{ text: 'x', tag: null }],
        maxTokens: 0,
        nvidiaSmi: null,
      }),
      'x',
    ),
    /nonexistent/,
  );
});

test('memory streams seek inside a batch; tapStream sees every item; tokenBatches skips memory samples', async () => {
  const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };
  const bs = batches(
    schema,
    Array.from({ length: 10 }, (_, i) => ({
      experts: [
        [i % 4, (i + 1) % 4],
        [0, 1],
      ],
    })),
    4,
  );
  const s = memoryStream('mem', schema, bs, META);
  assert.equal(s.tokens, 10);
  const firsts = [...s.seek!.chunks(5)].map((c) => [c.firstToken, c.batch.length]);
  assert.deepEqual(firsts, [
    [5, 3],
    [8, 2],
  ]);
  const tapped: number[] = [];
  const t = tapStream(s, (it) => it.kind === 'tokens' && tapped.push(it.batch.length));
  const got: number[] = [];
  for await (const b of tokenBatches(t)) got.push(b.length);
  assert.deepEqual(got, [4, 4, 2]);
  assert.deepEqual(tapped, got);
});
