/** Numbers of a group of experts (a heatmap column) and fractions of the peak, against values worked out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fractionsOfPeak, groupLoad, groupPeak } from '../../src/stats/index.js';

test('group peak: the largest relative load in [from, to) of a row at an offset', () => {
  // Row of layer 1 in an L·E matrix (E = 4) starts at 4.
  const rel = [9, 9, 9, 9, 0.5, 3, 0, 1];
  assert.equal(groupPeak(rel, 4, 0, 2), 3);
  assert.equal(groupPeak(rel, 4, 2, 4), 1);
  assert.equal(groupPeak(rel, 4, 0, 4), 3);
  assert.equal(groupPeak(rel, 4, 2, 3), 0, 'an idle expert alone is 0, not no data');
});

test('group peak is NaN for an empty group or when any expert has no data', () => {
  assert.ok(Number.isNaN(groupPeak([1, 2], 0, 2, 2)));
  assert.ok(Number.isNaN(groupPeak([1, NaN, 5], 0, 0, 3)));
});

test('group load: assignments of the group, their share of the layer, the busiest of them', () => {
  // Layer of 5 experts, Σc = 20; group [1, 4) holds 2 + 7 + 7 = 16 → 0.8; tie 7/7 → lower index 2.
  const load = [100, 100, 100, 100, 100, 4, 2, 7, 7, 0];
  assert.deepEqual(groupLoad(load, 5, 5, 1, 4), { count: 16, share: 0.8, busiest: 2 });
  assert.deepEqual(groupLoad(load, 5, 5, 0, 5), { count: 20, share: 1, busiest: 2 });
  assert.deepEqual(groupLoad(load, 5, 5, 4, 5), { count: 0, share: 0, busiest: 4 });
  const empty = groupLoad([0, 0, 0], 0, 3, 0, 2);
  assert.equal(empty.count, 0);
  assert.ok(Number.isNaN(empty.share), 'no load in the layer: no share');
});

test('fractions of the peak: each value ÷ the largest; all 0 without a positive value', () => {
  assert.deepEqual(fractionsOfPeak([1, 4, 2, 0]), [0.25, 1, 0.5, 0]);
  assert.deepEqual(fractionsOfPeak([0, 0]), [0, 0]);
  assert.deepEqual(fractionsOfPeak([]), []);
});
