/**
 * Every metric against vectors computed independently of this code: test/stats/reference/make_vectors.py
 * (numpy, and HF transformers' own load_balancing_loss_func). Regenerate with
 *   python3 test/stats/reference/make_vectors.py
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceAnalysis, defaultAnalysisOptions, type StatsJson } from '../../src/stats/analysis.js';
import { Coactivation } from '../../src/stats/coactivation.js';
import { buildBatches, caseTokens, close, referenceCases, type ReferenceCase } from './helpers.js';

function analyse(c: ReferenceCase, chunk: number): StatsJson {
  const schema = c.input.schema;
  const a = new TraceAnalysis(schema, {
    ...defaultAnalysisOptions(schema),
    window: 0,
    capacityFactor: c.params.cf,
    batchTokens: c.params.cap_batch,
    biasRate: c.params.bias_rate,
    coactivationPairs: 3,
  });
  const batches = buildBatches(schema, caseTokens(c), chunk);
  for (const b of batches) a.add(b);
  for (const b of batches) a.route(b);
  return a.result();
}

function assertClose(actual: number | null | undefined, expected: number, what: string, rel = 1e-9): void {
  assert.ok(close(actual, expected, rel, 1e-12), `${what}: got ${actual}, expected ${expected}`);
}

for (const c of referenceCases()) {
  // Odd batch sizes check that accumulating across batch boundaries changes nothing.
  for (const chunk of [c.input.seq.length, 7]) {
    test(`${c.input.name} (batches of ${chunk}): every metric matches the numpy/HF reference`, () => {
      const r = analyse(c, chunk);
      const ex = c.expected;
      assert.equal(r.tokens, c.input.seq.length);
      // HF's pooled loss is computed by transformers in float32, hence the looser tolerance there.
      assertClose(r.global.hfAuxLoss, ex.hfAuxLossPooled, 'pooled HF loss', 1e-9);
      ex.layers.forEach((el, l) => {
        const got = r.layers[l]!;
        assert.deepEqual(got.load, el.load, `layer ${l} load`);
        assert.equal(got.deadExperts, el.deadExperts, `layer ${l} dead`);
        assert.equal(got.coverage90, el.coverage90, `layer ${l} coverage90`);
        for (const key of [
          'cv',
          'maxVio',
          'entropy',
          'topNShare',
          'switchAuxLoss',
          'gshardAuxLoss',
          'seqAuxLoss',
          'importanceLoss',
          'zLoss',
          'tokenEntropy',
          'routerMargin',
        ] as const)
          assertClose(got[key], el[key] as number, `layer ${l} ${key}`, 1e-8);
        assertClose(got.hfAuxLoss, el.hfAuxLoss as number, `layer ${l} hfAuxLoss (torch float32)`, 1e-5);
        const cap = ex.capacity[l]!;
        assert.deepEqual(got.capacity.droppedPerExpert, cap.droppedPerExpert, `layer ${l} drops per expert`);
        assertClose(got.capacity.droppedShare, cap.droppedShare, `layer ${l} dropped share`);
        for (const p of ['probs', 'position'] as const)
          for (const k of ['droppedWeightShare', 'tokensAffected', 'tokensFullyDropped'] as const)
            assertClose(got.capacity[p][k], cap[p][k]!, `layer ${l} ${p} ${k}`, 1e-6);
        const rep = ex.repeat[l]!;
        assertClose(got.repeat.firstChoice, rep.firstChoice, `layer ${l} repeat first choice`);
        assertClose(got.repeat.topTwoOverlap, rep.topTwoOverlap, `layer ${l} repeat top-2 overlap`);
        const lf = ex.lossFree;
        const gl = r.lossFree!.layers[l]!;
        gl.bias.forEach((b, e) => assertClose(b, lf.bias[l]![e]!, `layer ${l} loss-free bias ${e}`, 1e-9));
        assertClose(gl.maxVioOnline, lf.maxVioOnline[l]!, `layer ${l} loss-free online MaxVio`);
        assert.deepEqual(gl.loadFinal, lf.loadFinal[l], `layer ${l} load with the final bias`);
        assertClose(gl.maxVioFinal, lf.maxVioFinal[l]!, `layer ${l} loss-free final MaxVio`);
        assertClose(gl.changedShare, lf.changedShare[l]!, `layer ${l} changed share`);
      });
      assert.equal(r.repeat.pairs, ex.repeat[0]!.pairs);
      assertClose(r.repeat.randomTopTwoOverlap, ex.randomTopTwoOverlap, 'random top-2 overlap');
      const tags = Object.keys(ex.domains).sort();
      assert.deepEqual(
        r.domains.map((d) => d.tag),
        tags,
      );
      for (const d of r.domains)
        d.layers.forEach((dl, l) =>
          dl.share.forEach((s, e) =>
            assertClose(s, ex.domains[d.tag]![l]![e]!, `domain ${d.tag} layer ${l} expert ${e}`),
          ),
        );
      assertClose(r.vocabulary!.meanMaxShare, ex.vocabMeanMaxShare, 'vocabulary mean max share');
    });
  }

  test(`${c.input.name}: co-activation N(i,j)/N(i) over all pairs matches the reference`, () => {
    const co = new Coactivation(c.input.schema);
    for (const b of buildBatches(c.input.schema, caseTokens(c), 5)) co.add(b);
    const E = c.input.schema.experts;
    c.expected.coactivation.forEach((m, l) => {
      for (let i = 0; i < E; i++)
        for (let j = 0; j < E; j++) {
          const want = m[i]![j];
          const got = co.ratio(l, i, j);
          if (want === null) assert.ok(Number.isNaN(got), `layer ${l} (${i},${j}) should be undefined`);
          else assertClose(got, want!, `layer ${l} coact(${i},${j})`);
        }
      const top = co.topPairs(l, 1)[0]!;
      let best = -1;
      for (let i = 0; i < E; i++)
        for (let j = 0; j < E; j++) if (i !== j && m[i]![j] !== null) best = Math.max(best, m[i]![j]!);
      assertClose(top.ratio, best, `layer ${l} top pair`);
    });
  });
}
