/**
 * A model whose MoE layers differ in E and K (fixtures/models/hf-mixed-shape: layer 0 routes to 8 experts top-2,
 * layer 1 to 4 experts top-1), end to end through the CLI: `inspect --json` reports each router's own shape,
 * `run --no-ui --record` writes a trace that `export --jsonl` and `stats --json` read layer by layer in that shape —
 * checked against PyTorch's own routing of the same tokens (reference.json, recorded with hooks on the routers) and
 * the metric definitions of docs/metrics.md computed here from PyTorch's selection — and the commands that do
 * not handle mixed shapes yet refuse in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { hasFixture, meta, modelPath, reference, sameSet } from './helpers.js';

const NAME = 'hf-mixed-shape';
const skip = !hasFixture(NAME) && `${NAME} not generated yet`;

/** The fixture's per-layer E and K, as PyTorch's routers have them (meta.json, written by the generator). */
function shapes(): { E: number[]; K: number[] } {
  const m = meta(NAME);
  assert.ok(Array.isArray(m.experts) && Array.isArray(m.topK), 'the fixture lists each layer’s E and K');
  return { E: m.experts, K: m.topK };
}

/** Records the reference's first prompt (PyTorch's tokens) with the CLI; returns the trace path. */
function record(dir: { path: (n: string) => string }): string {
  const ids = reference(NAME).inputIds[0]!;
  const out = dir.path('mixed.arrows');
  const r = moescope(
    'run',
    modelPath(NAME),
    '--no-ui',
    '--input-ids',
    ids.join(','),
    '--max-tokens',
    '0',
    '--logits',
    '--record',
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  return out;
}

test('inspect --json reports each router with its own experts and k', { skip }, () => {
  const r = moescope('inspect', modelPath(NAME), '--json');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { routers: { layer: number; experts: number; topK: number }[] };
  const { E, K } = shapes();
  assert.deepEqual(
    doc.routers.map((x) => [x.layer, x.experts, x.topK]),
    meta(NAME).moeLayers.map((l, i) => [l, E[i], K[i]]),
  );
});

test('export --jsonl writes each layer in its own shape: PyTorch’s top-k set, weights and logits', { skip }, (t) => {
  const dir = tempDir(t);
  const trace = record(dir);
  const out = dir.path('mixed.jsonl');
  const r = moescope('export', trace, '--jsonl', out);
  assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const { E, K } = shapes();
  const header = lines[0]!;
  assert.deepEqual([header.layerExperts, header.layerTopK, header.experts, header.topK], [E, K, 8, 2]);
  const rows = lines.filter((l) => 'tokenId' in l) as {
    tokenId: number;
    experts: number[][];
    weights: number[][];
    logits: number[][];
  }[];
  const ref = reference(NAME);
  const want = ref.routing[0]!;
  assert.deepEqual(
    rows.map((x) => x.tokenId),
    ref.inputIds[0],
  );
  rows.forEach((row, tok) => {
    E.forEach((e, l) => {
      assert.equal(row.experts[l]!.length, K[l], `token ${tok} layer ${l}: K ids`);
      assert.ok(sameSet(row.experts[l]!, want.experts[l]![tok]!), `token ${tok} layer ${l}: top-k set`);
      row.experts[l]!.forEach((id, j) => {
        const w = want.weights[l]![tok]![want.experts[l]![tok]!.indexOf(id)]!;
        // float16 in the trace: within half a unit in the last place of |w| ≤ 1 (2^-11).
        assert.ok(Math.abs(row.weights[l]![j]! - w) <= 2 ** -11, `token ${tok} layer ${l}: weight`);
      });
      assert.equal(row.logits[l]!.length, e, `token ${tok} layer ${l}: E logits`);
      row.logits[l]!.forEach((x, i) => {
        const v = want.logits![l]![tok]![i]!;
        assert.ok(Math.abs(x - v) <= Math.max(2 ** -11 * Math.abs(v), 1e-4), `token ${tok} layer ${l}: logit ${i}`);
      });
    });
  });
});

test('stats --json measures each layer over its own E and K (PyTorch’s selection, the documented formulas)', {
  skip,
}, (t) => {
  const dir = tempDir(t);
  const trace = record(dir);
  const r = moescope('stats', trace, '--json');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    schema: { layerExperts: number[]; layerTopK: number[] };
    shapes: {
      schema: { layers: number[]; experts: number; topK: number };
      layers: { layer: number; load: number[]; cv: number; maxVio: number; entropy: number; deadExperts: number }[];
    }[];
  };
  const { E, K } = shapes();
  assert.deepEqual([doc.schema.layerExperts, doc.schema.layerTopK], [E, K]);
  const layers = meta(NAME).moeLayers;
  assert.deepEqual(
    doc.shapes.map((s) => [s.schema.layers, s.schema.experts, s.schema.topK]),
    layers.map((l, i) => [[l], E[i], K[i]]),
  );
  const want = reference(NAME).routing[0]!;
  layers.forEach((id, l) => {
    const got = doc.shapes[l]!.layers[0]!;
    assert.equal(got.layer, id);
    const load = new Array<number>(E[l]!).fill(0);
    for (const sel of want.experts[l]!) for (const e of sel) load[e]!++;
    assert.deepEqual(got.load, load, `layer ${id}: one count per own expert, none for padding`);
    const mean = load.reduce((a, b) => a + b, 0) / load.length;
    const sd = Math.sqrt(load.reduce((a, c) => a + (c - mean) ** 2, 0) / load.length);
    const share = load.map((c) => c / (mean * load.length));
    const H = -share.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0) / Math.log(load.length);
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
    assert.ok(close(got.cv, sd / mean), `layer ${id} cv`);
    assert.ok(close(got.maxVio, (Math.max(...load) - mean) / mean), `layer ${id} maxVio`);
    assert.ok(close(got.entropy, H), `layer ${id} entropy`);
    assert.equal(got.deadExperts, load.filter((c) => c === 0).length);
  });
  const text = moescope('stats', trace);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /layers differ in experts\/k \(layer 0: 8 experts top-2, layer 1: 4 experts top-1\)/);
  assert.match(text.stdout, /1 MoE layers × 4 experts, top-1/);
});

test('check, diff, plan and merge run on the model’s trace, each layer over its own E (stats --json as reference)', {
  skip,
}, (t) => {
  const dir = tempDir(t);
  const trace = record(dir);
  const stats = JSON.parse(moescope('stats', trace, '--json').stdout) as {
    shapes: { layers: { layer: number; load: number[]; maxVio: number; deadExperts: number }[] }[];
  };
  const byLayer = new Map(stats.shapes.flatMap((s) => s.layers.map((l) => [l.layer, l] as const)));
  const check = moescope('check', trace, '--max-maxvio', '100', '--format', 'json');
  assert.equal(check.code, 0, check.stderr);
  const rows = (JSON.parse(check.stdout) as { rows: { layer: number | null; maxVio: number; dead: number }[] }).rows;
  for (const id of meta(NAME).moeLayers) {
    const row = rows.find((r) => r.layer === id)!;
    assert.deepEqual([row.maxVio, row.dead], [byLayer.get(id)!.maxVio, byLayer.get(id)!.deadExperts], `layer ${id}`);
  }
  assert.equal(rows.filter((r) => r.layer === null).length, 2, 'one overall row per shape');
  const diff = moescope('diff', trace, trace, '--format', 'json');
  assert.equal(diff.code, 0, diff.stderr);
  const d = JSON.parse(diff.stdout) as { rows: { tv: number; agreement: number }[] };
  assert.ok(
    d.rows.every((r) => r.tv === 0 && r.agreement === 1),
    'a trace against itself: no drift, full agreement',
  );
  const plan = moescope('plan', trace, '--gpus', '2', '--replicas', '8', '--json');
  assert.equal(plan.code, 0, plan.stderr);
  const p = JSON.parse(plan.stdout) as { shapes: { experts: number; before: { gpuLoads: number[][] } }[] };
  const { E } = shapes();
  assert.deepEqual(
    p.shapes.map((s) => s.experts),
    E,
  );
  const merged = dir.path('m.arrows');
  assert.equal(moescope('merge', trace, '-o', merged).code, 0);
  assert.equal(moescope('stats', merged, '--json').code, 0);
});

test('replay --no-ui summarises a mixed-shape trace, each layer over its own E (stats --json as reference)', {
  skip,
}, (t) => {
  const dir = tempDir(t);
  const trace = record(dir);
  const stats = JSON.parse(moescope('stats', trace, '--json').stdout) as {
    shapes: { layers: { layer: number; cv: number; deadExperts: number }[] }[];
  };
  const r = moescope('replay', trace, '--no-ui');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /layer 0: 8 experts top-2, layer 1: 4 experts top-1/);
  for (const l of stats.shapes.flatMap((s) => s.layers)) {
    const row = new RegExp(`^  L${l.layer}\\s+(\\S+)\\s+\\S+\\s+\\S+\\s+(\\d+)`, 'm').exec(r.stdout);
    assert.ok(row, r.stdout);
    assert.equal(row[1], l.cv.toFixed(3), `layer ${l.layer} CV`);
    assert.equal(Number(row[2]), l.deadExperts, `layer ${l.layer} dead`);
  }
});
