/**
 * Layers that differ in E and K: the schema's per-layer shapes, the padding of the rectangular batch, the split into
 * uniform sub-streams (checked against batches written out by hand), the trace round trip (old traces keep their
 * schema unchanged) and the writer's refusal of ids that break the layout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeSchema,
  expertsAt,
  mixedShapes,
  NO_EXPERT,
  NO_LOGIT_F16,
  type RoutingBatch,
  type RoutingSchema,
  schemaOfShapes,
  topKAt,
} from '../../src/core/batch.js';
import { f32ToF16 } from '../../src/core/f16.js';
import { groupBatch, shapeGroups } from '../../src/core/shapes.js';
import { validateSchema } from '../../src/trace/arrow-schema.js';
import { openTrace, TraceWriter } from '../../src/trace/index.js';
import { META, SCHEMA, makeBatch, tempDir } from '../trace/helpers.js';

// Model layers 2, 5, 7: 8 experts top-2, 4 experts top-1, 8 experts top-2.
const MIXED = schemaOfShapes(
  [2, 5, 7],
  [
    { experts: 8, topK: 2 },
    { experts: 4, topK: 1 },
    { experts: 8, topK: 2 },
  ],
  'softmax',
  true,
);

/** Two tokens in MIXED's layout, every value written out: ids, weights (f16) and logits (f16, −Inf padding). */
function mixedBatch(): RoutingBatch {
  const P = NO_EXPERT;
  const h = (x: number) => f32ToF16(x);
  const I = NO_LOGIT_F16;
  return {
    length: 2,
    seq: Uint32Array.of(0, 0),
    pos: Uint32Array.of(0, 1),
    tokenId: Int32Array.of(11, 12),
    token: ['a', 'b'],
    isPrompt: Uint8Array.of(1, 0),
    tNs: BigInt64Array.of(1n, 2n),
    // token 0: L2 {5,3}, L5 {3}, L7 {0,1}; token 1: L2 {7,6}, L5 {0}, L7 {2,4}
    experts: Uint16Array.of(5, 3, 3, P, 0, 1, 7, 6, 0, P, 2, 4),
    weights: Uint16Array.of(h(0.5), h(0.25), h(0.75), 0, h(0.5), h(0.5), h(0.625), h(0.375), h(1), 0, h(0.5), h(0.5)),
    logits: Uint16Array.from(
      [
        [1, 2, 3, 4, 5, 6, 7, 8],
        [9, 10, 11, 12, I, I, I, I],
        [13, 14, 15, 16, 17, 18, 19, 20],
        [21, 22, 23, 24, 25, 26, 27, 28],
        [29, 30, 31, 32, I, I, I, I],
        [33, 34, 35, 36, 37, 38, 39, 40],
      ].flatMap((row) => row.map((x) => (x === I ? I : h(x)))),
    ),
    tag: null,
  };
}

test('a mixed schema: largest E and K, each layer its own; uniform shapes give no per-layer arrays', () => {
  assert.deepEqual([MIXED.experts, MIXED.topK, MIXED.layerExperts, MIXED.layerTopK], [8, 2, [8, 4, 8], [2, 1, 2]]);
  assert.deepEqual(
    [0, 1, 2].map((l) => [expertsAt(MIXED, l), topKAt(MIXED, l)]),
    [
      [8, 2],
      [4, 1],
      [8, 2],
    ],
  );
  assert.equal(mixedShapes(MIXED), true);
  const uniform = schemaOfShapes(
    [0, 1],
    [
      { experts: 8, topK: 2 },
      { experts: 8, topK: 2 },
    ],
    'softmax',
    false,
  );
  assert.deepEqual(uniform, { layers: [0, 1], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false });
  assert.equal(mixedShapes(uniform), false);
  assert.match(describeSchema(MIXED), /^3 MoE layers \(layer 2: 8 experts top-2, layer 5: 4 experts top-1/);
});

test('shape groups: layers of one shape together, each batch cut to its own K slots and E logits', () => {
  const groups = shapeGroups(MIXED);
  assert.deepEqual(
    groups.map((g) => [g.positions, g.schema]),
    [
      [[0, 2], { layers: [2, 7], experts: 8, topK: 2, scoring: 'softmax', hasLogits: true }],
      [[1], { layers: [5], experts: 4, topK: 1, scoring: 'softmax', hasLogits: true }],
    ],
  );
  const b = mixedBatch();
  const wide = groupBatch(b, MIXED, groups[0]!);
  assert.deepEqual([...wide.experts], [5, 3, 0, 1, 7, 6, 2, 4]);
  assert.deepEqual(
    [...wide.weights],
    [0.5, 0.25, 0.5, 0.5, 0.625, 0.375, 0.5, 0.5].map((x) => f32ToF16(x)),
  );
  assert.deepEqual(
    [...wide.logits!],
    [
      [1, 2, 3, 4, 5, 6, 7, 8],
      [13, 14, 15, 16, 17, 18, 19, 20],
      [21, 22, 23, 24, 25, 26, 27, 28],
      [33, 34, 35, 36, 37, 38, 39, 40],
    ].flatMap((r) => r.map((x) => f32ToF16(x))),
  );
  const small = groupBatch(b, MIXED, groups[1]!);
  assert.deepEqual([...small.experts], [3, 0]);
  assert.deepEqual([...small.weights], [f32ToF16(0.75), f32ToF16(1)]);
  assert.deepEqual(
    [...small.logits!],
    [9, 10, 11, 12, 29, 30, 31, 32].map((x) => f32ToF16(x)),
  );
  assert.equal(small.tokenId, b.tokenId, 'per-token columns are shared');
  // A uniform stream is one group, its batches handed on as they are.
  const one = shapeGroups(SCHEMA);
  assert.equal(one.length, 1);
  const u = makeBatch(SCHEMA, 3, 0);
  assert.equal(groupBatch(u, SCHEMA, one[0]!), u);
});

test('traces carry the per-layer shapes; traces without them read back unchanged', (t) => {
  const tmp = tempDir(t);
  const path = tmp.path('mixed.arrows');
  const w = TraceWriter.create(path, { schema: MIXED, meta: META });
  w.write(mixedBatch());
  w.close();
  const r = openTrace(path);
  assert.deepEqual(r.schema, MIXED);
  r.close();
  const old = tmp.path('old.arrows');
  const w2 = TraceWriter.create(old, { schema: SCHEMA, meta: META });
  w2.write(makeBatch(SCHEMA, 4, 0));
  w2.close();
  const r2 = openTrace(old);
  assert.deepEqual(r2.schema, SCHEMA);
  assert.equal('layerExperts' in r2.schema, false);
  r2.close();
});

test('the writer refuses ids that break the mixed layout: an id past its layer’s own E, a padding slot in use', (t) => {
  const tmp = tempDir(t);
  const bad = (i: number, v: number, re: RegExp) => {
    const b = mixedBatch();
    b.experts[i] = v;
    const w = TraceWriter.create(tmp.path(`bad${i}-${v}.arrows`), { schema: MIXED, meta: META });
    try {
      assert.throws(() => w.write(b), re);
    } finally {
      w.close();
    }
  };
  bad(2, 4, /expert id 4 ≥ 4 experts of layer 5/); // layer 5 has 4 experts
  bad(3, 1, /expert id 1 in slot 1 past layer 5's top-1/); // layer 5 picks one
});

test('the schema check: per-layer shapes come together, one per layer, and their largest is experts / topK', () => {
  const base: RoutingSchema = { ...MIXED };
  const bad = (s: Partial<RoutingSchema>, re: RegExp) => assert.throws(() => validateSchema({ ...base, ...s }), re);
  bad({ layerTopK: undefined }, /come together/);
  bad({ layerExperts: [8, 4] }, /one value per MoE layer/);
  bad({ layerTopK: [2, 5, 2] }, /layerTopK\[1\] must be 1…4/);
  bad({ experts: 16 }, /must be the largest of layerExperts/);
  bad({ experts: 65536, layerExperts: [65536, 4, 8] }, /layerExperts\[0\] must be 1…65535/); // 65535 is NO_EXPERT
  assert.doesNotThrow(() => validateSchema(base));
});
