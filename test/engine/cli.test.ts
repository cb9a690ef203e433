/** `moescope inspect | instrument | run` as a user runs them (the compiled CLI in a child process). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelRunner } from '../../src/engine/runner.js';
import { openTrace } from '../../src/trace/index.js';
import { meta, modelPath, reference, sameSet } from './helpers.js';

const cli = new URL('../../src/cli.js', import.meta.url).pathname;
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
const tmp = mkdtempSync(join(tmpdir(), 'moescope-cli-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** Exit 2 with exactly one `moescope: …` line on stderr. */
function assertUserError(r: ReturnType<typeof run>, re: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^moescope: /);
  assert.match(r.stderr, re);
}

test('inspect --json: one entry per MoE layer with the documented fields (DeepSeek-V3: first layer dense)', () => {
  const r = run('inspect', modelPath('hf-deepseek-v3'), '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.model, modelPath('hf-deepseek-v3'));
  assert.deepEqual(j.denseLayers, [0]);
  assert.equal(j.numLayers, 3);
  assert.equal(j.kvCache, false);
  assert.deepEqual(
    j.routers.map((x: { layer: number }) => x.layer),
    [1, 2],
  );
  const r1 = j.routers[0];
  assert.deepEqual(Object.keys(r1), [
    'layer',
    'identity',
    'experts',
    'topK',
    'scoring',
    'kind',
    'selection',
    'renormalize',
    'scalingFactor',
    'bias',
    'groups',
    'sharedExpert',
    'expertBytes',
    'layerSource',
    'node',
    'tensors',
    'mixing',
    'zeroExperts',
  ]);
  assert.equal(r1.zeroExperts, null, 'DeepSeek-V3 has no zero-computation experts');
  assert.equal(r1.experts, 16);
  assert.equal(r1.topK, 4);
  assert.equal(r1.scoring, 'sigmoid');
  assert.equal(r1.kind, 'sigmoid-group-topk');
  assert.deepEqual(r1.groups, { count: 4, topk: 2 });
  assert.deepEqual(Object.keys(r1.tensors), ['logits', 'ids', 'weights', 'gateWeight']);
  // the weights are followed to the Mul that applies them to the experts; the bias is the initializer itself
  assert.deepEqual(r1.identity, { layer: 1, role: 'mlp', source: 'name' });
  assert.equal(r1.mixing.status, 'followed');
  assert.equal(r1.mixing.layout, 'selection');
  assert.equal(r1.renormalize, true);
  assert.equal(r1.scalingFactor, 2.5);
  assert.equal(r1.bias, 'model.layers.1.mlp.gate.e_score_correction_bias');
});

test('inspect (table) and inspect --json on the fused MoE model say the selection is derived', () => {
  const t = run('inspect', modelPath('fused-moe'));
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /fused-moe\s+8\s+2\s+softmax\s+derived/);
  const j = JSON.parse(run('inspect', modelPath('fused-moe'), '--json').stdout);
  assert.ok(j.routers.every((x: { selection: string }) => x.selection === 'derived'));
  assert.deepEqual(j.format.opsets, { 'ai.onnx': 18, 'com.microsoft': 1 });
});

test('missing file, corrupt bytes, a dense model, an unknown provider, CUDA without its libraries: one line, exit 2', () => {
  assertUserError(run('inspect', join(tmp, 'missing.onnx')), /model not found/);
  writeFileSync(join(tmp, 'corrupt.onnx'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff)));
  assertUserError(run('inspect', join(tmp, 'corrupt.onnx')), /not a valid ONNX model/);
  assertUserError(run('inspect', modelPath('dense')), /no MoE router found .*tried: .*TopK/);
  assertUserError(run('run', modelPath('dense'), '--no-ui', '--input-ids', '1,2'), /no MoE router found/);
  assertUserError(run('run', join(tmp, 'missing.onnx'), '--no-ui', '--prompt', 'x'), /model not found/);
  const ep = run('run', modelPath('hf-mixtral'), '--no-ui', '--prompt', 'x', '--ep', 'tpu');
  assert.equal(ep.status, 2);
  assert.match(ep.stderr, /--ep must be one of cpu, cuda, webgpu, got "tpu"/);
  // This machine has no CUDA provider installed: one clear line, no silent fall-back to the CPU.
  const cuda = run('run', modelPath('hf-mixtral'), '--no-ui', '--prompt', 'x', '--ep', 'cuda');
  assertUserError(cuda, /CUDA execution provider could not start.*--ep cpu/);
  assert.equal(cuda.stdout, '');
});

test('instrument -o: the saved model exposes the router outputs, and running it captures the same routing', async () => {
  const out = join(tmp, 'inst.onnx');
  const r = run('instrument', modelPath('external-data'), '-o', out, '--logits');
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /2 MoE layers \(0, 1\), outputs added:\n {2}moescope\/ids {2}int32 \[tokens, 2×2\]\n {2}moescope\/weights {2}float32 \[tokens, 2×2\]\n {2}moescope\/logits {2}float32 \[tokens, 2×8\]/,
  );
  assert.ok(existsSync(join(tmp, 'model.onnx.data')), 'external data placed beside the copy');
  const ref = reference('external-data');
  const runner = await ModelRunner.open({ model: out, logits: true, threads: 1 });
  try {
    assert.ok(runner.session.outputNames.includes('moescope/logits'));
    const { rows } = await runner.forward(runner.newSequence(), ref.inputIds[0]!);
    const L = 2;
    for (let t = 0; t < rows!.n; t++)
      for (let l = 0; l < L; l++)
        assert.ok(
          sameSet(rows!.experts.subarray((t * L + l) * 2, (t * L + l + 1) * 2), ref.routing[0]!.experts[l]![t]!),
        );
  } finally {
    await runner.close();
  }
  assertUserError(run('instrument', modelPath('hf-mixtral'), '-o', modelPath('hf-mixtral')), /refusing to overwrite/);
});

test('run --no-ui --input-ids --max-tokens 0 --record: prompt only, summary per MoE layer, a trace that reads back', () => {
  const trace = join(tmp, 'run.arrows');
  const ids = reference('tiny-switch').inputIds[0]!;
  const r = run(
    'run',
    modelPath('tiny-switch'),
    '--no-ui',
    '--input-ids',
    ids.join(','),
    '--max-tokens',
    '0',
    '--record',
    trace,
    '--logits',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3 MoE layers × 8 experts, top-1 softmax, with logits · KV-cache decode · cpu/);
  assert.match(r.stdout, new RegExp(`routing: ${ids.length} tokens \\(${ids.length} prompt, 0 generated\\)`));
  for (const l of meta('tiny-switch').moeLayers)
    assert.match(r.stdout, new RegExp(`^\\s+${l}\\s+e\\d+ \\d+\\.\\d%`, 'm'));
  const t = openTrace(trace);
  try {
    assert.equal(t.complete, true);
    assert.equal(t.tokenCount, ids.length);
    assert.equal(t.schema.hasLogits, true);
    assert.equal(t.meta.source, 'run');
    const b = t.readRange(0, ids.length);
    assert.deepEqual(Array.from(b.tokenId), ids);
    assert.ok(b.isPrompt.every((x) => x === 1));
    const ref = reference('tiny-switch');
    for (let tok = 0; tok < ids.length; tok++)
      for (let l = 0; l < 3; l++) assert.equal(b.experts[tok * 3 + l], ref.routing[0]!.experts[l]![tok]![0]);
  } finally {
    t.close();
  }
});

test('run --batch 4 records every sequence as run --batch 1 does: same tokens, positions, experts, weights and text', () => {
  const one = join(tmp, 'b1.arrows');
  const four = join(tmp, 'b4.arrows');
  const a = run('run', modelPath('tiny-moe'), '--no-ui', '--max-tokens', '5', '--record', one);
  const b = run('run', modelPath('tiny-moe'), '--no-ui', '--max-tokens', '5', '--batch', '4', '--record', four);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const text = (s: string) => s.split('\n').filter((l) => /^\[\d+|^→/.test(l));
  assert.deepEqual(text(b.stdout), text(a.stdout));
  const ta = openTrace(one);
  const tb = openTrace(four);
  try {
    assert.equal(tb.tokenCount, ta.tokenCount);
    const x = ta.readRange(0, ta.tokenCount);
    const y = tb.readRange(0, tb.tokenCount);
    assert.deepEqual(Array.from(y.seq), Array.from(x.seq));
    assert.deepEqual(Array.from(y.pos), Array.from(x.pos));
    assert.deepEqual(Array.from(y.tokenId), Array.from(x.tokenId));
    assert.deepEqual(Array.from(y.isPrompt), Array.from(x.isPrompt));
    const K = ta.schema.topK;
    const L = ta.schema.layers.length;
    for (let i = 0; i < ta.tokenCount * L; i++)
      assert.ok(sameSet(y.experts.subarray(i * K, (i + 1) * K), x.experts.subarray(i * K, (i + 1) * K)), `row ${i}`);
    assert.deepEqual(Array.from(y.weights), Array.from(x.weights)); // float16 in the trace: equal to its precision
  } finally {
    ta.close();
    tb.close();
  }
  const bad = run('run', modelPath('tiny-moe'), '--no-ui', '--batch', '0');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--batch must be ≥ 1/);
});

test('run --prompts FILE streams the text of each prompt; Ctrl-C stops cleanly and still prints the summary', {
  timeout: 60_000,
}, async () => {
  const prompts = join(tmp, 'p.jsonl');
  writeFileSync(prompts, '{"text": "def main():", "domain": "code"}\n\nThe cat sat on the\n');
  const r = run('run', modelPath('tiny-moe'), '--no-ui', '--prompts', prompts, '--max-tokens', '4');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\[0 code\] def main\(\):\n→ /);
  assert.match(r.stdout, /\[1\] The cat sat on the\n→ /);
  assert.match(r.stdout, /\(\d+ prompt \+ 4 generated tokens, [\d.]+ tok\/s\)/);
  writeFileSync(join(tmp, 'bad.jsonl'), '{"domain": "code"}\n');
  assertUserError(
    run('run', modelPath('tiny-moe'), '--no-ui', '--prompts', join(tmp, 'bad.jsonl')),
    /line 1: needs a non-empty "text"/,
  );

  // SIGINT mid-run (the demo prompts, looping would never end): the run stops, the trace is complete.
  const trace = join(tmp, 'int.arrows');
  const child = spawn(
    process.execPath,
    [cli, 'run', modelPath('tiny-moe'), '--no-ui', '--max-tokens', '100000', '--record', trace],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('→ ') && stdout.length > 200 && !child.killed) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.equal(code, 0);
  assert.match(stdout, /interrupted\)/);
  assert.match(stdout, /routing: \d+ tokens/);
  const t = openTrace(trace);
  assert.equal(t.complete, true);
  assert.ok(t.tokenCount > 0);
  t.close();
});
