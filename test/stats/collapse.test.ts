/**
 * Collapse detection on a hand-made stream: E = 4, K = 1, window W = 8, evaluated every token. Tokens 0–15 go
 * round-robin (token t → expert t mod 4), tokens 16–39 all go to expert 0, tokens 40+ round-robin again.
 * First tokens at which each rule holds, worked out by hand (window = tokens i−7 … i):
 *  - low-entropy (< 0.8): i = 19, counts [5,1,1,1] → 0.7744 (i = 18: [4,1,1,2] → 0.875)
 *  - drift (JS vs the first window [2,2,2,2] > 0.05 bit): i = 18, [4,1,1,2] → 0.0613 (i = 17: [3,1,2,2] → 0.0244)
 *  - max-vio (> 1.5, mean 2): needs c0 ≥ 6 → i = 21
 *  - dead-expert: expert 1 last seen at token 13 → i = 21; expert 2 (14) → 22; expert 3 (15) → 23
 *  - hot-expert (share > 3/E = 0.75): i = 22, 7 of 8 (i = 21: 6 of 8 = 0.75, not above)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoutingStats } from '../../src/stats/routing-stats.js';
import type { RoutingSchema } from '../../src/core/batch.js';
import type { CollapseRules, CollapseWarning } from '../../src/stats/collapse.js';
import { buildBatches } from './helpers.js';

const schema: RoutingSchema = { layers: [7], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };

function stream(
  ids: number[],
  collapse: Partial<CollapseRules>,
  chunk: number,
): { stats: RoutingStats; fired: CollapseWarning[] } {
  const stats = new RoutingStats(schema, { window: 8, collapse: { stride: 1, ...collapse } });
  const fired: CollapseWarning[] = [];
  for (const b of buildBatches(
    schema,
    ids.map((e) => ({ experts: [[e]] })),
    chunk,
  ))
    fired.push(...stats.add(b));
  return { stats, fired };
}

const ids = Array.from({ length: 64 }, (_, t) => (t >= 16 && t < 40 ? 0 : t % 4));

test('each rule fires at the first token where it holds, with its layer, expert, window, value and threshold', () => {
  for (const chunk of [64, 5, 1]) {
    const { stats, fired } = stream(ids, {}, chunk);
    assert.deepEqual(fired, stats.warnings, 'add() returns what fired, in order');
    const first = (rule: string, expert: number | null = null) =>
      stats.warnings.find((w) => w.rule === rule && w.expert === expert);
    assert.equal(first('low-entropy')!.firstToken, 19);
    assert.ok(Math.abs(first('low-entropy')!.value - 0.7743974) < 1e-6);
    assert.equal(first('low-entropy')!.threshold, 0.8);
    assert.equal(first('drift')!.firstToken, 18);
    assert.ok(Math.abs(first('drift')!.value - 0.06128) < 1e-4, String(first('drift')!.value));
    assert.equal(first('max-vio')!.firstToken, 21);
    assert.equal(first('max-vio')!.value, 2);
    assert.equal(first('dead-expert', 1)!.firstToken, 21);
    assert.equal(first('dead-expert', 2)!.firstToken, 22);
    assert.equal(first('dead-expert', 3)!.firstToken, 23);
    const hot = first('hot-expert', 0)!;
    assert.equal(hot.firstToken, 22);
    assert.equal(hot.value, 7 / 8);
    assert.equal(hot.threshold, 0.75);
    assert.deepEqual(hot.window, { start: 15, end: 23 });
    assert.equal(hot.layer, 7);
    assert.equal(hot.layerIndex, 0);
    assert.equal(stats.warnings.filter((w) => w.rule === 'dead-expert' && w.expert === 0).length, 0);
    // Round-robin again from token 40: everything clears, nothing is still active.
    for (const w of stats.warnings)
      assert.ok(w.clearedAt !== null && w.clearedAt >= 40, `${w.rule} cleared at ${w.clearedAt}`);
    assert.equal(stats.detector!.activeWarnings().length, 0);
    assert.equal(stats.warnings.filter((w) => w.rule === 'hot-expert').length, 1);
  }
});

test('hysteresis: a share hovering at the threshold fires once; without hysteresis it fires on every crossing', () => {
  // Window 8: after the warm-up, expert 0's share alternates 6/8 and 7/8 around a threshold of 0.8.
  const pattern = Array.from({ length: 80 }, (_, t) => (t < 8 ? t % 4 : t % 8 === 0 || t % 16 === 9 ? 1 : 0));
  const rules = { dead: false, minEntropy: null, maxVio: null, drift: null, hotShare: 0.8 };
  const withH = stream(pattern, { ...rules, hysteresis: 0.1 }, 80).stats.warnings.filter(
    (w) => w.rule === 'hot-expert',
  );
  const noH = stream(pattern, { ...rules, hysteresis: 0 }, 80).stats.warnings.filter((w) => w.rule === 'hot-expert');
  assert.equal(withH.length, 1);
  assert.ok(noH.length > 2, `without hysteresis: ${noH.length}`);
});

test('rules can be turned off and thresholds overridden', () => {
  const { stats } = stream(ids, { dead: false, hotShare: null, minEntropy: null, drift: null, maxVio: 2.5 }, 64);
  assert.deepEqual(
    stats.warnings.map((w) => w.rule),
    ['max-vio'],
  );
  assert.equal(stats.warnings[0]!.firstToken, 23); // c0 = 8 → MaxVio 3 > 2.5 first when the window is all expert 0
  const off = new RoutingStats(schema, { window: 8, collapse: false });
  for (const b of buildBatches(
    schema,
    ids.map((e) => ({ experts: [[e]] })),
  ))
    assert.deepEqual(off.add(b), []);
});
