/**
 * RowSumsKernel (the table-driven path RoutingStats uses) against RowScorer (the exact, max-shifted path) on
 * random rows, extreme rows and streams whose threshold hint goes stale.
 *
 * Tolerances, as documented in src/stats/row-kernel.ts:
 *  - sigmoid routers: prob, entropy, margin and rank are bit for bit equal;
 *  - lse and every softmax probability: relative 1e-13 (what differs is eˣ summed unshifted vs e^(x−max)),
 *    plus an absolute 1e-45 for probabilities whose eˣ underflows (they are < e^−108 of the row's largest);
 *  - softmax entropy and margin: absolute 1e-13·(1 + |max logit|) (entropy is ln Σeˣ − Σ p·x, two terms of the
 *    size of the logits).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F16_TO_F32, f32ToF16 } from '../../src/core/f16.js';
import type { Scoring } from '../../src/core/batch.js';
import { RowScorer } from '../../src/stats/scores.js';
import { RowSumsKernel } from '../../src/stats/row-kernel.js';
import { seededRandom } from '../../src/engine/generation-loop.js';

type Gen = (rand: () => number, E: number) => number[];

/** Row generators: float logits, stored as float16 like every trace's. */
const ROWS: Record<string, Gen> = {
  'gaussian-ish, scale 2': (r, E) => Array.from({ length: E }, () => (r() + r() + r() - 1.5) * 4),
  'skewed popularity + Gumbel (the ingest bench)': (r, E) =>
    Array.from({ length: E }, (_, e) => -1.1 * Math.log(e + 1) + 2 - Math.log(-Math.log(r() || 1e-12))),
  'ties: 4 distinct values': (r, E) => Array.from({ length: E }, () => Math.floor(r() * 4) - 2),
  'all equal': (_r, E) => new Array<number>(E).fill(0.5),
  'large: max near +700 (safe edge)': (r, E) => Array.from({ length: E }, () => 690 + r() * 9),
  'beyond: max > 700 (exact path)': (r, E) => Array.from({ length: E }, () => 650 + r() * 300),
  'near the float16 limit (exact path)': (r, E) => Array.from({ length: E }, (_, e) => (e % 2 ? 65504 : -65504) * r()),
  'very negative: max < −600 (exact path)': (r, E) => Array.from({ length: E }, () => -1000 + r() * 300),
  'max at −590, rest far below (eˣ underflows)': (r, E) =>
    Array.from({ length: E }, (_, e) => (e === 3 ? -590 : -800 + r() * 120)),
  'one spike': (r, E) => Array.from({ length: E }, (_, e) => (e === E >> 1 ? 30 : r() - 0.5)),
  'tiny: subnormal float16 values': (r, E) => Array.from({ length: E }, () => (r() - 0.5) * 1e-6),
  'signed zeros': (r, E) => Array.from({ length: E }, (_, e) => (e % 3 === 0 ? -0 : e % 3 === 1 ? 0 : -r())),
};

function encode(xs: number[]): Uint16Array {
  return Uint16Array.from(xs, (x) => f32ToF16(x));
}

function assertClose(got: number, want: number, rel: number, abs: number, what: string): void {
  if (Number.isNaN(want)) return assert.ok(Number.isNaN(got), `${what}: got ${got}, want NaN`);
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + abs, `${what}: got ${got}, want ${want} (Δ ${got - want})`);
}

/** One row through both paths; the kernel's accumulators start at zero, so they hold the row's own prob/soft. */
function compareRow(k: RowSumsKernel, ex: RowScorer, row: Uint16Array, stream: number, what: string): boolean {
  const E = ex.experts;
  const prob = new Float64Array(E);
  const soft = ex.scoring === 'sigmoid' ? new Float64Array(E) : null;
  const okK = k.add(row, 0, stream, prob, soft, 0);
  const okX = ex.score(row, 0);
  assert.equal(okK, okX, `${what}: accepted`);
  if (!okX) {
    assert.ok(
      prob.every((v) => v === 0),
      `${what}: a rejected row adds nothing`,
    );
    return false;
  }
  assert.deepEqual(Array.from(k.rank), Array.from(ex.rank), `${what}: rank`);
  assertClose(k.lse, ex.lse, 1e-13, 0, `${what}: lse`);
  let max = -Infinity;
  for (const h of row) max = Math.max(max, Math.abs(F16_TO_F32[h]!));
  if (ex.scoring === 'sigmoid') {
    // Same expressions, same order: identical bits.
    assert.deepEqual(Array.from(prob), Array.from(ex.prob), `${what}: prob`);
    assert.equal(k.entropy, ex.entropy, `${what}: entropy`);
    assert.ok(Object.is(k.margin, ex.margin) || k.margin === ex.margin, `${what}: margin ${k.margin} vs ${ex.margin}`);
    for (let e = 0; e < E; e++) assertClose(soft![e]!, ex.soft[e]!, 1e-13, 1e-45, `${what}: soft[${e}]`);
  } else {
    for (let e = 0; e < E; e++) assertClose(prob[e]!, ex.prob[e]!, 1e-13, 1e-45, `${what}: prob[${e}]`);
    assertClose(k.entropy, ex.entropy, 0, 1e-13 * (1 + max), `${what}: entropy`);
    assertClose(k.margin, ex.margin, 0, 1e-13 * (1 + max), `${what}: margin`);
  }
  return true;
}

for (const scoring of ['sigmoid', 'softmax'] as Scoring[]) {
  test(`${scoring}: the table path equals the exact path on random and extreme rows`, () => {
    const rand = seededRandom(11);
    for (const [E, K] of [
      [256, 8],
      [64, 6],
      [8, 2],
      [9, 8], // K + 1 = E: the ranking takes every expert
      [4, 4], // K = E: no margin
      [1, 1],
    ] as const) {
      const k = new RowSumsKernel(E, K, scoring);
      const ex = new RowScorer(E, K, scoring);
      for (const [name, gen] of Object.entries(ROWS))
        for (let rep = 0; rep < 6; rep++) compareRow(k, ex, encode(gen(rand, E)), 0, `E=${E} K=${K} ${name} #${rep}`);
    }
  });

  test(`${scoring}: 20,000 experts at the safe maximum overflow Σeˣ, and the row takes the exact path`, () => {
    const E = 20_000;
    const row = encode(Array.from({ length: E }, (_, e) => (e % 7 === 0 ? 699.5 : 700)));
    compareRow(new RowSumsKernel(E, 8, scoring), new RowScorer(E, 8, scoring), row, 0, 'Σeˣ > 1.8e308');
  });

  test(`${scoring}: rows with a NaN or infinite logit are rejected and add nothing`, () => {
    const k = new RowSumsKernel(16, 2, scoring);
    const ex = new RowScorer(16, 2, scoring);
    for (const bad of [NaN, Infinity, -Infinity, 1e6 /* overflows float16 to Inf */]) {
      const xs = Array.from({ length: 16 }, (_, e) => e / 4);
      xs[5] = bad;
      assert.equal(compareRow(k, ex, encode(xs), 0, `logit ${bad}`), false);
    }
  });

  test(`${scoring}: a stream's threshold hint never changes a result, however the rows move`, () => {
    // One stream whose rows drift, jump up and down by 40 and change spread: the hint from the previous row is
    // too high (fewer than K+1 candidates: full ranking), too low (many) or right.
    const E = 128;
    const K = 6;
    const rand = seededRandom(5);
    const k = new RowSumsKernel(E, K, scoring, 2);
    const ex = new RowScorer(E, K, scoring);
    let shift = 0;
    let scale = 1;
    for (let t = 0; t < 400; t++) {
      if (t % 37 === 0) shift += rand() < 0.5 ? 40 : -40;
      if (t % 53 === 0) scale = 0.01 + rand() * 5;
      const xs = Array.from({ length: E }, (_, e) => shift + scale * (Math.sin(e * 1.7 + t) + rand()));
      compareRow(k, ex, encode(xs), t % 2, `row ${t}`);
    }
  });
}
