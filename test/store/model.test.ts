/** RoutingModel and frames: what the views are given, checked against counts worked out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import { RowScorer } from '../../src/stats/index.js';
import { f32ToF16 } from '../../src/core/f16.js';
import { RoutingModel } from '../../src/store/model.js';
import { buildFrame } from '../../src/store/frame.js';
import { contiguousSpec } from '../../src/store/placement-spec.js';
import { binLoad, binnedRelLoad } from '../../src/store/selectors.js';
import { META, batches } from './helpers.js';

const schema: RoutingSchema = { layers: [1, 3], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };

// Layer 0 always picks experts 0 (first) and 1; layer 1 picks 2 then 3 for the first three tokens, 3 then 2 after.
const toks = Array.from({ length: 6 }, (_, i) => ({
  text: ` w${i}`,
  seq: i < 4 ? 0 : 1,
  experts: [[0, 1], i < 3 ? [2, 3] : [3, 2]],
}));

test('frame: load ÷ uniform per expert, NaN before any token, per-layer metrics from src/stats', () => {
  const m = new RoutingModel(schema, META, { window: 4 });
  const f0 = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: null });
  assert.equal(f0.tokens, 0);
  assert.ok(Number.isNaN(f0.relLoad[0]!), 'no data yet');
  assert.equal(f0.layer, null);
  for (const b of batches(schema, toks, 4)) m.add(b);
  const f = buildFrame(m, { scope: 'run', layer: 1, token: null, placement: null });
  assert.equal(f.tokens, 6);
  // Layer 0: experts 0 and 1 each take half of 12 assignments → 2× uniform; 2 and 3 idle.
  assert.deepEqual(Array.from(f.relLoad.subarray(0, 4)), [2, 2, 0, 0]);
  assert.deepEqual(Array.from(f.relLoad.subarray(4, 8)), [0, 0, 2, 2]);
  assert.deepEqual(Array.from(f.dead), [2, 2]);
  assert.equal(f.busiest[0], 0);
  assert.equal(f.busiestShare[0], 0.5);
  assert.equal(f.layer!.metrics.layer, 3);
  assert.equal(f.layer!.assignments, 12);
  assert.equal(f.layer!.metrics.deadExperts, 2);
  // CV of [3,3,0,0]·2: mean 3, std 3 → 1.
  assert.ok(Math.abs(f.cv[0]! - 1) < 1e-6);
});

test('window scope counts only the last W tokens; a resized display window refills from the ring', () => {
  const m = new RoutingModel(schema, META, { window: 4 });
  for (const b of batches(schema, toks)) m.add(b);
  const w = buildFrame(m, { scope: 'window', layer: 1, token: null, placement: null });
  assert.deepEqual(w.range, { start: 2, end: 6 });
  assert.equal(w.windowSize, 4);
  // Layer 1 still picks {2,3} every token: equal counts.
  assert.deepEqual(Array.from(w.counts.subarray(4, 8)), [0, 0, 4, 4]);
  m.setDisplayWindow(2);
  const w2 = buildFrame(m, { scope: 'window', layer: 0, token: null, placement: null });
  assert.deepEqual(w2.range, { start: 4, end: 6 });
  assert.deepEqual(Array.from(w2.counts.subarray(0, 4)), [2, 2, 0, 0]);
  assert.equal(w2.layer!.metrics.tokens, 2);
  assert.equal(w2.layer!.assignments, 4);
});

test('token stream: first choice is the highest-weight slot; token detail decodes weights; sequences kept', () => {
  const m = new RoutingModel(schema, META);
  for (const b of batches(schema, toks)) m.add(b);
  const f = buildFrame(m, { scope: 'run', layer: 1, token: 4, placement: null, tokenSpan: 10 });
  const st = f.stream.slice(0, 6);
  assert.deepEqual(
    st.map((t) => t.expert),
    [2, 2, 2, 3, 3, 3],
  );
  assert.deepEqual(
    st.map((t) => t.seq),
    [0, 0, 0, 0, 1, 1],
  );
  const d = f.token!;
  assert.equal(d.index, 4);
  assert.equal(d.text, ' w4');
  assert.equal(d.pos, 0);
  assert.deepEqual(d.layers[1]!.experts, [3, 2]);
  assert.deepEqual(d.layers[1]!.weights, [0.75, 0.25]);
  assert.equal(d.layers[1]!.margin, null, 'no logits: no margin');
});

test('with logits: token margin and entropy are the stats RowScorer values; histogram covers the held tokens', () => {
  const s: RoutingSchema = { layers: [0], experts: 4, topK: 1, scoring: 'softmax', hasLogits: true };
  const logits = [[2, 1, 0, -1]];
  const m = new RoutingModel(s, META);
  for (const b of batches(s, [
    { experts: [[0]], logits },
    { experts: [[0]], logits },
  ]))
    m.add(b);
  const f = buildFrame(m, { scope: 'run', layer: 0, token: 1, placement: null });
  const sc = new RowScorer(4, 1, 'softmax');
  sc.score(Uint16Array.from(logits[0]!.map(f32ToF16)), 0);
  assert.ok(Math.abs(f.token!.layers[0]!.margin! - sc.margin) < 1e-12);
  assert.ok(Math.abs(f.token!.layers[0]!.entropy! - sc.entropy) < 1e-12);
  const h = f.layer!.margins!;
  assert.equal(h.total, 2);
  assert.deepEqual(h.range, { start: 0, end: 2 });
  assert.equal(
    h.counts.reduce((a, b) => a + b, 0),
    2,
  );
});

test('binning keeps the busiest expert of each column; binLoad sums counts and shares', () => {
  const m = new RoutingModel(schema, META);
  for (const b of batches(schema, toks)) m.add(b);
  const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: null });
  assert.deepEqual(Array.from(binnedRelLoad(f, 1, 0, 2, 2)), [0, 2]);
  assert.deepEqual(Array.from(binnedRelLoad(f, 0, 2, 1, 2)), [0, 0]);
  const b = binLoad(f, 0, 0, 2);
  assert.equal(b.count, 12);
  assert.equal(b.share, 1);
});

test('devices: contiguous placement over 2 devices puts all of layer 0 on device 0 and layer 1 on device 1', () => {
  const m = new RoutingModel(schema, META);
  for (const b of batches(schema, toks)) m.add(b);
  const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: contiguousSpec(schema, 2) });
  const d = f.devices!;
  assert.equal(d.devices, 2);
  assert.deepEqual(
    d.loads.map((x) => x.loadShare),
    [0.5, 0.5],
  );
  assert.deepEqual(
    d.loads.map((x) => x.slots),
    [2, 2],
  );
  assert.equal(d.loads[0]!.weightBytes, null, 'expert sizes unknown');
  // Each layer puts all its load on one device: SGLang balancedness (mean+ε)/(max+ε) ≈ 0.5 per layer.
  assert.ok(Math.abs(d.sglang - 0.5) < 1e-3);
});

test('reset forgets tokens, warnings and time; the ring drops the oldest tokens past its capacity', () => {
  const m = new RoutingModel(schema, META, { ringTokens: 1 });
  for (const b of batches(schema, toks)) m.add(b);
  assert.equal(m.ring.start, 0, 'the ring holds at least the largest window');
  m.reset();
  assert.equal(m.tokens, 0);
  assert.equal(m.ring.end, 0);
  assert.equal(m.firstMs, null);
  assert.equal(buildFrame(m, { scope: 'run', layer: 0, token: 3, placement: null }).token, null);
});

test("a plan file from EPLB: replicas split their expert's load; balancedness matches the planner's own", async () => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { openTrace } = await import('../../src/trace/index.js');
  const { comparePlacements } = await import('../../src/stats/eplb-plan.js');
  const { readPlanFile } = await import('../../src/store/placement-spec.js');
  const { DEMO_TRACE, tempDir } = await import('./helpers.js');
  const t = openTrace(DEMO_TRACE);
  const m = new RoutingModel(t.schema, t.meta);
  for (const b of t.batches()) m.add(b);
  t.close();
  const E = m.experts;
  const loads = m.schema.layers.map((_, l) => m.stats.load.slice(l * E, (l + 1) * E));
  const cmp = comparePlacements(loads, { replicas: 10, groups: 1, nodes: 1, gpus: 2 });
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'plan.json');
    writeFileSync(
      path,
      JSON.stringify({ gpus: 2, policy: cmp.plan.policy, phy2log: cmp.plan.phy2log.map((r) => Array.from(r)) }),
    );
    const spec = readPlanFile(path, m.schema);
    assert.match(spec.label, /^plan\.json \(EPLB /);
    const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: spec });
    assert.ok(Math.abs(f.devices!.sglang - cmp.after.sglang) < 1e-12);
    assert.deepEqual(
      f.devices!.loads.map((d) => d.slots),
      [5, 5],
    );
    writeFileSync(path, JSON.stringify({ gpus: 2, phy2log: [[0, 1, 99]] }));
    assert.throws(() => readPlanFile(path, m.schema), /slot 2 holds expert 99/);
    writeFileSync(path, '{"hello": 1}');
    assert.throws(() => readPlanFile(path, m.schema), /not a placement plan/);
  } finally {
    cleanup();
  }
});

test('a frame is a snapshot: tokens arriving after it was built (the ring wrapping over the ones it shows) do not change it', () => {
  const m = new RoutingModel(schema, META, { ringTokens: 8 }); // held: the largest window (4096) at least
  const words = Array.from({ length: 8 }, (_, i) => ({
    text: ` w${i}`,
    experts: [
      [i % 4, (i + 1) % 4],
      [3, 2],
    ],
  }));
  for (const b of batches(schema, words)) m.add(b);
  const f = buildFrame(m, { scope: 'run', layer: 0, token: 5, placement: null, tokenSpan: 100 });
  const shown = JSON.stringify({ stream: f.stream, token: f.token, ring: f.ring, counts: Array.from(f.counts) });
  assert.deepEqual(
    f.stream.map((t) => t.text),
    words.map((w) => w.text),
  );
  const later = Array.from({ length: 4200 }, (_, i) => ({
    text: ` later${i}`,
    experts: [
      [3, 2],
      [0, 1],
    ],
  }));
  for (const b of batches(schema, later)) m.add(b);
  assert.ok(!m.ring.has(5), 'the ring has moved past the tokens the frame shows');
  assert.equal(JSON.stringify({ stream: f.stream, token: f.token, ring: f.ring, counts: Array.from(f.counts) }), shown);
});
