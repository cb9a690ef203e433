/** The router-margin histogram: equal bins of [0, 1], ends clamped, non-finite margins left out. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MARGIN_BINS, marginBin, marginHistogram } from '../../src/stats/index.js';

test('a margin falls in bin ⌊m·bins⌋, values outside [0, 1] in the end bins', () => {
  assert.equal(marginBin(0, 4), 0);
  assert.equal(marginBin(0.24, 4), 0);
  assert.equal(marginBin(0.25, 4), 1);
  assert.equal(marginBin(0.7, 4), 2);
  assert.equal(marginBin(1, 4), 3, 'm = 1 belongs to the last bin');
  assert.equal(marginBin(1.5, 4), 3);
  assert.equal(marginBin(-0.1, 4), 0);
  assert.equal(marginBin(0.06, MARGIN_BINS), 1);
});

test('histogram: counts, total, edges i/bins and heights relative to the tallest bin', () => {
  // 4 bins of width 0.25: [0.1, 0.2] → bin 0, [0.3] → 1, [0.9, 1] → 3; NaN and ∞ (K = E) are not counted.
  const h = marginHistogram([0.1, 0.3, 0.2, 0.9, 1, NaN, Infinity, -Infinity], 4);
  assert.deepEqual(h.counts, [2, 1, 0, 2]);
  assert.equal(h.total, 5);
  assert.deepEqual(h.edges, [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(h.heights, [1, 0.5, 0, 1]);
});

test('no finite margin: an empty histogram of the default 20 bins', () => {
  const h = marginHistogram([NaN]);
  assert.equal(h.total, 0);
  assert.equal(h.counts.length, 20);
  assert.equal(h.edges.length, 21);
  assert.equal(h.edges[1], 0.05);
  assert.ok(h.heights.every((x) => x === 0));
});
