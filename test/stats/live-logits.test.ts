/**
 * Live logits metrics (#16 item 4): computed by the producer where the logits are (the engine worker runs
 * createBatchReducer) and posted with each batch; RoutingStats({ logits: 'posted' }) shows them. They must equal
 * the metrics RoutingStats scores itself on the same batches — not close, equal — after every batch, and the
 * engine run of the bundled model must give the TUI model the same numbers as scoring its batches here.
 * Snapshots are made at most every few ms (#17): the ones held back must not change where the run ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoutingBatchBuilder, type RoutingBatch, type RoutingSchema } from '../../src/core/batch.js';
import { BUNDLED_MODEL, BUNDLED_PROMPTS } from '../../src/core/paths.js';
import { generationStream } from '../../src/engine/generation-stream.js';
import { seededRandom } from '../../src/engine/generation-loop.js';
import { startGeneration } from '../../src/engine/generation-handle.js';
import { loadPrompts } from '../../src/engine/prompts.js';
import { RoutingStats } from '../../src/stats/index.js';
import { LIVE_LOGITS_REDUCER, createBatchReducer } from '../../src/stats/live-logits.js';
import { RoutingModel } from '../../src/store/model.js';
import { META } from '../store/helpers.js';

function randomBatches(schema: RoutingSchema, sizes: number[], seed: number): RoutingBatch[] {
  const rand = seededRandom(seed);
  const L = schema.layers.length;
  const { experts: E, topK: K } = schema;
  let t = 0;
  return sizes.map((n) => {
    const b = new RoutingBatchBuilder(schema, n);
    for (let i = 0; i < n; i++, t++) {
      const logits = Float32Array.from({ length: L * E }, () => 4 * rand() - 2);
      const experts: number[] = [];
      for (let l = 0; l < L; l++) {
        const order = Array.from({ length: E }, (_, e) => e).sort(
          (a, c) => logits[l * E + c]! - logits[l * E + a]! || a - c,
        );
        experts.push(...order.slice(0, K));
      }
      b.push({
        seq: Math.floor(t / 37),
        pos: t % 37,
        tokenId: t,
        token: 'x',
        isPrompt: false,
        tNs: BigInt(t),
        experts,
        weights: experts.map(() => 1 / K),
        logits: t % 53 === 0 ? null : logits,
      });
    }
    return b.finish();
  });
}

for (const scoring of ['softmax', 'sigmoid'] as const) {
  test(`${scoring}: posted logits metrics equal the ones scored here, after every batch`, () => {
    const schema: RoutingSchema = { layers: [0, 3, 7], experts: 16, topK: 3, scoring, hasLogits: true };
    const reduce = createBatchReducer(schema, { intervalMs: 0 });
    const here = new RoutingStats(schema, { logits: 'here' });
    const posted = new RoutingStats(schema, { logits: 'posted' });
    assert.equal(posted.hasLogits, true);
    assert.deepEqual(posted.snapshot('run').global.zLoss, null, 'nothing posted yet: no value, not zero');
    for (const b of randomBatches(schema, [1, 40, 3, 100, 1, 1, 17], 7)) {
      here.add(b);
      posted.add(b, reduce(b));
      assert.deepEqual(posted.snapshot('run'), here.snapshot('run'));
    }
    assert.equal(reduce.final(), null, 'every snapshot was posted: nothing held back');
  });

  test(`${scoring}: snapshots held back between intervals; final() brings the run's last one, equal to scoring here`, () => {
    const schema: RoutingSchema = { layers: [0, 3, 7], experts: 16, topK: 3, scoring, hasLogits: true };
    // An interval no run reaches: the first batch's snapshot is made, every later one held back.
    const reduce = createBatchReducer(schema, { intervalMs: Number.POSITIVE_INFINITY });
    const here = new RoutingStats(schema, { logits: 'here' });
    const posted = new RoutingStats(schema, { logits: 'posted' });
    const batches = randomBatches(schema, [2, 40, 3, 100, 1, 1, 17], 11);
    batches.forEach((b, i) => {
      here.add(b);
      const s = reduce(b);
      assert.equal(s === null, i > 0, `batch ${i}: ${s === null ? 'held back' : 'posted'}`);
      posted.add(b, s);
    });
    assert.notDeepEqual(posted.snapshot('run'), here.snapshot('run'), 'the views lag while snapshots are held');
    const last = reduce.final();
    assert.notEqual(last, null);
    assert.equal(last!.tokens, 164);
    posted.addPosted(last);
    assert.deepEqual(posted.snapshot('run'), here.snapshot('run'));
    assert.equal(reduce.final(), null, 'final() once');
  });
}

test('the engine posts logits metrics with its batches: the TUI model shows what scoring them here gives', {
  timeout: 120_000,
}, async () => {
  const prompts = loadPrompts(BUNDLED_PROMPTS).slice(0, 3);
  const s = await generationStream(
    startGeneration({
      model: BUNDLED_MODEL,
      prompts,
      maxTokens: 4,
      logits: true,
      nvidiaSmi: null,
      threads: 1,
      memoryIntervalMs: 0,
      reducer: LIVE_LOGITS_REDUCER,
    }),
    'tiny',
  );
  const posted = new RoutingModel(s.schema, META, { logits: 'posted' });
  const here = new RoutingModel(s.schema, META, { logits: 'here' });
  let batches = 0;
  let snapshots = 0;
  for await (const it of s.items()) {
    if (it.kind === 'derived') {
      // The snapshot held back from the last batches comes once, after them.
      snapshots++;
      posted.addDerived(it.derived);
    }
    if (it.kind !== 'tokens') continue;
    batches++;
    if (it.derived !== null) snapshots++;
    posted.add(it.batch, it.derived);
    here.add(it.batch);
  }
  assert.equal(batches, prompts.length * (1 + 4));
  assert.ok(snapshots >= 1 && snapshots <= batches, `${snapshots} snapshots for ${batches} batches`);
  const a = posted.stats.snapshot('run');
  assert.notEqual(a.global.zLoss, null);
  assert.deepEqual(a, here.stats.snapshot('run'));
});

test('the engine sends the snapshot it held back after the last batch: the run ends with the same numbers', {
  timeout: 120_000,
}, async () => {
  const prompts = loadPrompts(BUNDLED_PROMPTS).slice(0, 2);
  const s = await generationStream(
    startGeneration({
      model: BUNDLED_MODEL,
      prompts,
      maxTokens: 3,
      logits: true,
      nvidiaSmi: null,
      threads: 1,
      memoryIntervalMs: 0,
      reducer: new URL('./held-reducer.js', import.meta.url).href,
    }),
    'tiny',
  );
  const posted = new RoutingModel(s.schema, META, { logits: 'posted' });
  const here = new RoutingModel(s.schema, META, { logits: 'here' });
  const kinds: string[] = [];
  for await (const it of s.items()) {
    if (it.kind === 'derived') {
      kinds.push('derived');
      posted.addDerived(it.derived);
    } else if (it.kind === 'tokens') {
      kinds.push(it.derived === null ? 'held' : 'snapshot');
      posted.add(it.batch, it.derived);
      here.add(it.batch);
    }
  }
  const batches = prompts.length * (1 + 3);
  assert.deepEqual(kinds, ['snapshot', ...Array(batches - 1).fill('held'), 'derived']);
  assert.notEqual(posted.stats.snapshot('run').global.zLoss, null);
  assert.deepEqual(posted.stats.snapshot('run'), here.stats.snapshot('run'));
});
