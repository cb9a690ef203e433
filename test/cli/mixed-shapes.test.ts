/**
 * The batch commands on traces whose MoE layers differ in E and K, each checked against the same command on the
 * uniform sub-traces of one shape each (test/trace/mixed-traces.ts): import jsonl (the header's layerExperts /
 * layerTopK, round-tripped through export --jsonl), plan (one EPLB plan per shape), report (heatmap rows as wide as
 * their layer's E, metrics per shape), merge (per-rank mixed traces) and datasets (folders of Arrow and Parquet,
 * counted by the stream engine and DuckDB, padding slots never counted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { mixedTraces, type LayerShape } from '../trace/mixed-traces.js';

const LAYERS: LayerShape[] = [
  { id: 0, E: 8, K: 2 },
  { id: 2, E: 4, K: 1 },
  { id: 4, E: 8, K: 2 },
  { id: 6, E: 6, K: 3 },
];

function ok(...args: string[]): string {
  const r = moescope(...args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Per layer id: its load as stats --json gives it (a mixed trace's shapes, or a uniform trace's layers). */
function loads(doc: {
  shapes?: { layers: { layer: number; load: number[] }[] }[];
  layers?: { layer: number; load: number[] }[];
}) {
  const out = new Map<number, number[]>();
  for (const l of doc.shapes ? doc.shapes.flatMap((s) => s.layers) : doc.layers!) out.set(l.layer, l.load);
  return out;
}

test('import jsonl reads layerExperts / layerTopK: the export of a mixed trace imports back to the same routing', (t) => {
  const dir = tempDir(t);
  const m = mixedTraces(dir.path, 'i', { layers: LAYERS, tokens: 200, logits: true });
  ok('export', m.mixed, '--jsonl', dir.path('back.jsonl'));
  ok('import', 'jsonl', dir.path('back.jsonl'), '-o', dir.path('back.arrows'));
  ok('export', dir.path('back.arrows'), '--jsonl', dir.path('again.jsonl'));
  assert.equal(readFileSync(dir.path('again.jsonl'), 'utf8'), readFileSync(dir.path('back.jsonl'), 'utf8'));
  // Each layer's arrays are its own length; the source file's routing, token by token.
  const src = readFileSync(dir.path('i.jsonl'), 'utf8').trim().split('\n').slice(1);
  const back = readFileSync(dir.path('back.jsonl'), 'utf8').trim().split('\n');
  const header = JSON.parse(back[0]!) as Record<string, unknown>;
  assert.deepEqual([header.layerExperts, header.layerTopK], [LAYERS.map((s) => s.E), LAYERS.map((s) => s.K)]);
  const toks = back.slice(1).filter((l) => l.includes('"tokenId"'));
  assert.equal(toks.length, src.length);
  toks.forEach((line, i) => {
    const a = JSON.parse(src[i]!) as { experts: number[][]; weights: number[][]; logits: number[][] };
    const b = JSON.parse(line) as typeof a;
    assert.deepEqual(b.experts, a.experts);
    assert.deepEqual(b.weights, a.weights);
    assert.deepEqual(b.logits, a.logits);
  });
  // Logits only: each layer's top-k of its own logits.
  const lines = readFileSync(dir.path('i.jsonl'), 'utf8').trim().split('\n');
  const logitsOnly = [
    lines[0]!,
    ...lines.slice(1).map((l) => {
      const o = JSON.parse(l) as Record<string, unknown>;
      delete o.experts;
      delete o.weights;
      return JSON.stringify(o);
    }),
  ];
  writeFileSync(dir.path('logits.jsonl'), logitsOnly.join('\n') + '\n');
  ok('import', 'jsonl', dir.path('logits.jsonl'), '-o', dir.path('logits.arrows'));
  ok('export', dir.path('logits.arrows'), '--jsonl', dir.path('logits-back.jsonl'));
  const got = readFileSync(dir.path('logits-back.jsonl'), 'utf8').trim().split('\n').slice(1);
  got
    .filter((l) => l.includes('"tokenId"'))
    .forEach((line, i) => {
      const o = JSON.parse(line) as { experts: number[][]; logits: number[][] };
      LAYERS.forEach((s, l) => {
        assert.equal(o.experts[l]!.length, s.K);
        const order = o.logits[l]!.map((v, e) => [v, e] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
        assert.deepEqual(
          o.experts[l],
          order.slice(0, s.K).map((x) => x[1]),
          `token ${i} layer ${s.id}`,
        );
      });
    });
  // A header whose per-layer shapes do not fit is one line.
  writeFileSync(dir.path('bad.jsonl'), `${JSON.stringify({ ...header, layerTopK: [2, 1, 2] })}\n`);
  const bad = moescope('import', 'jsonl', dir.path('bad.jsonl'), '-o', dir.path('bad.arrows'));
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /^moescope: .*bad\.jsonl:1: header: invalid routing schema: layerExperts \/ layerTopK need one value per MoE layer \(4\), got 4 \/ 3\n$|^moescope: .*bad\.jsonl:1: header: layerExperts \/ layerTopK need one value per MoE layer \(4\), got 4 \/ 3\n$/,
  );
});

test('plan on a mixed trace: one EPLB plan per shape, each the plan of that shape alone', (t) => {
  const dir = tempDir(t);
  const m = mixedTraces(dir.path, 'p', { layers: LAYERS, tokens: 500, dead: { 2: [1] } });
  const args = ['--gpus', '2', '--replicas', '12'];
  const doc = JSON.parse(ok('plan', m.mixed, ...args, '--json')) as {
    layerExperts: number[];
    shapes: ({ shape: { experts: number; topK: number } } & Record<string, unknown>)[];
  };
  assert.deepEqual(
    doc.layerExperts,
    LAYERS.map((s) => s.E),
  );
  assert.equal(doc.shapes.length, m.parts.length);
  m.parts.forEach((part, i) => {
    const want = JSON.parse(ok('plan', part.path, ...args, '--json')) as Record<string, unknown>;
    const { shape, source, ...mine } = doc.shapes[i]!;
    assert.deepEqual(shape, { experts: part.E, topK: part.K });
    assert.match(String(source), new RegExp(`layers? ${part.layers.join(', ')} \\(${part.E} experts top-${part.K}\\)`));
    delete want.source;
    assert.deepEqual(mine, want, `shape ${part.E}/${part.K}`);
  });
  const text = ok('plan', m.mixed, ...args);
  assert.match(
    text,
    /layers differ in experts\/k \(layer 0: 8 experts top-2, layer 2: 4 experts top-1, .*\); one EPLB plan per shape/,
  );
  assert.match(text, /EPLB plan for .* · layer 2 \(4 experts top-1\): 1 layer × 4 experts → 12 slots/);
});

/** The load heatmap's cells: layer → values in column order. */
function heatRows(html: string): Map<number, number[]> {
  const svg = html.slice(
    html.indexOf('data-heatmap="load"'),
    html.indexOf('</svg>', html.indexOf('data-heatmap="load"')),
  );
  const out = new Map<number, number[]>();
  for (const m of svg.matchAll(/data-value="([^"]*)" data-layer="(\d+)" data-bin="(\d+)"/g)) {
    const row = out.get(Number(m[2])) ?? [];
    row[Number(m[3])] = Number(m[1]);
    out.set(Number(m[2]), row);
  }
  return out;
}

/** The metrics tables' rows: first cell → the other cells' text. */
function metricRows(html: string): string[][] {
  return [...html.matchAll(/<tr(?: class="total")?><td class="l">([^<]*)<\/td>((?:<td>[^<]*<\/td>)+)<\/tr>/g)].map(
    (m) => [m[1]!, ...[...m[2]!.matchAll(/<td>([^<]*)<\/td>/g)].map((x) => x[1]!)],
  );
}

test('report on a mixed trace: heatmap rows as wide as each layer’s E, metrics per shape as the shape alone', (t) => {
  const dir = tempDir(t);
  const m = mixedTraces(dir.path, 'r', { layers: LAYERS, tokens: 400, logits: true, dead: { 6: [5] } });
  ok('report', m.mixed, '-o', dir.path('m.html'));
  const html = readFileSync(dir.path('m.html'), 'utf8');
  const rows = heatRows(html);
  assert.deepEqual(
    [...rows.entries()].map(([l, v]) => [l, v.length]),
    LAYERS.map((s) => [s.id, s.E]),
  );
  const mine = metricRows(html);
  m.parts.forEach((part, i) => {
    ok('report', part.path, '-o', dir.path(`p${i}.html`));
    const want = readFileSync(dir.path(`p${i}.html`), 'utf8');
    for (const [l, v] of heatRows(want)) assert.deepEqual(rows.get(l), v, `layer ${l} heatmap row`);
    // Its metrics table (each layer, then "all layers" of this shape) appears as is in the mixed report, in order.
    const table = metricRows(want).filter((r) => r.length > 3);
    const at = mine.findIndex((r) => r[0] === table[0]![0] && r.join() === table[0]!.join());
    assert.ok(at >= 0, `shape ${part.E}/${part.K}: its first row`);
    assert.deepEqual(mine.slice(at, at + table.length), table, `shape ${part.E}/${part.K} metrics`);
    assert.match(
      html,
      new RegExp(`<h2>Metrics: ${part.E} experts top-${part.K} — layers? ${part.layers.join(', ')}</h2>`),
    );
  });
  // --devices: each layer placed contiguously over its own E; per layer as each shape's own report places it.
  const placed = (html: string) => {
    const sec = html.slice(html.indexOf('<section id="devices">'));
    return metricRows(sec.slice(0, sec.indexOf('</section>')));
  };
  ok('report', m.mixed, '-o', dir.path('d.html'), '--devices', '2');
  const dev = readFileSync(dir.path('d.html'), 'utf8');
  const rowsOf = new Map(placed(dev).map((r) => [r[0], r]));
  assert.equal(rowsOf.size, LAYERS.length);
  m.parts.forEach((part, i) => {
    ok('report', part.path, '-o', dir.path(`pd${i}.html`), '--devices', '2');
    for (const r of placed(readFileSync(dir.path(`pd${i}.html`), 'utf8'))) assert.deepEqual(rowsOf.get(r[0]), r);
  });
  // SGLang's balancedness over all layers: the mean of the per-layer ratios.
  const ratios = [...rowsOf.values()].map((r) => Number(r[3]));
  const sglang = Number(/Balancedness: <b>([\d.]+)<\/b> \(SGLang/.exec(dev)![1]);
  assert.ok(Math.abs(sglang - ratios.reduce((a, b) => a + b, 0) / ratios.length) <= 0.002, `${sglang} vs ${ratios}`);
  assert.match(dev, /8 experts top-2: GPU 0 experts 0–3, GPU 1 experts 4–7; 4 experts top-1: GPU 0 experts 0–1/);
});

test('merge: per-rank mixed traces of one schema merge; a rank of another shape is refused in one line', (t) => {
  const dir = tempDir(t);
  const a = mixedTraces(dir.path, 'a', { layers: LAYERS, tokens: 150, seed: 3 });
  const b = mixedTraces(dir.path, 'b', { layers: LAYERS, tokens: 250, seed: 4 });
  ok('merge', a.mixed, b.mixed, '-o', dir.path('m.arrows'));
  const merged = loads(JSON.parse(ok('stats', dir.path('m.arrows'), '--json')));
  const la = loads(JSON.parse(ok('stats', a.mixed, '--json')));
  const lb = loads(JSON.parse(ok('stats', b.mixed, '--json')));
  for (const s of LAYERS)
    assert.deepEqual(
      merged.get(s.id),
      la.get(s.id)!.map((x, e) => x + lb.get(s.id)![e]!),
      `layer ${s.id}`,
    );
  const other = mixedTraces(dir.path, 'c', {
    layers: LAYERS.map((s) => (s.id === 2 ? { ...s, E: 6 } : s)),
    tokens: 20,
  });
  const r = moescope('merge', a.mixed, other.mixed, '-o', dir.path('x.arrows'));
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    `moescope: ${other.mixed} cannot be merged with ${a.mixed}: its layer 2 routes over 6 experts top-1, the others' over 4 experts top-1\n`,
  );
});

test('datasets of mixed traces (Arrow and Parquet): each engine counts each layer over its own E, padding never', (t) => {
  const dir = tempDir(t);
  const a = mixedTraces(dir.path, 'a', { layers: LAYERS, tokens: 300, seed: 5, dead: { 0: [7] } });
  const b = mixedTraces(dir.path, 'b', { layers: LAYERS, tokens: 200, seed: 6, dead: { 0: [7] } });
  mkdirSync(dir.path('ds'));
  copyFileSync(a.mixed, dir.path('ds/a.arrows'));
  ok('export', b.mixed, '--parquet', dir.path('ds/b.parquet'));
  // The reference: the uniform sub-traces' loads, summed over both files.
  const want = new Map<number, number[]>();
  for (const part of [...a.parts, ...b.parts])
    for (const [l, v] of loads(JSON.parse(ok('stats', part.path, '--json'))))
      want.set(l, want.has(l) ? want.get(l)!.map((x, e) => x + v[e]!) : v);
  for (const engine of ['stream', 'duckdb']) {
    const doc = JSON.parse(ok('stats', dir.path('ds'), '--engine', engine, '--json')) as {
      shapes: { schema: { experts: number; topK: number }; layers: { layer: number; load: number[] }[] }[];
    };
    assert.deepEqual(
      doc.shapes.map((s) => [s.schema.experts, s.schema.topK]),
      a.parts.map((p) => [p.E, p.K]),
    );
    assert.deepEqual(loads(doc), want, engine);
    const check = JSON.parse(
      (() => {
        const r = moescope('check', dir.path('ds'), '--engine', engine, '--max-dead', '0', '--format', 'json');
        assert.equal(r.code, 1, r.stderr);
        return r.stdout;
      })(),
    ) as { verdicts: { layer: number | null; value: number; pass: boolean }[] };
    assert.deepEqual(
      check.verdicts.filter((v) => !v.pass).map((v) => v.layer),
      [0],
      `${engine}: expert 7 of layer 0 is dead in both files`,
    );
  }
});
