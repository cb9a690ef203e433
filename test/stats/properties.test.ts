/** Properties every balance metric must have, plus small cases worked out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoutingStats, type LayerMetrics } from '../../src/stats/routing-stats.js';
import type { RoutingSchema, Scoring } from '../../src/core/batch.js';
import { isUserError } from '../../src/core/errors.js';
import { Rng } from '../../src/trace/rng.js';
import { buildBatches, close, type TokenSpec } from './helpers.js';

/** Random routing with logits; each token's experts are the top-K of its logits (skewed towards low ids). */
function randomTokens(schema: RoutingSchema, T: number, seed: number): TokenSpec[] {
  const g = new Rng(seed);
  const r = () => g.open01();
  const { experts: E, topK: K } = schema;
  const L = schema.layers.length;
  return Array.from({ length: T }, (_, t) => {
    const logits = Array.from({ length: L }, () =>
      Array.from({ length: E }, (_, e) => Math.round((r() * 4 - e * 0.2) * 64) / 64),
    );
    const experts = logits.map((row) =>
      row
        .map((v, e) => [v, e] as const)
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, K)
        .map((x) => x[1]),
    );
    const weights = experts.map((ids) => ids.map((_, j) => 1 / (j + 2)));
    return { seq: Math.floor(t / 10), pos: t % 10, tokenId: t % 5, experts, weights, logits };
  });
}

const BALANCE_KEYS = [
  'cv',
  'maxVio',
  'entropy',
  'deadExperts',
  'topNShare',
  'coverage90',
  'hfAuxLoss',
  'switchAuxLoss',
  'gshardAuxLoss',
  'seqAuxLoss',
  'importanceLoss',
  'zLoss',
  'tokenEntropy',
  'routerMargin',
] as const;

function run(schema: RoutingSchema, tokens: TokenSpec[], chunk = 13): RoutingStats {
  const s = new RoutingStats(schema, { window: 16 });
  for (const b of buildBatches(schema, tokens, chunk)) s.add(b);
  return s;
}

for (const scoring of ['softmax', 'sigmoid'] as Scoring[]) {
  test(`relabelling experts changes no balance metric (${scoring})`, () => {
    const schema: RoutingSchema = { layers: [0, 1], experts: 8, topK: 2, scoring, hasLogits: true };
    const tokens = randomTokens(schema, 60, 7);
    const perm = [5, 2, 7, 0, 3, 6, 1, 4];
    const relabelled = tokens.map((tk) => ({
      ...tk,
      experts: tk.experts.map((ids) => ids.map((e) => perm[e]!)),
      logits: tk.logits!.map((row) => {
        const out = new Array<number>(row.length);
        row.forEach((v, e) => (out[perm[e]!] = v));
        return out;
      }),
    }));
    const a = run(schema, tokens).snapshot();
    const b = run(schema, relabelled).snapshot();
    a.layers.forEach((la, l) => {
      const lb = b.layers[l]!;
      for (const k of BALANCE_KEYS)
        assert.ok(close(lb[k] as number, la[k] as number, 1e-9), `${k}: ${la[k]} vs ${lb[k]}`);
      la.load.forEach((c, e) => assert.equal(lb.load[perm[e]!], c));
      assert.notEqual(la.cv, 0, 'the data must not be balanced already');
    });
    for (const k of ['hfAuxLoss', 'cv', 'maxVio', 'zLoss'] as const) assert.ok(close(b.global[k], a.global[k]!, 1e-9));
  });
}

/** T = m·E tokens; token t picks experts t, t+1, … (mod E) with logits a cyclic shift of one vector. */
function balancedTokens(E: number, K: number, L: number, cycles: number): TokenSpec[] {
  const v = Array.from({ length: E }, (_, i) => 2 - i * 0.25); // decreasing, float16-exact
  return Array.from({ length: cycles * E }, (_, t) => ({
    seq: 0,
    pos: t,
    experts: Array.from({ length: L }, () => Array.from({ length: K }, (_, j) => (t + j) % E)),
    weights: Array.from({ length: L }, () => Array.from({ length: K }, (_, j) => 1 / (j + 2))),
    logits: Array.from({ length: L }, () => Array.from({ length: E }, (_, e) => v[(e - t + E * 8) % E]!)),
  }));
}

for (const scoring of ['softmax', 'sigmoid'] as Scoring[]) {
  test(`perfectly balanced routing gives each metric its documented balanced value (${scoring})`, () => {
    const E = 8;
    const K = 2;
    const schema: RoutingSchema = { layers: [3, 4, 5], experts: E, topK: K, scoring, hasLogits: true };
    const s = run(schema, balancedTokens(E, K, 3, 4));
    for (const scope of ['run', 'window'] as const) {
      const snap = s.snapshot(scope);
      for (const m of snap.layers) {
        assert.ok(close(m.cv, 0, 0, 1e-12), `${scope} cv ${m.cv}`);
        assert.ok(close(m.maxVio, 0, 0, 1e-12));
        assert.ok(close(m.entropy, 1, 1e-12));
        assert.equal(m.deadExperts, 0);
        assert.ok(close(m.topNShare, K / E, 1e-12));
        assert.equal(m.coverage90, Math.ceil(0.9 * E));
      }
    }
    const snap = s.snapshot();
    for (const m of snap.layers) {
      assert.ok(close(m.hfAuxLoss, K, 1e-9), `HF ${m.hfAuxLoss}`);
      assert.ok(close(m.switchAuxLoss, 1, 1e-9), `Switch ${m.switchAuxLoss}`);
      assert.ok(close(m.gshardAuxLoss, 1, 1e-9), `GShard ${m.gshardAuxLoss}`);
      assert.ok(close(m.seqAuxLoss, 1, 1e-9), `seq ${m.seqAuxLoss}`);
      assert.ok(close(m.importanceLoss, 0, 0, 1e-12), `importance ${m.importanceLoss}`);
    }
    assert.ok(close(snap.global.hfAuxLoss, K, 1e-9));
    assert.ok(close(snap.global.switchAuxLoss, 1, 1e-9));
    assert.equal(snap.global.deadExperts, 0);
  });
}

test('load metrics of a small case worked out by hand', () => {
  // E = 4, K = 1: experts 0,0,0,1 → load [3,1,0,0], mean 1.
  const schema: RoutingSchema = { layers: [0], experts: 4, topK: 1, scoring: 'softmax', hasLogits: true };
  const tokens = [0, 0, 0, 1].map((e) => ({ experts: [[e]], logits: [[0, 0, 0, 0]] }));
  const m: LayerMetrics = run(schema, tokens).layerMetrics(0);
  assert.deepEqual(m.load, [3, 1, 0, 0]);
  assert.deepEqual(m.share, [0.75, 0.25, 0, 0]);
  assert.ok(close(m.cv, Math.sqrt(1.5), 1e-12)); // population variance (4+0+1+1)/4
  assert.equal(m.maxVio, 2); // (3 − 1)/1
  assert.ok(close(m.entropy, 0.4056390622295664, 1e-12)); // −(.75 ln .75 + .25 ln .25)/ln 4
  assert.equal(m.deadExperts, 2);
  assert.equal(m.topNShare, 0.75);
  assert.equal(m.coverage90, 2);
  // Uniform logits: lse = ln 4, so z-loss = (ln 4)²; entropy of the routing distribution is maximal.
  assert.ok(close(m.zLoss, Math.log(4) ** 2, 1e-12));
  assert.ok(close(m.tokenEntropy, 1, 1e-12));
  assert.equal(m.routerMargin, 0);
  // HF selects top-1 of the (tied) logits — expert 0 — for every row: E·(1·1/4) = 1.
  assert.ok(close(m.hfAuxLoss, 1, 1e-12));
  // Switch: E/(K·T²)·Σ P_e c_e = 4/16 · (1·3 + 1·1) = 1.
  assert.ok(close(m.switchAuxLoss, 1, 1e-12));
});

test('without logits the logits metrics are null, and the load metrics are still there', () => {
  const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };
  const s = run(schema, [
    {
      experts: [
        [0, 1],
        [2, 3],
      ],
    },
    {
      experts: [
        [0, 2],
        [2, 1],
      ],
    },
  ]);
  const snap = s.snapshot();
  assert.equal(snap.global.hfAuxLoss, null);
  assert.equal(snap.global.zLoss, null);
  assert.equal(snap.layers[0]!.switchAuxLoss, null);
  assert.deepEqual(snap.layers[0]!.load, [2, 1, 1, 0]);
  assert.equal(snap.global.deadExperts, 2); // expert 3 in layer 0, expert 0 in layer 1
});

test('an expert id beyond the schema is a UserError, not a count in the next layer', () => {
  const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };
  const s = new RoutingStats(schema);
  assert.throws(
    () => s.add(buildBatches(schema, [{ experts: [[4], [0]] }])[0]!),
    (e) => isUserError(e) && /expert id 4/.test((e as Error).message),
  );
});
