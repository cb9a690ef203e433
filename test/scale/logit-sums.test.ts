/**
 * Logits sums pushed down (docs/scale.md § The logits sums): one multi-file dataset with logits — three ranks'
 * traces, a step column, exported as Parquet partitioned by step range (so files split sequences) and by rank —
 * summed by the stream engine and by DuckDB's SQL, for a softmax and a sigmoid router. The aux losses, z-loss,
 * entropy and margins agree to 1e-9 (relative), the margin histograms and the selection counts exactly; with one
 * file per rank, they are what RoutingStats gives streaming the Arrow traces token by token; and numpy, from the
 * Parquet files alone, computes the same losses and histograms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scoring } from '../../src/core/batch.js';
import { synthesize } from '../../src/trace/synth.js';
import { exportDataset } from '../../src/trace/export/dataset.js';
import { openTrace } from '../../src/trace/index.js';
import { RoutingStats } from '../../src/stats/routing-stats.js';
import {
  logitsLayerMetrics,
  marginHistogramOf,
  pooledHfAuxLoss,
  type LogitSumRecord,
  type LogitsMetrics,
} from '../../src/stats/logit-sums.js';
import { openDataset } from '../../src/scale/index.js';
import { duckdbLogitSums, streamLogitSums } from '../../src/scale/logit-engine.js';
import { moescope } from '../trace/cli.js';
import { HAVE_PYARROW, python } from '../trace/python.js';

const L = 3;
const E = 16;
const K = 4;
const RANKS = 3;
const TOKENS = 1_200;

interface Made {
  arrow: string[];
  /** Partitioned by step:2 (a sequence may span files). */
  steps: string;
  /** Partitioned by rank (one file per trace). */
  ranks: string;
}

function makeDataset(t: { after: (fn: () => void) => void }, scoring: Scoring): Made {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-logit-sums-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'arrow'));
  const arrow = Array.from({ length: RANKS }, (_, r) => {
    const a = join(dir, 'arrow', `rank-${r}.arrows`);
    synthesize(a, {
      layers: L,
      experts: E,
      topK: K,
      tokens: TOKENS + r * 100,
      skew: { kind: 'zipf', s: 1.2 },
      collapse: null,
      logits: true,
      scoring,
      seed: r + 11,
      rank: r,
      stepTokens: 300,
    });
    return a;
  });
  const steps = join(dir, 'steps');
  const ranks = join(dir, 'ranks');
  exportDataset(arrow, steps, { by: 'step', steps: 2 });
  exportDataset(arrow, ranks, { by: 'rank' });
  return { arrow, steps, ranks };
}

const KEYS = [
  'hfAuxLoss',
  'switchAuxLoss',
  'gshardAuxLoss',
  'seqAuxLoss',
  'importanceLoss',
  'zLoss',
  'tokenEntropy',
  'routerMargin',
  'nonFiniteLogitRows',
] as const;

function close(a: number | null, b: number | null, what: string, rel = 1e-9): void {
  assert.ok(a !== null && b !== null, `${what}: ${a} vs ${b}`);
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

function sameMetrics(a: LogitsMetrics, b: LogitsMetrics, what: string): void {
  for (const k of KEYS) close(a[k], b[k], `${what} ${k}`);
}

function sameRecords(a: LogitSumRecord, b: LogitSumRecord, what: string): void {
  for (let l = 0; l < L; l++) {
    sameMetrics(logitsLayerMetrics(a, l), logitsLayerMetrics(b, l), `${what} layer ${l}`);
    assert.deepEqual(marginHistogramOf(a, l).counts, marginHistogramOf(b, l).counts, `${what} layer ${l} margins`);
  }
  close(pooledHfAuxLoss(a), pooledHfAuxLoss(b), `${what} pooled HF`);
  // Counts of selections are integers: equal, not close.
  for (const k of ['rows', 'count', 'hfCount', 'top1', 'seqs', 'marginRows'] as const)
    assert.deepEqual(Array.from(a[k]), Array.from(b[k]), `${what} ${k}`);
}

for (const scoring of ['softmax', 'sigmoid'] as const) {
  test(`${scoring}: stream and DuckDB give the same logits sums, and the metrics a streamed trace gives`, async (t) => {
    const { arrow, steps, ranks } = makeDataset(t, scoring);
    const byStep = openDataset(steps);
    assert.ok(byStep.files.length > RANKS, 'the step partition splits each trace over several files');
    const [stream] = await streamLogitSums(byStep);
    const [duck] = await duckdbLogitSums(byStep, { threads: 2 });
    sameRecords(stream, duck, `${scoring} step-partitioned`);
    assert.equal(stream.rows[0], RANKS * TOKENS + 300, 'every token of every file has finite logits at every layer');

    // One file per rank: the sequences are the traces' own, so RoutingStats over the Arrow traces gives the same.
    const tokens = new RoutingStats({ ...openDataset(ranks).schema, hasLogits: true }, { window: 0, collapse: false });
    for (const a of arrow) {
      const tr = openTrace(a);
      for (const b of tr.batches()) tokens.add(b);
      tr.close();
    }
    const want = tokens.snapshot('run');
    const [byRank] = await duckdbLogitSums(openDataset(ranks), { threads: 1 });
    for (let l = 0; l < L; l++) sameMetrics(want.layers[l]!, logitsLayerMetrics(byRank, l), `${scoring} layer ${l}`);
    close(want.global.hfAuxLoss, pooledHfAuxLoss(byRank), `${scoring} pooled HF`);
  });
}

test('numpy computes the same losses, z-loss and margin histograms from the Parquet files', {
  skip: !HAVE_PYARROW && 'python3 with pyarrow not found',
}, async (t) => {
  for (const scoring of ['softmax', 'sigmoid'] as const) {
    const { steps } = makeDataset(t, scoring);
    const ds = openDataset(steps);
    const [duck] = await duckdbLogitSums(ds, { threads: 2 });
    const files = JSON.stringify(ds.files.map((f) => f.path));
    // Written from the definitions (docs/metrics.md § Losses, § Router): softmax / normalised sigmoid, top-K of
    // the logits by a stable sort, first choice = highest weight, a sequence = a seq id within one file.
    const code = `
import json, numpy as np, pyarrow.parquet as pq
L, E, K, BINS, sig = ${L}, ${E}, ${K}, 20, ${scoring === 'sigmoid' ? 'True' : 'False'}
T = np.zeros(L); P = np.zeros((L, E)); S = np.zeros((L, E)); C = np.zeros((L, E)); H = np.zeros((L, E)); F = np.zeros((L, E))
Z = np.zeros(L); hist = np.zeros((L, BINS), dtype=int); seq_terms = [[] for _ in range(L)]
for f in ${files}:
    t = pq.read_table(f, columns=['seq', 'experts', 'weights', 'logits'])
    n = t.num_rows
    x = t.column('logits').combine_chunks().values.to_numpy().astype(np.float64).reshape(n, L, E)
    ids = t.column('experts').combine_chunks().values.to_numpy().astype(np.int64).reshape(n, L, K)
    w = t.column('weights').combine_chunks().values.to_numpy().reshape(n, L, K)
    seq = t.column('seq').to_numpy()
    for l in range(L):
        xl = x[:, l, :]
        m = xl.max(axis=1, keepdims=True)
        ex = np.exp(xl - m); z = ex.sum(axis=1, keepdims=True)
        soft = ex / z
        s = 1 / (1 + np.exp(-xl))
        prob = s / s.sum(axis=1, keepdims=True) if sig else soft
        lse = (m + np.log(z))[:, 0]
        T[l] += n; Z[l] += (lse ** 2).sum(); P[l] += prob.sum(axis=0); S[l] += soft.sum(axis=0)
        order = np.argsort(-xl, axis=1, kind='stable')
        np.add.at(H[l], order[:, :K].reshape(-1), 1)
        np.add.at(C[l], ids[:, l, :].reshape(-1), 1)
        np.add.at(F[l], ids[np.arange(n), l, np.argmax(w[:, l, :], axis=1)], 1)
        a = np.take_along_axis(xl, order[:, K - 1:K], 1)[:, 0]; b = np.take_along_axis(xl, order[:, K:K + 1], 1)[:, 0]
        margin = (1 / (1 + np.exp(-a)) - 1 / (1 + np.exp(-b))) if sig else (np.exp(a - m[:, 0]) - np.exp(b - m[:, 0])) / z[:, 0]
        hist[l] += np.bincount(np.clip(np.floor(margin * BINS), 0, BINS - 1).astype(int), minlength=BINS)
        for q in np.unique(seq):
            r = seq == q
            c = np.zeros(E); np.add.at(c, ids[r, l, :].reshape(-1), 1)
            Tq = r.sum()
            seq_terms[l].append(E / (K * Tq * Tq) * (c * prob[r].sum(axis=0)).sum())
hf_src = S if sig else P
print(json.dumps([{
  'hf': float(E * (H[l] * hf_src[l]).sum() / T[l] ** 2),
  'switch': float(E * (C[l] * P[l]).sum() / (K * T[l] ** 2)),
  'gshard': float(E * (F[l] * P[l]).sum() / T[l] ** 2),
  'seq': float(np.mean(seq_terms[l])),
  'z': float(Z[l] / T[l]),
  'hist': hist[l].tolist(),
} for l in range(L)]))`;
    const r = python(code);
    assert.ok(r.ok, r.err);
    const ref = JSON.parse(r.out) as {
      hf: number;
      switch: number;
      gshard: number;
      seq: number;
      z: number;
      hist: number[];
    }[];
    for (let l = 0; l < L; l++) {
      const m = logitsLayerMetrics(duck, l);
      const what = `${scoring} layer ${l}`;
      close(m.hfAuxLoss, ref[l]!.hf, `${what} HF`);
      close(m.switchAuxLoss, ref[l]!.switch, `${what} Switch`);
      close(m.gshardAuxLoss, ref[l]!.gshard, `${what} GShard`);
      close(m.seqAuxLoss, ref[l]!.seq, `${what} DeepSeek seq`);
      close(m.zLoss, ref[l]!.z, `${what} z-loss`);
      assert.deepEqual(marginHistogramOf(duck, l).counts, ref[l]!.hist, `${what} margins`);
    }
  }
});

test('stats on a dataset with logits: the losses in JSON and text, by either engine; --no-logit-sums skips them', (t) => {
  const { steps } = makeDataset(t, 'sigmoid');
  const duck = moescope('stats', steps, '--json');
  assert.equal(duck.code, 0, duck.stderr);
  const stream = moescope('stats', steps, '--json', '--engine', 'stream');
  assert.equal(stream.code, 0, stream.stderr);
  const a = JSON.parse(duck.stdout);
  const b = JSON.parse(stream.stdout);
  assert.equal(a.dataset.logitSums, true);
  for (let l = 0; l < L; l++) for (const k of KEYS) close(a.layers[l][k], b.layers[l][k], `layer ${l} ${k}`);
  close(a.global.hfAuxLoss, b.global.hfAuxLoss, 'pooled HF');
  assert.deepEqual(a.marginHistograms, b.marginHistograms);
  assert.ok(!a.needsTokens.some((m: string) => /z-loss/i.test(m)), 'the z-loss is no longer listed as not computed');
  const text = moescope('stats', steps);
  assert.match(text.stdout, /Router logits per layer/);
  assert.match(text.stdout, /router-margin histogram/);
  const counts = JSON.parse(moescope('stats', steps, '--json', '--no-logit-sums').stdout);
  assert.equal(counts.dataset.logitSums, false);
  assert.equal(counts.layers[0].zLoss, null);
  assert.equal(counts.marginHistograms, undefined);
});
