/** The engine's own selection for fused MoE ops, checked against graphs that make the same choice explicitly. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveRow } from '../../src/engine/derive.js';
import { ModelRunner } from '../../src/engine/runner.js';
import { hasFixture, modelPath, reference } from './helpers.js';

test("sparsemixer (use_sparse_mixer=1) derived from the logits equals Phi-MoE's own ArgMax-pair selection and weights", {
  skip: !hasFixture('hf-phimoe') && 'hf-phimoe not generated',
}, async () => {
  const r = await ModelRunner.open({ model: modelPath('hf-phimoe'), logits: true, threads: 1 });
  try {
    const { experts: E, topK: K } = r.schema;
    const L = r.schema.layers.length;
    const ids = new Int32Array(K);
    const w = new Float32Array(K);
    const scratch = new Float64Array(E);
    let n = 0;
    for (const input of reference('hf-phimoe').inputIds) {
      const { rows } = await r.forward(r.newSequence(), input);
      for (let t = 0; t < rows!.n; t++)
        for (let l = 0; l < L; l++) {
          deriveRow(
            rows!.logits!,
            (t * L + l) * E,
            E,
            { k: 2, normalize: false, sparseMixer: true, weightsTensor: null },
            null,
            0,
            ids,
            w,
            0,
            scratch,
          );
          const o = (t * L + l) * K;
          assert.deepEqual(Array.from(ids), Array.from(rows!.experts.subarray(o, o + K)), `token ${t} layer ${l}`);
          for (let j = 0; j < K; j++) assert.ok(Math.abs(w[j]! - rows!.weights[o + j]!) < 1e-5);
          n++;
        }
    }
    assert.ok(n > 100);
  } finally {
    await r.close();
  }
});

test('softmax top-k: ties go to the lower index; renormalisation; QMoE mixing weights taken at the selected experts', () => {
  const ids = new Int32Array(2);
  const w = new Float32Array(2);
  const s = new Float64Array(4);
  const logits = Float32Array.from([1, 3, 3, 0]);
  deriveRow(logits, 0, 4, { k: 2, normalize: false, sparseMixer: false, weightsTensor: null }, null, 0, ids, w, 0, s);
  assert.deepEqual(Array.from(ids), [1, 2]);
  const z = Math.exp(1) + 2 * Math.exp(3) + 1;
  assert.ok(Math.abs(w[0]! - Math.exp(3) / z) < 1e-6);
  deriveRow(logits, 0, 4, { k: 2, normalize: true, sparseMixer: false, weightsTensor: null }, null, 0, ids, w, 0, s);
  assert.deepEqual(Array.from(w), [0.5, 0.5]);
  deriveRow(
    logits,
    0,
    4,
    { k: 2, normalize: true, sparseMixer: false, weightsTensor: 'x' },
    Float32Array.from([0.1, 0.2, 0.3, 0.4]),
    0,
    ids,
    w,
    0,
    s,
  );
  assert.deepEqual(Array.from(w), [Math.fround(0.2), Math.fround(0.3)]);
});
