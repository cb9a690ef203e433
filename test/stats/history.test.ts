/**
 * BucketHistory: a bounded, downsampled history. Checked against the raw values kept by the test: each bucket's
 * mean and maximum equal those of the steps it covers, the buckets tile the steps in order, and memory does not
 * grow with the run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BucketHistory, bucketRates, worstChannels } from '../../src/stats/history.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

test('buckets tile the steps in order; mean and max of each equal those of its raw steps', () => {
  const rand = lcg(7);
  for (const steps of [1, 7, 64, 65, 1000, 12_345]) {
    const h = new BucketHistory(3, 64);
    const raw: number[][] = [];
    for (let i = 0; i < steps; i++) {
      const v = [rand() * 10, i % 5 === 0 ? NaN : rand(), -rand()];
      raw.push(v);
      h.push(i, 1000 + i * 10, v);
    }
    assert.ok(h.length <= 64, `at most 64 buckets, got ${h.length}`);
    assert.equal(h.steps, steps);
    let next = 0;
    for (let b = 0; b < h.length; b++) {
      assert.equal(h.x0[b], next, 'buckets are contiguous');
      const n = h.count[b]!;
      assert.equal(h.x1[b], next + n - 1);
      assert.equal(h.t1[b], 1000 + (next + n - 1) * 10);
      for (let c = 0; c < 3; c++) {
        const vals = raw
          .slice(next, next + n)
          .map((r) => r[c]!)
          .filter((v) => Number.isFinite(v));
        const mean = vals.length ? vals.reduce((a, v) => a + v, 0) / vals.length : NaN;
        const max = vals.length ? Math.max(...vals) : NaN;
        const gotMean = h.means(c)[b]!;
        const gotMax = h.maxima(c)[b]!;
        if (Number.isNaN(mean)) assert.ok(Number.isNaN(gotMean));
        else
          assert.ok(Math.abs(gotMean - mean) < 1e-9 * Math.max(1, Math.abs(mean)), `mean of bucket ${b} channel ${c}`);
        if (Number.isNaN(max)) assert.ok(Number.isNaN(gotMax));
        else assert.equal(gotMax, max);
      }
      next += n;
    }
    assert.equal(next, steps, 'every step is in a bucket');
  }
});

test('after the first merge a full history keeps between half and all of its buckets, each `span` steps but the newest', () => {
  const h = new BucketHistory(1, 256);
  for (let i = 0; i < 86_400; i++) h.push(i, i * 1000, [i]);
  assert.ok(h.length > 128 && h.length <= 256, `buckets: ${h.length}`);
  assert.equal(h.span, 512); // 86,400 steps / 256 buckets → a span of 512 (a power of two)
  for (let b = 0; b < h.length - 1; b++) assert.equal(h.count[b], h.span);
});

test('clear() forgets the run; the history starts again at span 1', () => {
  const h = new BucketHistory(2, 8);
  for (let i = 0; i < 100; i++) h.push(i, i, [1, 2]);
  h.clear();
  assert.equal(h.length, 0);
  assert.equal(h.steps, 0);
  h.push(5, 5, [3, 4]);
  assert.equal(h.span, 1);
  assert.deepEqual(Array.from(h.means(1)), [4]);
});

test('worstChannels ranks by the newest bucket: highest first, or lowest with `lower`; no value last', () => {
  const h = new BucketHistory(4, 8);
  h.push(0, 0, [1, 5, NaN, 3]);
  h.push(1, 1, [2, 0.5, NaN, 3]);
  // newest bucket (span 1): channel 0 → 2, 1 → 0.5, 2 → none, 3 → 3
  assert.deepEqual(worstChannels(h, [0, 1, 2, 3], 2), [3, 0]);
  assert.deepEqual(worstChannels(h, [0, 1, 2, 3], 4, true), [1, 0, 3, 2]);
  assert.equal(h.latestMean(2), NaN);
});

test('bucketRates: tokens per second between bucket ends', () => {
  const h = new BucketHistory(0, 4);
  // 10 tokens a second: x counts tokens, t in ms
  for (let i = 1; i <= 40; i++) h.push(i * 10, i * 1000, []);
  const r = bucketRates(h);
  assert.equal(r.length, h.length);
  // the first bucket has no predecessor: its own first to last step
  for (let b = 1; b < h.length; b++) assert.equal(r[b], 10);
  assert.equal(r[0], 10);
});

test('DeviceMap gives the loads deviceLoads gives, with replicas and per-layer maps', async () => {
  const { DeviceMap } = await import('../../src/stats/device-map.js');
  const { deviceLoads } = await import('../../src/stats/placement.js');
  const rand = lcg(3);
  const L = 3;
  const E = 6;
  const placement = {
    devices: 3,
    phy2log: [
      Int32Array.from([0, 1, 2, 3, 4, 5, 0, 1, 2]),
      Int32Array.from([5, 4, 3, 2, 1, 0, 5, 5, 5]),
      Int32Array.from([0, 0, 1, 2, 3, 4, 5, 1, 2]),
    ],
  };
  const counts = Float64Array.from({ length: L * E }, () => Math.floor(rand() * 100));
  const m = new DeviceMap(placement, L, E);
  const ref = deviceLoads(
    Array.from({ length: L }, (_, l) => counts.subarray(l * E, (l + 1) * E)),
    placement,
  );
  for (let l = 0; l < L; l++)
    assert.deepEqual(Array.from(m.layerInto(counts, l, new Float64Array(3))), Array.from(ref[l]!));
});
