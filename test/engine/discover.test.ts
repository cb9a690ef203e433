import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/core/errors.js';
import { discoverRouters, requireRouters, PATTERNS_TRIED } from '../../src/engine/discover.js';
import { instrumentModel } from '../../src/engine/instrument.js';
import { decodeModel, encodeModel, loadModel } from '../../src/engine/onnx-model.js';
import { hasFixture, meta, modelPath, MOE_FIXTURES } from './helpers.js';

for (const name of MOE_FIXTURES) {
  test(`discovery finds every MoE layer of ${name} with its experts, k and scoring`, {
    skip: !hasFixture(name) && `${name} not generated yet`,
  }, () => {
    const m = meta(name);
    const found = discoverRouters(loadModel(modelPath(name)));
    assert.deepEqual(
      found.routers.map((r) => r.layer),
      m.moeLayers,
    );
    for (const [l, r] of found.routers.entries()) {
      // hf-mixed-shape's layers differ: its meta gives each layer's own E and k (read off PyTorch's routers).
      assert.equal(r.experts, Array.isArray(m.experts) ? m.experts[l] : m.experts, `layer ${r.layer} experts`);
      assert.equal(r.topK, Array.isArray(m.topK) ? m.topK[l] : m.topK, `layer ${r.layer} k`);
      if (m.scoring) assert.equal(r.scoring, m.scoring, `layer ${r.layer} scoring`);
      assert.ok(r.tensors.logits, 'logits tensor named');
      assert.ok(r.expertBytes !== null && r.expertBytes > 0, `layer ${r.layer} expert bytes`);
      // Zero-computation experts: LongCat's from its config and modeling code (ids ≥ n_routed_experts are
      // nn.Identity), found by following the weights to the mixing; none anywhere else.
      assert.deepEqual(r.zeroExperts, m.zeroExperts ?? null, `layer ${r.layer} zero experts`);
    }
    // Layers the fixture says are dense (have nodes, no router) are reported as such.
    const dense = [...Array(m.numLayers).keys()].filter((l) => !m.moeLayers.includes(l));
    assert.deepEqual(found.denseLayers, dense);
    assert.equal(found.numLayers, m.numLayers);
  });
}

test('DeepSeek-V3: the selection is the last TopK of the group-limited chain, with bias, groups, scaling and a shared expert', () => {
  for (const name of ['hf-deepseek-v3', 'tiny-deepseek'].filter(hasFixture)) {
    const m = meta(name);
    const found = discoverRouters(loadModel(modelPath(name)));
    for (const r of found.routers) {
      assert.equal(r.kind, 'sigmoid-group-topk');
      assert.deepEqual(r.groups, { count: m.nGroup ?? 4, topk: m.topkGroup ?? 2 });
      assert.match(r.bias ?? '', /e_score_correction_bias/);
      assert.equal(r.renormalize, true);
      assert.equal(r.scalingFactor, 2.5);
      assert.match(r.tensors.ids!, /TopK_2/, 'final TopK, not the in-group or group TopK');
      assert.ok(r.sharedExpert && r.sharedExpert.bytes > 0 && !r.sharedExpert.gated);
    }
  }
});

test('dynamo exports: layer index from node metadata; Qwen2-MoE: gated shared expert; OLMoE: no renormalisation', () => {
  const q3 = discoverRouters(loadModel(modelPath('hf-qwen3-moe')));
  assert.ok(q3.routers.every((r) => r.layerSource === 'metadata' && r.renormalize && /^node_topk/.test(r.node)));
  assert.deepEqual(
    q3.routers.map((r) => r.tensors.gateWeight),
    ['model.layers.0.mlp.gate.weight', 'model.layers.1.mlp.gate.weight'],
  );
  const q2 = discoverRouters(loadModel(modelPath('hf-qwen2-moe')));
  assert.ok(q2.routers.every((r) => r.sharedExpert?.gated === true && r.renormalize === false));
  const olmoe = discoverRouters(loadModel(modelPath('hf-olmoe')));
  assert.ok(olmoe.routers.every((r) => r.kind === 'softmax-topk' && !r.renormalize));
  const mixtral = discoverRouters(loadModel(modelPath('hf-mixtral')));
  assert.ok(mixtral.routers.every((r) => r.renormalize && r.layerSource === 'name'));
  // Mixtral's stacked experts: gate_up [E, 2I, H] + down [E, H, I] float32, per expert.
  assert.equal(mixtral.routers[0]!.expertBytes, (128 * 32 + 32 * 64) * 4);
});

test('Phi-MoE sparsemixer (ArgMax pair, no TopK) and fused com.microsoft::MoE (derived selection)', () => {
  if (hasFixture('hf-phimoe')) {
    const phi = discoverRouters(loadModel(modelPath('hf-phimoe')));
    assert.ok(phi.routers.every((r) => r.kind === 'sparsemixer' && r.topK === 2 && r.selection === 'graph'));
  }
  const fused = discoverRouters(loadModel(modelPath('fused-moe')));
  for (const r of fused.routers) {
    assert.equal(r.kind, 'fused-moe');
    assert.equal(r.selection, 'derived');
    assert.deepEqual(r.derived, { k: 2, normalize: true, sparseMixer: false, weightsTensor: null });
    assert.equal(r.tensors.ids, null);
  }
});

test('a dense model has no router: the error names the patterns tried', () => {
  const m = loadModel(modelPath('dense'));
  assert.equal(discoverRouters(m).routers.length, 0);
  assert.throws(
    () => requireRouters(m, 'dense/model.onnx'),
    (e: unknown) =>
      e instanceof UserError &&
      /no MoE router found in dense\/model\.onnx/.test(e.message) &&
      PATTERNS_TRIED.every((p) => e.message.includes(p)) &&
      !e.message.includes('\n'),
  );
});

test('bad files are one-line user errors: missing, empty, corrupt, truncated, external data missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-engine-'));
  try {
    const oneLine = (re: RegExp) => (e: unknown) =>
      e instanceof UserError && re.test(e.message) && !e.message.includes('\n');
    assert.throws(() => loadModel(join(dir, 'nope.onnx')), oneLine(/model not found/));
    writeFileSync(join(dir, 'empty.onnx'), '');
    assert.throws(() => loadModel(join(dir, 'empty.onnx')), oneLine(/is empty/));
    writeFileSync(join(dir, 'text.onnx'), 'this is not a model at all, just some text\n'.repeat(50));
    assert.throws(() => loadModel(join(dir, 'text.onnx')), oneLine(/not a valid ONNX model/));
    const good = readFileSync(modelPath('hf-mixtral'));
    writeFileSync(join(dir, 'half.onnx'), good.subarray(0, good.length >> 1));
    assert.throws(() => loadModel(join(dir, 'half.onnx')), oneLine(/not a valid ONNX model/));
    copyFileSync(modelPath('external-data'), join(dir, 'model.onnx'));
    assert.throws(
      () => loadModel(join(dir, 'model.onnx')),
      oneLine(/external data "model\.onnx\.data", which is missing/),
    );
    assert.throws(() => loadModel(dir), oneLine(/external data/), 'a directory resolves to its model.onnx');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('instrumenting appends outputs without re-encoding: original bytes are a prefix, metadata survives, re-instrumenting adds nothing', () => {
  const m = loadModel(modelPath('hf-qwen3-moe'));
  const routing = discoverRouters(m);
  const { bytes, plan } = instrumentModel(m, routing, { logits: true });
  assert.ok(bytes.subarray(0, m.bytes.length).equals(m.bytes), 'original bytes untouched');
  assert.deepEqual(plan.fetch, ['moescope/ids', 'moescope/weights', 'moescope/logits']);
  assert.deepEqual(plan.blocks, { select: 2, logits: 2, mix: 0 });
  const merged = decodeModel(bytes, 'instrumented');
  const outs = merged.graph!.output.map((o) => o.name);
  assert.deepEqual(
    outs.slice(0, m.model.graph!.output.length),
    m.model.graph!.output.map((o) => o.name),
  );
  assert.ok(plan.fetch.every((f) => outs.includes(f)));
  // dynamo's node metadata (which onnx-proto 1.10 would drop) is still there after the merge
  const gemm = merged.graph!.node.find((n) => n.name === 'node_linear_4')!;
  assert.ok(gemm.metadata_props.some((p) => p.key === 'pkg.torch.onnx.name_scopes'));
  // discovery on the instrumented model finds the same routers, and instrumenting again adds no output
  const dir = mkdtempSync(join(tmpdir(), 'moescope-engine-'));
  try {
    writeFileSync(join(dir, 'inst.onnx'), bytes);
    const again = loadModel(join(dir, 'inst.onnx'));
    const routing2 = discoverRouters(again);
    assert.deepEqual(
      routing2.routers.map((r) => r.tensors),
      routing.routers.map((r) => r.tensors),
    );
    const twice = instrumentModel(again, routing2, { logits: true });
    assert.equal(twice.bytes.length, bytes.length);
    assert.deepEqual(twice.plan, plan);
    // without logits the same file serves ids and weights; asking for logits it was not built with is an error
    assert.deepEqual(instrumentModel(again, routing2, { logits: false }).plan.fetch, [
      'moescope/ids',
      'moescope/weights',
    ]);
    const noLogits = join(dir, 'inst-nologits.onnx');
    writeFileSync(noLogits, instrumentModel(m, routing, { logits: false }).bytes);
    const m3 = loadModel(noLogits);
    assert.throws(
      () => instrumentModel(m3, discoverRouters(m3), { logits: true }),
      (e: unknown) => e instanceof UserError && /without router logits/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a merged decoder (layers inside If subgraphs) gets a message saying so, not "no router"', () => {
  // A minimal model built with the same onnx.proto: If(cond) whose branches hold a gate MatMul → Softmax → TopK.
  const branch = (name: string) => ({
    name,
    node: [
      { op_type: 'MatMul', name: `${name}/gate/MatMul`, input: ['h', 'w'], output: [`${name}_logits`] },
      { op_type: 'Softmax', name: `${name}/gate/Softmax`, input: [`${name}_logits`], output: [`${name}_p`] },
      { op_type: 'TopK', name: `${name}/gate/TopK`, input: [`${name}_p`, 'k'], output: [`${name}_v`, `${name}_i`] },
    ],
    output: [{ name: `${name}_i` }],
  });
  const bytes = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 18 }],
    graph: {
      name: 'merged',
      node: [
        {
          op_type: 'If',
          name: 'branch',
          input: ['use_cache_branch'],
          output: ['ids'],
          attribute: [
            { name: 'then_branch', type: 5, g: branch('with_past') },
            { name: 'else_branch', type: 5, g: branch('no_past') },
          ],
        },
      ],
      initializer: [
        { name: 'w', dims: [4, 8], data_type: 1, raw_data: new Uint8Array(4 * 8 * 4) },
        { name: 'k', dims: [1], data_type: 7, int64_data: [2] },
      ],
      input: [{ name: 'use_cache_branch' }, { name: 'h' }],
      output: [{ name: 'ids' }],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'moescope-engine-'));
  try {
    writeFileSync(join(dir, 'merged.onnx'), bytes);
    const m = loadModel(join(dir, 'merged.onnx'));
    assert.throws(
      () => requireRouters(m, 'merged.onnx'),
      (e: unknown) => e instanceof UserError && /inside If\/Loop subgraphs \(a merged decoder\)/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
