import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectTopK } from '../../src/trace/index.js';

const close = (a: ArrayLike<number>, b: number[], eps = 1e-6) =>
  assert.ok(b.every((x, i) => Math.abs(a[i]! - x) < eps), `${Array.from(a)} ≈ ${b}`);

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
