/**
 * The dashboard's history rides on the TUI's model: every batch records steps with each layer's MaxVio and CV of
 * the sliding window, checked here against the definitions computed by hand from the tokens the test routed
 * (MaxVio = max load / mean load − 1, CV = population std / mean; docs/metrics.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import { HistoryModel } from '../../src/store/history.js';
import { contiguousPlacement } from '../../src/stats/placement.js';
import { META, batches, type Tok } from './helpers.js';

const schema: RoutingSchema = { layers: [3, 7], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };

function maxVio(c: number[]): number {
  const mean = c.reduce((a, v) => a + v, 0) / c.length;
  return Math.max(...c) / mean - 1;
}
function cv(c: number[]): number {
  const mean = c.reduce((a, v) => a + v, 0) / c.length;
  return Math.sqrt(c.reduce((a, v) => a + (v - mean) ** 2, 0) / c.length) / mean;
}

test('a step per stepTokens tokens, with MaxVio and CV of the window at that step, however the batches are cut', () => {
  // layer 3 routes token i to expert i % 4 (balanced); layer 7 sends 3 of 4 tokens to expert 0
  const toks: Tok[] = Array.from({ length: 64 }, (_, i) => ({
    experts: [[i % 4], [i % 4 === 3 ? 1 : 0]],
    ms: i * 100,
  }));
  for (const chunk of [64, 5, 1]) {
    const m = new HistoryModel(schema, META, { window: 16, stepTokens: 8, collapse: false });
    for (const b of batches(schema, toks, chunk)) m.add(b);
    const v = m.history.view(schema.layers, 2);
    assert.equal(v.steps, 8, `chunk ${chunk}: one step per 8 tokens`);
    // The newest step: the window holds tokens 48 … 63.
    const win = toks.slice(48);
    const counts = (l: number) => [0, 1, 2, 3].map((e) => win.filter((t) => t.experts[l]![0] === e).length);
    const worst = v.maxVio.worst[0]!;
    assert.equal(worst.layer, 7, 'the skewed layer is the worst');
    assert.ok(Math.abs(worst.latest - maxVio(counts(1))) < 1e-12, `chunk ${chunk}: MaxVio ${worst.latest}`);
    assert.ok(Math.abs(v.cv.worst[0]!.latest - cv(counts(1))) < 1e-12);
    assert.ok(Math.abs(v.maxVio.worst[1]!.latest - maxVio(counts(0))) < 1e-12);
    assert.equal(v.balancedness, null, 'no placement, no balancedness');
    assert.equal(v.tokens[v.points - 1], 64);
  }
});

test('balancedness per layer over a placement: mean device load / max device load (SGLang), lowest first', () => {
  const toks: Tok[] = Array.from({ length: 32 }, (_, i) => ({ experts: [[i % 4], [i % 2]] }));
  const m = new HistoryModel(schema, META, {
    window: 32,
    stepTokens: 32,
    collapse: false,
    placement: contiguousPlacement(4, 2),
  });
  for (const b of batches(schema, toks)) m.add(b);
  const v = m.history.view(schema.layers, 2);
  assert.ok(v.balancedness);
  // layer 7: experts 0 and 1 both on device 0 → loads [32, 0]: (16 + 1e-5) / (32 + 1e-5)
  assert.equal(v.balancedness.worst[0]!.layer, 7);
  assert.ok(Math.abs(v.balancedness.worst[0]!.latest - (16 + 1e-5) / (32 + 1e-5)) < 1e-12);
  assert.ok(Math.abs(v.balancedness.worst[1]!.latest - 1) < 1e-12);
});

test('memory points: GPU used bytes and host RSS; a reset (replay seeking back) clears the history', () => {
  const m = new HistoryModel(schema, META, { window: 4, stepTokens: 1, collapse: false });
  m.addMemory({
    tNs: 1_000_000n,
    gpus: [{ index: 0, name: 'g', usedBytes: 100, totalBytes: 1000, utilization: null }],
    hostRssBytes: 7,
    ortBytes: null,
  });
  m.addMemory({
    tNs: 2_000_000n,
    gpus: [{ index: 0, name: 'g', usedBytes: 300, totalBytes: 1000, utilization: null }],
    hostRssBytes: 9,
    ortBytes: null,
  });
  for (const b of batches(schema, [{ experts: [[0], [1]] }, { experts: [[1], [2]] }])) m.add(b);
  const v = m.history.view(schema.layers);
  assert.deepEqual(v.memory?.gpus[0]?.used, [100, 300]);
  assert.deepEqual(v.memory?.rss, [7, 9]);
  assert.equal(v.steps, 2);
  m.reset();
  const after = m.history.view(schema.layers);
  assert.equal(after.steps, 0);
  assert.equal(after.memory, null);
});

test('memory of the history does not grow with the run: 200,000 steps keep at most 256 points', () => {
  const m = new HistoryModel(schema, META, { window: 16, stepTokens: 1, collapse: false });
  const bs = batches(
    schema,
    Array.from({ length: 1000 }, (_, i) => ({ experts: [[i % 4], [0]] })),
    1,
  );
  for (let r = 0; r < 200; r++) for (const b of bs) m.add(b);
  const v = m.history.view(schema.layers);
  assert.equal(v.steps, 200_000);
  assert.ok(v.points <= 256 && v.points > 128);
  assert.equal(v.maxVio.worst[0]!.values.length, v.points);
});
