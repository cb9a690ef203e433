/**
 * Fidelity: the routing moescope captures is the routing PyTorch chose (fixtures' reference.json, recorded with
 * hooks on the HF router modules) — the same top-k set for 100% of tokens and layers, the same mixing weights and
 * logits up to float error — and KV-cache decode reproduces PyTorch's greedy tokens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expertsAt, NO_EXPERT, topKAt } from '../../src/core/batch.js';
import { ModelRunner } from '../../src/engine/runner.js';
import { sampleToken } from '../../src/engine/generation-loop.js';
import { hasFixture, meta, modelPath, MOE_FIXTURES, reference, sameSet } from './helpers.js';

const TOL = 1e-4;

for (const name of MOE_FIXTURES) {
  test(`${name}: captured routing equals PyTorch's for every token and layer`, {
    skip: !hasFixture(name) && `${name} not generated yet`,
  }, async () => {
    const ref = reference(name);
    const r = await ModelRunner.open({ model: modelPath(name), logits: true, threads: 1 });
    try {
      const { topK: K, experts: E } = r.schema;
      const L = r.schema.layers.length;
      assert.deepEqual(r.schema.layers, ref.moeLayers);
      // Each layer's own E and K (the mixed-shape fixture's differ), as PyTorch's routers have them.
      const refE = ref.moeLayers.map((_, l) => (Array.isArray(ref.experts) ? ref.experts[l]! : ref.experts));
      const refK = ref.moeLayers.map((_, l) => (Array.isArray(ref.topK) ? ref.topK[l]! : ref.topK));
      assert.deepEqual(
        ref.moeLayers.map((_, l) => [expertsAt(r.schema, l), topKAt(r.schema, l)]),
        ref.moeLayers.map((_, l) => [refE[l], refK[l]]),
      );
      let agree = 0;
      let total = 0;
      let maxW = 0;
      let maxLogit = 0;
      for (let i = 0; i < ref.inputIds.length; i++) {
        const st = r.newSequence();
        const { rows } = await r.forward(st, ref.inputIds[i]!);
        assert.equal(rows!.n, ref.inputIds[i]!.length);
        for (let l = 0; l < L; l++) {
          const k = refK[l]!;
          const e = refE[l]!;
          for (let t = 0; t < rows!.n; t++) {
            const o = (t * L + l) * K;
            const got = rows!.experts.subarray(o, o + k);
            const want = ref.routing[i]!.experts[l]![t]!;
            total++;
            if (sameSet(got, want)) agree++;
            // Slots past the layer's own K are padding, with no weight; logits past its own E are −Inf.
            for (let j = k; j < K; j++) {
              assert.equal(rows!.experts[o + j], NO_EXPERT);
              assert.equal(rows!.weights[o + j], 0);
            }
            const wantW = ref.routing[i]!.weights[l]![t]!;
            for (let j = 0; j < k; j++) {
              const at = want.indexOf(got[j]!);
              if (at >= 0) maxW = Math.max(maxW, Math.abs(rows!.weights[o + j]! - wantW[at]!));
            }
            const wantL = ref.routing[i]!.logits?.[l]?.[t];
            if (wantL) {
              assert.equal(wantL.length, e);
              for (let x = 0; x < e; x++)
                maxLogit = Math.max(maxLogit, Math.abs(rows!.logits![(t * L + l) * E + x]! - wantL[x]!));
              for (let x = e; x < E; x++) assert.equal(rows!.logits![(t * L + l) * E + x], -Infinity);
            }
          }
        }
      }
      assert.equal(agree, total, `${name}: ${agree}/${total} token-layers agree`);
      assert.ok(total > 0);
      assert.ok(maxW < TOL, `${name}: max |weight diff| ${maxW}`);
      assert.ok(maxLogit < TOL, `${name}: max |logit diff| ${maxLogit}`);

      if (ref.generate) {
        assert.ok(r.kv, `${name} has a KV cache`);
        const st = r.newSequence();
        let out = await r.forward(st, ref.generate.inputIds);
        const tokens: number[] = [];
        for (let i = 0; i < ref.generate.greedyTokens.length; i++) {
          const next = sampleToken(out.logits, 0, Math.random);
          tokens.push(next);
          out = await r.forward(st, [next]);
        }
        assert.deepEqual(tokens, ref.generate.greedyTokens, `${name}: KV greedy decode`);
      } else assert.equal(meta(name).kvCache, false);
    } finally {
      await r.close();
    }
  });
}

/** Decode-time routing (one token per pass, through the KV cache or full recompute) equals the routing of the
 * same tokens computed in one prompt pass: generated tokens are captured as faithfully as prompt tokens. */
for (const name of ['tiny-moe', 'tiny-deepseek', 'hf-mixtral'].filter(hasFixture)) {
  test(`${name}: routing captured while decoding equals a single pass over the same tokens`, async () => {
    const ref = reference(name);
    const r = await ModelRunner.open({ model: modelPath(name), logits: true, threads: 1 });
    try {
      const prompt = ref.inputIds[0]!.slice(0, 12);
      const st = r.newSequence();
      let out = await r.forward(st, prompt);
      const decoded: { id: number; experts: Int32Array; weights: Float32Array }[] = [];
      for (let i = 0; i < 10; i++) {
        const id = sampleToken(out.logits, 0, Math.random);
        out = await r.forward(st, [id]);
        decoded.push({ id, experts: out.rows!.experts.slice(), weights: out.rows!.weights.slice() });
      }
      const whole = await r.forward(r.newSequence(), [...prompt, ...decoded.map((d) => d.id)]);
      const LK = r.schema.layers.length * r.schema.topK;
      decoded.forEach((d, i) => {
        const t = prompt.length + i;
        for (let l = 0; l < r.schema.layers.length; l++) {
          const a = d.experts.subarray(l * r.schema.topK, (l + 1) * r.schema.topK);
          const b = whole.rows!.experts.subarray(t * LK + l * r.schema.topK, t * LK + (l + 1) * r.schema.topK);
          assert.ok(sameSet(a, b), `token ${t} layer ${l}: decode ${[...a]} vs single pass ${[...b]}`);
        }
        for (let j = 0; j < LK; j++) assert.ok(Math.abs(d.weights[j]! - whole.rows!.weights[t * LK + j]!) < 1e-4);
      });
      assert.equal(r.kv !== null, meta(name).kvCache);
    } finally {
      await r.close();
    }
  });
}

/** Several sequences per forward pass (left-padded, as servers batch requests): each sequence's routing — prompt
 * and decoded tokens — equals the routing of that sequence run alone, and so do its greedy tokens. */
for (const name of [
  'tiny-moe',
  'tiny-deepseek',
  'tiny-switch',
  'hf-mixtral',
  'hf-qwen3-moe',
  'hf-deepseek-v3',
  'hf-mixed-shape',
].filter(hasFixture)) {
  test(`${name}: a batch of sequences of different lengths routes each exactly as it routes alone`, async () => {
    const ref = reference(name);
    const r = await ModelRunner.open({ model: modelPath(name), logits: true, threads: 1 });
    try {
      const prompts = ref.inputIds.slice(0, 3).map((p, i) => p.slice(0, 6 + 5 * i)); // lengths 6, 11, 16: pads of 10, 5, 0
      const L = r.schema.layers.length;
      const K = r.schema.topK;
      const steps = 4;
      type Run = { experts: number[][]; weights: number[][]; tokens: number[] };
      const collect = (runs: Run[], b: number, rows: NonNullable<Awaited<ReturnType<typeof r.forward>>['rows']>) => {
        for (let t = 0; t < rows.n; t++) {
          runs[b]!.experts.push([...rows.experts.subarray(t * L * K, (t + 1) * L * K)]);
          runs[b]!.weights.push([...rows.weights.subarray(t * L * K, (t + 1) * L * K)]);
        }
      };
      const alone: Run[] = prompts.map(() => ({ experts: [], weights: [], tokens: [] }));
      for (const [b, p] of prompts.entries()) {
        const st = r.newSequence();
        let out = await r.forward(st, p);
        collect(alone, b, out.rows!);
        for (let i = 0; i < steps; i++) {
          const next = sampleToken(out.logits, 0, Math.random);
          alone[b]!.tokens.push(next);
          out = await r.forward(st, [next]);
          collect(alone, b, out.rows!);
        }
      }
      const together: Run[] = prompts.map(() => ({ experts: [], weights: [], tokens: [] }));
      const bst = r.newBatch(prompts.length);
      let outs = await r.forwardBatch(bst, prompts);
      outs.forEach((o, b) => collect(together, b, o.rows!));
      for (let i = 0; i < steps; i++) {
        const next = outs.map((o) => sampleToken(o.logits, 0, Math.random));
        next.forEach((n, b) => together[b]!.tokens.push(n));
        outs = await r.forwardBatch(
          bst,
          next.map((n) => [n]),
        );
        outs.forEach((o, b) => collect(together, b, o.rows!));
      }
      for (let b = 0; b < prompts.length; b++) {
        assert.deepEqual(together[b]!.tokens, alone[b]!.tokens, `sequence ${b}: greedy tokens in the batch`);
        assert.equal(together[b]!.experts.length, prompts[b]!.length + steps);
        together[b]!.experts.forEach((row, t) => {
          for (let l = 0; l < L; l++) {
            const a = row.slice(l * K, (l + 1) * K);
            const want = alone[b]!.experts[t]!.slice(l * K, (l + 1) * K);
            assert.ok(sameSet(a, want), `sequence ${b} token ${t} layer ${l}: batch ${a} vs alone ${want}`);
          }
          row.forEach((_, j) =>
            assert.ok(
              Math.abs(together[b]!.weights[t]![j]! - alone[b]!.weights[t]![j]!) < 1e-4,
              `sequence ${b} token ${t}: weight`,
            ),
          );
        });
      }
    } finally {
      await r.close();
    }
  });
}
