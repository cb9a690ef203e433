import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rankTopInto, selectTopK } from '../../src/core/topk.js';

const close = (a: ArrayLike<number>, b: number[], eps = 1e-6) =>
  assert.ok(
    b.every((x, i) => Math.abs(a[i]! - x) < eps),
    `${Array.from(a)} ≈ ${b}`,
  );

test('softmax top-k: the K largest logits, weights = softmax renormalised over the K', () => {
  const s = selectTopK([0, 2, 1, -1], 4, 2, 'softmax');
  assert.deepEqual([...s.experts], [1, 2]);
  const e2 = Math.exp(2);
  const e1 = Math.exp(1);
  close(s.weights, [e2 / (e2 + e1), e1 / (e2 + e1)]);
});

test('sigmoid top-k: weights are the sigmoid scores of the K divided by their sum', () => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const s = selectTopK([-3, 0.5, 4, 0.4, /* layer 2 */ 1, 1, 0, 9], 4, 2, 'sigmoid');
  assert.deepEqual([...s.experts], [2, 1, 3, 0]);
  close(s.weights.subarray(0, 2), [sig(4) / (sig(4) + sig(0.5)), sig(0.5) / (sig(4) + sig(0.5))]);
  close(s.weights.subarray(2), [sig(9) / (sig(9) + sig(1)), sig(1) / (sig(9) + sig(1))]);
});

test('ties go to the lower expert id, NaN ranks last, K = E selects all', () => {
  assert.deepEqual([...selectTopK([1, 3, 3, 3], 4, 2, 'softmax').experts], [1, 2]);
  assert.deepEqual([...selectTopK([NaN, -5, NaN, -7], 4, 3, 'softmax').experts], [1, 3, 0]);
  const all = selectTopK([0.1, 0.3, 0.2], 3, 3, 'softmax');
  assert.deepEqual([...all.experts], [1, 2, 0]);
  close([all.weights.reduce((a, b) => a + b, 0)], [1]);
  assert.throws(() => selectTopK([1, 2, 3], 2, 1, 'softmax'), /whole number of layers/);
});

test('rankTopInto: the r largest from an offset, largest first, values alongside, ties to the lower index', () => {
  // What stats' RowScorer ranks (K+1 of E) and loss-free balancing (K of s + b) rely on.
  const v = [9, /* row starts here */ 0.5, 2, -1, 2, NaN, 7, -Infinity];
  const idx = new Int32Array(3);
  const val = new Float64Array(3);
  rankTopInto(v, 1, 7, idx, val);
  assert.deepEqual([...idx], [5, 1, 3]);
  assert.deepEqual([...val], [7, 2, 2]);
  // NaN ranks as -Infinity: below every number, ties among them to the lower index.
  const all = new Int32Array(7);
  rankTopInto(v, 1, 7, all, new Float64Array(7));
  assert.deepEqual([...all], [5, 1, 3, 0, 2, 4, 6]);
  // r smaller than the scratch arrays: only the first r slots are written.
  const big = new Int32Array([-1, -1, -1, -1]);
  rankTopInto([1, 4, 3], 0, 3, big, new Float64Array(4), 2);
  assert.deepEqual([...big], [1, 2, -1, -1]);
});
