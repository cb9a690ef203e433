import { test } from 'node:test';
import assert from 'node:assert/strict';
import { totalVariation } from '../../src/stats/drift.js';

test('total variation: 0 for the same shares at any scale, 1 for disjoint experts, ½Σ|p−q| in between', () => {
  assert.equal(totalVariation([1, 2, 3, 4], 0, [10, 20, 30, 40], 0, 4), 0);
  assert.equal(totalVariation([5, 5, 0, 0], 0, [0, 0, 3, 1], 0, 4), 1);
  // p = (.5, .5, 0), q = (.25, .25, .5): ½(.25 + .25 + .5) = .5
  assert.equal(totalVariation([2, 2, 0], 0, [1, 1, 2], 0, 3), 0.5);
  // Reads rows of an L·E matrix at an offset.
  assert.equal(totalVariation([9, 9, 1, 3], 2, [0, 0, 1, 1, 7], 2, 2), 0.25);
  assert.ok(Number.isNaN(totalVariation([0, 0], 0, [1, 1], 0, 2)));
});
