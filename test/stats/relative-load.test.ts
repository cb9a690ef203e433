/** Relative load (share ÷ 1/E), the busiest expert and N/E, against values worked out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { busiestExpert, relativeLoadsInto, totalLoad, uniformTopNShare } from '../../src/stats/index.js';

// Two layers of 4 experts as an L·E matrix: layer 0 loaded, layer 1 empty.
const counts = [6, 2, 0, 0, 0, 0, 0, 0];

test('relative load is c_e ÷ (Σc / E): 1 balanced, 0 idle, E for an expert taking everything', () => {
  // Σc = 8, uniform share 2 per expert: 6 → 3×, 2 → 1×, 0 → 0×.
  const out = new Float32Array(8).fill(-1);
  relativeLoadsInto(counts, 0, 4, out, 0);
  assert.deepEqual(Array.from(out.subarray(0, 4)), [3, 1, 0, 0]);
  assert.deepEqual(Array.from(out.subarray(4)), [-1, -1, -1, -1], 'only its own row is written');
  assert.deepEqual(relativeLoadsInto([5, 5, 5], 0, 3, [0, 0, 0]), [1, 1, 1]);
  assert.deepEqual(relativeLoadsInto([0, 9, 0], 0, 3, [0, 0, 0]), [0, 3, 0]);
});

test('a layer with no load is NaN for every expert (no data, not idle)', () => {
  const out = new Float64Array(8);
  relativeLoadsInto(counts, 4, 4, out, 4);
  assert.ok(Array.from(out.subarray(4)).every(Number.isNaN));
  assert.deepEqual(Array.from(out.subarray(0, 4)), [0, 0, 0, 0]);
});

test('busiest expert: largest count, lowest index on ties; its share of the layer', () => {
  assert.deepEqual(busiestExpert(counts, 0, 4), { expert: 0, share: 0.75 });
  assert.deepEqual(busiestExpert([1, 4, 4, 1], 0, 4), { expert: 1, share: 0.4 });
  const empty = busiestExpert(counts, 4, 4);
  assert.equal(empty.expert, 0);
  assert.ok(Number.isNaN(empty.share));
});

test('total load sums one row; uniform top-N share is N/E', () => {
  assert.equal(totalLoad(counts, 0, 4), 8);
  assert.equal(totalLoad(counts, 4, 4), 0);
  assert.equal(totalLoad([1, 2, 3, 4], 1, 2), 5);
  assert.equal(uniformTopNShare(2, 8), 0.25);
  assert.equal(uniformTopNShare(8, 256), 1 / 32);
});
