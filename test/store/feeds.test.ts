/** Feeds: replay over the recorded demo trace (seek, step, speed, recorded time), live freeze, follow. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { statSync, truncateSync } from 'node:fs';
import type { RoutingSchema } from '../../src/core/batch.js';
import { openTrace, traceStream, TraceWriter } from '../../src/trace/index.js';
import { RoutingModel } from '../../src/store/model.js';
import { LiveFeed, ReplayPlayer, StreamFeed, nextSpeed } from '../../src/store/feeds.js';
import { memoryStream } from '../../src/core/routing-stream.js';
import { DEMO_TRACE, META, batches, tempDir } from './helpers.js';

/** Counts of a model fed tokens [0, n) of the trace directly, for comparison. */
function directCounts(path: string, n: number): Float64Array {
  const t = openTrace(path);
  try {
    const m = new RoutingModel(t.schema, t.meta);
    if (n > 0) m.add(t.readRange(0, n));
    return Float64Array.from(m.stats.load);
  } finally {
    t.close();
  }
}

test('replay: seek forward and back, step, end — the model always equals feeding the prefix directly', () => {
  const t = openTrace(DEMO_TRACE);
  try {
    const m = new RoutingModel(t.schema, t.meta);
    const p = new ReplayPlayer(traceStream(t), m, { playing: false });
    p.seek(300);
    assert.equal(m.tokens, 300);
    assert.deepEqual(Array.from(m.stats.load), Array.from(directCounts(DEMO_TRACE, 300)));
    p.seek(123);
    assert.equal(p.state().position, 123);
    assert.deepEqual(Array.from(m.stats.load), Array.from(directCounts(DEMO_TRACE, 123)));
    p.step(1);
    p.step(1);
    assert.equal(m.tokens, 125);
    p.step(-5);
    assert.equal(m.tokens, 120);
    assert.deepEqual(Array.from(m.stats.load), Array.from(directCounts(DEMO_TRACE, 120)));
    p.seek(t.tokenCount + 100);
    assert.equal(m.tokens, t.tokenCount);
    assert.equal(p.state().ended, true);
    assert.equal(p.state().playing, false);
    // Play at the end starts over.
    p.setPlaying(true);
    assert.equal(m.tokens, 0);
    assert.equal(p.state().playing, true);
  } finally {
    t.close();
  }
});

test('replay plays in recorded time scaled by the speed; pause stops the clock', () => {
  const schema: RoutingSchema = { layers: [0], experts: 2, topK: 1, scoring: 'softmax', hasLogits: false };
  // 10 tokens, 100 ms apart in recorded time, and one 60 s gap (played as 1 s).
  const toks = Array.from({ length: 10 }, (_, i) => ({ ms: i * 100 + (i >= 5 ? 60_000 : 0), experts: [[i % 2]] }));
  const bs = batches(schema, toks, 4);
  const trace = memoryStream('timed', schema, bs, META);
  let now = 0;
  const m = new RoutingModel(schema, META);
  const p = new ReplayPlayer(trace, m, { now: () => now, speed: 2 });
  p.start();
  p.stop(); // drive ticks by hand
  assert.equal(m.tokens, 1, 'the first token plays at once');
  now += 100; // ×2: 200 ms of recorded time
  p.tick();
  assert.equal(m.tokens, 3);
  now += 100;
  p.tick();
  assert.equal(m.tokens, 5);
  now += 400; // 800 ms of the 1 s the gap is shortened to
  p.tick();
  assert.equal(m.tokens, 5);
  now += 100;
  p.tick();
  assert.equal(m.tokens, 6);
  p.setPlaying(false);
  now += 10_000;
  p.tick();
  assert.equal(m.tokens, 6, 'paused');
  p.setPlaying(true);
  now += 50;
  p.tick();
  assert.equal(m.tokens, 7, 'resumes from where it paused, not after the pause');
});

test('speed ladder ×0.25 … ×64', () => {
  assert.equal(nextSpeed(1, 1), 2);
  assert.equal(nextSpeed(1, -1), 0.5);
  assert.equal(nextSpeed(64, 1), 64);
  assert.equal(nextSpeed(0.25, -1), 0.25);
  assert.equal(nextSpeed(3, 1), 4);
});

test('live: freezing buffers what arrives; step applies buffered tokens one at a time; resume applies the rest', () => {
  const schema: RoutingSchema = { layers: [0], experts: 2, topK: 1, scoring: 'softmax', hasLogits: false };
  const m = new RoutingModel(schema, META);
  const f = new LiveFeed(m);
  let changes = 0;
  f.onChange = () => changes++;
  f.push(batches(schema, [{ experts: [[0]] }, { experts: [[1]] }])[0]!);
  assert.equal(m.tokens, 2);
  f.setPlaying(false);
  f.push(batches(schema, [{ experts: [[0]] }, { experts: [[0]] }, { experts: [[1]] }])[0]!);
  f.memory({ tNs: 5n, gpus: null, hostRssBytes: 100, ortBytes: null });
  assert.equal(m.tokens, 2, 'frozen');
  assert.equal(f.state().buffered, 3);
  assert.equal(f.state().total, 5);
  f.step(1);
  assert.equal(m.tokens, 3);
  assert.equal(f.state().buffered, 2);
  f.setPlaying(true);
  assert.equal(m.tokens, 5);
  assert.equal(m.memory.length, 1);
  assert.deepEqual(Array.from(m.stats.load), [3, 2]);
  f.end();
  assert.equal(f.state().ended, true);
  assert.ok(changes >= 5);
});

test('follow: tails a trace while it is being written, and ends at its end-of-stream marker', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'grow.arrows');
    const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };
    const w = TraceWriter.create(path, { schema, meta: META, batchTokens: 2 });
    const toks = Array.from({ length: 6 }, (_, i) => ({
      experts: [
        [i % 4, (i + 1) % 4],
        [0, 1],
      ],
    }));
    const bs = batches(schema, toks, 2);
    w.write(bs[0]!);
    w.flush();
    const t = openTrace(path);
    const m = new RoutingModel(schema, META);
    const f = new StreamFeed(traceStream(t, { follow: true, pollMs: 10 }), m, 'follow');
    const waitFor = async (pred: () => boolean) => {
      for (let i = 0; i < 300 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(pred());
    };
    f.start();
    await waitFor(() => m.tokens === 2);
    w.write(bs[1]!);
    w.write(bs[2]!);
    w.close();
    await waitFor(() => f.state().ended);
    assert.equal(m.tokens, 6);
    f.stop();
    t.close();
  } finally {
    cleanup();
  }
});

test('a frozen live view resumes on its own rather than hold back more than MAX_BUFFERED_TOKENS', async () => {
  const { MAX_BUFFERED_TOKENS } = await import('../../src/store/feeds.js');
  const schema: RoutingSchema = { layers: [0], experts: 2, topK: 1, scoring: 'softmax', hasLogits: false };
  const m = new RoutingModel(schema, META);
  const f = new LiveFeed(m);
  f.setPlaying(false);
  const half = batches(
    schema,
    Array.from({ length: MAX_BUFFERED_TOKENS / 2 + 1 }, () => ({ experts: [[0]] })),
  )[0]!;
  f.push(half);
  assert.equal(m.tokens, 0);
  assert.equal(f.state().notice, null);
  f.push(half);
  assert.equal(m.tokens, MAX_BUFFERED_TOKENS + 2, 'everything applied, nothing lost');
  assert.equal(f.state().playing, true);
  assert.match(f.state().notice ?? '', /resumed: a frozen view holds back at most 200,000 tokens/);
});

test('follow: says when the writer stopped without its end-of-stream marker, and when a half batch sits at the end', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };
    const toks = Array.from({ length: 6 }, (_, i) => ({
      experts: [
        [i % 4, (i + 1) % 4],
        [0, 1],
      ],
    }));
    const bs = batches(schema, toks, 2);
    const watch = { stallMs: 300, partialMs: 150, checkMs: 20 };
    const waitFor = async (pred: () => boolean, what: string) => {
      for (let i = 0; i < 300 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(pred(), what);
    };

    // A writer that stops: the notice comes once nothing has arrived for stallMs, and goes when tokens flow again.
    const path = join(dir, 'stall.arrows');
    const w = TraceWriter.create(path, { schema, meta: META, batchTokens: 2 });
    w.write(bs[0]!);
    w.flush();
    const t = openTrace(path);
    const m = new RoutingModel(schema, META);
    const f = new StreamFeed(traceStream(t, { follow: true, pollMs: 10 }), m, 'follow', { file: t, watch });
    f.start();
    await waitFor(() => m.tokens === 2, 'the first batch');
    assert.equal(f.state().notice, null, 'not yet');
    await waitFor(
      () =>
        /no new tokens for \d+ s and no end-of-stream marker: the writer may have stopped/.test(f.state().notice ?? ''),
      'stall notice',
    );
    w.write(bs[1]!);
    w.flush();
    await waitFor(() => m.tokens === 4 && f.state().notice === null, 'the notice clears when tokens arrive');
    f.stop();
    w.close();

    // A writer killed mid-batch: the file ends inside a record batch.
    const cut = join(dir, 'cut.arrows');
    const w2 = TraceWriter.create(cut, { schema, meta: META, batchTokens: 2 });
    w2.write(bs[0]!);
    w2.flush();
    const whole = statSync(cut).size;
    w2.write(bs[1]!);
    w2.flush();
    truncateSync(cut, whole + Math.floor((statSync(cut).size - whole) / 2));
    const t2 = openTrace(cut);
    const m2 = new RoutingModel(schema, META);
    const f2 = new StreamFeed(traceStream(t2, { follow: true, pollMs: 10 }), m2, 'follow', { file: t2, watch });
    f2.start();
    await waitFor(
      () =>
        /a partial batch \([\d,]+ bytes\) has sat at the end for \d+ s: the writer may have died mid-write/.test(
          f2.state().notice ?? '',
        ),
      'partial notice',
    );
    assert.equal(m2.tokens, 2, 'every complete token is shown');
    f2.stop();
  } finally {
    cleanup();
  }
});
