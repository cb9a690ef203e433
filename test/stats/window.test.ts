/** The sliding window against a recomputation from scratch over the last W tokens. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WindowCounts } from '../../src/stats/window.js';
import { loadEntropy, loadCv } from '../../src/stats/load.js';
import { windowCv } from '../../src/stats/collapse.js';

test('window counts, Σc², entropy and zeros equal a brute-force recount at every step', () => {
  const L = 2;
  const E = 6;
  const K = 2;
  const W = 5;
  const w = new WindowCounts(W, L, E, K);
  const history: number[][] = [];
  let seed = 3;
  for (let t = 0; t < 40; t++) {
    const row: number[] = [];
    for (let l = 0; l < L; l++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const a = seed % E;
      const b = (a + 1 + ((seed >> 8) % (E - 1))) % E;
      row.push(a, t < 20 && l === 1 ? a : b); // a stretch where layer 1 doubles up on one expert
    }
    history.push(row);
    w.push(Uint16Array.from(row), 0);
    const recent = history.slice(-W);
    assert.equal(w.tokens, recent.length);
    assert.equal(w.start, t + 1 - recent.length);
    assert.equal(w.end, t + 1);
    for (let l = 0; l < L; l++) {
      const counts = new Array<number>(E).fill(0);
      for (const r of recent) for (let j = 0; j < K; j++) counts[r[l * K + j]!]!++;
      assert.deepEqual(Array.from(w.counts.subarray(l * E, (l + 1) * E)), counts, `t=${t} l=${l}`);
      assert.equal(w.zeros[l], counts.filter((c) => c === 0).length);
      assert.ok(Math.abs(w.entropy(l) - loadEntropy(counts, 0, E)) < 1e-12, `entropy t=${t}`);
      assert.ok(Math.abs(windowCv(w, l) - loadCv(counts, 0, E)) < 1e-12, `cv t=${t}`);
      assert.equal(w.maxCount(l), Math.max(...counts));
    }
  }
});
