/**
 * RoutingStats with its logits sums in a worker (logitsThread: true) against the same stream scored in the
 * calling thread: every metric must be identical — not close, equal — at any point of the stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { RoutingBatchBuilder, type RoutingBatch, type RoutingSchema, type Scoring } from '../../src/core/batch.js';
import { UserError } from '../../src/core/errors.js';
import { RoutingStats } from '../../src/stats/index.js';
import { LogitsThread, logitsThreadByDefault } from '../../src/stats/logits-thread.js';
import { seededRandom } from '../../src/engine/generation-loop.js';

const L = 5;
const E = 64;
const K = 6;

/**
 * A stream of `sizes` batches: sequences of 1–300 tokens, logits with per-layer skew, a token without logits
 * every 97 (NaN rows) and one NaN logit in one layer every 131.
 */
function stream(scoring: Scoring, sizes: number[], seed: number): { schema: RoutingSchema; batches: RoutingBatch[] } {
  const schema: RoutingSchema = { layers: [1, 2, 3, 5, 8], experts: E, topK: K, scoring, hasLogits: true };
  const rand = seededRandom(seed);
  const batches: RoutingBatch[] = [];
  let seq = 0;
  let pos = 0;
  let seqLen = 1;
  let t = 0;
  const logits = new Float32Array(L * E);
  const experts = new Uint16Array(L * K);
  const weights = new Float32Array(L * K);
  for (const n of sizes) {
    const b = new RoutingBatchBuilder(schema, n);
    for (let i = 0; i < n; i++, t++) {
      if (pos === seqLen) {
        seq++;
        pos = 0;
        seqLen = 1 + Math.floor(rand() * 300);
      }
      for (let l = 0; l < L; l++) {
        for (let e = 0; e < E; e++) logits[l * E + e] = -0.05 * ((e * (l + 3)) % E) + 3 * rand();
        // The recorded selection: the top-K of the logits (ties to the lower index).
        const order = Array.from({ length: E }, (_, e) => e).sort(
          (a, c) => logits[l * E + c]! - logits[l * E + a]! || a - c,
        );
        for (let j = 0; j < K; j++) {
          experts[l * K + j] = order[j]!;
          weights[l * K + j] = (K - j) / ((K * (K + 1)) / 2);
        }
      }
      if (t % 131 === 0) logits[2 * E + 7] = NaN;
      b.push({
        seq,
        pos: pos++,
        tokenId: t % 1000,
        token: 'x',
        isPrompt: false,
        tNs: BigInt(t),
        experts,
        weights,
        logits: t % 97 === 0 ? null : logits,
      });
    }
    batches.push(b.finish());
  }
  return { schema, batches };
}

function sizes(seed: number, count: number): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, () => 1 + Math.floor(rand() * 64));
}

for (const scoring of ['sigmoid', 'softmax'] as Scoring[]) {
  test(`${scoring}: logits metrics from the worker equal those computed inline, at every snapshot`, () => {
    // 12,000 tokens in one batch: more than the ring holds (8 slots × 1,372 tokens here), so push splits it
    // and waits for the worker.
    const { schema, batches } = stream(scoring, [...sizes(3, 60), 12_000, ...sizes(4, 60)], 9);
    const inline = new RoutingStats(schema, { logits: 'here' });
    const threaded = new RoutingStats(schema, { logits: new LogitsThread(schema) });
    try {
      batches.forEach((b, i) => {
        assert.deepEqual(threaded.add(b), inline.add(b));
        if (i % 20 === 0 || i === 60)
          assert.deepEqual(threaded.snapshot('run'), inline.snapshot('run'), `after batch ${i}`);
      });
      const snap = threaded.snapshot('run');
      assert.deepEqual(snap, inline.snapshot('run'));
      // The comparison means something: every logits metric is there.
      for (const m of snap.layers)
        for (const v of [m.hfAuxLoss, m.seqAuxLoss, m.zLoss, m.tokenEntropy, m.routerMargin])
          assert.equal(typeof v, 'number');
      for (let l = 0; l < L; l++) assert.deepEqual(threaded.layerMetrics(l), inline.layerMetrics(l));
    } finally {
      threaded.close();
    }
  });
}

test('after close() the remaining batches are scored in the calling thread, with the same results', () => {
  const { schema, batches } = stream('sigmoid', sizes(7, 40), 2);
  const inline = new RoutingStats(schema, { logits: 'here' });
  const threaded = new RoutingStats(schema, { logits: new LogitsThread(schema) });
  batches.forEach((b, i) => {
    inline.add(b);
    threaded.add(b);
    if (i === 15) threaded.close();
  });
  threaded.close(); // idempotent
  assert.deepEqual(threaded.snapshot('run'), inline.snapshot('run'));
});

test('a batch with the wrong number of logits is refused before anything is counted', () => {
  const { schema, batches } = stream('softmax', [10], 1);
  const stats = new RoutingStats(schema, { logits: new LogitsThread(schema) });
  try {
    const b = batches[0]!;
    assert.throws(
      () => stats.add({ ...b, logits: b.logits!.subarray(0, b.logits!.length - 1) }),
      (e) => e instanceof UserError && /logits for 10 tokens/.test(e.message),
    );
    assert.equal(stats.tokens, 0);
    assert.equal(
      stats.load.reduce((a, c) => a + c, 0),
      0,
    );
    assert.equal(stats.snapshot('run').global.zLoss, null);
  } finally {
    stats.close();
  }
});

test('the worker is the default for large routers only', () => {
  const schema = (layers: number, experts: number, hasLogits = true): RoutingSchema => ({
    layers: Array.from({ length: layers }, (_, i) => i),
    experts,
    topK: 8,
    scoring: 'sigmoid',
    hasLogits,
  });
  assert.equal(logitsThreadByDefault(schema(32, 8)), false); // Mixtral: 256 logits per token
  assert.equal(logitsThreadByDefault(schema(58, 256, false)), false); // no logits
  // DeepSeek-V3: 14,848 logits per token (a worker wherever there is a second core)
  assert.equal(logitsThreadByDefault(schema(58, 256)), availableParallelism() > 1);
});
