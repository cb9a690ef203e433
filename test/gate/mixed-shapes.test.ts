/**
 * check and diff on traces whose MoE layers differ in E and K: every number is compared with the same command run
 * on the uniform sub-traces holding one shape each (test/trace/mixed-traces.ts) — the per-layer rows, one overall
 * row per shape, the verdicts — and every output format names the shape of an overall row. diff refuses traces
 * whose layer shapes differ, in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { mixedTraces, type LayerShape } from '../trace/mixed-traces.js';

const LAYERS: LayerShape[] = [
  { id: 0, E: 8, K: 2 },
  { id: 1, E: 4, K: 1 },
  { id: 3, E: 8, K: 2 },
  { id: 5, E: 6, K: 3 },
];

interface Doc {
  passed: boolean;
  rows: ({ layer: number | null; shape?: string } & Record<string, number | null>)[];
  verdicts: { rule: string; layer: number | null; shape?: string; value: number | null; pass: boolean }[];
}

function json(...args: string[]): { code: number | null; doc: Doc } {
  const r = moescope(...args, '--format', 'json');
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, doc: JSON.parse(r.stdout) as Doc };
}

const LIMITS = [
  '--max-maxvio',
  '1.2',
  '--max-dead',
  '0',
  '--max-cv',
  '0.6',
  '--min-entropy',
  '0.8',
  '--max-z-loss',
  '12',
];

test('check on a mixed trace: each layer and each shape’s overall row as check gives on that shape alone', (t) => {
  const dir = tempDir(t);
  const m = mixedTraces(dir.path, 'c', { layers: LAYERS, tokens: 800, logits: true, dead: { 1: [2], 5: [0, 4] } });
  const got = json('check', m.mixed, ...LIMITS);
  let failing = 0;
  for (const part of m.parts) {
    const want = json('check', part.path, ...LIMITS);
    const shape = `${part.E} experts top-${part.K}`;
    for (const row of want.doc.rows) {
      const mine = got.doc.rows.find((r) => r.layer === row.layer && (row.layer !== null || r.shape === shape));
      assert.ok(mine, `a row for ${row.layer ?? shape}`);
      const { shape: _, ...values } = mine;
      assert.deepEqual(values, row, `layer ${row.layer ?? shape}`);
    }
    for (const v of want.doc.verdicts) {
      const mine = got.doc.verdicts.find(
        (x) => x.rule === v.rule && x.layer === v.layer && (v.layer !== null || x.shape === shape),
      );
      assert.ok(mine, `${v.rule} at ${v.layer ?? shape}`);
      assert.deepEqual([mine.value, mine.pass], [v.value, v.pass]);
    }
    failing += want.doc.verdicts.filter((v) => !v.pass).length;
  }
  // Every row and verdict comes from one of the shapes: nothing extra, nothing over padded slots.
  assert.equal(got.doc.rows.length, LAYERS.length + m.parts.length);
  assert.equal(got.doc.verdicts.filter((v) => !v.pass).length, failing);
  assert.ok(failing > 0, 'the limits fail somewhere (the test would not see a wrong verdict otherwise)');
  assert.equal(got.code, 1);
  // Dead experts: layer 1 has 1 of its own 4, layer 5 2 of its own 6 (padding slots are never an expert).
  assert.deepEqual(
    got.doc.rows.filter((r) => r.layer !== null).map((r) => [r.layer, r.dead]),
    [
      [0, 0],
      [1, 1],
      [3, 0],
      [5, 2],
    ],
  );
});

test('check on a mixed trace: text, JUnit, GitHub and Markdown name each shape’s overall scope', (t) => {
  const dir = tempDir(t);
  const m = mixedTraces(dir.path, 'f', { layers: LAYERS, tokens: 300, dead: { 1: [2] } });
  const overall = ['--max-dead', '0', '--config', dir.path('gate.json')];
  // An overall limit applies to each shape's overall row: 1 dead expert in the 4-expert shape fails it.
  writeFileSync(dir.path('gate.json'), JSON.stringify({ overall: { maxDead: 0 } }));
  const text = moescope('check', m.mixed, ...overall);
  assert.equal(text.code, 1, text.stderr);
  assert.match(text.stdout, /^overall \(8 experts top-2\) /m);
  assert.match(text.stdout, /^overall \(4 experts top-1\) /m);
  assert.match(text.stdout, /^FAIL overall \(4 experts top-1\): dead experts/m);
  assert.doesNotMatch(text.stdout, /FAIL overall \(8 experts top-2\)/);
  const junit = moescope('check', m.mixed, ...overall, '--format', 'junit');
  assert.match(junit.stdout, /<testsuite name="moescope check overall \(4 experts top-1\)"[^>]* failures="1"/);
  assert.match(junit.stdout, /<testsuite name="moescope check overall \(6 experts top-3\)"[^>]* failures="0"/);
  const gh = moescope('check', m.mixed, ...overall, '--format', 'github');
  assert.match(gh.stdout, /::error title=moescope check%3A max-dead \(overall \(4 experts top-1\)\)::/);
  const md = moescope('check', m.mixed, ...overall, '--format', 'markdown');
  assert.match(md.stdout, /^\| \*\*overall \(4 experts top-1\)\*\* \|/m);
  assert.match(md.stdout, /^\| overall \(4 experts top-1\) \| dead experts/m);
});

test('diff of two mixed traces of one shape: per layer over its own E, as diff of each shape alone', (t) => {
  const dir = tempDir(t);
  const a = mixedTraces(dir.path, 'a', { layers: LAYERS, tokens: 600, seed: 1 });
  const b = mixedTraces(dir.path, 'b', { layers: LAYERS, tokens: 600, seed: 2, dead: { 3: [1, 2] } });
  const got = json('diff', a.mixed, b.mixed, '--max-tv', '0.05');
  a.parts.forEach((part, i) => {
    const want = json('diff', part.path, b.parts[i]!.path, '--max-tv', '0.05');
    for (const row of want.doc.rows)
      assert.deepEqual(
        got.doc.rows.find((r) => r.layer === row.layer),
        row,
        `layer ${row.layer}`,
      );
    for (const v of want.doc.verdicts)
      assert.deepEqual(
        got.doc.verdicts.find((x) => x.layer === v.layer && x.rule === v.rule),
        v,
      );
  });
  assert.equal(got.doc.rows.length, LAYERS.length);
  // Same tokens (seq, position and id) in both: agreement is measured per layer over its own K.
  assert.ok(got.doc.rows.every((r) => typeof r.agreement === 'number'));
  assert.ok(got.doc.verdicts.some((v) => !v.pass) && got.doc.verdicts.some((v) => v.pass));
});

test('diff refuses traces whose layer shapes differ, in one line naming the layer', (t) => {
  const dir = tempDir(t);
  const a = mixedTraces(dir.path, 'a', { layers: LAYERS, tokens: 50 });
  const other = LAYERS.map((s) => (s.id === 3 ? { ...s, K: 1 } : s));
  const b = mixedTraces(dir.path, 'b', { layers: other, tokens: 50 });
  const r = moescope('diff', a.mixed, b.mixed);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    `moescope: layer 3 routes over 8 experts top-2 in ${a.mixed}, 8 experts top-1 in ${b.mixed}: the traces differ in layer shapes and their loads cannot be compared\n`,
  );
  // Comparing only the layers both have in one shape works.
  assert.equal(moescope('diff', a.mixed, b.mixed, '--layers', '0,1,5').code, 0);
});
