/** Tokens per second over the most recent stream time, and the memory numbers of the Devices view. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meanSampleIntervalMs, memoryUsedShare, recentTokenRate } from '../../src/stats/index.js';

const at = (times: number[]) => (i: number) => times[i]!;

test('rate counts the intervals among the tokens of the last span, per second of their stream time', () => {
  // 11 tokens 100 ms apart: 10 intervals over 1 s → 10 tok/s.
  const even = Array.from({ length: 11 }, (_, i) => i * 100);
  assert.equal(recentTokenRate(at(even), 0, 11, 5000), 10);
  // A pause: only tokens within 5 s of the newest count — 8000, 9000, 10000 → 2 intervals over 2 s.
  assert.equal(recentTokenRate(at([0, 1000, 2000, 8000, 9000, 10000]), 0, 6, 5000), 1);
  // Tokens before `start` are no longer held and are not read.
  assert.equal(recentTokenRate(at([NaN, NaN, 0, 250, 500]), 2, 5, 5000), 4);
});

test('rate is null with fewer than two tokens or no elapsed time', () => {
  assert.equal(recentTokenRate(at([5]), 0, 1, 5000), null);
  assert.equal(recentTokenRate(at([7, 7, 7]), 0, 3, 5000), null);
  // The newest two tokens 6 s apart: the span holds only the newest token.
  assert.equal(recentTokenRate(at([0, 6000]), 0, 2, 5000), null);
});

test('memory: used share of a GPU and the mean sampling interval', () => {
  assert.equal(memoryUsedShare(3, 4), 0.75);
  assert.ok(Number.isNaN(memoryUsedShare(3, 0)), 'unknown total');
  // 4 samples over 3 s: 1 s apart.
  assert.equal(meanSampleIntervalMs(1_000_000_000n, 4_000_000_000n, 4), 1000);
  assert.equal(meanSampleIntervalMs(0n, 0n, 1), null);
});
